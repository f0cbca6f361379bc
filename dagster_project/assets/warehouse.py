"""Single-customer-view tables: xref with stable ids, golden records, activity, timeline, consent,
quarantine and the source run log."""


import hashlib
import json
import os
from importlib.metadata import version
from pathlib import Path

import dagster as dg
import pandas as pd

from dagster_project import constants as C
from dagster_project.assets.common import night
from dagster_project.assets.identity import FULL_TAG
from warehouse.identity import CLUSTERS_FILE, REVIEW_FILE
from warehouse.nightly.golden import golden_config_hash, load_golden_state, stage_golden_state
from dagster_project.assets.sources import accepted_key
from dagster_project.metadata import readable
from dagster_project.resources import WarehouseResource
from sources.config import Config
from transforms import linkage
from transforms.golden import GOLDEN_FIELDS, assign_customer_ids, build_golden
from warehouse.models import load_sql_unordered, stage_create_statement
from warehouse.schema import TABLES
from warehouse.store import (
    change_in_place,
    change_to_match,
    documented_table,
    drop_relation,
    empty_frame,
    fetch_frame,
    stack_view,
    write_frame,
    write_model,
    write_select,
)

__version__ = version("scv-warehouse")

ACTIVITY = {"order": "orders", "event": "events", "consent": "consents"}


def _union_or_empty(con, table: str, sources: list[str]) -> int:
    """stage.<table> = every accepted source of one kind stacked; empty, with the documented input
    columns, when the config has no source of that kind."""
    if sources:
        stack_view(con, table, [f"stage.accepted_{s}" for s in sources])
    else:
        drop_relation(con, "stage", table)
        con.execute(stage_create_statement(table))
    return int(con.execute(f"SELECT count(*) FROM stage.{table}").fetchall()[0][0])


def _person_record_sql(where: str | None = None, ordered: bool = True) -> str:
    cols = []
    for c in TABLES["person_record"].column_names:
        cols.append('x.customer_id' if c == "customer_id" else f'p."{c}"')
    return (
        "SELECT " + ", ".join(f'{e} AS "{c}"' for e, c in zip(cols, TABLES["person_record"].column_names))
        + " FROM stage.person_records p LEFT JOIN scv.customer_xref x USING (source, source_record_id)"
        + (f" WHERE {where}" if where else "")
        + (" ORDER BY p.source, p._row_number" if ordered else "")
    )


#: The documented `scv.person_record` rows: source values as written, plus customer_id.
PERSON_RECORD_SQL = _person_record_sql()

#: Tonight's person records with their customer and a hash of everything survivorship reads
#: (every standardised column; not the row's position in its file).
#: Held in memory for the night's comparison and written once as Parquet next to the staging
#: file (`GOLDEN_RECORDS_FILE`), which the publish step hands over as the next night's state:
#: a staging table of the 2.5M fingerprints cost 4 s a night at 1M people.
GOLDEN_RECORDS_FILE = "golden_records.parquet"
GOLDEN_RECORDS_SQL = """
CREATE OR REPLACE TEMP TABLE _golden_records AS
SELECT x.source, x.source_record_id, x.customer_id,
       hash(*COLUMNS(p.* EXCLUDE (_row_number))) AS fingerprint
FROM stage.person_records p JOIN scv.customer_xref x USING (source, source_record_id)
"""


def _sql_literal(p: Path) -> str:
    return str(p).replace("'", "''")


def _affected_customers(con, warehouse: WarehouseResource, previous_records: Path) -> set[str]:
    """Customers whose golden record must be decided again: any record that is new, changed,
    moved between customers or gone (on either side of the move), and any customer the
    published table lacks. The differing record rows are kept in `stage.golden_changed`."""
    con.execute(
        f"""
        CREATE OR REPLACE TABLE stage.golden_changed AS
        WITH prev AS (SELECT source, source_record_id, customer_id, fingerprint
                      FROM read_parquet('{_sql_literal(previous_records)}')),
             cur AS (SELECT source, source_record_id, customer_id, fingerprint FROM _golden_records)
        SELECT source, source_record_id, customer_id FROM (SELECT * FROM cur EXCEPT SELECT * FROM prev)
        UNION ALL
        SELECT source, source_record_id, customer_id FROM (SELECT * FROM prev EXCEPT SELECT * FROM cur)
        """
    )
    affected = {r[0] for r in con.execute("SELECT DISTINCT customer_id FROM stage.golden_changed").fetchall()}
    with warehouse.store.published_attached(con) as attached:
        if not attached:
            return affected | {r[0] for r in con.execute("SELECT DISTINCT customer_id FROM scv.customer_xref").fetchall()}
        missing = con.execute(
            "SELECT DISTINCT customer_id FROM scv.customer_xref "
            "EXCEPT SELECT customer_id FROM published.scv.customer"
        ).fetchall()
    return affected | {r[0] for r in missing}


def _person_records_in_place(con) -> int | None:
    """scv.person_record changed in place: the rows of records in `stage.golden_changed`
    replaced by tonight's. None (nothing kept) when the result does not hold one row per
    person record tonight; the caller then writes the table whole."""
    changed = (
        "EXISTS (SELECT 1 FROM stage.golden_changed c "
        "WHERE c.source = {t}.source AND c.source_record_id = {t}.source_record_id)"
    )
    rows = change_in_place(
        con,
        "person_record",
        changed.format(t="scv.person_record"),
        _person_record_sql(where=changed.format(t="p"), ordered=False),
    )
    if rows != con.execute("SELECT count(*) FROM stage.person_records").fetchall()[0][0]:
        return None
    return rows


#: How a full build orders the golden tables: by customer id, provenance then by field in
#: golden-record column order.
_GOLDEN_ORDER = {
    "customer": "customer_id",
    "customer_field_provenance": "customer_id, list_position(["
    + ", ".join(f"'{f}'" for f in GOLDEN_FIELDS)
    + "], field)",
}


def _write_golden(con, warehouse: WarehouseResource, decided: dict[str, pd.DataFrame], carry: bool) -> str:
    """scv.customer and scv.customer_field_provenance: tonight's decided rows plus, on an
    incremental night, the published rows of every customer not decided tonight that still
    exists. When the build file still holds the published tables, they are changed in place
    (the rows of decided and vanished customers deleted, the decided ones inserted); otherwise
    each is written once, in the order of a full build. Returns how: "in place" or "rewritten"."""
    in_place = carry and warehouse.store.as_published(con, list(decided))
    con.register("_decided_ids", decided["customer"][["customer_id"]])
    try:
        with warehouse.store.published_attached(con) as attached:
            for name, frame in decided.items():
                cols = ", ".join(f'"{c}"' for c in TABLES[name].column_names)
                view = f"_decided_{name}"
                con.register(view, documented_table(frame, name))
                try:
                    typed = ", ".join(f'CAST("{c.name}" AS {c.type}) AS "{c.name}"' for c in TABLES[name].columns)
                    if in_place:
                        change_in_place(
                            con,
                            name,
                            "customer_id IN (SELECT customer_id FROM _decided_ids) "
                            "OR customer_id NOT IN (SELECT customer_id FROM scv.customer_xref)",
                            f"SELECT {typed} FROM {view}",
                        )
                        continue
                    parts = [f"SELECT {typed} FROM {view}"]
                    if carry and attached:
                        parts.append(
                            f"SELECT {cols} FROM published.scv.{name} "
                            "WHERE customer_id IN (SELECT customer_id FROM scv.customer_xref) "
                            "AND customer_id NOT IN (SELECT customer_id FROM _decided_ids)"
                        )
                    write_select(
                        con,
                        name,
                        f"SELECT {cols} FROM ({' UNION ALL '.join(parts)}) ORDER BY {_GOLDEN_ORDER[name]}",
                    )
                finally:
                    con.unregister(view)
    finally:
        con.unregister("_decided_ids")
    return "in place" if in_place else "rewritten"


#: Previous customers that tonight's relink scope touches: any of their records is in the scope
#: or gone. Carried rows are the published rows of tonight's records outside the scope.
_XREF_SUBSET_SQL = """
CREATE OR REPLACE TEMP TABLE _xref_touched AS
SELECT DISTINCT x.customer_id
FROM published.scv.customer_xref x
LEFT JOIN stage.person_records p USING (source, source_record_id)
WHERE p.unique_id IS NULL OR p.unique_id IN (SELECT unique_id FROM stage.relink_scope)
"""


def _xref_subset(con, warehouse: WarehouseResource):
    """(clusters in the relink scope, the published rows of the customers it touches, every
    other id in use), or None when those customers hold a record outside the scope that is
    still here: then last night's clusters and tonight's disagree, and ids are assigned again
    to every record."""
    con.execute(_XREF_SUBSET_SQL)
    outside = con.execute(
        """
        SELECT count(*) FROM published.scv.customer_xref x
        JOIN stage.person_records p USING (source, source_record_id)
        WHERE x.customer_id IN (SELECT customer_id FROM _xref_touched)
          AND p.unique_id NOT IN (SELECT unique_id FROM stage.relink_scope)
        """
    ).fetchall()[0][0]
    if outside:
        return None
    clusters = fetch_frame(
        con,
        f"SELECT * FROM {warehouse.store.staged_relation(CLUSTERS_FILE)} "
        "WHERE unique_id IN (SELECT unique_id FROM stage.relink_scope)",
    )
    previous = fetch_frame(
        con,
        "SELECT * FROM published.scv.customer_xref "
        "WHERE customer_id IN (SELECT customer_id FROM _xref_touched)",
    )
    reserved = fetch_frame(con, "SELECT DISTINCT customer_id FROM published.scv.customer_xref")["customer_id"]
    return clusters, previous, reserved


def _write_partial_xref(con, warehouse: WarehouseResource, assigned: pd.DataFrame) -> str:
    """scv.customer_xref = tonight's assigned rows + the published rows of every other record
    still here. When the build file still holds the published xref, it is changed in place
    (the rows of records in the relink scope or gone deleted, the assigned ones inserted);
    otherwise it is written once, in (source, source_record_id) order like a full assignment.
    Returns how: "in place" or "rewritten"."""
    cols = ", ".join(f'"{c}"' for c in TABLES["customer_xref"].column_names)
    con.register("_assigned", documented_table(assigned, "customer_xref"))
    try:
        if warehouse.store.as_published(con, ["customer_xref"]):
            change_in_place(
                con,
                "customer_xref",
                """(source, source_record_id) IN (
                    SELECT x.source, x.source_record_id FROM scv.customer_xref x
                    LEFT JOIN stage.person_records p USING (source, source_record_id)
                    WHERE p.unique_id IS NULL OR p.unique_id IN (SELECT unique_id FROM stage.relink_scope)
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


def build_warehouse_assets(cfg: Config, partitions) -> list[dg.AssetsDefinition]:
    activity_sources = {
        table: list(cfg.sources_of(kind)) for kind, table in ACTIVITY.items()
    }
    all_sources = list(n for n, s in cfg.sources.items() if s.enabled)

    @dg.asset(
        group_name=C.GROUP_WAREHOUSE,
        partitions_def=partitions,
        deps=[accepted_key(n) for srcs in activity_sources.values() for n in srcs],
        kinds={"duckdb"},
    )
    def activity(
        context: dg.AssetExecutionContext, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:
        """One row per accepted order, event and consent row of every source, in three staging
        tables (stage.orders, stage.events, stage.consents) that the timeline models read."""
        counts = {}
        with warehouse.store.stage() as con:
            for table, srcs in activity_sources.items():
                counts[table] = _union_or_empty(con, table, srcs)
        return dg.MaterializeResult(metadata=readable({**counts, "dagster/row_count": sum(counts.values())}))

    @dg.multi_asset(
        specs=[
            dg.AssetSpec(
                "customer_xref",
                group_name=C.GROUP_WAREHOUSE,
                deps=["person_clusters"],
                description="One row per accepted source person record with its stable "
                "customer_id (scv.customer_xref).",
                kinds={"duckdb"},
            ),
            dg.AssetSpec(
                "customer_id_history",
                group_name=C.GROUP_WAREHOUSE,
                deps=["person_clusters"],
                description="One row per customer_id change between runs: merges and splits.",
                kinds={"duckdb"},
            ),
            dg.AssetSpec(
                "review_queue",
                group_name=C.GROUP_WAREHOUSE,
                deps=["person_clusters"],
                description="One row per pair of records for a data steward to look at tonight "
                "(scv.review_queue).",
                kinds={"duckdb"},
            ),
        ],
        partitions_def=partitions,
        check_specs=[
            dg.AssetCheckSpec(
                C.CHECK_XREF_COMPLETE,
                asset="customer_xref",
                blocking=True,
                description="Every accepted person record appears exactly once in the xref.",
            ),
        ],
    )
    def customer_xref(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
        """Stable customer ids. On a night whose linkage decided clusters again only inside a
        scope (docs/architecture.md §5), ids are assigned again only to those records and the
        previous customers they belonged to; every other record keeps its published row."""
        n = night(context)
        previous_history = warehouse.store.previous("customer_id_history")
        if len(previous_history) and "reason" not in previous_history.columns:
            # Changes from before the column existed came from linkage: there were no overrides.
            previous_history = previous_history.assign(reason="linkage")
        with warehouse.store.stage() as con:
            partial = con.execute("SELECT scope FROM stage.linkage_state").fetchall()[0][0] == "partial"
            with warehouse.store.published_attached(con) as attached:
                subset = _xref_subset(con, warehouse) if partial and attached else None
                if subset is None:
                    clusters = fetch_frame(con, f"SELECT * FROM {warehouse.store.staged_relation(CLUSTERS_FILE)}")
                    previous = (
                        fetch_frame(con, "SELECT * FROM published.scv.customer_xref")
                        if attached
                        else empty_frame("customer_xref")
                    )
                    reserved = None
                else:
                    clusters, previous, reserved = subset
                xref, history = assign_customer_ids(
                    clusters, previous, n.run_at, previous_history=previous_history, reserved_ids=reserved
                )
                overrides = linkage.resolve_overrides(cfg.linkage.overrides)
                history = linkage.explain_history(history, previous, xref, overrides)
                all_history = history_append(previous_history, history)
                if subset is None:
                    write_frame(con, "customer_xref", xref, schema="scv")
                    written = "rewritten"
                else:
                    written = _write_partial_xref(con, warehouse, xref)
                write_frame(con, "customer_id_history", all_history, schema="scv")
                queue = linkage.review_queue(
                    fetch_frame(con, f"SELECT * FROM {warehouse.store.staged_relation(REVIEW_FILE)}"),
                    fetch_frame(con, "SELECT source, source_record_id, customer_id FROM scv.customer_xref"),
                    n.run_at,
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
        changes = history["change"].value_counts().to_dict() if len(history) else {}
        context.log.info(
            f"customer ids: {len(xref):,} records assigned tonight"
            + ("" if subset is None else f", {rows - len(xref):,} carried")
        )
        yield dg.MaterializeResult(
            asset_key="customer_xref",
            metadata=readable({
                "dagster/row_count": int(rows),
                "mode": "full" if subset is None else "incremental (relink scope)",
                "written": written,
                "records_assigned_tonight": len(xref),
                "customers": int(customers),
                "new_customer_ids": int(new_ids),
                "kept_customer_ids": int(customers) - int(new_ids),
            }),
        )
        by_override = int((history["reason"] != "linkage").sum()) if len(history) else 0
        yield dg.MaterializeResult(
            asset_key="customer_id_history",
            metadata=readable({
                "merges_this_run": int(changes.get("merge", 0)),
                "splits_this_run": int(changes.get("split", 0)),
                "changes_made_by_overrides": by_override,
                "dagster/row_count": len(all_history),
            }),
        )
        reasons = queue["reason"].value_counts().to_dict() if len(queue) else {}
        yield dg.MaterializeResult(
            asset_key="review_queue",
            metadata=readable({
                "dagster/row_count": len(queue),
                "pairs_by_reason": dg.MetadataValue.json({str(k): int(v) for k, v in reasons.items()}),
            }),
        )
        yield dg.AssetCheckResult(
            asset_key="customer_xref",
            check_name=C.CHECK_XREF_COMPLETE,
            passed=bool(rows == persons_n and dupes == 0),
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={"person_records": int(persons_n), "xref_rows": int(rows), "duplicates": int(dupes)},
        )

    @dg.multi_asset(
        specs=[
            dg.AssetSpec(
                "customer",
                group_name=C.GROUP_WAREHOUSE,
                deps=["customer_xref", "person_records"],
                description="One row per person: the golden record chosen by survivorship.",
                kinds={"duckdb"},
            ),
            dg.AssetSpec(
                "customer_field_provenance",
                group_name=C.GROUP_WAREHOUSE,
                deps=["customer_xref", "person_records"],
                description="One row per customer x field: where the golden value came from.",
                kinds={"duckdb"},
            ),
            dg.AssetSpec(
                "person_record",
                group_name=C.GROUP_WAREHOUSE,
                deps=["customer_xref", "person_records"],
                description="One row per accepted source person record, as the source wrote it, "
                "with its customer_id.",
                kinds={"duckdb"},
            ),
        ],
        partitions_def=partitions,
        check_specs=[
            dg.AssetCheckSpec(
                C.CHECK_IDS_UNIQUE,
                asset="customer",
                blocking=True,
                description="One golden record per customer_id, and one per xref customer.",
            )
        ],
    )
    def customer(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
        """Golden records, incrementally: a customer whose records (and their content) are the
        same as on the last published night keeps its published golden row and provenance; only
        customers touched by a new, changed, moved or deleted record are decided again. A change
        of the survivorship rules, the trust ranks or the code rebuilds everyone."""
        trust = {n: s.trust for n, s in cfg.sources.items()}
        config_hash = golden_config_hash(cfg)
        with warehouse.store.stage() as con:
            drop_relation(con, "stage", "golden_records")  # a table in staging files of earlier versions
            con.execute(GOLDEN_RECORDS_SQL)
            warehouse.store.write_staged(con, GOLDEN_RECORDS_FILE, "SELECT * FROM _golden_records")
            previous = load_golden_state(cfg)
            if context.run.tags.get(FULL_TAG) == "true":
                mode, affected = "full (requested)", None
            elif previous is None or previous["config_hash"] != config_hash:
                mode = "full (" + ("no stored state" if previous is None else "rules or code changed") + ")"
                affected = None
            else:
                mode = "incremental"
                affected = _affected_customers(con, warehouse, previous["records"])
            stage_golden_state(cfg, warehouse.store.staged_file(GOLDEN_RECORDS_FILE), config_hash)
            if affected is None:
                persons = fetch_frame(con, "SELECT * FROM stage.person_records")
                xref = fetch_frame(con, "SELECT source, source_record_id, customer_id FROM scv.customer_xref")
            else:
                con.register("_affected", pd.DataFrame({"customer_id": sorted(affected)}, dtype="str"))
                persons = fetch_frame(
                    con,
                    "SELECT p.* FROM stage.person_records p JOIN scv.customer_xref x "
                    "USING (source, source_record_id) WHERE x.customer_id IN (SELECT customer_id FROM _affected)",
                )
                xref = fetch_frame(
                    con,
                    "SELECT source, source_record_id, customer_id FROM scv.customer_xref "
                    "WHERE customer_id IN (SELECT customer_id FROM _affected)",
                )
        if len(xref):
            golden, provenance = build_golden(
                persons,
                xref,
                rules=dict(cfg.survivorship.fields),
                default_rules=list(cfg.survivorship.default),
                trust=trust,
            )
        else:  # nobody to decide tonight (or no person records at all)
            golden, provenance = empty_frame("customer"), empty_frame("customer_field_provenance")
        with warehouse.store.stage() as con:
            written = _write_golden(
                con,
                warehouse,
                {"customer": golden, "customer_field_provenance": provenance},
                carry=affected is not None,
            )
            customers, with_email, with_phone, multi = con.execute(
                "SELECT count(*), count(email), count(phone), count(*) FILTER (record_count > 1) "
                "FROM scv.customer"
            ).fetchall()[0]
            n_prov = con.execute("SELECT count(*) FROM scv.customer_field_provenance").fetchall()[0][0]
            rules_used = dict(
                con.execute("SELECT rule, count(*) FROM scv.customer_field_provenance GROUP BY ALL ORDER BY 2 DESC").fetchall()
            )
            ids_unique, ids_match, xref_customers = con.execute(
                """
                SELECT (SELECT count(*) = count(DISTINCT customer_id) FROM scv.customer),
                       (SELECT count(*) FROM (
                            SELECT customer_id FROM scv.customer
                            EXCEPT SELECT customer_id FROM scv.customer_xref)) = 0
                       AND (SELECT count(*) FROM (
                            SELECT customer_id FROM scv.customer_xref
                            EXCEPT SELECT customer_id FROM scv.customer)) = 0,
                       (SELECT count(DISTINCT customer_id) FROM scv.customer_xref)
                """
            ).fetchall()[0]
            records = None
            if affected is not None and warehouse.store.as_published(con, ["person_record"]):
                records = _person_records_in_place(con)
            records_written = "in place" if records is not None else "rewritten"
            if records is None:
                records = write_select(con, "person_record", PERSON_RECORD_SQL)
            with_issues = con.execute(
                "SELECT count(*) FROM scv.person_record WHERE len(field_issues) > 0"
            ).fetchall()[0][0]
        context.log.info(
            f"golden records ({mode}): {len(golden):,} of {customers:,} customers decided tonight"
        )
        yield dg.MaterializeResult(
            asset_key="customer",
            metadata=readable({
                "dagster/row_count": int(customers),
                "mode": mode,
                "written": written,
                "customers_decided_tonight": len(golden),
                "customers_carried": int(customers) - len(golden),
                "with_email": int(with_email),
                "with_phone": int(with_phone),
                "multi_source_customers": int(multi),
            }),
        )
        yield dg.MaterializeResult(
            asset_key="customer_field_provenance",
            metadata=readable({"dagster/row_count": int(n_prov), "decided_by_rule": {k: int(v) for k, v in rules_used.items()}}),
        )
        yield dg.MaterializeResult(
            asset_key="person_record",
            metadata=readable({"dagster/row_count": int(records), "with_field_issues": int(with_issues), "written": records_written}),
        )
        yield dg.AssetCheckResult(
            asset_key="customer",
            check_name=C.CHECK_IDS_UNIQUE,
            passed=bool(ids_unique and ids_match),
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={"customers": int(customers), "xref_customers": int(xref_customers)},
        )

    @dg.asset(
        group_name=C.GROUP_WAREHOUSE,
        partitions_def=partitions,
        deps=["customer_xref", activity],
        kinds={"duckdb", "sql"},
    )
    def touchpoint(
        context: dg.AssetExecutionContext, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:
        """One row per order, event and consent change, joined to its customer (sessions that
        log in are stitched); rows that resolve to nobody keep a NULL customer_id."""
        with warehouse.store.stage() as con:
            if warehouse.store.as_published(con, ["touchpoint"]):
                # last night's timeline is still in the build file: change only the rows that differ
                rows, changed = change_to_match(
                    con, "touchpoint", load_sql_unordered("touchpoint"), "touchpoint_id", what="model touchpoint"
                )
                written = f"in place ({changed:,} touchpoints changed)"
            else:
                rows, written = write_model(con, "touchpoint"), "rewritten"
            by_kind = dict(con.execute("SELECT kind, count(*) FROM scv.touchpoint GROUP BY ALL").fetchall())
            unresolved, stitched = con.execute(
                "SELECT count(*) FILTER (customer_id IS NULL), count(*) FILTER (stitched) "
                "FROM scv.touchpoint"
            ).fetchall()[0]
        return dg.MaterializeResult(
            metadata=readable({
                "dagster/row_count": rows,
                "by_kind": by_kind,
                "unresolved": int(unresolved),
                "stitched_from_sessions": int(stitched),
                "written": written,
            })
        )

    @dg.asset(
        group_name=C.GROUP_WAREHOUSE,
        partitions_def=partitions,
        deps=["customer_xref", activity],
        kinds={"duckdb", "sql"},
    )
    def consent(
        context: dg.AssetExecutionContext, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:
        """One row per customer x purpose: the latest decision across sources (at equal
        timestamps a withdrawal wins)."""
        n = night(context)
        with warehouse.store.stage() as con:
            rows = write_model(con, "consent", {"as_of": n.as_of})
            granted = dict(
                con.execute(
                    "SELECT purpose, count(*) FILTER (granted) FROM scv.consent GROUP BY ALL"
                ).fetchall()
            )
        return dg.MaterializeResult(
            metadata=readable({"dagster/row_count": rows, "granted_by_purpose": granted})
        )

    @dg.asset(
        group_name=C.GROUP_WAREHOUSE,
        partitions_def=partitions,
        deps=[accepted_key(n) for n in all_sources],
        kinds={"duckdb"},
    )
    def quarantine(
        context: dg.AssetExecutionContext, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:
        """One row per source row rejected this night, with the rule, a readable detail and the
        raw row as JSON."""
        with warehouse.store.stage() as con:
            union = " UNION ALL BY NAME ".join(
                f"SELECT * FROM stage.quarantine_{s}" for s in all_sources
            )
            frame = con.execute(union).df()
            rows = write_frame(con, "quarantine", frame, schema="scv")
        by_rule = frame.groupby(["source", "rule"]).size() if rows else pd.Series(dtype=int)
        return dg.MaterializeResult(
            metadata=readable({
                "dagster/row_count": rows,
                "by_source_and_rule": {f"{s}:{r}": int(v) for (s, r), v in by_rule.items()},
            })
        )

    @dg.asset(
        group_name=C.GROUP_WAREHOUSE,
        partitions_def=partitions,
        deps=[accepted_key(n) for n in all_sources],
        kinds={"duckdb"},
        check_specs=[
            dg.AssetCheckSpec(
                C.CHECK_CONSERVATION,
                asset="source_run",
                blocking=True,
                description="rows_in = rows_accepted + rows_quarantined for every source this run.",
            )
        ],
    )
    def source_run(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
        """One row per source and run (kept across runs): rows in, accepted, quarantined."""
        n = night(context)
        with warehouse.store.stage() as con:
            union = " UNION ALL BY NAME ".join(
                f"SELECT * FROM stage.source_run_{s}" for s in all_sources
            )
            this_run = con.execute(union).df()
        previous = warehouse.store.previous("source_run")
        # A rerun of the same run id replaces its own rows (idempotent), never older nights.
        previous = previous[previous["run_id"] != n.run_id] if len(previous) else previous
        rows = history_append(previous, this_run)
        with warehouse.store.stage() as con:
            write_frame(con, "source_run", rows, schema="scv")
        bad = this_run[this_run["rows_in"] != this_run["rows_accepted"] + this_run["rows_quarantined"]]
        yield dg.MaterializeResult(
            metadata=readable({
                "dagster/row_count": len(rows),
                "this_run": {
                    r.source: f"{r.rows_in} in = {r.rows_accepted} accepted + {r.rows_quarantined} quarantined"
                    for r in this_run.itertuples()
                },
            })
        )
        yield dg.AssetCheckResult(
            check_name=C.CHECK_CONSERVATION,
            passed=bad.empty,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={"sources_checked": len(this_run), "sources_not_conserved": list(bad["source"])},
        )

    return [activity, customer_xref, customer, touchpoint, consent, quarantine, source_run]
