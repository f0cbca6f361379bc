"""A night's inputs checked before any work: `scv run` calls `check_inputs(cfg)` before Dagster
starts a run, so a missing file is one line at once instead of a FileNotFoundError well into the
night.

What `load_config` checks already (every command): the YAML (line and column of a syntax error
or a duplicate key), every key and value, and that each `date_format` writes and reads back a
whole date. What is checked here, because it is about the files rather than the config (a
command that does not read the sources, such as `scv sql` or `scv forget`, works while a source
file is away):

- every enabled source's `path` exists, is a file and can be opened;
- a database source (`format: duckdb | sqlite`) opens read-only as that kind of database, and
  its `table` (`name` or `schema.name`) exists and can be selected;
- `linkage.labels` and `currency.rates_file`, when set, exist.

The file's contents (columns, encoding, rows) are the readers' business (sources/readers.py).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sources.config import Config, ConfigError, SourceConfig

__all__ = ["check_inputs", "input_problems"]


def check_inputs(cfg: Config) -> None:
    """Raise ConfigError (one line: the config file, the key, what is wrong, and how many more
    problems there are) when an input of the night cannot be read."""
    problems = input_problems(cfg)
    if not problems:
        return
    first = problems[0]
    more = ""
    if len(problems) > 1:
        keys = ", ".join(p.split(": ", 1)[0] for p in problems[1:])
        more = f" (and {len(problems) - 1} more: {keys})"
    raise ConfigError(f"{cfg.config_path}: {first}{more}")


def input_problems(cfg: Config) -> list[str]:
    """One line per unreadable input, each `key: what is wrong`, in config order."""
    problems = []
    for name, src in cfg.sources.items():
        if not src.enabled:
            continue
        problem = _source_problem(src)
        if problem:
            problems.append(f"sources.{name}.{problem}")
    for key, path in (
        ("linkage.labels", cfg.linkage.labels),
        ("currency.rates_file", getattr(cfg.currency, "rates_file", None)),
    ):
        if path is not None and not Path(path).is_file():
            problems.append(f"{key}: {_missing(Path(path))}")
    return problems


def _missing(path: Path) -> str:
    if path.is_dir():
        return f"{path} is a folder, not a file"
    return f"{path}: no such file (relative paths start at the config file's folder)"


def _source_problem(src: SourceConfig) -> str | None:
    path = Path(src.path)
    if not path.is_file():
        return f"path: {_missing(path)}"
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        return f"path: {path}: cannot be opened: {exc.strerror or exc}"
    fmt = src.resolved_format
    if fmt == "duckdb":
        return _duckdb_table_problem(src, path)
    if fmt == "sqlite":
        return _sqlite_table_problem(src, path)
    return None


def _split(table: str) -> tuple[str | None, str]:
    """`schema.name` or `name`, as sources/readers.py reads `table`."""
    if "." in table:
        schema, name = table.split(".", 1)
        return schema or None, name
    return None, table


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _duckdb_table_problem(src: SourceConfig, path: Path) -> str | None:
    import duckdb

    schema, name = _split(src.table or "")
    schema = schema or "main"
    con = duckdb.connect()
    try:
        literal = "'" + str(path).replace("'", "''") + "'"
        try:
            con.execute(f"ATTACH {literal} AS src_db (READ_ONLY)")
        except duckdb.Error as exc:
            return f"path: {path}: cannot be opened as a duckdb database: {_first_line(exc)}"
        tables = [
            r[0]
            for r in con.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_catalog = 'src_db' AND table_schema = ? ORDER BY table_name",
                [schema],
            ).fetchall()
        ]
        if name not in tables:
            return f"table: {src.table!r} not found in {path} (tables: {_listed(tables)})"
        try:
            con.execute(f"SELECT * FROM src_db.{_quote(schema)}.{_quote(name)} LIMIT 0").fetchall()
        except duckdb.Error as exc:
            return f"table: {src.table!r} in {path} cannot be read: {_first_line(exc)}"
    finally:
        con.close()
    return None


def _sqlite_table_problem(src: SourceConfig, path: Path) -> str | None:
    schema, name = _split(src.table or "")
    prefix = f"{_quote(schema)}." if schema else ""
    try:
        con = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
    except sqlite3.Error as exc:
        return f"path: {path}: cannot be opened as a sqlite database: {exc}"
    try:
        try:
            tables = [
                r[0]
                for r in con.execute(
                    f"SELECT name FROM {prefix}sqlite_master WHERE type IN ('table', 'view') "
                    "ORDER BY name"
                )
            ]
        except sqlite3.Error as exc:
            return f"path: {path}: cannot be opened as a sqlite database: {exc}"
        if name not in tables:
            return f"table: {src.table!r} not found in {path} (tables: {_listed(tables)})"
        try:
            con.execute(f"SELECT * FROM {prefix}{_quote(name)} LIMIT 0").fetchall()
        except sqlite3.Error as exc:
            return f"table: {src.table!r} in {path} cannot be read: {exc}"
    finally:
        con.close()
    return None


def _listed(names: list[str], n: int = 8) -> str:
    if not names:
        return "none"
    shown = ", ".join(names[:n])
    return shown + (f", … {len(names) - n} more" if len(names) > n else "")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
