"""`prepare_frame` against a plain pandas reference on generated frames.

`prepare_frame` is written for speed (Arrow text kernels, one DuckDB hashing query, bucketed
counts); the reference below is the straightforward pandas version it replaced, with counts taken
exactly by `value_counts`. The generated frames hold what the fast path has to get right: nulls,
empty and whitespace-only strings, unicode (and unicode whitespace), values containing the key
separator, keys shared by more records than the cap, columns missing, other dtypes and indexes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from transforms.linkage.comparisons import COUNT_SUFFIX, COUNTED_COLUMNS
from transforms.linkage.fields import (
    _SEP,
    GUARD_COLUMNS,
    MATCH_FIELDS,
    blocking_keys_for,
    prepare_frame,
)

ALL_FIELDS = list(MATCH_FIELDS)


def reference_prepare_frame(persons, fields, blocking_keys, *, max_key_records=30):
    """The pandas implementation `prepare_frame` must equal, value for value."""
    ids = persons["unique_id"]
    if ids.isna().any():
        row = int(ids.isna().to_numpy().argmax())
        raise ValueError(f"persons: row {row}: field 'unique_id' is empty")
    dup = ids.duplicated()
    if dup.any():
        row = int(dup.to_numpy().argmax())
        raise ValueError(f"persons: row {row}: field 'unique_id' repeats an earlier record")

    def clean(s):
        s = s.astype("string").str.strip()
        return s.mask(s == "")

    def share_counts(s):
        return s.map(s.value_counts()).fillna(0).astype("int64").to_numpy()

    cols = {"unique_id": ids.astype("string")}
    wanted = {c for f in fields for c in MATCH_FIELDS[f]} | set(GUARD_COLUMNS)
    wanted |= {c for parts in blocking_keys.values() for c in parts if not c.startswith("_")}
    for col in sorted(wanted):
        if col in persons.columns:
            cols[col] = clean(persons[col])
        else:
            cols[col] = pd.Series(pd.NA, index=persons.index, dtype="string")
    frame = pd.DataFrame(cols, index=persons.index)
    if "email_key" in frame.columns:
        user = frame["email_key"].str.extract(r"^([^@]+)@", expand=False)
    else:
        user = pd.Series(pd.NA, index=frame.index, dtype="string")
    frame["_email_user"] = user.astype("string")
    first, last = frame["first_name_std"], frame["last_name_std"]
    lo = first.where(first <= last, last)
    hi = last.where(first <= last, first)
    frame["_name_set"] = (lo + _SEP + hi).astype("string")
    for name, parts in blocking_keys.items():
        key = frame[parts[0]].astype("string")
        for p in parts[1:]:
            key = key + _SEP + frame[p].astype("string")
        frame[name] = key.where(share_counts(key) <= max_key_records)
    frame = frame.drop(columns=["_email_user", "_name_set"])
    for col in COUNTED_COLUMNS:
        if col in frame.columns:
            frame[col + COUNT_SUFFIX] = share_counts(frame[col])
    return frame.reset_index(drop=True)


#: Values drawn from small pools so that keys repeat, some of them past any cap.
POOLS = {
    "first_name_std": ["anna", "ben", "zoë", "søren", "李", " anna", "ben\u00a0", "x\x1fy"],
    "first_name_alias": ["anne", "benjamin", "", "zoe"],
    "last_name_std": ["smith", "anna", "o'neil", "müller", "\u3000", "x", "y\x1f", "ben"],
    "dob": ["1980-01-02", "1990-12-31", "2001-07-04", "  "],
    "email_key": ["a@x.com", "b@x.com", "@x.com", "nouser", "a@b@c", "ü@x.de", " a@x.com "],
    "phone_e164": ["+447700900000", "+447700900001", "+33123456789"],
    "address_std": ["1 high st", "2 high st", "flat 3, 1 high st", "\t"],
    "postcode_std": ["ab1 2cd", "ef3 4gh", "ij5"],
    "city_std": ["london", "paris", "köln"],
}


def generated_persons(n: int, seed: int, *, drop: tuple[str, ...] = ()) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data: dict[str, object] = {"unique_id": [f"s{seed}:{i}" for i in range(n)]}
    for col, pool in POOLS.items():
        if col in drop:
            continue
        # Half from the pool, half from a long tail of unique values; then nulls.
        values = np.array(pool + [f"{col}-{i}" for i in range(n)], dtype=object)
        weights = np.r_[np.full(len(pool), n / len(pool)), np.ones(n)]
        picked = rng.choice(values, n, p=weights / weights.sum())
        picked[rng.random(n) < 0.15] = None
        data[col] = picked
    df = pd.DataFrame(data)
    # A frame as read from a parquet file or a hand-built one: the fast path must not care.
    storage = ["python", "pyarrow", None][seed % 3]
    for col in df.columns:
        if storage is not None:
            df[col] = df[col].astype(pd.StringDtype(storage))
    return df.set_axis(rng.permutation(n) + 1000)  # an index that is not 0..n-1


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("max_key_records", [1, 3, 30])
def test_prepare_frame_equals_the_reference(seed, max_key_records):
    persons = generated_persons(400, seed)
    keys = blocking_keys_for(ALL_FIELDS)
    got = prepare_frame(persons, ALL_FIELDS, keys, max_key_records=max_key_records)
    want = reference_prepare_frame(persons, ALL_FIELDS, keys, max_key_records=max_key_records)
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    # The generated data really exercises the cap and the counts.
    uncapped = prepare_frame(persons, ALL_FIELDS, keys, max_key_records=len(persons))
    dropped = [(uncapped[k].notna() & got[k].isna()).any() for k in keys]
    assert any(dropped)
    assert (got["email_key_count"] > 1).any() and (got["email_key_count"] == 0).any()


@pytest.mark.parametrize(
    ("fields", "drop"),
    [
        (["email"], ()),
        (["first_name", "last_name", "dob", "city"], ("email_key", "postcode_std")),
        (["city"], ()),
        (ALL_FIELDS, ("email_key", "first_name_alias", "phone_e164")),
    ],
)
def test_prepare_frame_equals_the_reference_with_fewer_fields(fields, drop):
    persons = generated_persons(300, 11, drop=drop)
    keys = blocking_keys_for(fields)
    got = prepare_frame(persons, fields, keys, max_key_records=4)
    want = reference_prepare_frame(persons, fields, keys, max_key_records=4)
    pd.testing.assert_frame_equal(got, want, check_exact=True)


def test_prepare_frame_of_a_larger_frame_with_crowded_buckets():
    # Enough rows that the bucketed counting has many buckets, and some values just at and
    # just over the cap.
    n = 30_000
    persons = generated_persons(n, 4)
    at_cap = ["cap-at"] * 30 + ["cap-over"] * 31
    persons.iloc[: len(at_cap), persons.columns.get_loc("phone_e164")] = at_cap
    keys = blocking_keys_for(ALL_FIELDS)
    got = prepare_frame(persons, ALL_FIELDS, keys)
    want = reference_prepare_frame(persons, ALL_FIELDS, keys)
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    assert got["bk_phone"].iloc[:30].eq("cap-at").all()
    assert got["bk_phone"].iloc[30:61].isna().all()
    assert got["phone_e164_count"].iloc[30:61].eq(31).all()


def test_prepare_frame_of_no_records():
    persons = generated_persons(5, 0).iloc[:0]
    keys = blocking_keys_for(ALL_FIELDS)
    got = prepare_frame(persons, ALL_FIELDS, keys)
    pd.testing.assert_frame_equal(got, reference_prepare_frame(persons, ALL_FIELDS, keys))


@pytest.mark.parametrize("storage", ["python", "pyarrow", None])
def test_prepare_frame_names_the_row_of_a_repeated_or_empty_id(storage):
    ids = pd.Series([f"a:{i}" for i in range(5000)])
    if storage:
        ids = ids.astype(pd.StringDtype(storage))
    persons = pd.DataFrame({"unique_id": ids, "email_key": "x@y.z"})
    prepare_frame(persons, ["email"], {"bk_email": ("email_key",)})  # unique: no error
    repeated = persons.copy()
    repeated.loc[4321, "unique_id"] = "a:17"
    with pytest.raises(ValueError, match=r"row 4321: field 'unique_id' repeats an earlier record"):
        prepare_frame(repeated, ["email"], {"bk_email": ("email_key",)})
    empty = persons.copy()
    empty.loc[99, "unique_id"] = None
    with pytest.raises(ValueError, match=r"row 99: field 'unique_id' is empty"):
        prepare_frame(empty, ["email"], {"bk_email": ("email_key",)})
