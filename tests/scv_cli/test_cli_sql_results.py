"""`scv sql` results for analysts (issue 20): every row unless `--max-rows`, `--csv` on stdout,
`--out FILE` as CSV or Parquet, never into the folders the night writes, formulas neutralised."""

from pathlib import Path

import duckdb
import pandas as pd
import pytest

from scv_cli.main import main

CONFIG = """
warehouse: data/warehouse/warehouse.duckdb
exports: data/exports
sources:
  crm:
    kind: person
    path: crm.csv
    id: id
"""


@pytest.fixture
def project(tmp_path) -> Path:
    config = tmp_path / "scv.yml"
    config.write_text(CONFIG, encoding="utf-8")
    (tmp_path / "crm.csv").write_text("id\n1\n", encoding="utf-8")
    wh = tmp_path / "data" / "warehouse" / "warehouse.duckdb"
    wh.parent.mkdir(parents=True)
    con = duckdb.connect(str(wh))
    con.execute("CREATE SCHEMA scv; CREATE TABLE scv.customer AS "
                "SELECT 'C' || i AS customer_id, CASE WHEN i = 3 THEN '=HYPERLINK(1)' "
                "ELSE 'n' || i END AS note FROM range(100) t(i)")
    con.close()
    return config


def test_every_row_is_printed_unless_a_cap_is_asked(project, capsys):
    assert main(["sql", "--config", str(project), "SELECT * FROM customer ORDER BY customer_id"]) == 0
    out = capsys.readouterr().out
    assert "C99" in out and "C50" in out  # all 100 rows, no default cap of 40
    assert main(["sql", "--config", str(project), "SELECT * FROM customer", "--max-rows", "5"]) == 0
    capped = capsys.readouterr().out
    assert capped.count("\n") < 20  # five rows, not a hundred


def test_csv_on_stdout_neutralises_formulas(project, capsys):
    assert main(["sql", "--config", str(project), "SELECT * FROM customer ORDER BY 1", "--csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "customer_id,note" and len(lines) == 101
    assert "C3,'=HYPERLINK(1)" in lines


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_out_writes_the_whole_result(project, tmp_path, capsys, suffix):
    out = tmp_path / "results" / f"customers{suffix}"
    assert main(["sql", "--config", str(project), "SELECT * FROM customer", "--out", str(out)]) == 0
    got = pd.read_parquet(out) if suffix == ".parquet" else pd.read_csv(out)
    assert len(got) == 100 and list(got.columns) == ["customer_id", "note"]
    assert "100 rows written" in capsys.readouterr().err


@pytest.mark.parametrize("where", ["data/exports/customer.csv", "data/warehouse/x.parquet", "x.json"])
def test_out_never_writes_where_the_night_writes(project, tmp_path, capsys, where):
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert main(["sql", "--config", str(project), "SELECT 1", "--out", str(tmp_path / where)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("scv sql: --out") and len(err.splitlines()) == 1
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before
