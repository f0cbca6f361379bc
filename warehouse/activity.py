"""The night's activity: every accepted order, event and consent row stacked by kind
(`stage.orders`, `stage.events`, `stage.consents`), and the tables made from them with the
customer xref: `scv.touchpoint` (the timeline) and `scv.consent` (latest decision per purpose).
"""

from __future__ import annotations

from datetime import date
from typing import Any

import duckdb

from sources.config import Config
from warehouse.models import load_sql_unordered, stage_create_statement
from warehouse.store import (
    Warehouse,
    change_to_match,
    drop_relation,
    stack_view,
    write_model,
)

__all__ = ["ACTIVITY", "activity_sources", "stack_activity", "write_consent", "write_touchpoint"]

#: Source kind -> the staging table stacking its accepted rows.
ACTIVITY = {"order": "orders", "event": "events", "consent": "consents"}


def activity_sources(cfg: Config) -> dict[str, list[str]]:
    """Staging table -> the enabled sources of its kind."""
    return {table: list(cfg.sources_of(kind)) for kind, table in ACTIVITY.items()}


def _union_or_empty(con: duckdb.DuckDBPyConnection, table: str, sources: list[str]) -> int:
    """stage.<table> = every accepted source of one kind stacked; empty, with the documented input
    columns, when the config has no source of that kind."""
    if sources:
        stack_view(con, table, [f"stage.accepted_{s}" for s in sources])
    else:
        drop_relation(con, "stage", table)
        con.execute(stage_create_statement(table))
    return int(con.execute(f"SELECT count(*) FROM stage.{table}").fetchall()[0][0])


def stack_activity(store: Warehouse, sources: dict[str, list[str]]) -> dict[str, int]:
    """Stack the accepted sources of each activity kind (`activity_sources`); rows per table."""
    with store.stage() as con:
        return {table: _union_or_empty(con, table, srcs) for table, srcs in sources.items()}


def write_touchpoint(store: Warehouse) -> dict[str, Any]:
    """Write scv.touchpoint (SQL model `touchpoint`): changed in place when last night's
    timeline is still in the build file, written whole otherwise. Returns its figures."""
    with store.stage() as con:
        if store.as_published(con, ["touchpoint"]):
            # last night's timeline is still in the build file: change only the rows that differ
            rows, changed = change_to_match(
                con, "touchpoint", load_sql_unordered("touchpoint"), "touchpoint_id", what="model touchpoint"
            )
            written = f"in place ({changed:,} touchpoints changed)"
        else:
            rows, written = write_model(con, "touchpoint"), "rewritten"
        by_kind = dict(con.execute("SELECT kind, count(*) FROM scv.touchpoint GROUP BY ALL").fetchall())
        unresolved, stitched = con.execute(
            "SELECT count(*) FILTER (customer_id IS NULL), count(*) FILTER (stitched) FROM scv.touchpoint"
        ).fetchall()[0]
    return {
        "rows": rows,
        "by_kind": by_kind,
        "unresolved": int(unresolved),
        "stitched_from_sessions": int(stitched),
        "written": written,
    }


def write_consent(store: Warehouse, as_of: date) -> tuple[int, dict[str, int]]:
    """Write scv.consent (SQL model `consent`) for the as-of date: (rows, customers who granted
    each purpose)."""
    with store.stage() as con:
        rows = write_model(con, "consent", {"as_of": as_of})
        granted = dict(
            con.execute("SELECT purpose, count(*) FILTER (granted) FROM scv.consent GROUP BY ALL").fetchall()
        )
    return rows, granted
