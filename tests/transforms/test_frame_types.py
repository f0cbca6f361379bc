"""Declared column types: a rare value late in a frame is typed like every other row (issue 19,
item 6: DuckDB typed a column from its first rows and the night failed on a later one)."""

from datetime import date

import duckdb
import pandas as pd
import pytest

from sources.config import SourceConfig
from transforms.frame_types import TypeDeclarationError, arrow_type, typed_table
from transforms.standardise import (
    PERSON_STD_COLUMNS,
    PERSON_STD_TYPES,
    standardise_persons,
)
from transforms.standardise.reuse import reuse_plan, write_reusing
from warehouse.store import write_frame

ROWS = 2000


def lists_with_one_value_on_the_last_row() -> pd.DataFrame:
    df = pd.DataFrame({"flags": pd.Series([[] for _ in range(ROWS)], dtype=object)})
    df.at[ROWS - 1, "flags"] = ["date_of_birth:placeholder"]
    return df


def test_duckdb_alone_types_the_column_from_its_first_rows_and_fails():
    """The failure this module exists for, as DuckDB 2 shows it."""
    con = duckdb.connect()
    con.register("v", lists_with_one_value_on_the_last_row())
    with pytest.raises(duckdb.Error, match="Unimplemented type for cast"):
        con.execute("CREATE TABLE t AS SELECT * FROM v")


def test_a_declared_list_column_keeps_a_value_on_its_last_row():
    table = typed_table(lists_with_one_value_on_the_last_row(), {"flags": "VARCHAR[]"}, what="t")
    con = duckdb.connect()
    con.register("v", table)
    con.execute("CREATE TABLE t AS SELECT * FROM v")
    assert con.execute("SELECT typeof(flags) FROM t LIMIT 1").fetchall() == [("VARCHAR[]",)]
    assert con.execute("SELECT flags FROM t WHERE len(flags) > 0").fetchall() == [
        (["date_of_birth:placeholder"],)
    ]


@pytest.mark.parametrize(
    ("duck", "late"),
    [
        ("VARCHAR", "late text"),
        ("DOUBLE", 1.5),
        ("BIGINT", 7),
        ("BOOLEAN", True),
        ("DATE", date(2024, 1, 2)),
        ("TIMESTAMP", pd.Timestamp("2024-01-02 03:04:05")),
        ("MAP(VARCHAR, BOOLEAN)", {"email_marketing": True}),
    ],
)
def test_every_type_takes_a_value_that_only_the_last_row_holds(duck, late):
    values = pd.Series([None] * ROWS, dtype=object)
    values[ROWS - 1] = late
    table = typed_table(pd.DataFrame({"c": values}), {"c": duck}, what="t")
    assert table.schema.field("c").type == arrow_type(duck)
    assert table.column("c").null_count == ROWS - 1


def test_an_undeclared_object_column_is_refused_for_staging():
    con = duckdb.connect()
    con.execute("CREATE SCHEMA stage")
    with pytest.raises(TypeDeclarationError, match="stage.x: column 'flags' .* no declared type"):
        write_frame(con, "x", lists_with_one_value_on_the_last_row())
    assert write_frame(con, "x", lists_with_one_value_on_the_last_row(), types={"flags": "VARCHAR[]"}) == ROWS
    # typed dtypes need no declaration
    assert write_frame(con, "y", pd.DataFrame({"a": [1, 2], "b": ["x", None]}).astype({"b": "str"})) == 2


def test_a_value_that_does_not_fit_names_the_row_and_the_column():
    df = pd.DataFrame({"_row_number": [1, 2, 3], "amount": pd.Series([1.0, 2.0, "lots"], dtype=object)})
    with pytest.raises(TypeDeclarationError) as exc:
        typed_table(df, {"_row_number": "BIGINT", "amount": "DOUBLE"}, what="stage.accepted_orders")
    assert str(exc.value) == "stage.accepted_orders: row 3: column 'amount': value 'lots' is not a DOUBLE"


def test_missing_or_extra_columns_are_refused():
    with pytest.raises(TypeDeclarationError, match=r"missing \['b'\], undeclared \['c'\]"):
        typed_table(pd.DataFrame({"a": [1], "c": [2]}), {"a": "BIGINT", "b": "BIGINT"}, what="t")


SRC = SourceConfig.model_validate(
    {"name": "crm", "kind": "person", "path": "crm.jsonl", "id": "Id",
     "columns": {"first_name": "F", "last_name": "L", "date_of_birth": "D"}}
)  # fmt: skip


def test_a_placeholder_birth_date_only_on_the_last_row_is_staged():
    """`write_reusing`, as the accepted asset calls it: issue 19's JSON-lines file of 2,000
    people whose only placeholder birth date is on the last row."""
    canon = pd.DataFrame(
        {
            "_row_number": range(1, ROWS + 1),
            "source_record_id": [f"P{i}" for i in range(ROWS)],
            "first_name": [f"Ann{i}" for i in range(ROWS)],
            "last_name": ["Lee"] * ROWS,
            "date_of_birth": ["1980-05-01"] * (ROWS - 1) + ["1900-01-01"],
        }
    ).astype({c: "str" for c in ("source_record_id", "first_name", "last_name", "date_of_birth")})
    con = duckdb.connect()
    hashes, reused = reuse_plan(con, canon, None, None, date(2026, 11, 20))
    fresh = standardise_persons(canon, SRC, date(2026, 11, 20))
    fresh = fresh.assign(field_issues=fresh["field_issues"].map(list))
    assert fresh["field_issues"].map(len).tolist() == [0] * (ROWS - 1) + [1]
    inputs = pd.DataFrame({"_row_number": canon["_row_number"].astype("int64"), "input_hash": hashes})
    assert write_reusing(con, fresh, reused, inputs, "accepted", "inputs") == ROWS
    types = dict(con.execute("SELECT column_name, column_type FROM (DESCRIBE accepted)").fetchall())
    assert types == PERSON_STD_TYPES and list(types) == list(PERSON_STD_COLUMNS)
    assert con.execute("SELECT field_issues FROM accepted WHERE _row_number = ?", [ROWS]).fetchall() == [
        (["date_of_birth:placeholder"],)
    ]
