"""Standardised person records: the original values plus match keys (docs/architecture.md §4).

`standardise_persons(df, src, as_of)` turns a source's canonical person frame (text columns
named by canonical fields) into the frame the linker and the golden record read: every column of
`PERSON_STD_COLUMNS`, always present, null where the source lacks the field or a value is
unusable. Originals are kept as text (trimmed, empty → null; `first_name` / `last_name` come
from `full_name` for rows that have neither), `updated_at` as a naive UTC timestamp.

`field_issues` lists, per row, each value that was dropped and why, as `field:rule`:

| field | rules |
|---|---|
| first_name, last_name | placeholder |
| email | invalid, placeholder |
| phone | invalid, placeholder |
| date_of_birth | invalid, placeholder, impossible |
| address_line, postcode, city | placeholder |
| country | unknown |
| updated_at | invalid |

The rules themselves are in the submodules' docstrings (`names`, `emails`, `phones`, `dates`,
`places`).

The scalar helpers (`standardise_email`, `standardise_phone`, `name_key`, `parse_date`,
`country_code` …) run the very same code on one value, so a value typed by a user (for
`scv forget --email`) is normalised exactly as the warehouse normalised it.

Speed: every slow step runs once per distinct value of a column (see `_text`); the rest is
vectorised pandas on pyarrow strings. `bench/standardise.py` measures it.
"""

from __future__ import annotations

import functools
from datetime import date
from typing import Protocol

import numpy as np
import pandas as pd

from transforms.standardise._text import (
    PLACEHOLDER_TEXT,
    as_text,
    fold,
    key_text,
    null_text,
)
from transforms.standardise.dates import (
    EARLIEST_BIRTH_DATE,
    MAX_AGE_YEARS,
    PLACEHOLDER_DATES,
    parse_date,
    standardise_dobs,
    standardise_timestamps,
)
from transforms.standardise.emails import (
    PLACEHOLDER_EMAIL_DOMAINS,
    PLACEHOLDER_EMAIL_LOCAL_PARTS,
    PLACEHOLDER_EMAILS,
    email_keys,
    standardise_emails,
)
from transforms.standardise.names import (
    PLACEHOLDER_NAMES,
    name_key,
    name_keys,
    nickname_key,
    nickname_keys,
    split_full_name,
    split_full_names,
)
from transforms.standardise.phones import (
    PLACEHOLDER_PHONE_RUN,
    is_placeholder_digits,
    standardise_phones,
)
from transforms.standardise.places import (
    address_key,
    address_keys,
    city_key,
    city_keys,
    country_code,
    country_codes,
    postcode_key,
    postcode_keys,
)


class SourceReading(Protocol):
    """How a source writes its values, as far as standardising reads it: the source's `name`,
    its `date_format` (strftime, None for ISO 8601) and its `default_country` (ISO code for
    national phone numbers, or None). `sources.config.SourceConfig` is one; transforms know
    no config type."""

    name: str
    date_format: str | None
    default_country: str | None


#: Original person fields carried through as text (`updated_at` becomes a timestamp).
ORIGINAL_FIELDS = (
    "first_name",
    "last_name",
    "email",
    "phone",
    "date_of_birth",
    "address_line",
    "postcode",
    "city",
    "country",
    "updated_at",
)

#: The standardised person frame, in this order (docs/architecture.md §4).
PERSON_STD_COLUMNS = (
    "source",
    "source_record_id",
    "_row_number",
    "unique_id",
    *ORIGINAL_FIELDS,
    "first_name_std",
    "last_name_std",
    "first_name_alias",
    "full_name_std",
    "email_std",
    "email_key",
    "phone_e164",
    "dob",
    "address_std",
    "postcode_std",
    "city_std",
    "country_code",
    "field_issues",
)

#: DuckDB type of each standardised column: the staged `stage.accepted_<person source>` tables
#: are written with these (`transforms.frame_types.typed_table`), never with types guessed from
#: the first rows (an empty `field_issues` list on every early row once typed the column NULL[]).
PERSON_STD_TYPES: dict[str, str] = {
    **{c: "VARCHAR" for c in PERSON_STD_COLUMNS},
    "_row_number": "BIGINT",
    "updated_at": "TIMESTAMP",
    "field_issues": "VARCHAR[]",
}


@functools.lru_cache(maxsize=65536)
def _email_parts(value: str) -> tuple[str | None, str | None]:
    std, key, _ = standardise_emails(pd.Series([value], dtype="str"))
    return std[0], key[0]


def standardise_email(value: str | None) -> str | None:
    """Trimmed, lower-cased, valid email; None when empty, invalid or a placeholder."""
    return None if _missing(value) else _email_parts(str(value))[0]


def email_key(value: str | None) -> str | None:
    """Match key of an email as typed (`standardise_email`, then gmail dots / `+tag` removed)."""
    return None if _missing(value) else _email_parts(str(value))[1]


@functools.lru_cache(maxsize=65536)
def _phone(value: str, region: str | None) -> str | None:
    e164, _ = standardise_phones(pd.Series([value], dtype="str"), region)
    return e164[0]


def standardise_phone(value: str | None, region: str | None = None) -> str | None:
    """E.164 form of a phone number read in `region` (ISO alpha-2, for national numbers);
    None when empty, invalid or a placeholder."""
    return None if _missing(value) else _phone(str(value), region.upper() if region else None)


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def _column(df: pd.DataFrame, field: str) -> pd.Series:
    return as_text(df[field]) if field in df.columns else null_text(df.index)


def _full_name_std(first: np.ndarray, last: np.ndarray) -> np.ndarray:
    f = pd.Series(first, dtype="str")
    s = pd.Series(last, dtype="str")
    both = f + " " + s
    return both.fillna(f).fillna(s).to_numpy(dtype=object, na_value=None)


def _field_issues(n: int, issues: list[tuple[str, np.ndarray]]) -> list[list[str]]:
    out: list[list[str]] = [[] for _ in range(n)]
    for field, rules in issues:
        for i in np.flatnonzero(pd.notna(rules)):
            out[i].append(f"{field}:{rules[i]}")
    return out


def standardise_persons(
    df: pd.DataFrame, src: SourceReading, as_of: date | None = None
) -> pd.DataFrame:
    """One row per input person record, in input order: originals plus match keys.

    `df` is the canonical person frame (docs/architecture.md §2): `source_record_id`,
    `_row_number` and one text column per mapped canonical field. `src` says how the source
    writes its values (`SourceReading`: a `SourceConfig` serves). `as_of` is the
    date dates of birth are judged against (default: today, UTC). Returns exactly
    `PERSON_STD_COLUMNS`; see the module docstring. Raises ValueError naming the source and
    rows when `source_record_id` is missing or empty.
    """
    name = src.name
    if "source_record_id" not in df.columns:
        raise ValueError(f"source {name!r}: person frame has no source_record_id column")
    index = df.index
    n = len(df)
    record_id = as_text(df["source_record_id"])
    if record_id.isna().any():
        rows = df["_row_number"][record_id.isna()] if "_row_number" in df.columns else None
        where = (
            f"rows {rows.head(5).tolist()}"
            if rows is not None
            else f"{record_id.isna().sum()} rows"
        )
        raise ValueError(f"source {name!r}: source_record_id is empty at {where}")
    row_number = (
        df["_row_number"].astype("int64")
        if "_row_number" in df.columns
        else pd.Series(np.arange(1, n + 1), index=index, dtype="int64")
    )

    original = {field: _column(df, field) for field in ORIGINAL_FIELDS}
    if "full_name" in df.columns:
        full = as_text(df["full_name"])
        need = original["first_name"].isna() & original["last_name"].isna() & full.notna()
        if need.any():
            first, last = split_full_names(full[need])
            original["first_name"] = original["first_name"].copy()
            original["last_name"] = original["last_name"].copy()
            original["first_name"][need] = first
            original["last_name"][need] = last

    first_std, first_issue = name_keys(original["first_name"])
    last_std, last_issue = name_keys(original["last_name"])
    alias = nickname_keys(pd.Series(first_std, dtype="str")).to_numpy(dtype=object, na_value=None)
    email_std, email_k, email_issue = standardise_emails(original["email"])
    country, country_issue = country_codes(original["country"])
    region = pd.Series(country, index=index, dtype="str")
    if src.default_country:
        region = region.fillna(src.default_country.upper())
    phone, phone_issue = standardise_phones(original["phone"], region)
    dob, dob_issue = standardise_dobs(original["date_of_birth"], src.date_format, as_of)
    updated, updated_issue = standardise_timestamps(original["updated_at"], src.date_format)
    address, address_issue = address_keys(original["address_line"])
    postcode, postcode_issue = postcode_keys(original["postcode"])
    city, city_issue = city_keys(original["city"])

    issues = _field_issues(
        n,
        [
            ("first_name", first_issue),
            ("last_name", last_issue),
            ("email", email_issue),
            ("phone", phone_issue),
            ("date_of_birth", dob_issue),
            ("address_line", address_issue),
            ("postcode", postcode_issue),
            ("city", city_issue),
            ("country", country_issue),
            ("updated_at", updated_issue),
        ],
    )

    def text(values) -> pd.Series:
        return pd.Series(values, index=index, dtype="str")

    out = pd.DataFrame(
        {
            "source": pd.Series(name, index=index, dtype="str"),
            "source_record_id": record_id,
            "_row_number": row_number,
            "unique_id": name + ":" + record_id,
            **{f: original[f] for f in ORIGINAL_FIELDS if f != "updated_at"},
            "updated_at": pd.Series(updated, index=index, dtype="datetime64[us]"),
            "first_name_std": text(first_std),
            "last_name_std": text(last_std),
            "first_name_alias": text(alias),
            "full_name_std": text(_full_name_std(first_std, last_std)),
            "email_std": text(email_std),
            "email_key": text(email_k),
            "phone_e164": text(phone),
            "dob": text(dob),
            "address_std": text(address),
            "postcode_std": text(postcode),
            "city_std": text(city),
            "country_code": text(country),
            "field_issues": pd.Series(issues, index=index, dtype=object),
        },
        index=index,
    )
    return out[list(PERSON_STD_COLUMNS)]


__all__ = [
    "EARLIEST_BIRTH_DATE",
    "MAX_AGE_YEARS",
    "ORIGINAL_FIELDS",
    "PERSON_STD_COLUMNS",
    "PERSON_STD_TYPES",
    "PLACEHOLDER_DATES",
    "PLACEHOLDER_EMAILS",
    "PLACEHOLDER_EMAIL_DOMAINS",
    "PLACEHOLDER_EMAIL_LOCAL_PARTS",
    "PLACEHOLDER_NAMES",
    "PLACEHOLDER_PHONE_RUN",
    "PLACEHOLDER_TEXT",
    "SourceReading",
    "address_key",
    "address_keys",
    "city_key",
    "city_keys",
    "country_code",
    "country_codes",
    "email_key",
    "email_keys",
    "fold",
    "is_placeholder_digits",
    "key_text",
    "name_key",
    "name_keys",
    "nickname_key",
    "nickname_keys",
    "parse_date",
    "postcode_key",
    "postcode_keys",
    "split_full_name",
    "split_full_names",
    "standardise_dobs",
    "standardise_email",
    "standardise_emails",
    "standardise_persons",
    "standardise_phone",
    "standardise_phones",
    "standardise_timestamps",
]
