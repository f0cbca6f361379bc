"""Reusing last night's standardised rows gives exactly what standardising every row gives."""

from datetime import date

import duckdb
import pandas as pd
import pytest

from sources.config import SourceConfig
from transforms.standardise import standardise_persons
from transforms.standardise.reuse import input_hashes, reuse_plan, write_reusing

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


def night(con, rows: pd.DataFrame, as_of: date) -> int:
    """One night's standardisation as the accepted asset runs it: plan the reuse against the
    tables of the night before (if any), standardise the rest, write both tables."""
    have = {r[0] for r in con.execute("SHOW TABLES").fetchall()}
    prev = ("accepted", "inputs") if {"accepted", "inputs"} <= have else (None, None)
    hashes, reused = reuse_plan(con, rows, *prev, as_of)
    fresh = standardise_persons(rows[~rows["_row_number"].isin(reused["_row_number"])], SRC, as_of)
    fresh = fresh.assign(field_issues=fresh["field_issues"].map(list))
    inputs = pd.DataFrame({"_row_number": rows["_row_number"].astype("int64"), "input_hash": hashes})
    write_reusing(con, fresh, reused, inputs, "accepted", "inputs")
    return len(reused)


def full(rows: pd.DataFrame, as_of: date) -> pd.DataFrame:
    """Standardising every row, written to DuckDB and read back like the staged table."""
    con = duckdb.connect()
    frame = standardise_persons(rows, SRC, as_of)
    con.register("f", frame.assign(field_issues=frame["field_issues"].map(list)))
    return staged(con, "f")


def staged(con, table: str) -> pd.DataFrame:
    return con.sql(f"SELECT * FROM {table} ORDER BY _row_number").df()


def same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    a, b = a.reset_index(drop=True), b.reset_index(drop=True)
    assert list(a.columns) == list(b.columns)
    assert a.dtypes.to_dict() == b.dtypes.to_dict()
    for col in a.columns:
        left = a[col].map(lambda v: tuple(v) if hasattr(v, "__len__") and not isinstance(v, str) else v)
        right = b[col].map(lambda v: tuple(v) if hasattr(v, "__len__") and not isinstance(v, str) else v)
        assert left.astype(str).tolist() == right.astype(str).tolist(), col


def test_unchanged_rows_are_reused_and_the_result_equals_a_full_standardisation():
    con = duckdb.connect()
    assert night(con, canon(NIGHT1), date(2026, 11, 20)) == 0
    # night 2: row 2 changed, a new row first (every row number moves), row 4 deleted
    rows = [("5", "Eve", "Stone", "eve@z.net", None, "1975-02-03"), NIGHT1[0],
            ("2", "Ben", "Jones", "ben@x.com", None, "1900-01-01"), NIGHT1[2]]
    second = canon(rows)
    # Anna reused; Cara's birth date was in the future on night 1 and is judged again
    assert night(con, second, date(2026, 11, 30)) == 1
    same(staged(con, "accepted"), full(second, date(2026, 11, 30)))
    assert staged(con, "inputs")["input_hash"].tolist() == list(input_hashes(second))


def test_a_kept_birth_date_outside_tonights_window_is_judged_again():
    con = duckdb.connect()
    first = canon(NIGHT1)
    night(con, first, date(2026, 11, 30))
    assert night(con, first, date(2026, 11, 20)) == 3  # a backfill: Cara's 2026-11-25 is in the future again
    got = staged(con, "accepted")
    same(got, full(first, date(2026, 11, 20)))
    assert got["dob"].isna().iloc[2]


def test_everything_reused_and_nothing_reused():
    con = duckdb.connect()
    first = canon(NIGHT1[:2])
    night(con, first, date(2026, 11, 20))
    assert night(con, first, date(2026, 11, 21)) == 2
    same(staged(con, "accepted"), full(first, date(2026, 11, 21)))
    assert reuse_plan(con, first, None, None, date(2026, 11, 21))[1].empty


@pytest.mark.parametrize("column", ["email", "date_of_birth", "source_record_id"])
def test_input_hash_changes_with_any_value_but_not_the_row_number(column):
    a = canon(NIGHT1)
    b = a.copy()
    b.loc[0, column] = "changed"
    assert input_hashes(a)[0] != input_hashes(b)[0]
    c = a.assign(_row_number=a["_row_number"] + 10)
    assert list(input_hashes(a)) == list(input_hashes(c))


def _oid(con, table: str) -> int:
    return con.execute("SELECT table_oid FROM duckdb_tables() WHERE table_name = ?", [table]).fetchall()[0][0]


def test_reused_rows_are_changed_in_place_not_copied():
    con = duckdb.connect()
    night(con, canon(NIGHT1), date(2026, 11, 20))
    before = _oid(con, "accepted")
    rows = [("5", "Eve", "Stone", "eve@z.net", None, "1975-02-03"), *NIGHT1[:2], NIGHT1[3]]
    second = canon(rows)  # a new row first: every kept row moves down one
    assert night(con, second, date(2026, 11, 21)) == 3
    assert _oid(con, "accepted") == before  # the same table, not a new one
    same(staged(con, "accepted"), full(second, date(2026, 11, 21)))


def test_one_row_of_last_night_standing_for_two_tonight_is_copied():
    con = duckdb.connect()
    first = canon(NIGHT1[:2])
    night(con, first, date(2026, 11, 20))
    second = canon([NIGHT1[0], NIGHT1[0], NIGHT1[1]])  # the same row twice (the quarantine keeps one)
    _, reused = reuse_plan(con, second, "accepted", "inputs", date(2026, 11, 21))
    assert reused["prev_row_number"].tolist() == [1, 1, 2]
    assert night(con, second, date(2026, 11, 21)) == 3
    same(staged(con, "accepted"), full(second, date(2026, 11, 21)))
