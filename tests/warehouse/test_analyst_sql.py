"""The analyst's door (`scv sql`): DuckDB's switches and the statement allow-list, on a tiny
warehouse file. Every statement the hostile-user review got through (issue 19) is refused here."""

from pathlib import Path

import duckdb
import pytest

from warehouse.analyst_sql import (
    READ_ONLY_PRAGMAS,
    ReadOnlyRefusal,
    check_read_only,
    connect_read_only,
    one_line_error,
)


@pytest.fixture
def warehouse(tmp_path) -> Path:
    path = tmp_path / "warehouse.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE SCHEMA scv; CREATE TABLE scv.customer (customer_id VARCHAR, email VARCHAR)")
    con.execute("INSERT INTO scv.customer VALUES ('C1', 'ann@example.com')")
    con.close()
    return path


ALLOWED = [
    "SELECT * FROM customer",
    "select count(*) from scv.customer",
    "FROM customer",
    "WITH c AS (SELECT * FROM customer) SELECT email FROM c",
    "SELECT 1 UNION ALL SELECT 2",
    "VALUES (1), (2)",
    "DESCRIBE customer",
    "SHOW TABLES",
    "SHOW customer",
    "SUMMARIZE customer",
    "PIVOT customer ON customer_id USING count(*)",
    "EXPLAIN SELECT * FROM customer",
    "EXPLAIN ANALYZE SELECT * FROM customer",
    "PRAGMA table_info('customer')",
    "PRAGMA show_tables",
    "SELECT * FROM pragma_table_info('customer')",
    "SELECT * FROM duckdb_columns() WHERE schema_name = 'scv'",
    "SELECT 1; SELECT 2",
    "SELECT 'a;b' AS x -- COPY ... TO 'f'",
]

REFUSED = [
    ("COPY (SELECT * FROM customer) TO '{tmp}/out.csv'", "COPY"),
    ("COPY customer TO '{tmp}/exports/customer/data.parquet' (FORMAT parquet)", "COPY"),
    ("EXPORT DATABASE '{tmp}/dump'", "EXPORT DATABASE"),
    ("IMPORT DATABASE '{tmp}/dump'", "IMPORT DATABASE"),
    ("COPY FROM DATABASE warehouse TO other", "COPY"),
    ("ATTACH '{tmp}/other.duckdb' AS other", "ATTACH"),
    ("DETACH warehouse", "DETACH"),
    ("INSTALL httpfs", "INSTALL"),
    ("LOAD httpfs", "LOAD"),
    ("UPDATE EXTENSIONS", "UPDATE"),
    ("SET enable_external_access = true", "SET"),
    ("SET search_path = 'main'", "SET"),
    ("RESET lock_configuration", "RESET"),
    ("USE memory", "USE"),
    ("SET VARIABLE x = 1", "SET"),
    ("PRAGMA memory_limit = '1GB'", "PRAGMA"),
    ("PRAGMA enable_profiling", "PRAGMA enable_profiling"),
    ("PRAGMA copy_database('warehouse', 'other')", "PRAGMA copy_database"),
    ("CALL pragma_table_info('customer')", "CALL"),
    ("CHECKPOINT", "CHECKPOINT"),
    ("BEGIN TRANSACTION", "BEGIN"),
    ("CREATE TEMP TABLE t AS SELECT 1", "CREATE"),
    ("INSERT INTO customer VALUES ('C2', NULL)", "INSERT"),
    ("DELETE FROM customer", "DELETE"),
    ("UPDATE customer SET email = NULL", "UPDATE"),
    ("SELECT 1; COPY (SELECT 1) TO '{tmp}/x.csv'", "COPY"),
    ("EXPLAIN ANALYZE COPY (SELECT 1) TO '{tmp}/x.csv'", "COPY"),
    ("/* note */ COPY customer TO '{tmp}/x.csv'", "COPY"),
]


@pytest.mark.parametrize("sql", ALLOWED)
def test_queries_pass_the_allow_list_and_run(warehouse, sql):
    with connect_read_only(warehouse) as con:
        check_read_only(con, sql)
        con.sql(sql)


@pytest.mark.parametrize(("sql", "name"), REFUSED)
def test_everything_but_a_query_is_refused_in_one_line_naming_it(warehouse, tmp_path, sql, name):
    sql = sql.format(tmp=tmp_path)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    with connect_read_only(warehouse) as con, pytest.raises(ReadOnlyRefusal) as refused:
        check_read_only(con, sql)
    message = str(refused.value)
    assert message.startswith(f"{name} refused: read-only")
    assert "\n" not in message
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


@pytest.mark.parametrize(("sql", "name"), REFUSED)
def test_duckdbs_own_switches_stop_what_the_allow_list_would_miss(warehouse, tmp_path, sql, name):
    """Layer 1 alone: the same statements run straight on the connection write no file,
    attach nothing and change no setting (each fails, or does nothing outside the process)."""
    sql = sql.format(tmp=tmp_path)
    (tmp_path / "exports" / "customer").mkdir(parents=True)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    with connect_read_only(warehouse) as con:
        try:
            con.sql(sql)
        except duckdb.Error:
            pass
        settings = dict(
            con.execute(
                "SELECT name, value FROM duckdb_settings() WHERE name IN "
                "('enable_external_access', 'lock_configuration', 'search_path', 'memory_limit')"
            ).fetchall()
        )
        databases = {r[0] for r in con.execute("SELECT database_name FROM duckdb_databases()").fetchall()}
    assert sorted(p.name for p in tmp_path.rglob("*")) == before
    assert settings["enable_external_access"] == "false"
    assert settings["lock_configuration"] == "true"
    assert "other" not in databases


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM read_csv('/etc/passwd', sep = ':')",
        "SELECT * FROM read_text('/etc/hostname')",
        "SELECT * FROM glob('/etc/*')",
        "SELECT * FROM read_parquet('{tmp}/exports/customer/data.parquet')",
    ],
)
def test_a_query_cannot_read_a_file_outside_the_warehouse(warehouse, tmp_path, sql):
    export = tmp_path / "exports" / "customer" / "data.parquet"
    export.parent.mkdir(parents=True)
    duckdb.connect().execute(f"COPY (SELECT 1 AS x) TO '{export}' (FORMAT parquet)")
    with connect_read_only(warehouse) as con:
        sql = sql.format(tmp=tmp_path)
        check_read_only(con, sql)  # a query: the allow-list lets it through ...
        with pytest.raises(duckdb.PermissionException, match="disabled by configuration"):
            con.sql(sql).fetchall()  # ... and DuckDB refuses the file


def test_unqualified_names_resolve_in_scv(warehouse):
    with connect_read_only(warehouse) as con:
        assert con.sql("SELECT customer_id FROM customer").fetchall() == [("C1",)]
        assert con.sql("SHOW TABLES").fetchall() == [("customer",)]


def test_an_empty_query_is_refused(warehouse):
    with connect_read_only(warehouse) as con, pytest.raises(ReadOnlyRefusal, match="no SQL"):
        check_read_only(con, " ; -- nothing")


def test_duckdb_errors_keep_their_hints_on_one_line(warehouse):
    with connect_read_only(warehouse) as con:
        with pytest.raises(duckdb.Error) as typo:
            con.sql("SELECT * FROM custmer")
        with pytest.raises(duckdb.Error) as column:
            con.sql("SELECT emial FROM customer")
        with pytest.raises(duckdb.Error) as syntax:
            check_read_only(con, "SELEC 1")
    assert one_line_error(typo.value) == (
        'Catalog Error: Table with name custmer does not exist! (Did you mean "customer"?)'
    )
    assert 'Candidate bindings: "email"' in one_line_error(column.value)
    assert one_line_error(syntax.value) == (
        'Parser Error: syntax error at or near "SELEC" (LINE 1: SELEC 1)'
    )


def test_the_pragma_allow_list_names_only_pragmas_that_exist():
    existing = {
        r[0]
        for r in duckdb.connect()
        .execute("SELECT function_name FROM duckdb_functions() WHERE function_type = 'pragma'")
        .fetchall()
    }
    assert READ_ONLY_PRAGMAS <= existing
    assert not READ_ONLY_PRAGMAS & {"copy_database", "import_database", "force_checkpoint"}
