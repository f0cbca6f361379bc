"""SQL models: `.sql` files in `warehouse/sql/`, found by name and executed in one place.

A model is one DuckDB `SELECT` statement in `warehouse/sql/<name>.sql`. Adding a model is adding
the file: nothing here lists them. By convention a model named after a published table
(`touchpoint.sql` → `scv.touchpoint`) returns exactly that table's columns (warehouse/schema.py),
in that order.

Values reach a model only as named parameters (`$as_of`), bound by DuckDB; `run_model` binds the
ones a model uses from whatever mapping it is given, so callers can pass one dict (e.g.
`{"as_of": date}`) to every model.

Inputs a model may read, in the staging database:
- `scv.<table>` for every table of `warehouse.schema.TABLES` built earlier in the night
  (`customer`, `customer_xref`, and other models' outputs such as `scv.touchpoint`);
- `stage.orders`, `stage.events`, `stage.consents`: the accepted frames of docs/architecture.md §3
  of all sources of a kind stacked together, and the lookup tables the pipeline writes for models
  (`stage.rfm_segment_map`), with the columns listed in `STAGE_TABLES`;
- `prev.<table>`: the previously published `scv.<table>` (same columns; empty before the first
  night), for models that carry state across nights. Copied in by `Warehouse.stage_previous`.

`model_dependencies(name)` reads a model's `scv.*` inputs from its SQL and `models_in_order()`
sorts models so that each runs after the models whose tables it reads.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import duckdb
import sqlglot
from sqlglot import exp

from warehouse.schema import SCHEMA, TABLES

__all__ = [
    "PREV_SCHEMA",
    "SQL_DIR",
    "STAGE_SCHEMA",
    "STAGE_TABLES",
    "STAGE_TABLE_OF_KIND",
    "ModelError",
    "available_models",
    "documented_types",
    "load_sql",
    "load_sql_unordered",
    "model_dependencies",
    "model_parameters",
    "models_in_order",
    "parse_model",
    "qualify_schema",
    "qualify_sql",
    "run_model",
    "stage_create_statement",
]

SQL_DIR = Path(__file__).with_name("sql")
STAGE_SCHEMA = "stage"
PREV_SCHEMA = "prev"
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_IDENT = re.compile(r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?$")

#: Columns of the `stage.*` inputs of the SQL models (table -> column -> DuckDB type).
#: Every stage table stacks the accepted frames (docs/architecture.md §3) of all enabled sources
#: of one kind, with `source` set to the source name. Besides the typed accepted columns:
#: - `person_source`: the person source named by the row's `person.source` config, so that
#:   `(person_source, person_record_id)` joins `scv.customer_xref (source, source_record_id)`;
#: - `stage.orders.amount_reporting`: `amount` converted into `reporting_currency`
#:   (`currency.reporting` in config) at `fx_rate`; all three NULL when no reporting currency is
#:   set, and then `amount` stays in its own `currency` (CONTRACT §7: no rate is built in).
#: The staging asset writes these tables with exactly these columns and types (each frame as an
#: Arrow table of these types: a type is never guessed from the first rows); tests qualify
#: every model against them.
STAGE_TABLES: dict[str, dict[str, str]] = {
    "orders": {
        "source": "VARCHAR",
        "source_record_id": "VARCHAR",
        "_row_number": "BIGINT",
        "person_source": "VARCHAR",
        "person_record_id": "VARCHAR",
        "order_date": "TIMESTAMP",
        "amount": "DOUBLE",
        "currency": "VARCHAR",
        "amount_reporting": "DOUBLE",
        "reporting_currency": "VARCHAR",
        "fx_rate": "DOUBLE",
        "status": "VARCHAR",
        "channel": "VARCHAR",
        "attributes": "VARCHAR",
    },
    "events": {
        "source": "VARCHAR",
        "source_record_id": "VARCHAR",
        "_row_number": "BIGINT",
        "person_source": "VARCHAR",
        "person_record_id": "VARCHAR",
        "session_id": "VARCHAR",
        "event_time": "TIMESTAMP",
        "event_type": "VARCHAR",
        "channel": "VARCHAR",
        "attributes": "VARCHAR",
    },
    "consents": {
        "source": "VARCHAR",
        "source_record_id": "VARCHAR",
        "_row_number": "BIGINT",
        "person_source": "VARCHAR",
        "person_record_id": "VARCHAR",
        "purpose": "VARCHAR",
        "granted": "BOOLEAN",
        "recorded_at": "TIMESTAMP",
    },
    # transforms.rfm.segment_table(): the RFM segment map as a lookup, read by rfm.sql.
    "rfm_segment_map": {
        "r_score": "INTEGER",
        "f_score": "INTEGER",
        "m_score": "INTEGER",
        "segment": "VARCHAR",
    },
}


#: The `stage` table of STAGE_TABLES that stacks the accepted tables of each kind of source.
STAGE_TABLE_OF_KIND = {"order": "orders", "event": "events", "consent": "consents"}


def documented_types(name: str) -> dict[str, str]:
    """Column -> DuckDB type of documented table `scv.<name>` (warehouse/schema.py), for staging
    tables written with the same columns (a source's quarantined rows, its source_run row)."""
    return {c.name: c.type for c in TABLES[name].columns}


class ModelError(ValueError):
    """A model that does not exist, or that cannot run with the parameters given."""


def available_models() -> list[str]:
    """Names of every model in `warehouse/sql/`, sorted."""
    return sorted(p.stem for p in SQL_DIR.glob("*.sql") if _NAME.match(p.stem))


def _path(name: str) -> Path:
    if not _NAME.match(name):
        raise ModelError(
            f"model name {name!r}: expected [a-z][a-z0-9_]* (the .sql file's stem)"
        )
    path = SQL_DIR / f"{name}.sql"
    if not path.is_file():
        raise ModelError(
            f"model {name!r}: no file warehouse/sql/{name}.sql; models: {available_models()}"
        )
    return path


def load_sql(name: str) -> str:
    """The SQL text of model `name` (the file `warehouse/sql/<name>.sql`), trailing `;` removed."""
    return _path(name).read_text(encoding="utf-8").strip().rstrip(";").strip()


def load_sql_unordered(name: str) -> str:
    """Model `name`'s SQL without its final ORDER BY (the text itself when it has none), for
    callers that compare its rows with a table rather than write them in order: sorting 7M
    touchpoints costs a third of computing them."""
    tree = parse_model(name)
    if tree.args.get("order") is None:
        return load_sql(name)
    tree = tree.copy()
    tree.set("order", None)
    return tree.sql(dialect="duckdb")


@cache
def _parsed(name: str, text: str) -> exp.Expression:
    # `text` is part of the cache key so an edited file is parsed again.
    statements = [s for s in sqlglot.parse(text, dialect="duckdb") if s is not None]
    if len(statements) != 1:
        raise ModelError(
            f"model {name!r}: expected one SQL statement, found {len(statements)}"
        )
    return statements[0]


def parse_model(name: str) -> exp.Expression:
    """Model `name` parsed by sqlglot (dialect duckdb)."""
    return _parsed(name, load_sql(name))


def model_parameters(name: str) -> set[str]:
    """Names of the `$parameters` model `name` uses."""
    return {p.name for p in parse_model(name).find_all(exp.Placeholder) if p.name}


def model_dependencies(name: str) -> set[str]:
    """`schema.table` names model `name` reads (CTE names excluded)."""
    tree = parse_model(name)
    ctes = {c.alias_or_name for c in tree.find_all(exp.CTE)}
    deps = set()
    for t in tree.find_all(exp.Table):
        if t.db:
            deps.add(f"{t.db}.{t.name}")
        elif t.name not in ctes:
            deps.add(t.name)
    return deps


def models_in_order(names: list[str] | None = None) -> list[str]:
    """`names` (default: all models) sorted so a model reading `scv.<other model>` runs after it.

    Ties keep alphabetical order, so the order is the same on every machine.
    """
    names = sorted(names if names is not None else available_models())
    pending = {}
    for n in names:
        reads = {
            d.split(".", 1)[1]
            for d in model_dependencies(n)
            if d.startswith(f"{SCHEMA}.")
        }
        pending[n] = reads & (set(names) - {n})
    order: list[str] = []
    while pending:
        ready = sorted(n for n, deps in pending.items() if not deps - set(order))
        if not ready:
            raise ModelError(
                f"models read each other's tables in a cycle: {sorted(pending)}"
            )
        order.append(ready[0])
        del pending[ready[0]]
    return order


def _bind(name: str, params: Mapping[str, Any] | None) -> dict[str, Any]:
    wanted = model_parameters(name)
    given = dict(params or {})
    missing = sorted(wanted - set(given))
    if missing:
        raise ModelError(
            f"model {name!r}: parameter(s) {missing} not given (needs {sorted(wanted)})"
        )
    return {k: given[k] for k in sorted(wanted)}


def run_model(
    con: duckdb.DuckDBPyConnection,
    name: str,
    params: Mapping[str, Any] | None = None,
    *,
    into: str | None = None,
) -> duckdb.DuckDBPyRelation | int:
    """Run model `name` on `con` with its `$parameters` bound by name from `params`.

    Parameters the model does not use are ignored; a missing one raises `ModelError`.
    Without `into`, returns a DuckDB relation over the result (call `.df()`, `.arrow()`,
    `.fetchall()` …; it is evaluated when read). With `into` (a `schema.table` name from code, not
    from users), replaces that table with the result (`CREATE OR REPLACE`, so a rerun of the same
    night gives the same table) and returns its row count.
    """
    sql = load_sql(name)
    bound = _bind(name, params)
    if into is None:
        return con.sql(sql, params=bound or None)
    if not _IDENT.match(into):
        raise ModelError(f"into: {into!r} is not a plain [schema.]table identifier")
    # Results are fetched to the end: DuckDB 2 refuses further work on a connection holding an
    # unfinished result.
    con.execute(f"CREATE OR REPLACE TABLE {into} AS {sql}", bound or None).fetchall()
    return int(con.execute(f"SELECT count(*) FROM {into}").fetchall()[0][0])


def qualify_schema() -> dict[str, dict[str, dict[str, str]]]:
    """{schema: {table: {column: type}}} of every table a model may read, for sqlglot."""
    published = {t.name: {c.name: c.type for c in t.columns} for t in TABLES.values()}
    return {
        SCHEMA: published,
        PREV_SCHEMA: {name: dict(cols) for name, cols in published.items()},
        STAGE_SCHEMA: {t: dict(cols) for t, cols in STAGE_TABLES.items()},
    }


def qualify_sql(sql: str | exp.Expression) -> exp.Expression:
    """`sql` qualified by sqlglot against `qualify_schema()`: every column resolved to a table.

    Raises `sqlglot.errors.OptimizeError` for a column or table that does not exist (a typo in a
    model fails here, in tests, not at night).
    """
    from sqlglot.optimizer.qualify import qualify

    tree = (
        sqlglot.parse_one(sql, dialect="duckdb") if isinstance(sql, str) else sql.copy()
    )
    return qualify(
        tree,
        schema=qualify_schema(),
        dialect="duckdb",
        validate_qualify_columns=True,
        identify=False,
    )


def stage_create_statement(table: str) -> str:
    """`CREATE TABLE IF NOT EXISTS stage.<table>` with the documented input columns (tests, empty
    sources)."""
    cols = ", ".join(f'"{c}" {t}' for c, t in STAGE_TABLES[table].items())
    return f"CREATE TABLE IF NOT EXISTS {STAGE_SCHEMA}.{table} ({cols})"
