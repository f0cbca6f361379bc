"""`scv sql` through the CLI: read-only for real (issue 19, item 2). Before, COPY wrote personal
data to a file, replaced a BI export, EXPORT DATABASE dumped the warehouse and read_csv read
/etc/passwd; now each is refused in one line and no file changes."""

from pathlib import Path

import duckdb
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
    con.execute("CREATE SCHEMA scv; CREATE TABLE scv.customer (customer_id VARCHAR, email VARCHAR)")
    con.execute("INSERT INTO scv.customer VALUES ('C1', 'ann@example.com'), ('C2', 'bo@example.com')")
    export = tmp_path / "data" / "exports" / "customer" / "data.parquet"
    export.parent.mkdir(parents=True)
    con.execute(f"COPY scv.customer TO '{export}' (FORMAT parquet)")
    con.close()
    return config


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def sql(project: Path, query: str) -> int:
    return main(["sql", "--config", str(project), query])


def test_a_query_prints_a_table_with_unqualified_names_in_scv(project, capsys):
    assert sql(project, "SELECT customer_id FROM customer ORDER BY 1") == 0
    out = capsys.readouterr().out
    assert "C1" in out and "C2" in out and "customer_id" in out


@pytest.mark.parametrize(
    ("query", "said"),
    [
        ("COPY (SELECT * FROM customer) TO '{root}/leak.csv'", "COPY refused: read-only"),
        ("COPY (SELECT 1 AS x) TO '{root}/data/exports/customer/data.parquet' (FORMAT parquet)",
         "COPY refused: read-only"),
        ("EXPORT DATABASE '{root}/dump'", "EXPORT DATABASE refused: read-only"),
        ("ATTACH '{root}/other.duckdb' AS other", "ATTACH refused: read-only"),
        ("INSTALL httpfs", "INSTALL refused: read-only"),
        ("SET enable_external_access = true", "SET refused: read-only"),
        ("DELETE FROM customer", "DELETE refused: read-only"),
        ("SELECT * FROM read_csv('/etc/passwd', sep = ':')", "file access refused: read-only"),
        ("SELECT * FROM read_parquet('{root}/data/exports/customer/data.parquet')",
         "file access refused: read-only"),
    ],
)
def test_the_hostile_statements_are_refused_in_one_line_and_change_no_file(
    project, capsys, query, said
):
    root = project.parent
    before = files(root)
    assert sql(project, query.format(root=root)) == 1
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert err.startswith(f"scv sql: {said}") and "\n" not in err
    assert "root:" not in captured.out  # nothing of /etc/passwd printed
    assert files(root) == before


def test_reading_a_system_file_says_why_in_duckdbs_words(project, capsys):
    assert sql(project, "SELECT * FROM read_text('/etc/hostname')") == 1
    err = capsys.readouterr().err
    assert "Permission Error" in err and "/etc/hostname" in err


def test_a_typo_keeps_duckdbs_hint_on_the_one_line(project, capsys):
    assert sql(project, "SELECT * FROM custmer") == 1
    err = capsys.readouterr().err.strip()
    assert err == (
        'scv sql: Catalog Error: Table with name custmer does not exist! (Did you mean "customer"?)'
    )
