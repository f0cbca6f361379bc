"""Stable customer ids: `scv.customer_xref` (one row per accepted person record),
`scv.customer_id_history` (merges and splits, kept across nights) and `scv.review_queue`
(tonight's pairs for a steward), from the clusters the linkage stage staged
(`warehouse.identity.CLUSTERS_FILE`, `REVIEW_FILE`).

On a night whose linkage decided clusters again only inside a scope (`stage.relink_scope`,
docs/architecture.md §5), ids are assigned again only to those records and the previous
customers they belonged to; every other record keeps its published row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import duckdb
import pandas as pd

from sources.config import Config
from transforms import linkage
from transforms.golden import assign_customer_ids
from warehouse.identity import CLUSTERS_FILE, REVIEW_FILE
from warehouse.schema import TABLES
from warehouse.store import (
    Warehouse,
    change_in_place,
    documented_table,
    empty_frame,
    fetch_frame,
    write_frame,
    write_select,
)

__all__ = ["CustomerIds", "assign_ids", "history_append", "xref_touched_sqls"]

_XREF_COLUMNS = ", ".join(f'"{c}"' for c in TABLES["customer_xref"].column_names)

#: Records of tonight's relink scope, and published records gone tonight.
_IN_SCOPE_OR_GONE = "p.unique_id IS NULL OR p.unique_id IN (SELECT unique_id FROM stage.relink_scope)"


def xref_touched_sqls() -> list[str]:
    """Previous customers that tonight's relink scope touches (any of their records is in the
    scope or gone), as temp table `_xref_touched`; then the count of their records outside
    the scope that are still here."""
    return [
        f"""
        CREATE OR REPLACE TEMP TABLE _xref_touched AS
        SELECT DISTINCT x.customer_id
        FROM published.scv.customer_xref x
        LEFT JOIN stage.person_records p USING (source, source_record_id)
        WHERE {_IN_SCOPE_OR_GONE}
        """,
        """
        SELECT count(*) FROM published.scv.customer_xref x
        JOIN stage.person_records p USING (source, source_record_id)
        WHERE x.customer_id IN (SELECT customer_id FROM _xref_touched)
          AND p.unique_id NOT IN (SELECT unique_id FROM stage.relink_scope)
        """,
    ]


def _xref_subset(con: duckdb.DuckDBPyConnection, store: Warehouse):
    """(clusters in the relink scope, the published rows of the customers it touches, every
    other id in use), or None when those customers hold a record outside the scope that is
    still here: then last night's clusters and tonight's disagree, and ids are assigned again
    to every record."""
    touched, outside = xref_touched_sqls()
    con.execute(touched)
    if con.execute(outside).fetchall()[0][0]:
        return None
    clusters = fetch_frame(
        con,
        f"SELECT * FROM {store.staged_relation(CLUSTERS_FILE)} "
        "WHERE unique_id IN (SELECT unique_id FROM stage.relink_scope)",
    )
    previous = fetch_frame(
        con,
        "SELECT * FROM published.scv.customer_xref "
        "WHERE customer_id IN (SELECT customer_id FROM _xref_touched)",
    )
    reserved = fetch_frame(con, "SELECT DISTINCT customer_id FROM published.scv.customer_xref")["customer_id"]
    return clusters, previous, reserved


def _write_partial_xref(con: duckdb.DuckDBPyConnection, store: Warehouse, assigned: pd.DataFrame) -> str:
    """scv.customer_xref = tonight's assigned rows + the published rows of every other record
    still here. When the build file still holds the published xref, it is changed in place
    (the rows of records in the relink scope or gone deleted, the assigned ones inserted);
    otherwise it is written once, in (source, source_record_id) order like a full assignment.
    Returns how: "in place" or "rewritten"."""
    cols = _XREF_COLUMNS
    con.register("_assigned", documented_table(assigned, "customer_xref"))
    try:
        if store.as_published(con, ["customer_xref"]):
            change_in_place(
                con,
                "customer_xref",
                f"""(source, source_record_id) IN (
                    SELECT x.source, x.source_record_id FROM scv.customer_xref x
                    LEFT JOIN stage.person_records p USING (source, source_record_id)
                    WHERE {_IN_SCOPE_OR_GONE}
                )""",
                f"SELECT {cols} FROM _assigned",
            )
            return "in place"
        write_select(
            con,
            "customer_xref",
            f"""
            SELECT {cols} FROM (
                SELECT {cols} FROM _assigned
                UNION ALL
                SELECT {", ".join(f'x."{c}"' for c in TABLES["customer_xref"].column_names)}
                FROM published.scv.customer_xref x
                JOIN stage.person_records p USING (source, source_record_id)
                WHERE p.unique_id NOT IN (SELECT unique_id FROM stage.relink_scope)
            ) ORDER BY source, source_record_id
            """,
        )
        return "rewritten"
    finally:
        con.unregister("_assigned")


def history_append(previous: pd.DataFrame, new_rows: pd.DataFrame) -> pd.DataFrame:
    """Previous published history plus this night's rows (history is never rebuilt)."""
    frames = [f for f in (previous, new_rows) if len(f)]
    if not frames:
        return new_rows
    return pd.concat(frames, ignore_index=True)


@dataclass(frozen=True)
class CustomerIds:
    """What `assign_ids` wrote: the figures of each table and of the completeness check."""

    incremental: bool
    written: str
    records_assigned: int
    xref_rows: int
    duplicates: int
    customers: int
    new_customer_ids: int
    person_records: int
    history: pd.DataFrame
    history_rows: int
    review_queue: pd.DataFrame

    @property
    def changes(self) -> dict[str, int]:
        """Tonight's id changes by kind (merge, split)."""
        counts = self.history["change"].value_counts().to_dict() if len(self.history) else {}
        return {str(k): int(v) for k, v in counts.items()}

    @property
    def changes_by_overrides(self) -> int:
        """Tonight's id changes a steward's override made."""
        return int((self.history["reason"] != "linkage").sum()) if len(self.history) else 0

    @property
    def review_pairs(self) -> int:
        return len(self.review_queue)

    @property
    def review_pairs_by_reason(self) -> dict[str, int]:
        """Tonight's review pairs by reason."""
        queue = self.review_queue
        reasons = queue["reason"].value_counts().to_dict() if len(queue) else {}
        return {str(k): int(v) for k, v in reasons.items()}

    @property
    def complete(self) -> bool:
        """Every accepted person record appears exactly once in the xref."""
        return bool(self.xref_rows == self.person_records and self.duplicates == 0)


def assign_ids(cfg: Config, store: Warehouse, run_at: datetime) -> CustomerIds:
    """Write scv.customer_xref, scv.customer_id_history and scv.review_queue for tonight's
    clusters: stable ids (`transforms.golden.assign_customer_ids`), every change explained
    (linkage or a steward's override), the review pairs named by customer."""
    previous_history = store.previous("customer_id_history")
    if len(previous_history) and "reason" not in previous_history.columns:
        # Changes from before the column existed came from linkage: there were no overrides.
        previous_history = previous_history.assign(reason="linkage")
    with store.stage() as con:
        partial = con.execute("SELECT scope FROM stage.linkage_state").fetchall()[0][0] == "partial"
        with store.published_attached(con) as attached:
            subset = _xref_subset(con, store) if partial and attached else None
            if subset is None:
                clusters = fetch_frame(con, f"SELECT * FROM {store.staged_relation(CLUSTERS_FILE)}")
                previous = (
                    fetch_frame(con, "SELECT * FROM published.scv.customer_xref")
                    if attached
                    else empty_frame("customer_xref")
                )
                reserved = None
            else:
                clusters, previous, reserved = subset
            xref, history = assign_customer_ids(
                clusters, previous, run_at, previous_history=previous_history, reserved_ids=reserved
            )
            overrides = linkage.resolve_overrides(cfg.linkage.overrides)
            history = linkage.explain_history(history, previous, xref, overrides)
            all_history = history_append(previous_history, history)
            if subset is None:
                write_frame(con, "customer_xref", xref, schema="scv")
                written = "rewritten"
            else:
                written = _write_partial_xref(con, store, xref)
            write_frame(con, "customer_id_history", all_history, schema="scv")
            queue = linkage.review_queue(
                fetch_frame(con, f"SELECT * FROM {store.staged_relation(REVIEW_FILE)}"),
                fetch_frame(con, "SELECT source, source_record_id, customer_id FROM scv.customer_xref"),
                run_at,
            )
            write_frame(con, "review_queue", queue, schema="scv")
            rows, dupes, customers = con.execute(
                "SELECT count(*), count(*) - count(DISTINCT (source, source_record_id)), "
                "count(DISTINCT customer_id) FROM scv.customer_xref"
            ).fetchall()[0]
            new_ids = customers
            if attached:
                new_ids = con.execute(
                    "SELECT count(*) FROM (SELECT customer_id FROM scv.customer_xref "
                    "EXCEPT SELECT customer_id FROM published.scv.customer_xref)"
                ).fetchall()[0][0]
        persons_n = con.execute("SELECT count(*) FROM stage.person_records").fetchall()[0][0]
    return CustomerIds(
        incremental=subset is not None,
        written=written,
        records_assigned=len(xref),
        xref_rows=int(rows),
        duplicates=int(dupes),
        customers=int(customers),
        new_customer_ids=int(new_ids),
        person_records=int(persons_n),
        history=history,
        history_rows=len(all_history),
        review_queue=queue,
    )
