"""Single-customer-view tables: xref with stable ids, golden records, activity, timeline, consent,
quarantine and the source run log."""


import dagster as dg
import pandas as pd

from dagster_project import constants as C
from dagster_project.assets.common import night
from dagster_project.assets.identity import load_persons
from dagster_project.assets.sources import accepted_key
from dagster_project.resources import WarehouseResource
from sources.config import Config
from transforms.golden import assign_customer_ids, build_golden
from warehouse.models import stage_create_statement
from warehouse.schema import TABLES
from warehouse.store import write_frame, write_model

ACTIVITY = {"order": "orders", "event": "events", "consent": "consents"}


def _union_or_empty(con, table: str, sources: list[str]) -> int:
    """stage.<table> = every accepted source of one kind stacked; empty, with the documented input
    columns, when the config has no source of that kind."""
    con.execute(f"DROP TABLE IF EXISTS stage.{table}")
    if sources:
        union = " UNION ALL BY NAME ".join(f"SELECT * FROM stage.accepted_{s}" for s in sources)
        con.execute(f"CREATE TABLE stage.{table} AS {union}")
    else:
        con.execute(stage_create_statement(table))
    return int(con.execute(f"SELECT count(*) FROM stage.{table}").fetchall()[0][0])


def source_person_records(persons: pd.DataFrame, xref: pd.DataFrame) -> pd.DataFrame:
    """The documented `scv.person_record` rows: source values as written, plus customer_id."""
    cols = TABLES["person_record"].column_names
    merged = persons.merge(
        xref[["source", "source_record_id", "customer_id"]],
        on=["source", "source_record_id"],
        how="left",
        validate="one_to_one",
    )
    for c in cols:
        if c not in merged:
            merged[c] = None
    merged["field_issues"] = merged["field_issues"].map(
        lambda v: [] if v is None or (isinstance(v, float)) else list(v)
    )
    return merged[cols]


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
        return dg.MaterializeResult(metadata={**counts, "dagster/row_count": sum(counts.values())})

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
        n = night(context)
        previous = warehouse.store.previous("customer_xref")
        with warehouse.store.stage() as con:
            clusters = con.execute("SELECT * FROM stage.clusters").df()
            persons_n = con.execute("SELECT count(*) FROM stage.person_records").fetchall()[0][0]
        previous_history = warehouse.store.previous("customer_id_history")
        xref, history = assign_customer_ids(
            clusters, previous, n.run_at, previous_history=previous_history
        )
        all_history = history_append(previous_history, history)
        with warehouse.store.stage() as con:
            write_frame(con, "customer_xref", xref, schema="scv")
            write_frame(con, "customer_id_history", all_history, schema="scv")
        dupes = int(xref.duplicated(["source", "source_record_id"]).sum())
        changes = history["change"].value_counts().to_dict() if len(history) else {}
        prev_ids = set(previous["customer_id"]) if len(previous) else set()
        new_ids = set(xref["customer_id"]) - prev_ids
        yield dg.MaterializeResult(
            asset_key="customer_xref",
            metadata={
                "dagster/row_count": len(xref),
                "customers": int(xref["customer_id"].nunique()),
                "new_customer_ids": len(new_ids),
                "kept_customer_ids": int(xref["customer_id"].nunique()) - len(new_ids),
            },
        )
        yield dg.MaterializeResult(
            asset_key="customer_id_history",
            metadata={
                "merges_this_run": int(changes.get("merge", 0)),
                "splits_this_run": int(changes.get("split", 0)),
                "dagster/row_count": len(all_history),
            },
        )
        yield dg.AssetCheckResult(
            asset_key="customer_xref",
            check_name=C.CHECK_XREF_COMPLETE,
            passed=bool(len(xref) == persons_n and dupes == 0),
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={"person_records": int(persons_n), "xref_rows": len(xref), "duplicates": dupes},
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
        persons = load_persons(warehouse)
        with warehouse.store.stage() as con:
            xref = con.execute("SELECT * FROM scv.customer_xref").df()
        trust = {n: s.trust for n, s in cfg.sources.items()}
        golden, provenance = build_golden(
            persons,
            xref,
            rules=dict(cfg.survivorship.fields),
            default_rules=list(cfg.survivorship.default),
            trust=trust,
        )
        records = source_person_records(persons, xref)
        with warehouse.store.stage() as con:
            write_frame(con, "customer", golden, schema="scv")
            write_frame(con, "customer_field_provenance", provenance, schema="scv")
            write_frame(con, "person_record", records, schema="scv")
        rules_used = provenance["rule"].value_counts().to_dict() if len(provenance) else {}
        yield dg.MaterializeResult(
            asset_key="customer",
            metadata={
                "dagster/row_count": len(golden),
                "with_email": int(golden["email"].notna().sum()),
                "with_phone": int(golden["phone"].notna().sum()),
                "multi_source_customers": int((golden["record_count"] > 1).sum()),
            },
        )
        yield dg.MaterializeResult(
            asset_key="customer_field_provenance",
            metadata={"dagster/row_count": len(provenance), "decided_by_rule": rules_used},
        )
        yield dg.MaterializeResult(
            asset_key="person_record",
            metadata={
                "dagster/row_count": len(records),
                "with_field_issues": int(records["field_issues"].map(len).gt(0).sum()),
            },
        )
        yield dg.AssetCheckResult(
            asset_key="customer",
            check_name=C.CHECK_IDS_UNIQUE,
            passed=bool(
                golden["customer_id"].is_unique
                and set(golden["customer_id"]) == set(xref["customer_id"])
            ),
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={"customers": len(golden), "xref_customers": int(xref["customer_id"].nunique())},
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
        n = night(context)
        with warehouse.store.stage() as con:
            rows = write_model(con, "touchpoint", {"as_of": n.as_of})
            by_kind = dict(con.execute("SELECT kind, count(*) FROM scv.touchpoint GROUP BY ALL").fetchall())
            unresolved, stitched = con.execute(
                "SELECT count(*) FILTER (customer_id IS NULL), count(*) FILTER (stitched) "
                "FROM scv.touchpoint"
            ).fetchall()[0]
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": rows,
                "by_kind": by_kind,
                "unresolved": int(unresolved),
                "stitched_from_sessions": int(stitched),
            }
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
            metadata={"dagster/row_count": rows, "granted_by_purpose": granted}
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
            metadata={
                "dagster/row_count": rows,
                "by_source_and_rule": {f"{s}:{r}": int(v) for (s, r), v in by_rule.items()},
            }
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
            metadata={
                "dagster/row_count": len(rows),
                "this_run": {
                    r.source: f"{r.rows_in} in = {r.rows_accepted} accepted + {r.rows_quarantined} quarantined"
                    for r in this_run.itertuples()
                },
            }
        )
        yield dg.AssetCheckResult(
            check_name=C.CHECK_CONSERVATION,
            passed=bad.empty,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={"sources_checked": len(this_run), "sources_not_conserved": list(bad["source"])},
        )

    return [activity, customer_xref, customer, touchpoint, consent, quarantine, source_run]
