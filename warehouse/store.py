"""The warehouse as storage: a staging DuckDB file where a night is built, a published file that
analysts read, and Parquet exports for BI. The one place that opens DuckDB warehouse files.

Write-audit-publish: a night is built in two staging files. The build file holds schema `scv`,
the tables to publish, and nothing else; the staging file, attached as catalog `stage`, holds the
intermediate tables (`stage.<name>`), which carry personal data and are never published. The
publish step checkpoints the build file, copies it byte for byte and renames the copy over the
published file (`os.replace` is atomic on one file system): no table is written twice. A reader
holding the old file open keeps reading the old night until it reconnects; a night that dies half
way leaves the published file untouched.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa

from transforms.audience import AudienceSpec
from transforms.frame_types import declared_types_of, typed_table
from warehouse.audience import AUDIENCES_DIR, prepare_audience_exports
from warehouse.exports import (
    ExportError,
    PreparedExports,
    clear_journal,
    finish_interrupted_publish,
    flat_export,
    fsync_dir,
    parquet_metadata,
    write_journal,
)
from warehouse.models import load_sql, model_parameters
from warehouse.schema import (
    MONEY_COLUMNS,
    SCHEMA,
    TABLES,
    Table,
    comment_statements,
    create_statement,
)

__all__ = [
    "Warehouse",
    "WarehouseBusy",
    "change_in_place",
    "change_to_match",
    "documented_table",
    "drop_relation",
    "empty_frame",
    "fetch_frame",
    "mark_changed",
    "relation_names",
    "stack_view",
    "write_frame",
    "write_model",
    "write_select",
]

STAGE = "stage"


def connect(
    path: Path, *, read_only: bool = False, config: Mapping[str, Any] | None = None
) -> duckdb.DuckDBPyConnection:
    """The one opener of warehouse files (published, build, staging, a copy being made): every
    module that opens one comes through here, so how a warehouse file is opened has one home.
    `config` is DuckDB's connect-time settings (e.g. external access off for an analyst)."""
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    return duckdb.connect(str(path), read_only=read_only, config=dict(config or {}))


_connect = connect


def _attached(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    """Whether a database called `name` is attached to `con`."""
    return bool(
        con.execute("SELECT count(*) FROM duckdb_databases() WHERE database_name = ?", [name]).fetchall()[0][0]
    )


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create schema `scv` and every documented table that does not exist yet, and schema
    `stage` unless `stage` is an attached staging file (as in `Warehouse.stage`)."""
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    if not _attached(con, STAGE):
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {STAGE}")
    for table in TABLES.values():
        con.execute(create_statement(table))


def _where(con: duckdb.DuckDBPyConnection, schema: str) -> tuple[str, str]:
    """(catalog, schema) that `schema.<name>` resolves to: an attached database of that name
    (its `main` schema) first, as DuckDB resolves it, else the schema in the current database."""
    if _attached(con, schema):
        return schema, "main"
    return con.execute("SELECT current_database()").fetchall()[0][0], schema


def relation_names(con: duckdb.DuckDBPyConnection, schema: str = STAGE) -> set[str]:
    """Names of the tables and views that `schema.<name>` can reach (what earlier steps left
    in staging)."""
    catalog, sch = _where(con, schema)
    return {
        r[0]
        for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_catalog = ? AND table_schema = ?",
            [catalog, sch],
        ).fetchall()
    }


def _duck_type(table: Table, column: str) -> str:
    return next(c.type for c in table.columns if c.name == column)


def documented_table(df: pd.DataFrame, name: str) -> pa.Table:
    """The rows of `df` as an Arrow table of documented table `scv.name`'s columns, each of its
    documented type (`transforms.frame_types.typed_table`), for registering with DuckDB: a type
    is never guessed from the frame's first rows."""
    table = TABLES[name]
    return typed_table(
        df[table.column_names], {c.name: c.type for c in table.columns}, what=f"scv.{name}", lenient=True
    )


def write_frame(
    con: duckdb.DuckDBPyConnection,
    name: str,
    df: pd.DataFrame,
    schema: str = STAGE,
    types: Mapping[str, str] | None = None,
) -> int:
    """Replace table `schema.name` with the rows of `df`; returns the row count.

    For a documented `scv` table the frame must carry exactly the documented columns (extra or
    missing ones are an error, so the contract cannot drift silently); they are cast to the
    documented types and commented. A staging table takes the DuckDB `types` declared by the
    caller (column -> type), else the frame's own dtypes; a column of Python objects without a
    declared type is an error (DuckDB would type it from its first rows, and a rare value further
    down would fail the night). CREATE OR REPLACE makes a rerun of the same night idempotent.
    """
    view = f"_frame_{schema}_{name}"
    if schema == SCHEMA:
        table = TABLES[name]
        missing = [c for c in table.column_names if c not in df.columns]
        extra = [c for c in df.columns if c not in table.column_names]
        if missing or extra:
            raise ValueError(
                f"scv.{name}: frame columns differ from warehouse/schema.py "
                f"(missing {missing}, unexpected {extra})"
            )
        frame = documented_table(df, name)
    else:
        declared = dict(types) if types is not None else declared_types_of(df, f"{schema}.{name}")
        frame = typed_table(df, declared, what=f"{schema}.{name}")
    con.register(view, frame)
    try:
        if schema == SCHEMA:
            select = ", ".join(
                f'CAST("{c}" AS {_duck_type(table, c)}) AS "{c}"' for c in table.column_names
            )
            mark_changed(con, name)
            con.execute(f"CREATE OR REPLACE TABLE {schema}.{name} AS SELECT {select} FROM {view}")
            for stmt in comment_statements(table):
                con.execute(stmt)
        else:
            con.execute(f"CREATE OR REPLACE TABLE {schema}.{name} AS SELECT * FROM {view}")
    finally:
        con.unregister(view)
    return int(con.execute(f"SELECT count(*) FROM {schema}.{name}").fetchall()[0][0])


def write_model(
    con: duckdb.DuckDBPyConnection, name: str, params: Mapping[str, Any] | None = None
) -> int:
    """Replace documented table `scv.name` with the result of SQL model `name` (warehouse/sql).

    The model's `$parameters` are bound by name from `params`; its columns must be exactly the
    documented ones, cast to the documented types and commented.
    """
    bound = {k: v for k, v in (params or {}).items() if k in model_parameters(name)}
    return write_select(con, name, load_sql(name), bound, what=f"model {name}")


def _documented_select(
    con: duckdb.DuckDBPyConnection, name: str, sql: str, params: Mapping[str, Any] | list, what: str
) -> str:
    """The select list casting the columns of query `sql` to the documented types of
    `scv.name`; a ValueError naming `what` when its columns are not exactly the documented ones."""
    table = TABLES[name]
    cols = [d[0] for d in con.execute(f"DESCRIBE {sql}", params).fetchall()]
    if cols != table.column_names:
        raise ValueError(f"{what}: columns {cols} differ from warehouse/schema.py {table.column_names}")
    return ", ".join(f'CAST("{c.name}" AS {c.type}) AS "{c.name}"' for c in table.columns)


def write_select(
    con: duckdb.DuckDBPyConnection,
    name: str,
    sql: str,
    params: Mapping[str, Any] | list | None = None,
    what: str | None = None,
) -> int:
    """Replace documented table `scv.name` with the rows of the query `sql`, whose columns must
    be exactly the documented ones (cast to the documented types and commented)."""
    table = TABLES[name]
    params = params if params is not None else {}
    select = _documented_select(con, name, sql, params, what or f"query for scv.{name}")
    mark_changed(con, name)
    con.execute(f"CREATE OR REPLACE TABLE {SCHEMA}.{name} AS SELECT {select} FROM ({sql})", params)
    for stmt in comment_statements(table):
        con.execute(stmt)
    return int(con.execute(f"SELECT count(*) FROM {SCHEMA}.{name}").fetchall()[0][0])


#: Staging table naming the build file's `scv` tables that are still exactly as published, with
#: the published file they match (`size:mtime_ns`): such a table can be changed in place.
_AS_PUBLISHED = f"{STAGE}.build_as_published"


def _has_as_published(con: duckdb.DuckDBPyConnection) -> bool:
    return _attached(con, STAGE) and "build_as_published" in relation_names(con, STAGE)


def mark_changed(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Record that `scv.<name>` in the build file is about to differ from the published file.
    Called before every write of an `scv` table, in its own statement: a night that dies
    between the two leaves the table marked changed, never wrongly marked as published."""
    if _has_as_published(con):
        con.execute(f"DELETE FROM {_AS_PUBLISHED} WHERE table_name = ?", [name])


def _published_token(path: Path) -> str | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return f"{st.st_size}:{st.st_mtime_ns}"


def change_in_place(
    con: duckdb.DuckDBPyConnection,
    name: str,
    delete_where: str,
    insert_sql: str,
    params: Mapping[str, Any] | list | None = None,
) -> int:
    """Change documented table `scv.name` in place: delete its rows matching the SQL condition
    `delete_where`, then insert the rows of the query `insert_sql` (exactly the documented
    columns, cast to the documented types). For a night that changes a small share of a big
    table that is still as published (`Warehouse.as_published`); returns the row count."""
    table = TABLES[name]
    params = params if params is not None else {}
    select = _documented_select(con, name, insert_sql, params, f"rows for scv.{name}")
    mark_changed(con, name)
    con.execute(f"DELETE FROM {SCHEMA}.{name} WHERE {delete_where}")
    con.execute(
        f"INSERT INTO {SCHEMA}.{name} ({', '.join(chr(34) + c + chr(34) for c in table.column_names)}) "
        f"SELECT {select} FROM ({insert_sql})",
        params,
    )
    return int(con.execute(f"SELECT count(*) FROM {SCHEMA}.{name}").fetchall()[0][0])


def change_to_match(
    con: duckdb.DuckDBPyConnection,
    name: str,
    sql: str,
    key: str,
    params: Mapping[str, Any] | None = None,
    what: str | None = None,
) -> tuple[int, int]:
    """Make documented table `scv.name` hold exactly the rows of query `sql`, changing only the
    rows that differ: the query runs into a temporary table, each row is hashed over every
    column, and for each `key` value whose rows differ (or exist on one side only) the old rows
    are deleted and the new ones inserted (`change_in_place`). For a big table that a night
    changes in a few rows and that is still as published: at 7M touchpoints, writing the table
    again costs about twice as much as computing it in memory and comparing. Two different rows
    pass as equal only if their 64-bit hashes collide (about 1 in 10^19 per changed row).
    Returns (row count, key values changed)."""
    params = params if params is not None else {}
    select = _documented_select(con, name, sql, params, what or f"rows for scv.{name}")
    cols = ", ".join(f'"{c}"' for c in TABLES[name].column_names)
    con.execute(f"CREATE OR REPLACE TEMP TABLE _match_new AS SELECT {select} FROM ({sql})", params)
    try:
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE _match_keys AS
            SELECT DISTINCT coalesce(n.k, o.k) AS k
            FROM (SELECT "{key}" AS k, hash({cols}) AS h FROM _match_new) n
            FULL JOIN (SELECT "{key}" AS k, hash({cols}) AS h FROM {SCHEMA}.{name}) o
              ON n.k IS NOT DISTINCT FROM o.k AND n.h = o.h
            WHERE n.h IS NULL OR o.h IS NULL
            """
        )
        changed, null_key = con.execute(
            "SELECT count(*), count(*) FILTER (k IS NULL) FROM _match_keys"
        ).fetchall()[0]
        if not changed:
            return int(con.execute(f"SELECT count(*) FROM {SCHEMA}.{name}").fetchall()[0][0]), 0
        where = f'"{key}" IN (SELECT k FROM _match_keys)' + (f' OR "{key}" IS NULL' if null_key else "")
        rows = change_in_place(con, name, where, f"SELECT {cols} FROM _match_new WHERE {where}")
        return rows, int(changed)
    finally:
        con.execute("DROP TABLE IF EXISTS _match_new")
        con.execute("DROP TABLE IF EXISTS _match_keys")


def drop_relation(con: duckdb.DuckDBPyConnection, schema: str, name: str) -> None:
    """Drop `schema.name`, whether it is a table or a view (DuckDB's DROP names the kind)."""
    catalog, sch = _where(con, schema)
    kind = con.execute(
        "SELECT table_type FROM information_schema.tables "
        "WHERE table_catalog = ? AND table_schema = ? AND table_name = ?",
        [catalog, sch, name],
    ).fetchall()
    if kind:
        con.execute(f"DROP {'VIEW' if kind[0][0] == 'VIEW' else 'TABLE'} {schema}.{name}")


def stack_view(con: duckdb.DuckDBPyConnection, name: str, tables: list[str], schema: str = STAGE) -> None:
    """`schema.name` as a view stacking `tables` by column name. A view, not a copy: the
    stacked rows are read a few times a night, and writing them again cost more than reading
    the parts (2.5 s of 247k person records at 100k people)."""
    drop_relation(con, schema, name)
    union = " UNION ALL BY NAME ".join(f"SELECT * FROM {t}" for t in tables)
    con.execute(f"CREATE VIEW {schema}.{name} AS {union}")


def fetch_frame(
    con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None
) -> pd.DataFrame:
    """The result of `sql` as a pandas frame, through Arrow: 3-6x faster than `.df()` on wide
    tables of text (the person records at 1M rows). List columns come back as lists."""
    rel = con.sql(sql, params=params) if params else con.sql(sql)
    table = rel.to_arrow_table()
    return _lists_as_python(table.to_pandas(), table)


def _lists_as_python(df: pd.DataFrame, table) -> pd.DataFrame:
    import pyarrow as pa

    for field in table.schema:
        if pa.types.is_list(field.type) or pa.types.is_large_list(field.type):
            df[field.name] = table.column(field.name).to_pylist()
    return df


def empty_frame(name: str) -> pd.DataFrame:
    """An empty frame with the documented columns of `scv.<name>`."""
    return pd.DataFrame({c: pd.Series(dtype="object") for c in TABLES[name].column_names})


class PublishedLocked(RuntimeError):
    """The published warehouse is open read-write in another process (see
    `Warehouse.check_published_readable`); names the holder and the fix."""

    def __init__(self, path: Path, holder: str) -> None:
        self.path, self.holder = path, holder
        super().__init__(
            f"{path} is open for writing by another program ({holder}), so the night cannot "
            "read it: close that connection, and connect read-only "
            f"(duckdb.connect('{path}', read_only=True), or `scv sql`), then run again"
        )


class WarehouseBusy(RuntimeError):
    """Another night (or an erasure) holds the warehouse's lock. `holder` is what the lock file
    says (`<what>, pid <n>, since <time>`), `pid` the holding process when it says so."""

    def __init__(self, lock_path: Path, holder: str) -> None:
        self.lock_path = lock_path
        self.holder = holder
        found = re.search(r"\bpid (\d+)", holder)
        self.pid = int(found.group(1)) if found else None
        stop = f"; if it hangs, `kill {self.pid}` stops it and frees the lock" if self.pid else ""
        super().__init__(
            f"the warehouse is busy ({holder}): wait for it to finish, then try again "
            f"(lock {lock_path}{stop})"
        )


#: How long taking the lock keeps trying before it reports the holder: long enough to let a
#: `Warehouse.check_free` probe (a shared lock held for a moment) go by, short for a person.
_LOCK_GRACE_SECONDS = 0.5


@dataclass(frozen=True)
class Warehouse:
    """Locations of the staging file, the published file and the exports folder. The build
    file (the `scv` tables of the night being built) sits next to the staging file."""

    published: Path
    staging: Path
    exports: Path
    #: saved audiences (config `audiences`), exported with the tables (warehouse/audience.py)
    audiences: tuple[AudienceSpec, ...] = ()

    @property
    def lock_path(self) -> Path:
        return self.staging.parent / "night.lock"

    @contextmanager
    def exclusive(self, holder: str) -> Iterator[None]:
        """Hold the warehouse's lock (`night.lock` next to the staging file) while a night is
        built or an erasure rewrites the published warehouse: two of them interleaving their
        writes would mix two nights. Raises WarehouseBusy, naming the holder, when another
        process has it. The OS drops the lock when its process dies, so a killed night leaves
        nothing to clean up."""
        import fcntl

        path = self.lock_path
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a+", encoding="utf-8") as fh:  # closing it releases the lock
            deadline = time.monotonic() + _LOCK_GRACE_SECONDS
            while True:
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise self._busy(fh) from None
                    time.sleep(0.05)
            fh.seek(0)
            fh.truncate()
            since = datetime.now(timezone.utc).isoformat(timespec="seconds")
            fh.write(f"{holder}, pid {os.getpid()}, since {since}\n")
            fh.flush()
            # a publish killed between the warehouse rename and the exports' is finished first
            finish_interrupted_publish(self.exports, self.published)
            yield

    def check_free(self) -> None:
        """Raise WarehouseBusy, naming the holder, when a night or an erasure holds the lock
        now; change nothing otherwise (no lock file is written). For a command to say so before
        it starts anything (`scv run` before Dagster creates a run)."""
        import fcntl

        path = self.lock_path
        if not path.exists():
            return
        with open(path, encoding="utf-8") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                raise self._busy(fh) from None
            fcntl.flock(fh, fcntl.LOCK_UN)

    def check_published_readable(self) -> None:
        """Raise PublishedLocked when another process holds the published file open for
        writing (an analyst's `duckdb.connect(path)`, read-write by default): DuckDB then lets
        nobody else open it, and the night reads last night's tables from it. Read-only
        connections (`read_only=True`, `scv sql`) share the file with the night."""
        if not self.published.exists():
            return
        try:
            duckdb.connect(str(self.published), read_only=True).close()
        except duckdb.IOException as exc:
            text = str(exc)
            if "lock" not in text.lower():
                raise
            found = re.search(r"held in (.+?) \(PID (\d+)\)", text)
            holder = f"{found.group(1)}, pid {found.group(2)}" if found else "another process"
            raise PublishedLocked(self.published, holder) from None

    def _busy(self, fh: Any) -> WarehouseBusy:
        fh.seek(0)
        return WarehouseBusy(self.lock_path, fh.read().strip() or "another process")

    @property
    def build(self) -> Path:
        """The `scv` schema of the night being built: what the publish step copies."""
        return self.staging.with_name(self.staging.stem + ".scv.duckdb")

    def staged_file(self, name: str) -> Path:
        """A file the night keeps next to the staging file until it is published (e.g. state
        to hand over after the publish); dropped with the staging by `reset_staging`."""
        return self.staging.with_name(f"{self.staging.stem}.{name}")

    def staged_relation(self, name: str) -> str:
        """SQL reading the staged Parquet file `name` (see `write_staged`)."""
        return f"read_parquet('{_sql_path(self.staged_file(name))}')"

    def write_staged(self, con: duckdb.DuckDBPyConnection, name: str, sql: str) -> None:
        """Write the rows of query `sql` to the staged Parquet file `name`, whole or not at all.
        For big intermediate results the next steps read once and the publish step hands over
        as state: a Parquet file is written in a third of the time of a staging table."""
        path = self.staged_file(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        con.execute(f"COPY ({sql}) TO '{_sql_path(tmp)}' (FORMAT parquet)")
        os.replace(tmp, path)

    def write_staged_frame(
        self,
        con: duckdb.DuckDBPyConnection,
        name: str,
        frame: pd.DataFrame,
        types: Mapping[str, str] | None = None,
    ) -> None:
        """`write_staged` of a DataFrame's rows, typed as declared (`types`, else the frame's own
        dtypes: see `write_frame`)."""
        declared = dict(types) if types is not None else declared_types_of(frame, f"staged file {name}")
        con.register("_staged_frame", typed_table(frame, declared, what=f"staged file {name}"))
        try:
            self.write_staged(con, name, "SELECT * FROM _staged_frame")
        finally:
            con.unregister("_staged_frame")

    def copy_staged(self, name: str, dest: Path) -> None:
        """Copy the staged file `name` to `dest`, replacing it whole (state handed over after a
        publish)."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.tmp")
        shutil.copyfile(self.staged_file(name), tmp)
        os.replace(tmp, dest)

    def _open_build(self) -> duckdb.DuckDBPyConnection:
        """The build file, with the staging file attached as catalog `stage`."""
        con = _connect(self.build)
        try:
            self.staging.parent.mkdir(parents=True, exist_ok=True)
            con.execute(f"ATTACH '{_sql_path(self.staging)}' AS {STAGE}")
            ensure_schema(con)
        except BaseException:
            con.close()
            raise
        return con

    @contextmanager
    def stage(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-write connection to the night being built: schema `scv` (the build file) and
        catalog `stage` (the staging file), documented tables ensured."""
        con = self._open_build()
        try:
            yield con
        finally:
            con.close()

    def as_published(self, con: duckdb.DuckDBPyConnection, names: list[str]) -> bool:
        """True when every `scv.<name>` of `names` in the build file is still exactly the
        published table (nothing wrote it since the publish, and the published file is the one
        that publish made): then a night may change those tables in place instead of writing
        them again."""
        token = _published_token(self.published)
        if token is None or not _has_as_published(con):
            return False
        have = {
            r[0]
            for r in con.execute(
                f"SELECT table_name FROM {_AS_PUBLISHED} WHERE published = ?", [token]
            ).fetchall()
        }
        if not set(names) <= have:
            return False
        # a table published by an older version with other columns is written whole, once
        db = con.execute("SELECT current_database()").fetchall()[0][0]
        for name in names:
            cols = [
                r[0]
                for r in con.execute(
                    "SELECT column_name FROM duckdb_columns() WHERE database_name = ? "
                    "AND schema_name = ? AND table_name = ? ORDER BY column_index",
                    [db, SCHEMA, name],
                ).fetchall()
            ]
            if cols != TABLES[name].column_names:
                return False
        return True

    @property
    def exports_manifest(self) -> Path:
        """The exports' manifest (as-of date, run id, rows and schema per table)."""
        return self.exports / "manifest.json"

    def open_published(self, config: Mapping[str, Any] | None = None) -> duckdb.DuckDBPyConnection:
        """A read-only connection to the published warehouse (with DuckDB's connect-time
        `config`); the caller closes it."""
        return connect(self.published, read_only=True, config=config)

    @contextmanager
    def read_published(self) -> Iterator[duckdb.DuckDBPyConnection | None]:
        """A read-only connection to the published warehouse, or None before the first publish."""
        if not self.published.exists():
            yield None
            return
        con = _connect(self.published, read_only=True)
        try:
            yield con
        finally:
            con.close()

    def previous(self, name: str) -> pd.DataFrame:
        """Last published rows of `scv.<name>`; an empty documented frame before the first night."""
        with self.read_published() as con:
            if con is None:
                return empty_frame(name)
            exists = con.execute(
                "SELECT count(*) FROM duckdb_tables() WHERE schema_name = ? AND table_name = ?",
                [SCHEMA, name],
            ).fetchall()[0][0]
            if not exists:
                return empty_frame(name)
            return fetch_frame(con, f"SELECT * FROM {SCHEMA}.{name}")

    @contextmanager
    def published_attached(self, con: duckdb.DuckDBPyConnection) -> Iterator[bool]:
        """The published file attached read-only to a staging connection as database
        `published` (so `published.scv.<table>` can be read in SQL); False before the first
        publish, when nothing is attached."""
        if not self.published.exists():
            yield False
            return
        con.execute(f"ATTACH '{_sql_path(self.published)}' AS published (READ_ONLY)")
        try:
            yield True
        finally:
            con.execute("DETACH published")

    def stage_previous(self, con: duckdb.DuckDBPyConnection, names: list[str]) -> None:
        """Copy the last published `scv.<name>` tables into schema `prev` of the staging file
        (empty documented tables before the first publish), for models that carry state."""
        con.execute("CREATE SCHEMA IF NOT EXISTS prev")
        attached = False
        if self.published.exists():
            con.execute(f"ATTACH '{_sql_path(self.published)}' AS published (READ_ONLY)")
            attached = True
        try:
            for name in names:
                table = TABLES[name]
                con.execute(f"DROP TABLE IF EXISTS prev.{name}")
                con.execute(create_statement(table, schema="prev"))
                if attached and con.execute(
                    "SELECT count(*) FROM duckdb_tables() WHERE database_name = 'published' "
                    "AND schema_name = ? AND table_name = ?",
                    [SCHEMA, name],
                ).fetchall()[0][0]:
                    cols = ", ".join(f'"{c}"' for c in table.column_names)
                    con.execute(
                        f"INSERT INTO prev.{name} ({cols}) SELECT {cols} FROM published.{SCHEMA}.{name}"
                    )
        finally:
            if attached:
                con.execute("DETACH published")

    # ----------------------------------------------------------------------------- publish
    def publish(
        self,
        run_id: str | None = None,
        as_of: str | None = None,
        also_move: tuple[Path, Path] | None = None,
    ) -> dict[str, int]:
        """Swap the night's `scv` tables in as the published warehouse; returns row counts per
        table.

        The build file is tidied (schema `prev` and anything undocumented dropped, comments set),
        checkpointed and closed, then copied byte for byte and the copy renamed over the
        published path, so that path always names a whole warehouse and no table is rewritten.
        With `run_id`, the exports move with it (warehouse/exports.py): all written from the copy
        first, renamed into place after it; an export that cannot be written raises ExportError
        before anything is published. `also_move` is one more (hidden file, final name) rename
        made with them, in the same journal: the nightly state's manifest
        (`warehouse.nightly.NightlyState.prepare_commit`).
        """
        finish_interrupted_publish(self.exports, self.published)
        tmp = self.published.with_name(self.published.name + ".publishing")
        for leftover in (tmp, Path(str(tmp) + ".wal")):
            leftover.unlink(missing_ok=True)
        self.published.parent.mkdir(parents=True, exist_ok=True)
        counts: dict[str, int] = {}
        con = self._open_build()
        try:
            con.execute(f"DETACH {STAGE}")
            _tidy_for_publish(con)
            for name, table in TABLES.items():
                for stmt in comment_statements(table):
                    con.execute(stmt)
                counts[name] = int(con.execute(f"SELECT count(*) FROM {SCHEMA}.{name}").fetchall()[0][0])
            con.execute("CHECKPOINT")
        finally:
            con.close()
        wal = Path(str(self.build) + ".wal")
        if wal.exists() and wal.stat().st_size:
            raise RuntimeError(f"{self.build}: not fully checkpointed ({wal} remains); nothing published")
        shutil.copyfile(self.build, tmp)
        _fsync(tmp)
        prepared = self.prepare_swap(tmp, run_id, as_of, also_move) if run_id is not None else None
        os.replace(tmp, self.published)
        fsync_dir(self.published.parent)
        if prepared is not None:
            prepared.commit()
            clear_journal(self.exports)
        elif also_move is not None:
            os.replace(*also_move)
            fsync_dir(also_move[1].parent)
        with _connect(self.staging) as stage:
            stage.execute("CREATE OR REPLACE TABLE build_as_published (table_name VARCHAR, published VARCHAR)")
            stage.executemany(
                "INSERT INTO build_as_published VALUES (?, ?)",
                [[name, _published_token(self.published)] for name in TABLES],
            )
        return counts

    def prepare_swap(
        self, new_file: Path, run_id: str, as_of: str | None, also_move: tuple[Path, Path] | None = None
    ) -> PreparedExports:
        """Every export written from `new_file` and the journal recorded, ready for `new_file`
        to be renamed over the published warehouse; on failure nothing is left behind and
        ExportError says nothing was published."""
        try:
            prepared = self.prepare_exports(run_id, as_of, source=new_file)
        except ExportError as exc:
            for leftover in (new_file, Path(str(new_file) + ".wal")):
                leftover.unlink(missing_ok=True)
            raise ExportError(
                f"{exc}; nothing published: the warehouse and every export stay at the last night's"
            ) from None
        if also_move is not None:
            prepared.moves.append(also_move)
        write_journal(prepared, new_file)
        return prepared

    # ----------------------------------------------------------------------------- exports
    def export_parquet(self, run_id: str, as_of: str) -> dict[str, object]:
        """Write every published table to `exports/<table>/data.parquet`, each swapped in atomically,
        then `exports/manifest.json` (as-of date, run id, row counts, schema)."""
        prepared = self.prepare_exports(run_id, as_of)
        prepared.commit()
        return prepared.manifest

    def prepare_exports(self, run_id: str, as_of: str | None, source: Path | None = None) -> PreparedExports:
        """Write every table of `source` (default: the published file) to its hidden file
        `exports/<table>/.data.<run_id>.tmp`, and the manifest to `.manifest.<run_id>.tmp`,
        without putting any in place (`PreparedExports.commit` does). Raises ExportError naming
        the export that could not be written, after deleting the hidden files written."""
        moves: list[tuple[Path, Path]] = []
        prepared = PreparedExports(self.exports, {}, moves)
        tables: dict[str, object] = {}
        where = self.exports
        try:
            self.exports.mkdir(parents=True, exist_ok=True)
            for stale in [*self.exports.glob(".manifest.*.tmp"), *self.exports.glob("*/.data.*.tmp")]:
                stale.unlink()  # left by a night that died before its journal
            con = _connect(source or self.published, read_only=True)
        except (OSError, duckdb.Error) as exc:
            raise ExportError(f"{where}: cannot write the exports ({_reason(exc)})") from None
        try:
            for name, table in TABLES.items():
                folder = where = self.exports / name
                folder.mkdir(parents=True, exist_ok=True)
                # a dot-name without the .parquet suffix is never matched by readers' globs
                tmp = folder / f".data.{run_id}.tmp"
                moves.append((tmp, folder / "data.parquet"))
                # Flat columns only, each described inside the file too (CONTRACT §5).
                select, exported = flat_export(con, SCHEMA, table)
                con.execute(
                    f"COPY ({select}) TO '{_sql_path(tmp)}' (FORMAT parquet, COMPRESSION zstd, "
                    f"KV_METADATA {parquet_metadata(table, exported)})"
                )
                _fsync(tmp)
                rows = con.execute(f"SELECT count(*) FROM {SCHEMA}.{name}").fetchall()[0][0]
                money = _money_currencies(con, name)
                tables[name] = {
                    "path": f"{name}/data.parquet",
                    "rows": int(rows),
                    "description": table.comment,
                    "columns": [c | money.get(c["name"], {}) for c in exported],
                }
            where = self.exports / AUDIENCES_DIR
            audiences = prepare_audience_exports(con, self.audiences, self.exports, run_id, moves)
        except (OSError, duckdb.Error) as exc:
            prepared.discard()
            raise ExportError(f"{where}: cannot write the export ({_reason(exc)})") from None
        finally:
            con.close()
        manifest = {
            "run_id": run_id,
            "as_of_date": as_of,
            "exported_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            # every money column, the column naming its currency and the currencies it holds
            "money": {
                f"{t}.{c['name']}": {k: c[k] for k in ("currency_column", "currencies")}
                for t, entry in tables.items()
                for c in entry["columns"]
                if "currency_column" in c
            },
            "tables": tables,
            # saved audiences: files, definition and counts (no personal data)
            **({"audiences": audiences} if audiences else {}),
        }
        tmp = self.exports / f".manifest.{run_id}.tmp"
        moves.append((tmp, self.exports / "manifest.json"))
        try:
            tmp.write_text(json.dumps(manifest, indent=2), encoding="utf-8")
            _fsync(tmp)
        except OSError as exc:
            prepared.discard()
            raise ExportError(f"{self.exports / 'manifest.json'}: cannot write the export ({_reason(exc)})") from None
        prepared.manifest = manifest
        return prepared

    def reset_staging(self) -> None:
        """Drop the staging and build files (they hold personal data of the night being built)."""
        for base in (self.staging, self.build):
            for p in (base, Path(str(base) + ".wal")):
                p.unlink(missing_ok=True)
        for p in self.staging.parent.glob(f"{self.staging.stem}.*.parquet"):
            p.unlink()

    def copy_published_to(self, dest: Path) -> None:
        shutil.copy2(self.published, dest)


def _money_currencies(con: duckdb.DuckDBPyConnection, name: str) -> dict[str, dict[str, object]]:
    """For each money column of `scv.name` (warehouse.schema.MONEY_COLUMNS): the column naming
    its currency and the currencies found beside a non-zero value (sorted; null: an amount with
    no named currency), for the exports manifest."""
    out: dict[str, dict[str, object]] = {}
    for (table, column), currency_column in MONEY_COLUMNS.items():
        if table != name:
            continue
        found = con.execute(
            f'SELECT DISTINCT "{currency_column}" FROM {SCHEMA}.{name} WHERE "{column}" IS NOT NULL '
            f'AND ("{currency_column}" IS NOT NULL OR "{column}" <> 0)'  # zero is zero in any currency
        ).fetchall()
        codes = sorted((r[0] for r in found), key=lambda v: (v is None, v or ""))
        out[column] = {"currency_column": currency_column, "currencies": codes}
    return out


def _tidy_for_publish(con: duckdb.DuckDBPyConnection) -> None:
    """Leave in the build file only what is published: the documented `scv` tables with their
    documented columns. Schema `prev` (last night's tables, copied in by `stage_previous`) and
    any other relation are dropped; a documented table whose columns drifted is an error."""
    db = con.execute("SELECT current_database()").fetchall()[0][0]
    for (schema,) in con.execute(
        "SELECT schema_name FROM duckdb_schemas() WHERE database_name = ? AND NOT internal "
        "AND schema_name NOT IN ('main', ?)",
        [db, SCHEMA],
    ).fetchall():
        con.execute(f'DROP SCHEMA "{schema}" CASCADE')
    for schema, name, kind in con.execute(
        "SELECT table_schema, table_name, table_type FROM information_schema.tables WHERE table_catalog = ?",
        [db],
    ).fetchall():
        if schema == SCHEMA and name in TABLES and kind != "VIEW":
            cols = [
                r[0]
                for r in con.execute(
                    "SELECT column_name FROM duckdb_columns() WHERE database_name = ? AND schema_name = ? "
                    "AND table_name = ? ORDER BY column_index",
                    [db, SCHEMA, name],
                ).fetchall()
            ]
            if cols != TABLES[name].column_names:
                raise ValueError(
                    f"{SCHEMA}.{name}: columns {cols} differ from warehouse/schema.py {TABLES[name].column_names}; "
                    "nothing published"
                )
            continue
        con.execute(f'DROP {"VIEW" if kind == "VIEW" else "TABLE"} "{schema}"."{name}"')


def _sql_path(p: Path) -> str:
    return str(p).replace("'", "''")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _fsync(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


