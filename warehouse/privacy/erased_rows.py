"""Privacy by design: keyed hashes of identifiers, and keeping erased people out of later nights.

`scv forget` records only keyed hashes (HMAC-SHA256) of an erased person's identifiers in a
suppression list; the nightly pipeline hashes the same identifiers of every incoming row and
quarantines the matches with rule `erased` and no personal data. Identifiers hashed (each
value as the standardiser writes it, docs/architecture.md §4):

- `record`: `"<source>:<source_record_id>"` of each of the person's source records;
- `email_key`: the email match key (gmail dots and `+tags` removed), and `email_std`;
- `phone_e164`: the phone number in E.164.

A keyed hash, not a plain one: a plain SHA-256 of an email can be reversed by hashing a list of
known addresses; without the key that is not possible. The key comes from config / environment
(never from this repository) and is passed in by the caller.

The list also records a verifier of the key (`key_verifier`: the keyed hash of a fixed string,
never the key): hashes made under another key match nobody, so a night run with another key
would let every erased person back; it is stopped before it reads a source instead.

`erased_source_rows` finds an erased person's rows in a source as it is read (the canonical
frame of the raw rows, before anything is landed): their raw values are never written anywhere,
only their row number, record id and a detail naming the subject by a hash prefix.

Also here, pure too: the matching of quarantined raw rows against a person's identifiers.
Nothing here reads a file or a database (suppression.py reads the list; erasure.py and access.py
work on the warehouse).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "ERASED_ACTIVITY_DETAIL",
    "ERASED_RULE",
    "HASH_PREFIX",
    "HASHED_FIELDS",
    "KEY_VERIFIER_KIND",
    "QUARANTINE_COLUMNS",
    "erased_detail",
    "erased_source_rows",
    "hash_identifier",
    "key_verifier",
    "raw_dict",
    "raw_mentions",
    "record_identifier",
    "redact_erased_quarantine",
    "split_erased",
    "split_erased_activity",
    "subject_hashes",
]

#: Quarantine rule of a row held back because its person asked to be forgotten.
ERASED_RULE = "erased"
#: Columns of a quarantine frame (docs/architecture.md §3).
QUARANTINE_COLUMNS = ("source", "row_number", "source_record_id", "rule", "detail", "raw")
#: Columns of `subject_hashes`: which identifier each hash is of.
HASHED_FIELDS = ("record", "email_key", "email_std", "phone_e164")
#: Hex characters of a hash shown in quarantine details (enough to find it in suppression.csv).
HASH_PREFIX = 12
#: Kind of the suppression-list entry that verifies the key (not an identifier's hash).
KEY_VERIFIER_KIND = "key_verifier"
#: What the key verifier is the keyed hash of: no identifier is ever this string.
_KEY_VERIFIER_TEXT = "scv-warehouse privacy key verifier, v1"
#: Quarantine detail of an activity row whose person record was erased.
ERASED_ACTIVITY_DETAIL = "erased on request (belongs to an erased person record)"


def _key_bytes(key: str | None) -> bytes:
    if not key:
        raise ValueError(
            "privacy key missing: the suppression list can only be checked with the key it was "
            "written with (privacy.key in the config, or the environment variable privacy.key_env)"
        )
    return key.encode("utf-8")


def hash_identifier(value: str, key: str) -> str:
    """HMAC-SHA256 of `value` (UTF-8) under `key`, as 64 lower-case hex characters."""
    return hmac.new(_key_bytes(key), str(value).encode("utf-8"), hashlib.sha256).hexdigest()


def key_verifier(key: str) -> str:
    """The keyed hash of a fixed string under `key`: tells whether a key is the one a
    suppression list was written with, without storing the key."""
    return hash_identifier(_KEY_VERIFIER_TEXT, key)


def record_identifier(source: str, source_record_id: str) -> str:
    """The identifier of one source record: `"<source>:<source_record_id>"` (= `unique_id`)."""
    return f"{source}:{source_record_id}"


def erased_detail(hash_hex: str | None) -> str:
    """Quarantine detail of an erased row: names the subject by a hash prefix, nothing else."""
    if not hash_hex:
        return "erased on request"
    return f"erased on request (subject {hash_hex[:HASH_PREFIX]})"


def _hasher(key: str):
    # One keyed state copied per value: ~20% faster than a fresh HMAC each time, and every
    # distinct value is hashed once (the same email recurs across sources).
    base = hmac.new(_key_bytes(key), digestmod=hashlib.sha256)
    cache: dict[str, str] = {}

    def digest(value: Any) -> str | None:
        if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
            return None
        text = str(value)
        if text == "":
            return None
        out = cache.get(text)
        if out is None:
            h = base.copy()
            h.update(text.encode("utf-8"))
            out = cache[text] = h.hexdigest()
        return out

    return digest


def _suppressed_hits(values: pd.Series, key: str | None, suppressed: set[str]) -> np.ndarray:
    """Per row: the hex hash of the value when it is in `suppressed`, else None.

    The nightly hot path (every identifier of every person record once a suppression list
    exists): hashes each distinct value once, compares raw digests, and spells out hex only for
    the few hits. ~3 µs a value, so about 3 s per million distinct identifiers.
    """
    wanted = {bytes.fromhex(h) for h in suppressed}
    codes, uniques = pd.factorize(values)
    base = hmac.new(_key_bytes(key), digestmod=hashlib.sha256)
    copy = base.copy
    per_unique = np.full(len(uniques) + 1, None, dtype=object)  # last slot: missing values
    for i, v in enumerate(uniques):
        text = str(v)
        if not text:
            continue
        h = copy()
        h.update(text.encode("utf-8"))
        d = h.digest()
        if d in wanted:
            per_unique[i] = d.hex()
    return per_unique[codes]


def _unique_ids(persons: pd.DataFrame) -> pd.Series:
    if "unique_id" in persons.columns:
        return persons["unique_id"].astype("str")
    return persons["source"].astype("str") + ":" + persons["source_record_id"].astype("str")


def subject_hashes(
    persons_std: pd.DataFrame, key: str, fields: Iterable[str] = HASHED_FIELDS
) -> pd.DataFrame:
    """One row per person record: `unique_id` and the keyed hash of each identifier in `fields`
    (`record` = hash of unique_id, `email_key`, `email_std`, `phone_e164`); None where the record
    has no such value. Reads the standardised person frame of docs/architecture.md §4."""
    digest = _hasher(key)
    ids = _unique_ids(persons_std)
    out = {"unique_id": pd.Series(ids.to_numpy(dtype=object), index=persons_std.index, dtype="str")}
    for field in fields:
        if field == "record":
            values = ids
        elif field in persons_std.columns:
            values = persons_std[field]
        else:
            values = pd.Series(None, index=persons_std.index, dtype=object)
        # object dtype keeps None for "no value" (a str column would turn it into NaN)
        out[field] = pd.Series(
            [digest(v) for v in values.to_numpy(dtype=object, na_value=None)],
            index=persons_std.index,
            dtype=object,
        )
    return pd.DataFrame(out, index=persons_std.index)


def _empty_quarantine() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "source": pd.Series(dtype="str"),
            "row_number": pd.Series(dtype="int64"),
            "source_record_id": pd.Series(dtype="str"),
            "rule": pd.Series(dtype="str"),
            "detail": pd.Series(dtype="str"),
            "raw": pd.Series(dtype=object),
        }
    )


def _quarantine_rows(
    rows: pd.DataFrame, source: pd.Series | str, details: list[str]
) -> pd.DataFrame:
    if rows.empty:
        return _empty_quarantine()
    source_col = (
        pd.Series(source, index=rows.index, dtype="str")
        if isinstance(source, str)
        else source.astype("str")
    )
    return pd.DataFrame(
        {
            "source": source_col.to_numpy(dtype=object),
            "row_number": rows["_row_number"].astype("int64").to_numpy(),
            "source_record_id": rows["source_record_id"].to_numpy(dtype=object, na_value=None),
            "rule": ERASED_RULE,
            "detail": details,
            "raw": None,
        }
    ).astype({"source": "str", "rule": "str", "detail": "str", "source_record_id": "str"})


def split_erased(
    persons_std: pd.DataFrame, suppressed: set[str], key: str | None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(kept persons, quarantine rows) of a standardised person frame.

    A record is erased when the keyed hash of its `unique_id`, `email_key` or `phone_e164` is
    in `suppressed` (`email_std` needs no check: forget stores the key of every email). The
    quarantine rows carry `source, row_number, source_record_id`, rule `erased`, a detail naming
    the subject by a hash prefix and `raw = None`: nothing personal. With an empty suppression
    list nothing is hashed and `key` may be None; otherwise a missing key raises ValueError.
    """
    if not suppressed or persons_std.empty:
        return persons_std, _empty_quarantine()
    ids = _unique_ids(persons_std)
    matched = np.full(len(persons_std), None, dtype=object)
    for field in ("phone_e164", "email_key", "record"):  # last wins: the record hash first
        if field == "record":
            values = ids
        elif field in persons_std.columns:
            values = persons_std[field]
        else:
            continue
        hit = _suppressed_hits(values, key, suppressed)
        found = pd.notna(hit)
        matched[found] = hit[found]
    erased = pd.notna(matched)
    if not erased.any():
        return persons_std, _empty_quarantine()
    rows = persons_std[erased]
    source = rows["source"] if "source" in rows.columns else pd.Series("", index=rows.index)
    quarantine = _quarantine_rows(rows, source, [erased_detail(h) for h in matched[erased]])
    return persons_std[~erased], quarantine


def split_erased_activity(
    accepted: pd.DataFrame, erased_person_ids: set[str], source: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(kept rows, quarantine rows) of an order / event / consent frame of `source`: rows whose
    `person_record_id` is a record erased from the person source they reference go to
    quarantine with rule `erased` and no personal data. Works on the canonical or the accepted
    frame (it needs `_row_number`, `source_record_id`, `person_record_id`)."""
    if not erased_person_ids or accepted.empty:
        return accepted, _empty_quarantine()
    ids = accepted["person_record_id"].astype("str")
    erased = ids.isin(erased_person_ids).fillna(False).to_numpy(dtype=bool)
    if not erased.any():
        return accepted, _empty_quarantine()
    rows = accepted[erased]
    return accepted[~erased], _quarantine_rows(rows, source, [ERASED_ACTIVITY_DETAIL] * len(rows))


def erased_source_rows(
    canon: pd.DataFrame,
    source: str,
    suppressed: set[str],
    key: str | None,
    *,
    default_country: str | None = None,
    person_source: str | None = None,
    erased_person_ids: set[str] | frozenset[str] = frozenset(),
) -> pd.DataFrame:
    """The rows of a source that belong to an erased person, found as the source is read:
    `_row_number`, `source_record_id` and `detail` (rule `erased`, nothing personal).

    `canon` is the canonical frame of the raw rows (docs/architecture.md §2). A person source's
    row (`person_source` None) is erased when the keyed hash of `source:source_record_id`, of
    its email match key or of its E.164 phone (read in the row's country, else
    `default_country`, as the standardiser reads it) is in `suppressed`. An order / event /
    consent row is erased when its `person_record_id` is in `erased_person_ids` (the person
    source's rows erased tonight) or the keyed hash of `person_source:person_record_id` is in
    `suppressed`. Nothing is hashed when both are empty.
    """
    empty = pd.DataFrame(
        {
            "_row_number": pd.Series(dtype="int64"),
            "source_record_id": pd.Series(dtype="str"),
            "detail": pd.Series(dtype="str"),
        }
    )
    if canon.empty or (not suppressed and not erased_person_ids):
        return empty
    matched = np.full(len(canon), None, dtype=object)
    if person_source is None:
        from transforms.standardise import standardise_emails, standardise_phones
        from transforms.standardise.places import country_codes

        candidates: list[pd.Series] = []
        if "phone" in canon.columns:
            if "country" in canon.columns:
                country, _ = country_codes(canon["country"])
                region = pd.Series(country, index=canon.index, dtype="str")
            else:
                region = pd.Series(None, index=canon.index, dtype="str")
            if default_country:
                region = region.fillna(default_country.upper())
            e164, _ = standardise_phones(canon["phone"], region)
            candidates.append(pd.Series(e164, index=canon.index, dtype="str"))
        if "email" in canon.columns:
            _, keys, _ = standardise_emails(canon["email"])
            candidates.append(pd.Series(keys, index=canon.index, dtype="str"))
        ids = canon["source_record_id"].astype("str")
        candidates.append((source + ":" + ids).where(ids.notna()))
        for values in candidates:  # last wins: the record hash first
            if suppressed:
                hit = _suppressed_hits(values, key, suppressed)
                found = pd.notna(hit)
                matched[found] = [erased_detail(h) for h in hit[found]]
    else:
        refs = canon["person_record_id"].astype("str")
        if suppressed:
            hit = _suppressed_hits((person_source + ":" + refs).where(refs.notna()), key, suppressed)
            matched[pd.notna(hit)] = ERASED_ACTIVITY_DETAIL
        if erased_person_ids:
            matched[refs.isin(erased_person_ids).fillna(False).to_numpy(dtype=bool)] = (
                ERASED_ACTIVITY_DETAIL
            )
    erased = pd.notna(matched)
    if not erased.any():
        return empty
    rows = canon[erased]
    return pd.DataFrame(
        {
            "_row_number": rows["_row_number"].astype("int64").to_numpy(),
            "source_record_id": rows["source_record_id"].astype("str").to_numpy(dtype=object, na_value=None),
            "detail": matched[erased].astype(str),
        }
    ).astype({"source_record_id": "str", "detail": "str"})


# --------------------------------------------------------------------------- raw quarantine rows
def raw_dict(raw: Any) -> dict[str, Any]:
    if raw is None or (isinstance(raw, float) and np.isnan(raw)):
        return {}
    if isinstance(raw, dict):
        return raw
    try:
        value = json.loads(raw)
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _identifier_hashes_of_raw(
    row: Mapping[str, Any], src, digest
) -> list[str]:
    """Keyed hashes of the email / phone values of one raw row, read as the pipeline would."""
    from transforms.standardise import country_code, email_key, standardise_phone

    out: list[str] = []
    email_col = src.columns.get("email")
    if email_col and row.get(email_col):
        k = email_key(str(row[email_col]))
        if k:
            out.append(digest(k))
    phone_col = src.columns.get("phone")
    if phone_col and row.get(phone_col):
        region = None
        country_col = src.columns.get("country")
        if country_col and row.get(country_col):
            region = country_code(str(row[country_col]))
        region = region or src.default_country
        e164 = standardise_phone(str(row[phone_col]), region)
        if e164:
            out.append(digest(e164))
    return out


def redact_erased_quarantine(
    quarantine: pd.DataFrame,
    src,
    suppressed: set[str],
    key: str | None,
    erased_person_ids: set[str] | frozenset[str] = frozenset(),
) -> pd.DataFrame:
    """The validation quarantine of source `src` (a `SourceConfig`) with the rows of erased
    people turned into `erased` rows (raw None): a rejected row is still about a person, and its
    raw JSON would carry their data into the warehouse.

    A row is an erased person's when the keyed hash of `source:source_record_id`, of its email
    key or of its E.164 phone (read from the raw row through the source's column mapping) is in
    `suppressed`, or, for order / event / consent sources, when the raw row's person key is in
    `erased_person_ids`.
    """
    if quarantine.empty or (not suppressed and not erased_person_ids):
        return quarantine
    digest = _hasher(key) if suppressed else None
    person_key = src.person.key if getattr(src, "person", None) is not None else None
    details: list[str | None] = []
    for rec_id, raw in zip(
        quarantine["source_record_id"].to_numpy(dtype=object, na_value=None),
        quarantine["raw"].to_numpy(dtype=object, na_value=None),
        strict=True,
    ):
        row = raw_dict(raw)
        detail = None
        if digest is not None:
            candidates = []
            if rec_id is not None and str(rec_id) != "":
                candidates.append(digest(record_identifier(src.name, str(rec_id))))
            if src.kind == "person":
                candidates += _identifier_hashes_of_raw(row, src, digest)
            hit = next((h for h in candidates if h in suppressed), None)
            if hit:
                detail = erased_detail(hit)
        if detail is None and person_key and erased_person_ids:
            ref = row.get(person_key)
            if ref is not None and str(ref).strip() in erased_person_ids:
                detail = ERASED_ACTIVITY_DETAIL
        details.append(detail)
    mask = np.array([d is not None for d in details], dtype=bool)
    if not mask.any():
        return quarantine
    out = quarantine.copy()
    out["raw"] = out["raw"].astype(object)
    out.loc[mask, "rule"] = ERASED_RULE
    out.loc[mask, "detail"] = [d for d in details if d is not None]
    out.loc[mask, "raw"] = None
    return out


def _phone_digit_forms(e164: str) -> set[str]:
    """Digit strings a phone number may be written as in a raw row: international, national
    significant number, with a trunk 0 or an international 00 prefix."""
    import phonenumbers

    digits = re.sub(r"\D", "", e164)
    forms = {digits, "00" + digits}
    try:
        parsed = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return forms
    national = phonenumbers.national_significant_number(parsed)
    forms |= {national, "0" + national}
    return {f for f in forms if len(f) >= 7}


def raw_mentions(raw: Any, emails: Iterable[str], phones: Iterable[str]) -> bool:
    """Whether a raw row (JSON text of a quarantined row) holds one of the emails (compared
    lower-cased, anywhere in the text, and by match key per value) or one of the E.164 phones
    (compared by digits, in any usual national / international writing)."""
    from transforms.standardise import email_key

    if raw is None or (isinstance(raw, float) and np.isnan(raw)):
        return False
    text = raw if isinstance(raw, str) else json.dumps(raw)
    lowered = text.lower()
    emails = [e.lower() for e in emails if e]
    if any(e in lowered for e in emails):
        return True
    row = raw_dict(text)
    keys = {email_key(e) for e in emails} - {None}
    digit_forms: set[str] = set()
    for p in phones:
        if p:
            digit_forms |= _phone_digit_forms(p)
    for value in row.values():
        if value is None:
            continue
        v = str(value)
        if keys and "@" in v and email_key(v) in keys:
            return True
        if digit_forms:
            digits = re.sub(r"\D", "", v)
            if digits in digit_forms:
                return True
    return False
