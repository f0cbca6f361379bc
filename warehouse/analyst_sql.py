"""The analyst's door: `scv sql` runs read-only queries on the published warehouse, and nothing else.

Two independent layers, so that neither alone has to be perfect:

1. **DuckDB's own switches** on the connection (`connect_read_only`): the file is opened
   read-only; `enable_external_access = false` stops every file and network access other than
   the warehouse file itself (`COPY … TO`, `EXPORT DATABASE`, `read_csv('/etc/passwd')`,
   `read_parquet` over the exports, `ATTACH`, `INSTALL` / `LOAD`); extensions are neither
   installed nor loaded on demand; then `lock_configuration = true` refuses any `SET` that would
   give some of it back. `search_path` is set to `scv` before the lock, so unqualified names
   resolve in the warehouse schema.
2. **An allow-list of statements** (`check_read_only`): DuckDB's parser splits the text into the
   statements it will run and names each one's type; sqlglot (dialect duckdb) classifies each
   statement; both must agree it is a read-only query:

   | allowed | DuckDB type |
   |---|---|
   | `SELECT`, `WITH …`, `FROM …`, `VALUES`, set operations | SELECT |
   | `DESCRIBE`, `SHOW`, `SUMMARIZE`, `PIVOT` / `UNPIVOT` | SELECT (PIVOT: SELECT or MULTI) |
   | `EXPLAIN [ANALYZE] <an allowed statement>` | EXPLAIN |
   | `PRAGMA <name>` for the names in `READ_ONLY_PRAGMAS` (`table_info`, `show_tables`, …) | PRAGMA |

   Everything else is refused with one line naming the statement: COPY, EXPORT / IMPORT
   DATABASE, ATTACH / DETACH, INSTALL / LOAD, SET / RESET / USE, CALL, CREATE, INSERT, UPDATE,
   DELETE, CHECKPOINT, transactions, `SELECT … INTO`, and any statement sqlglot cannot read
   (it cannot be checked). `CALL pragma_table_info('x')` is refused; `SELECT * FROM
   pragma_table_info('x')` is the same query and allowed.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import sqlglot
from sqlglot import exp

from warehouse.schema import SCHEMA
from warehouse.store import connect

__all__ = [
    "READ_ONLY_PRAGMAS",
    "ReadOnlyRefusal",
    "check_read_only",
    "connect_read_only",
    "one_line_error",
    "refusal",
]

#: PRAGMAs that only read (the others change settings, checkpoint, or copy/import a database).
READ_ONLY_PRAGMAS = frozenset(
    {
        "collations",
        "database_list",
        "database_size",
        "functions",
        "metadata_info",
        "platform",
        "show",
        "show_databases",
        "show_tables",
        "show_tables_expanded",
        "storage_info",
        "table_info",
        "user_agent",
        "version",
    }
)

#: What the refusal says scv sql can run (README, Commands).
ALLOWED_TEXT = (
    "queries only: SELECT, WITH, FROM, VALUES, DESCRIBE, SHOW, SUMMARIZE, PIVOT, EXPLAIN and "
    "read-only PRAGMAs such as table_info"
)
_CANNOT = (
    "it writes no file, reads no file but the warehouse, and cannot attach, install or load "
    "extensions, export the database or change settings"
)

#: DuckDB statement types a read-only query can have (MULTI: a PIVOT without an IN list).
_DUCKDB_READ_TYPES = frozenset({"SELECT", "EXPLAIN", "PRAGMA", "MULTI"})
#: sqlglot nodes that write or change state, wherever they sit in a query.
_WRITES = (exp.Into, exp.DML, exp.DDL, exp.Set, exp.Use, exp.Attach, exp.Detach, exp.Install,
           exp.Transaction, exp.Command, exp.Export)  # fmt: skip
#: Statements sqlglot keeps as a bare command but which DuckDB runs as a SELECT (`SHOW t`).
_READ_COMMANDS = frozenset({"SHOW", "DESCRIBE", "DESC", "SUMMARIZE"})
_EXPLAIN_OPTIONS = re.compile(r"^\s*(?:ANALY[SZ]E\b|\([^()]*\))\s*", re.IGNORECASE)


class ReadOnlyRefusal(ValueError):
    """A statement `scv sql` does not run; the message is one line saying which and why."""


def refusal(what: str) -> ReadOnlyRefusal:
    """The one-line refusal of `what` (a statement's name, or a reason)."""
    return ReadOnlyRefusal(f"{what} refused: read-only ({ALLOWED_TEXT}); {_CANNOT}")


@contextmanager
def connect_read_only(path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to the warehouse file `path` that can read the warehouse and nothing else
    (module docstring, layer 1). Order matters: external access is off from the start (a
    connect-time setting), `search_path` is set while settings can still change, then the
    configuration is locked."""
    con = connect(
        path,
        read_only=True,
        config={
            "enable_external_access": False,
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
            "allow_community_extensions": False,
        },
    )
    try:
        con.execute(f"SET search_path = '{SCHEMA}'")
        con.execute("SET lock_configuration = true")
        yield con
    finally:
        con.close()


def check_read_only(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """Raise ReadOnlyRefusal unless every statement of `sql` is an allowed read-only query
    (module docstring, layer 2). A syntax error comes out as DuckDB's own `duckdb.Error`."""
    statements = con.extract_statements(sql)
    if not statements:
        raise ReadOnlyRefusal("no SQL statement given")
    for statement in statements:
        _check_statement(con, statement.query, _type_name(statement))


def _type_name(statement: duckdb.Statement) -> str:
    try:
        return statement.type.name
    except ValueError:  # a type the Python binding has no name for (UPDATE EXTENSIONS)
        return "UNKNOWN"


def _check_statement(con: duckdb.DuckDBPyConnection, text: str, duckdb_type: str) -> None:
    name = _statement_name(text)
    if duckdb_type not in _DUCKDB_READ_TYPES:
        raise refusal(name)
    node = _parse_one(text, name, duckdb_type)
    if isinstance(node, exp.Command) and str(node.this).upper() == "EXPLAIN":
        if duckdb_type != "EXPLAIN":
            raise refusal(name)
        inner = str(node.expression.this if node.expression is not None else "")
        while (stripped := _EXPLAIN_OPTIONS.sub("", inner, count=1)) != inner:
            inner = stripped
        inner_statements = con.extract_statements(inner)
        if len(inner_statements) != 1:
            raise refusal(name)
        explained = inner_statements[0]
        _check_statement(con, explained.query, _type_name(explained))
        return
    if isinstance(node, exp.Pragma):
        pragma = _pragma_name(node)
        if duckdb_type != "PRAGMA" or pragma not in READ_ONLY_PRAGMAS:
            raise refusal(f"PRAGMA {pragma}" if pragma else name)
        return
    reads = isinstance(node, (exp.Query, exp.Values, exp.Describe, exp.Summarize, exp.Show))
    reads = reads or (isinstance(node, exp.Command) and str(node.this).upper() in _READ_COMMANDS)
    expected = {"SELECT", "MULTI"} if isinstance(node, exp.Pivot) else {"SELECT"}
    if not (reads or isinstance(node, exp.Pivot)) or duckdb_type not in expected:
        raise refusal(name)
    if isinstance(node, exp.Command):  # SHOW t and the like: nothing more to look into
        return
    write = next((n for n in node.walk() if isinstance(n, _WRITES)), None)
    if write is not None:
        raise refusal("SELECT … INTO" if isinstance(write, exp.Into) else name)


def _parse_one(text: str, name: str, duckdb_type: str) -> exp.Expression:
    """`text` (one statement, as DuckDB split it) parsed by sqlglot; refused when sqlglot cannot
    read it as exactly one statement (a query it cannot read could not be checked)."""
    log = logging.getLogger("sqlglot")
    level = log.level
    log.setLevel(logging.ERROR)  # "falling back to parsing as a Command" is not the user's news
    try:
        parsed = [s for s in sqlglot.parse(text, dialect="duckdb") if s is not None]
    except sqlglot.errors.SqlglotError as exc:
        if duckdb_type not in ("SELECT", "EXPLAIN"):
            raise refusal(name) from None
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ReadOnlyRefusal(
            f"{name} refused: it could not be checked as read-only (sqlglot: {first})"
        ) from None
    finally:
        log.setLevel(level)
    if len(parsed) != 1:
        raise refusal(name)
    return parsed[0]


def _pragma_name(node: exp.Pragma) -> str | None:
    this = node.this
    if isinstance(this, exp.Anonymous):  # PRAGMA table_info('customer')
        return str(this.this).lower()
    if isinstance(this, exp.Column) and not this.table:  # PRAGMA show_tables
        return this.name.lower()
    return None  # PRAGMA memory_limit = '1GB' and other assignments


def _statement_name(text: str) -> str:
    """The statement's leading keyword(s) as written, e.g. COPY, EXPORT DATABASE, ATTACH."""
    try:
        tokens = sqlglot.tokenize(text, dialect="duckdb")
    except sqlglot.errors.SqlglotError:
        tokens = []
    words = [t.text.upper() for t in tokens[:2]]
    if not words:
        return "this statement"
    if len(words) == 2 and words[1] == "DATABASE":
        return " ".join(words)
    return words[0]


def one_line_error(exc: BaseException) -> str:
    """DuckDB's error as one line, with its hints (`Did you mean "customer"?`, candidate
    bindings, the offending line) kept and the caret line dropped."""
    lines = [ln.strip() for ln in str(exc).splitlines()]
    lines = [ln for ln in lines if ln and set(ln) - {"^", " "}]
    if not lines:
        return type(exc).__name__
    return lines[0] if len(lines) == 1 else f"{lines[0]} ({'; '.join(lines[1:])})"
