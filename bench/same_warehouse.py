"""Are two warehouses the same? Every table of the `scv` schema compared row for row.

    .venv/bin/python bench/same_warehouse.py build CODE_DIR OUT_DIR   # three demo nights
    .venv/bin/python bench/same_warehouse.py compare BEFORE.duckdb AFTER.duckdb

`build` runs the code checked out in CODE_DIR (e.g. a `git worktree` of the commit before a
change) on the demo for three nights in one fixed work folder, so both builds see the same paths:
the first night, an incremental night after a 1% change (`bench/night.py`), and a `--full`
re-link; it keeps each night's warehouse as OUT_DIR/night{1,2,3}.duckdb.

For the redesign's guard rail (issue 17): the demo built by the old code and by the new one must
hold the same tables with the same rows. Each table is compared with EXCEPT ALL both ways, so
duplicate rows count too. Columns that hold the wall-clock time of the build (`run_at`,
`created_at`, … listed in `CLOCK_COLUMNS`) differ between any two builds and are left out of the
comparison, and a source file's `path` is compared by its file name (the builds may run in
different work folders); every other column is compared. Prints one line per table and exits 1 on any
difference.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb

HERE = Path(__file__).resolve().parent
#: One work folder for every build, so paths recorded in the warehouse are the same.
WORK = Path(os.environ.get("SCV_EQUALITY_WORK", HERE.parent / "data" / "bench" / "equality"))
AS_OF = "2026-11-20"

#: Columns that record when the build ran (not what it decided). Any two builds differ here.
CLOCK_COLUMNS = frozenset({"run_at", "created_at", "published_at", "built_at", "run_id", "loaded_at"})


def _tables(con: duckdb.DuckDBPyConnection, db: str) -> dict[str, list[str]]:
    rows = con.execute(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_catalog = ? AND table_schema = 'scv' ORDER BY table_name, ordinal_position",
        [db],
    ).fetchall()
    out: dict[str, list[str]] = {}
    for table, column in rows:
        out.setdefault(table, []).append(column)
    return out


def compare(before: str, after: str) -> list[tuple[str, str]]:
    """(table, verdict) for every table of either warehouse; a verdict other than 'same' is a
    difference."""
    con = duckdb.connect()
    con.execute(f"ATTACH '{before}' AS a (READ_ONLY)")
    con.execute(f"ATTACH '{after}' AS b (READ_ONLY)")
    ta, tb = _tables(con, "a"), _tables(con, "b")
    out = []
    for table in sorted(set(ta) | set(tb)):
        if table not in ta or table not in tb:
            out.append((table, f"only in {'after' if table not in ta else 'before'}"))
            continue
        if ta[table] != tb[table]:
            out.append((table, f"columns differ: {ta[table]} vs {tb[table]}"))
            continue
        cols = ", ".join(
            # a source file's path differs with the work folder; its name must not
            f"regexp_replace(\"{c}\", '^.*/', '') AS \"{c}\"" if c == "path" else f'"{c}"'
            for c in ta[table]
            if c not in CLOCK_COLUMNS
        )
        a_not_b, b_not_a = (
            con.execute(
                f"SELECT count(*) FROM (SELECT {cols} FROM {x}.scv.{table} "
                f"EXCEPT ALL SELECT {cols} FROM {y}.scv.{table})"
            ).fetchone()[0]
            for x, y in (("a", "b"), ("b", "a"))
        )
        n = con.execute(f"SELECT count(*) FROM a.scv.{table}").fetchone()[0]
        if a_not_b or b_not_a:
            out.append((table, f"{a_not_b:,} rows only before, {b_not_a:,} only after (of {n:,})"))
        else:
            out.append((table, f"same ({n:,} rows)"))
    return out


def _cli(code: Path, *args: str) -> None:
    """`scv ARGS` with the code in `code` (the CLI's module moved in the redesign)."""
    module = "scv_cli" if (code / "scv_cli").is_dir() else "sources.cli"
    env = {**os.environ, "PYTHONPATH": str(code), "DAGSTER_HOME": str(WORK / "dagster_home")}
    subprocess.run([sys.executable, "-m", module, *args], env=env, cwd=code, check=True,
                   stdout=subprocess.DEVNULL)


def build(code: Path, out: Path) -> None:
    sys.path.insert(0, str(HERE))
    from night import change_one_percent

    shutil.rmtree(WORK, ignore_errors=True)
    (WORK / "dagster_home").mkdir(parents=True)
    out.mkdir(parents=True, exist_ok=True)
    config = WORK / "sources" / "scv.yml"
    warehouse = WORK / "warehouse" / "warehouse.duckdb"
    _cli(code, "demo", "--out", str(WORK / "sources"))
    nights = [((), AS_OF), ((), "2026-11-21"), (("--full",), "2026-11-21")]
    for i, (extra, as_of) in enumerate(nights, start=1):
        if i == 2:
            change_one_percent(WORK / "sources")
        _cli(code, "run", "--config", str(config), "--as-of", as_of, *extra)
        shutil.copy(warehouse, out / f"night{i}.duckdb")
        print(f"night {i} built: {out / f'night{i}.duckdb'}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="three demo nights with the code in CODE_DIR")
    b.add_argument("code", type=Path)
    b.add_argument("out", type=Path)
    c = sub.add_parser("compare", help="every scv table of two warehouses, EXCEPT ALL both ways")
    c.add_argument("before")
    c.add_argument("after")
    args = parser.parse_args(argv)
    if args.command == "build":
        build(args.code.resolve(), args.out.resolve())
        return 0
    verdicts = compare(args.before, args.after)
    print("| table | verdict |\n|---|---|")
    for table, verdict in verdicts:
        print(f"| {table} | {verdict} |")
    return 0 if all(v.startswith("same") for _, v in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
