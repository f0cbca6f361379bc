"""What each source delivered tonight: `scv.quarantine` (every rejected row, with the rule and
the raw row) and `scv.source_run` (rows in, accepted, quarantined per source, kept across runs),
from the staging tables the accepted sources wrote (`warehouse.accepted`).
"""

from __future__ import annotations

import pandas as pd

from warehouse.customer_xref import history_append
from warehouse.store import Warehouse, write_frame

__all__ = ["stacked_sql", "write_quarantine", "write_source_run"]


def stacked_sql(prefix: str, sources: list[str]) -> str:
    """Every source's staging table `stage.<prefix>_<source>`, stacked by column name."""
    return " UNION ALL BY NAME ".join(f"SELECT * FROM stage.{prefix}_{s}" for s in sources)


def write_quarantine(store: Warehouse, sources: list[str]) -> tuple[int, pd.Series]:
    """Write scv.quarantine from every source's rejected rows: (rows, rows by source and rule)."""
    with store.stage() as con:
        frame = con.execute(stacked_sql("quarantine", sources)).df()
        rows = write_frame(con, "quarantine", frame, schema="scv")
    by_rule = frame.groupby(["source", "rule"]).size() if rows else pd.Series(dtype=int)
    return rows, by_rule


def write_source_run(store: Warehouse, sources: list[str], run_id: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Write scv.source_run: the published rows plus tonight's. Returns (every row, tonight's)."""
    with store.stage() as con:
        this_run = con.execute(stacked_sql("source_run", sources)).df()
    previous = store.previous("source_run")
    # A rerun of the same run id replaces its own rows (idempotent), never older nights.
    previous = previous[previous["run_id"] != run_id] if len(previous) else previous
    rows = history_append(previous, this_run)
    with store.stage() as con:
        write_frame(con, "source_run", rows, schema="scv")
    return rows, this_run
