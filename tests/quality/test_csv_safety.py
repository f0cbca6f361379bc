"""quality.csv_safety: formula-looking cells neutralised in written CSVs, data kept verbatim."""

from __future__ import annotations

import csv

import pandas as pd
import pytest

from quality.csv_safety import neutralise_formula, safe_csv_frame, write_safe_csv

HOSTILE = [
    '=HYPERLINK("http://evil.example","click")',
    "+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
]
HARMLESS = [
    "Robert'); DROP TABLE students;--",
    "O'Brien",
    "王芳",
    "Zoë",
    "a=b",
    "",
    "user@example.com",
    "line one\r=1+1",  # a bare CR must not start a new spreadsheet row
    "multi\nline",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_formula_prefixes_are_quoted(value):
    assert neutralise_formula(value) == "'" + value


@pytest.mark.parametrize("value", HARMLESS + [None, 5, -3.5])
def test_other_values_are_unchanged(value):
    assert neutralise_formula(value) == value


def test_safe_csv_frame_touches_text_only_and_leaves_the_input_alone():
    df = pd.DataFrame(
        {
            "name": pd.array(HOSTILE + HARMLESS[:1], dtype="string"),
            "obj": pd.Series(HOSTILE[:3] + [None, 7, "ok", "=x"], dtype=object),
            "amount": [-1.5, 2.0, -3.0, 0.0, 1.0, 2.0, 3.0],
        }
    )
    before = df.copy()
    safe = safe_csv_frame(df)
    pd.testing.assert_frame_equal(df, before)  # the warehouse copy stays verbatim
    assert safe["name"].tolist() == ["'" + v for v in HOSTILE] + HARMLESS[:1]
    assert safe["obj"].tolist() == ["'" + v for v in HOSTILE[:3]] + [None, 7, "ok", "'=x"]
    assert safe["amount"].tolist() == df["amount"].tolist()


def test_safe_csv_frame_neutralises_column_names():
    assert list(safe_csv_frame(pd.DataFrame({"=cmd": ["a"], "ok": ["b"]})).columns) == ["'=cmd", "ok"]


def test_write_safe_csv_round_trip(tmp_path):
    df = pd.DataFrame({"name": HOSTILE + HARMLESS, "n": range(len(HOSTILE) + len(HARMLESS))})
    path = write_safe_csv(df, tmp_path / "out.csv")
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["name", "n"]
    cells = [r[0] for r in rows[1:]]
    assert all(not c.startswith(("=", "+", "-", "@", "\t", "\r")) for c in cells)
    assert cells[: len(HOSTILE)] == ["'" + v for v in HOSTILE]
    assert cells[len(HOSTILE) :] == HARMLESS
    assert len(rows) == 1 + len(HOSTILE) + len(HARMLESS)
