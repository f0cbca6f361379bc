"""Which match fields a persons frame offers, and the frame Splink actually sees.

A *match field* is a logical field of the standardised persons frame (docs/architecture.md §4):
`first_name`, `last_name`, `dob`, `email`, `phone`, `address`, `postcode`, `city`. Each is backed
by one or more columns of that frame. The model is built from the fields a dataset really has,
so a company with only names + addresses + birth dates, or only emails, still links well.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .comparisons import COUNT_SUFFIX, COUNTED_COLUMNS

__all__ = [
    "BLOCK_KEY_MAX_RECORDS",
    "GUARD_COLUMNS",
    "MATCH_FIELDS",
    "MIN_FIELD_SHARE",
    "available_fields",
    "blocking_keys_for",
    "prepare_frame",
]

#: Match field -> the standardised columns it reads (the first one decides availability).
MATCH_FIELDS: dict[str, tuple[str, ...]] = {
    "first_name": ("first_name_std", "first_name_alias"),
    "last_name": ("last_name_std",),
    "dob": ("dob",),
    "email": ("email_key",),
    "phone": ("phone_e164",),
    "address": ("address_std",),
    "postcode": ("postcode_std",),
    "city": ("city_std",),
}

#: Columns the hard-conflict guards read (kept even when their field is not modelled).
GUARD_COLUMNS = ("first_name_std", "first_name_alias", "last_name_std", "dob")

#: A field is used only when at least this share of records has a value (and at least 2 do).
MIN_FIELD_SHARE = 0.01

#: A blocking key value shared by more records than this cannot be one person's duplicates
#: (a junk email, a call-centre phone, "unknown" street): it is not used to generate candidate
#: pairs, which keeps the number of pairs bounded whatever the data. Scoring still sees it, with
#: a term-frequency adjustment that makes it worth almost nothing.
BLOCK_KEY_MAX_RECORDS = 30

_SEP = "\x1f"


def available_fields(persons: pd.DataFrame) -> list[str]:
    """The match fields with enough non-null values in `persons`, in canonical order.

    A field needs its main column present with values in at least `MIN_FIELD_SHARE` of the
    records (and at least two records): a column that is almost always empty cannot be learnt
    by the model and only adds noise.
    """
    filled = {
        cols[0]: count_not_blank(persons[cols[0]])
        for cols in MATCH_FIELDS.values()
        if cols[0] in persons.columns
    }
    return fields_filled_enough(len(persons), filled)


def fields_filled_enough(n: int, filled: Mapping[str, int]) -> list[str]:
    """`available_fields` from counts: `n` records, and for each main column present the
    number of records with a value that is not blank."""
    out = []
    for field, cols in MATCH_FIELDS.items():
        count = filled.get(cols[0])
        if count is None or n == 0:
            continue
        if count >= 2 and count >= MIN_FIELD_SHARE * n:
            out.append(field)
    return out


def count_not_blank(values: pd.Series) -> int:
    """How many of `values` hold something other than whitespace (as `available_fields`
    counts them)."""
    return int(_clean(values).notna().sum())


def blocking_keys_for(fields: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """Blocking keys (name -> columns that must all be equal) usable with these fields.

    Every candidate pair of records shares at least one key. The set is chosen so that a
    duplicate with a typo, a nickname, swapped names, a new address or a new email still
    shares some key with its twin record. `_name_set` is the unordered pair of first and last
    name, so "Smith John" meets "John Smith".
    """
    f = set(fields)
    keys: dict[str, tuple[str, ...]] = {}
    names = {"first_name", "last_name"} <= f
    if "email" in f:
        keys["bk_email"] = ("email_key",)
        keys["bk_email_user"] = ("_email_user",)
    if "phone" in f:
        keys["bk_phone"] = ("phone_e164",)
    if names:
        keys["bk_name_set"] = ("_name_set",)
        keys["bk_alias_last"] = ("first_name_alias", "last_name_std")
    if "dob" in f:
        if "last_name" in f:
            keys["bk_last_dob"] = ("last_name_std", "dob")
        if "first_name" in f:
            keys["bk_first_dob"] = ("first_name_std", "dob")
        if "postcode" in f:
            keys["bk_postcode_dob"] = ("postcode_std", "dob")
        if "city" in f:
            keys["bk_city_dob"] = ("city_std", "dob")
    if "postcode" in f:
        if "last_name" in f:
            keys["bk_postcode_last"] = ("postcode_std", "last_name_std")
        if "first_name" in f:
            keys["bk_postcode_first"] = ("postcode_std", "first_name_std")
        if "address" in f:
            keys["bk_address_postcode"] = ("address_std", "postcode_std")
    if "address" in f:
        # The street line alone: a home whose postcode is mistyped or missing.
        keys["bk_address"] = ("address_std",)
    if "city" in f:
        if "first_name" in f:
            keys["bk_city_first"] = ("city_std", "first_name_std")
        if "last_name" in f:
            keys["bk_city_last"] = ("city_std", "last_name_std")
    if not keys:
        # A single weak field (e.g. only a city): exact agreement on it is all there is.
        for field in f:
            keys[f"bk_{field}"] = (MATCH_FIELDS[field][0],)
    return keys


def prepare_frame(
    persons: pd.DataFrame,
    fields: Sequence[str],
    blocking_keys: dict[str, Sequence[str]],
    *,
    max_key_records: int = BLOCK_KEY_MAX_RECORDS,
) -> pd.DataFrame:
    """The narrow frame handed to Splink: ids, match columns and one column per blocking key.

    Missing match columns are added as nulls and empty strings become nulls, so a model can be
    applied to a frame that lacks a field. Each blocking key column holds the joined key values,
    or null when any part is null or when more than `max_key_records` records share the value.

    This runs on every record of every night (2.5M at a million people), so the text work is
    done once per column in Arrow and every key and counted column is hashed in one DuckDB
    query; pandas sees each column once, when the frame is assembled.
    """
    if "unique_id" not in persons.columns:
        raise ValueError("persons: column 'unique_id' is missing")
    ids = persons["unique_id"]
    if ids.isna().any():
        row = int(ids.isna().to_numpy().argmax())
        raise ValueError(f"persons: row {row}: field 'unique_id' is empty")
    uid = _arrow(ids.astype("string"))

    wanted = {c for f in fields for c in MATCH_FIELDS[f]} | set(GUARD_COLUMNS)
    wanted |= {c for parts in blocking_keys.values() for c in parts if not c.startswith("_")}
    cols: dict[str, pa.ChunkedArray] = {"unique_id": uid}
    for col in sorted(wanted):
        cols[col] = _clean_arrow(persons[col]) if col in persons.columns else _nulls(len(persons))
    # The derived key parts are computed only when a key uses them, and not returned.
    used = {p for parts in blocking_keys.values() for p in parts}
    derived: dict[str, pa.ChunkedArray] = {}
    if "_email_user" in used:
        derived["_email_user"] = (
            _arrow(_email_user(_series(cols["email_key"])))
            if "email_key" in cols
            else _nulls(len(persons))
        )
    if "_name_set" in used:
        derived["_name_set"] = _name_set(cols["first_name_std"], cols["last_name_std"])
    parts_of = {**cols, **derived}
    keys = {name: _join([parts_of[p] for p in parts]) for name, parts in blocking_keys.items()}
    counted = [c for c in COUNTED_COLUMNS if c in cols]

    hashes = _hashes(
        {
            "unique_id": uid,
            **{f"key_{i}": key for i, key in enumerate(keys.values())},
            **{f"count_{i}": cols[col] for i, col in enumerate(counted)},
        }
    )
    if _has_repeats(hashes["unique_id"]):
        dup = ids.duplicated()  # a repeated hash is almost surely a repeated id: find its row
        if dup.any():
            row = int(dup.to_numpy().argmax())
            raise ValueError(f"persons: row {row}: field 'unique_id' repeats an earlier record")

    out: dict[str, Any] = {name: _string_array(values) for name, values in cols.items()}
    for i, (name, key) in enumerate(keys.items()):
        out[name] = _string_array(_drop_oversized(key, hashes[f"key_{i}"], max_key_records))
    for i, col in enumerate(counted):
        out[col + COUNT_SUFFIX] = _counts_from_hashes(hashes[f"count_{i}"], _valid(cols[col]))
    return pd.DataFrame(out, copy=False)


def _arrow(s: pd.Series) -> pa.ChunkedArray:
    """The Arrow data behind a "string" series, without copying it."""
    return s.array.__arrow_array__()


def _series(values: pa.ChunkedArray) -> pd.Series:
    return pd.Series(_string_array(values))


def _string_array(values: pa.ChunkedArray) -> pd.api.extensions.ExtensionArray:
    """A pandas "string" array over Arrow data: zero-copy for large_string, as pandas stores it."""
    return pd.arrays.ArrowStringArray(values)


def _nulls(n: int) -> pa.ChunkedArray:
    return pa.chunked_array([pa.nulls(n, pa.large_string())])


def _valid(values: pa.ChunkedArray) -> np.ndarray:
    return pc.is_valid(values).to_numpy(zero_copy_only=False)


def _clean_arrow(s: pd.Series) -> pa.ChunkedArray:
    """`_clean` on Arrow data: the same strip (pandas' own kernel) and empty-to-null, with the
    null pass skipped when no value is empty (the usual case for standardised columns)."""
    trimmed = pc.utf8_trim_whitespace(_arrow(s.astype("string")))
    empty = pc.equal(trimmed, "")
    if not pc.any(empty).as_py():
        return trimmed
    return pc.if_else(empty, pa.scalar(None, trimmed.type), trimmed)


def _name_set(first: pa.ChunkedArray, last: pa.ChunkedArray) -> pa.ChunkedArray:
    """First and last name in code-point order, joined: null when either is null."""
    first_first = pc.less_equal(first, last)
    return _join([pc.if_else(first_first, first, last), pc.if_else(first_first, last, first)])


def _join(parts: Sequence[pa.ChunkedArray]) -> pa.ChunkedArray:
    """The parts joined by `_SEP` in one pass; null when any part is null."""
    if len(parts) == 1:
        return parts[0]
    return pc.binary_join_element_wise(*parts, pa.scalar(_SEP, pa.large_string()))


def _hashes(columns: dict[str, pa.ChunkedArray]) -> dict[str, np.ndarray]:
    """DuckDB's 64-bit `hash` of every value of every column, in one vectorised query over the
    Arrow data (null rows get a hash too: callers mask them). Hashing all columns together
    lets DuckDB's threads share one scan; grouping 64-bit integers is then cheap."""
    import duckdb

    con = duckdb.connect()
    try:
        con.register("_columns", pa.table(columns))
        select = ", ".join(f'hash("{name}") AS "{name}"' for name in columns)
        got = con.sql(f"SELECT {select} FROM _columns").fetchnumpy()
    finally:
        con.close()
    return {name: np.asarray(got[name], dtype=np.uint64) for name in columns}


def _has_repeats(hashes: np.ndarray) -> bool:
    """Whether any hash occurs twice: a sort of integers, 20x cheaper than `duplicated` on text."""
    ordered = np.sort(hashes)
    return bool((ordered[1:] == ordered[:-1]).any())


def _drop_oversized(key: pa.ChunkedArray, hashes: np.ndarray, max_records: int) -> pa.ChunkedArray:
    """`key` with null where more than `max_records` records hold the same value.

    Records are first put in buckets by the low bits of their hash, a `bincount` instead of a
    hash table: equal values share a bucket, so only the records of a bucket holding more than
    `max_records` can hold an oversized value. With about four records per bucket that is only
    the records of common values (a frequent name), which are then counted exactly by their
    text: no hash collision can drop a key."""
    bits = max(len(key).bit_length() - 2, 10)
    bucket = (hashes & np.uint64((1 << bits) - 1)).view(np.int64)
    per_bucket = np.bincount(bucket, minlength=1 << bits)
    # Null keys all hash alike and fill one bucket: they are not candidates themselves.
    crowded = np.flatnonzero((per_bucket[bucket] > max_records) & _valid(key))
    if not len(crowded):
        return key
    codes, _ = pd.factorize(_series(key.take(pa.array(crowded))))
    over = crowded[np.bincount(codes)[codes] > max_records]
    if not len(over):
        return key
    drop = np.zeros(len(key), dtype=bool)
    drop[over] = True
    return pc.if_else(pa.array(drop), pa.scalar(None, key.type), key)


def _counts_from_hashes(hashes: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Per row, how many valid rows hold the same hash; 0 for a null row. Two different values
    share a count only if their 64-bit hashes collide, about once in 10^7 runs of a million
    distinct values; the count is a comparison level, so a collision moves one score a little."""
    out = np.zeros(len(hashes), dtype=np.int64)
    if valid.any():
        codes, _ = pd.factorize(hashes[valid])
        out[valid] = np.bincount(codes)[codes]
    return out


def _email_user(s: pd.Series) -> pd.Series:
    """The part of an email key before its first "@" (null without one, or when it is empty):
    `str.extract(r"^([^@]+)@")` in Arrow's regex engine, 6x faster at a million rows."""
    user = pc.struct_field(pc.extract_regex(pa.array(s.array), r"^(?P<user>[^@]+)@"), [0])
    mapper = {pa.string(): s.dtype, pa.large_string(): s.dtype}.get
    return pd.Series(user.to_pandas(types_mapper=mapper), index=s.index, name=s.name)


def _clean(s: pd.Series) -> pd.Series:
    s = s.astype("string").str.strip()
    return s.mask(s == "")
