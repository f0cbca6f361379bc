"""The linkage model's field check counted in SQL gives what the frame rule gives."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest

from warehouse.identity import available_fields
from transforms import linkage

BLANKS = [None, "", " ", "\t", "\u00a0", "\u3000 ", "\u2003"]
FILLED = ["Ann", " x ", "李", "Ñ", "\u00a0李\u00a0", "1990-01-01", "+4477"]


def frame(n: int, values: dict[str, list]) -> pd.DataFrame:
    data = {"unique_id": [f"r{i}" for i in range(n)]}
    for col, vals in values.items():
        data[col] = (vals * (n // len(vals) + 1))[:n]
    return pd.DataFrame(data, dtype="string")


@pytest.mark.parametrize(
    "values",
    [
        # every field present and filled in some rows, blank in others
        {c: FILLED + BLANKS for c in linkage.MATCH_FIELD_COLUMNS[1:]},
        # only non-ASCII values: counted by the frame rule, not by SQL's shortcut
        {"first_name_std": ["李"] * 3 + BLANKS * 30, "last_name_std": ["\u00a0"] * 50},
        # a field just at the share threshold, another just under it
        {"email_key": ["a@b"] + [None] * 99, "phone_e164": ["\u4e00"] + [None] * 149},
        {},
    ],
)
def test_sql_count_agrees_with_the_frame_rule(values):
    df = frame(300, values)
    con = duckdb.connect()
    con.register("_df", df)
    con.execute("CREATE TABLE persons AS SELECT * FROM _df")
    assert available_fields(con, "persons") == linkage.available_fields(df)


def test_a_date_column_counts_as_filled():
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE persons AS SELECT 'r' || i AS unique_id, DATE '2000-01-01' + i::INT AS dob "
        "FROM range(10) t(i)"
    )
    assert available_fields(con, "persons") == ["dob"]
