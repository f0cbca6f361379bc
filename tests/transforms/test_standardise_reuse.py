"""Reusing last night's standardised rows gives exactly what standardising every row gives."""

from datetime import date

import duckdb
import pandas as pd
import pytest

from sources.config import SourceConfig
from transforms.standardise import standardise_persons
from transforms.standardise.reuse import input_hashes, standardise_persons_reusing

SRC = SourceConfig.model_validate(
    {"name": "crm", "kind": "person", "path": "crm.csv", "id": "Id", "default_country": "GB",
     "columns": {"first_name": "F", "last_name": "L", "email": "E", "phone": "P", "date_of_birth": "D"}}
)


def canon(rows):
    df = pd.DataFrame(rows, columns=["source_record_id", "first_name", "last_name", "email", "phone", "date_of_birth"])
    df.insert(0, "_row_number", range(1, len(df) + 1))
    return df.astype({c: "str" for c in df.columns if c != "_row_number"})


NIGHT1 = [
    ("1", "Anna", "Smith", "anna@x.com", "07700 900123", "1980-05-01"),
    ("2", "Ben", "Jones", "not-an-email", None, "1900-01-01"),
    ("3", "Cara", "O'Brien", None, "+44 20 7946 0958", "2026-11-25"),  # after night 1, before night 2
    ("4", "Dan", "Lee", "dan@y.org", None, None),
]


def stored(frame, hashes):
    """The standardised rows as the asset keeps them: written to DuckDB and read back."""
    con = duckdb.connect()
    con.register("f", frame.assign(input_hash=hashes))
    out = con.sql("SELECT * FROM f").to_arrow_table()
    df = out.to_pandas()
    df["field_issues"] = out.column("field_issues").to_pylist()
    return df


def same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    a, b = a.reset_index(drop=True), b.reset_index(drop=True)
    assert list(a.columns) == list(b.columns)
    assert a.dtypes.to_dict() == b.dtypes.to_dict()
    for col in a.columns:
        left = a[col].map(lambda v: tuple(v) if isinstance(v, (list, tuple)) else v)
        right = b[col].map(lambda v: tuple(v) if isinstance(v, (list, tuple)) else v)
        assert left.astype(str).tolist() == right.astype(str).tolist(), col


def test_unchanged_rows_are_reused_and_the_result_equals_a_full_standardisation():
    first = canon(NIGHT1)
    night1 = standardise_persons(first, SRC, as_of=date(2026, 11, 20))
    previous = stored(night1, input_hashes(first))
    # night 2: row 2 changed, a new row first (every row number moves), row 4 deleted
    rows = [("5", "Eve", "Stone", "eve@z.net", None, "1975-02-03"), NIGHT1[0],
            ("2", "Ben", "Jones", "ben@x.com", None, "1900-01-01"), NIGHT1[2]]
    second = canon(rows)
    got, hashes, reused = standardise_persons_reusing(second, SRC, date(2026, 11, 30), previous)
    # Anna reused; Cara's birth date was in the future on night 1 and is judged again
    assert reused == 1
    same(got, standardise_persons(second, SRC, as_of=date(2026, 11, 30)))
    assert list(hashes) == list(input_hashes(second))


def test_a_kept_birth_date_outside_tonights_window_is_judged_again():
    first = canon(NIGHT1)
    night1 = standardise_persons(first, SRC, as_of=date(2026, 11, 30))
    previous = stored(night1, input_hashes(first))
    got, _, reused = standardise_persons_reusing(first, SRC, date(2026, 11, 20), previous)  # a backfill
    assert reused == 3  # Cara's 2026-11-25 is in the future again
    same(got, standardise_persons(first, SRC, as_of=date(2026, 11, 20)))
    assert got["dob"].isna().iloc[2]


def test_everything_reused_and_nothing_reused():
    first = canon(NIGHT1[:2])
    night1 = standardise_persons(first, SRC, as_of=date(2026, 11, 20))
    previous = stored(night1, input_hashes(first))
    got, _, reused = standardise_persons_reusing(first, SRC, date(2026, 11, 21), previous)
    assert reused == 2
    same(got, standardise_persons(first, SRC, as_of=date(2026, 11, 21)))
    got, _, reused = standardise_persons_reusing(first, SRC, date(2026, 11, 21), None)
    assert reused == 0


@pytest.mark.parametrize("column", ["email", "date_of_birth", "source_record_id"])
def test_input_hash_changes_with_any_value_but_not_the_row_number(column):
    a = canon(NIGHT1)
    b = a.copy()
    b.loc[0, column] = "changed"
    assert input_hashes(a)[0] != input_hashes(b)[0]
    c = a.assign(_row_number=a["_row_number"] + 10)
    assert list(input_hashes(a)) == list(input_hashes(c))
