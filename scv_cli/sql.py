"""`scv sql`: read-only SQL on the published warehouse."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from scv_cli.errors import CliError
from sources.config import Config, load_config

__all__ = ["register"]


def cmd_sql(args: argparse.Namespace) -> int:
    """Read-only SQL on the published warehouse, unqualified names in `scv`: DuckDB's own
    switches stop file access, and statements other than queries are refused in one line
    (warehouse/analyst_sql.py)."""
    import duckdb

    from warehouse.analyst_sql import (
        ReadOnlyRefusal,
        check_read_only,
        connect_read_only,
        one_line_error,
        refusal,
    )

    cfg = load_config(args.config)
    if not cfg.warehouse.exists():
        raise CliError(f"{cfg.warehouse}: no warehouse yet (run `scv run` first)")
    out = Path(args.out).resolve() if args.out else None
    if out is not None:
        _check_result_path(cfg, out)
    with connect_read_only(cfg.warehouse) as con:
        try:
            check_read_only(con, args.query)
            rel = con.sql(args.query)
            if rel is None:
                return 0
            if out is not None or args.csv:
                _write_result(rel, out, csv_stdout=args.csv)
            else:
                rows = args.max_rows if args.max_rows is not None else max(len(rel), 1)
                rel.show(max_rows=rows, max_width=10_000)
        except ReadOnlyRefusal as exc:
            raise CliError(str(exc)) from None
        except duckdb.PermissionException as exc:  # a file outside the warehouse
            raise CliError(f"{refusal('file access')} ({one_line_error(exc)})") from None
        except duckdb.Error as exc:
            raise CliError(one_line_error(exc)) from None
    return 0


def _check_result_path(cfg: Config, out: Path) -> None:
    """`scv sql --out` writes the analyst's result, never over the warehouse's own files."""
    if out.suffix.lower() not in (".csv", ".parquet"):
        raise CliError(f"--out {out}: write a .csv or a .parquet file")
    for guarded in (cfg.exports, cfg.warehouse.parent, cfg.staging_dir, cfg.data_dir / "landing"):
        if out.is_relative_to(guarded.resolve()):
            raise CliError(
                f"--out {out}: inside {guarded}, which the night writes; choose another folder"
            )


def _write_result(rel, out: Path | None, *, csv_stdout: bool) -> None:
    """The query result as CSV on stdout (`--csv`) or into `out` (CSV or Parquet by its
    extension). CSV cells a spreadsheet would run as formulas are neutralised."""
    from quality.csv_safety import safe_csv_frame

    frame = rel.df()
    if out is None or csv_stdout:
        safe_csv_frame(frame).to_csv(sys.stdout, index=False)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.tmp")
        if out.suffix.lower() == ".parquet":
            frame.to_parquet(tmp, index=False)
        else:
            safe_csv_frame(frame).to_csv(tmp, index=False)
        os.replace(tmp, out)
        print(f"{len(frame):,} rows written to {out}", file=sys.stderr)


def register(add) -> None:
    """Add `sql` to the `scv` parser (`add(name, help)` → subparser)."""
    q = add("sql", "run read-only SQL on the published warehouse")
    q.add_argument("query")
    q.add_argument("--max-rows", type=int, default=None, help="print at most N rows (default: all)")
    q.add_argument("--csv", action="store_true", help="print the result as CSV instead of a table")
    q.add_argument("--out", help="write the result to FILE (.csv or .parquet) instead of printing it")
    q.set_defaults(func=cmd_sql)
