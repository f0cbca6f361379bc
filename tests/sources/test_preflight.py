"""Config checked before any work (issue 19, item 9). Before: a missing source file was found 46 s
into the run as a raw FileNotFoundError, a bad `date_format` only at validation, and invalid
YAML had no line number. Now each is one line naming the file, the key and the problem, before
Dagster starts a run."""

import sqlite3
import time
from pathlib import Path

import duckdb
import pytest

from scv_cli.main import main
from sources.config import ConfigError, date_format_problem, load_config
from sources.preflight import check_inputs, input_problems

CONFIG = """\
warehouse: data/warehouse/warehouse.duckdb
sources:
  crm:
    kind: person
    path: files/crm.csv
    id: ContactId
    date_format: "%d/%m/%Y"
    columns: {first_name: FirstName, email: Email}
  orders:
    kind: order
    path: files/orders.csv
    id: order_id
    person: {source: crm, key: contact}
    columns: {order_date: created_at, amount: total}
"""


def project(tmp_path: Path, text: str = CONFIG, files: tuple[str, ...] = ("crm.csv", "orders.csv")) -> Path:
    (tmp_path / "files").mkdir(exist_ok=True)
    for name in files:
        (tmp_path / "files" / name).write_text("ContactId,FirstName,Email\n1,Ann,a@x.com\n")
    config = tmp_path / "scv.yml"
    config.write_text(text, encoding="utf-8")
    return config


def run_count() -> int:
    import dagster as dg

    with dg.DagsterInstance.get() as instance:
        return instance.get_runs_count()


# ------------------------------------------------------------------------------ missing paths
def test_a_missing_source_file_stops_scv_run_in_one_line_before_dagster_starts(tmp_path, capsys):
    config = project(tmp_path, files=("orders.csv",))
    runs = run_count()
    started = time.monotonic()
    assert main(["run", "--config", str(config), "--as-of", "2026-11-20"]) == 1
    err = capsys.readouterr().err.strip()
    assert time.monotonic() - started < 10
    assert "\n" not in err
    assert err == (
        f"scv run: {config.resolve()}: sources.crm.path: {tmp_path / 'files' / 'crm.csv'}: no such "
        "file (relative paths start at the config file's folder)"
    )
    assert "FileNotFoundError" not in err
    assert run_count() == runs  # no Dagster run was created
    assert not (tmp_path / "data" / "staging").exists()


def test_every_problem_is_counted_on_the_one_line(tmp_path):
    text = CONFIG + "linkage: {labels: labels.csv}\n"
    cfg = load_config(project(tmp_path, text, files=()))
    assert [p.split(":", 1)[0] for p in input_problems(cfg)] == [
        "sources.crm.path",
        "sources.orders.path",
        "linkage.labels",
    ]
    with pytest.raises(ConfigError) as exc:
        check_inputs(cfg)
    assert str(exc.value).endswith("(and 2 more: sources.orders.path, linkage.labels)")


def test_a_disabled_source_may_be_missing_and_a_folder_is_not_a_file(tmp_path):
    text = CONFIG.replace("    path: files/orders.csv\n", "    path: files/orders.csv\n    enabled: false\n")
    cfg = load_config(project(tmp_path, text, files=("crm.csv",)))
    assert input_problems(cfg) == []
    (tmp_path / "files" / "crm.csv").unlink()
    (tmp_path / "files" / "crm.csv").mkdir()
    assert input_problems(cfg) == [f"sources.crm.path: {tmp_path / 'files' / 'crm.csv'} is a folder, not a file"]


# ------------------------------------------------------------------------------ database tables
DB_CONFIG = """\
sources:
  erp:
    kind: person
    path: erp.{ext}
    table: {table}
    id: cust_no
"""


def duckdb_file(path: Path) -> None:
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE customers (cust_no INTEGER, name VARCHAR)")
    con.execute("CREATE SCHEMA crm; CREATE TABLE crm.contacts (cust_no INTEGER)")
    con.close()


def sqlite_file(path: Path) -> None:
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE customers (cust_no INTEGER, name TEXT)")
    con.commit()
    con.close()


@pytest.mark.parametrize(("ext", "make"), [("duckdb", duckdb_file), ("sqlite", sqlite_file)])
def test_database_tables_are_found_before_the_night(tmp_path, ext, make):
    make(tmp_path / f"erp.{ext}")
    good = load_config(project(tmp_path, DB_CONFIG.format(ext=ext, table="customers"), files=()))
    assert input_problems(good) == []
    bad = load_config(project(tmp_path, DB_CONFIG.format(ext=ext, table="customer"), files=()))
    assert input_problems(bad) == [
        f"sources.erp.table: 'customer' not found in {tmp_path / f'erp.{ext}'} (tables: customers)"
    ]


def test_a_duckdb_table_in_a_schema_and_a_file_that_is_no_database(tmp_path):
    duckdb_file(tmp_path / "erp.duckdb")
    in_schema = load_config(project(tmp_path, DB_CONFIG.format(ext="duckdb", table="crm.contacts"), files=()))
    assert input_problems(in_schema) == []
    (tmp_path / "erp.sqlite").write_text("not a database at all, just text\n" * 10)
    broken = load_config(project(tmp_path, DB_CONFIG.format(ext="sqlite", table="customers"), files=()))
    [problem] = input_problems(broken)
    assert problem.startswith(f"sources.erp.path: {tmp_path / 'erp.sqlite'}: cannot be opened as a sqlite")
    (tmp_path / "erp.duckdb").write_text("not a database at all, just text\n" * 10)
    broken = load_config(project(tmp_path, DB_CONFIG.format(ext="duckdb", table="customers"), files=()))
    [problem] = input_problems(broken)
    assert problem.startswith(f"sources.erp.path: {tmp_path / 'erp.duckdb'}: cannot be opened as a duckdb")


# ------------------------------------------------------------------------------ date_format
@pytest.mark.parametrize(
    ("fmt", "words"),
    [
        ("%d/%m", "cannot hold a whole date: 23 November 2001 written with it is '23/11', read back as 1900-11-23"),
        ("%Y", "cannot hold a whole date"),
        ("%H:%M", "cannot hold a whole date"),
        ("dd/mm/yyyy", "has no strftime directive"),
        ("%-d/%-m/%Y", "is not a usable strftime pattern: '-' is a bad directive"),
        ("%Q", "is not a usable strftime pattern"),
        ("%d/%m/%Y%", "is not a usable strftime pattern: stray %"),
        ("%F", "is not a usable strftime pattern"),
    ],
)
def test_an_unusable_date_format_is_a_config_error_at_load(tmp_path, fmt, words):
    config = project(tmp_path, CONFIG.replace('"%d/%m/%Y"', f'"{fmt}"'))
    with pytest.raises(ConfigError) as exc:
        load_config(config)
    message = str(exc.value)
    assert message.startswith(f"{config}: sources.crm.date_format: {fmt!r} ")
    assert words in message and "\n" not in message


@pytest.mark.parametrize(
    "fmt",
    ["%d/%m/%Y", "%m/%d/%y", "%d.%m.%Y %H:%M", "%Y-%m-%dT%H:%M:%S%z", "%b %d, %Y", "%Y%m%d", "%j/%Y"],
)
def test_usable_date_formats_pass(fmt):
    assert date_format_problem(fmt) is None


def test_scv_run_reports_a_bad_date_format_before_any_work(tmp_path, capsys):
    config = project(tmp_path, CONFIG.replace('"%d/%m/%Y"', '"%d/%m"'))
    runs = run_count()
    assert main(["run", "--config", str(config), "--as-of", "2026-11-20"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"scv run: {config}: sources.crm.date_format: '%d/%m' cannot hold a whole date")
    assert run_count() == runs


# ------------------------------------------------------------------------------ YAML
@pytest.mark.parametrize(
    ("edit", "where", "words"),
    [
        (("    id: ContactId", "\tid: ContactId"), "line 6, column 1", "found character '\\t'"),
        (("    id: ContactId", "    id: Contact: Id"), "line 6, column 16", "mapping values are not allowed"),
        (("    id: ContactId", "   id: ContactId"), "line 6, column 4", "expected <block end>"),
        (("Email}", "Email"), "line 9, column 9", "expected ',' or '}', but got ':'"),
        (("    id: ContactId", "    id: ContactId\n    id: Other"), "line 7, column 5",
         "duplicate key 'id' (first given at line 6, column 5)"),
        (("  orders:", "  crm:"), "line 9, column 3", "duplicate key 'crm' (first given at line 3, column 3)"),
    ],
)
def test_invalid_yaml_names_its_line_and_column(tmp_path, edit, where, words):
    old, new = edit
    assert old in CONFIG
    config = project(tmp_path, CONFIG.replace(old, new, 1))
    with pytest.raises(ConfigError) as exc:
        load_config(config)
    message = str(exc.value)
    assert message.startswith(f"{config}: {where}: not valid YAML: ")
    assert words in message and "\n" not in message


def test_yaml_merge_keys_are_not_duplicates(tmp_path):
    text = CONFIG.replace("    kind: person\n", "    <<: {kind: person, id: Other}\n", 1)
    assert load_config(project(tmp_path, text)).sources["crm"].id == "ContactId"


def test_every_command_that_loads_the_config_says_where_the_yaml_is_wrong(tmp_path, capsys):
    config = project(tmp_path, CONFIG.replace("    id: ContactId", "\tid: ContactId", 1))
    assert main(["sql", "--config", str(config), "SELECT 1"]) == 1
    assert capsys.readouterr().err.strip().startswith(f"scv sql: {config}: line 6, column 1: not valid YAML")


def test_a_config_that_is_not_utf8_says_so(tmp_path):
    config = tmp_path / "scv.yml"
    config.write_bytes(CONFIG.replace("ContactId", "Contáct").encode("latin-1"))
    with pytest.raises(ConfigError, match=r"not UTF-8 text \(byte \d+ is 0xe1\): save the config as UTF-8"):
        load_config(config)
