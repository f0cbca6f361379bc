"""Single-customer-view tables: xref with stable ids, golden records, activity, timeline, consent,
quarantine and the source run log. Each asset makes one call into the warehouse layer
(`warehouse.customer_xref`, `warehouse.customer`, `warehouse.activity`, `warehouse.source_log`)."""


import dagster as dg

from dagster_project import constants as C
from dagster_project.assets.common import night
from dagster_project.assets.identity import FULL_TAG
from dagster_project.assets.sources import accepted_key
from dagster_project.metadata import readable
from dagster_project.resources import WarehouseResource
from sources.config import Config
from warehouse.activity import (
    activity_sources,
    stack_activity,
    write_consent,
    write_touchpoint,
)
from warehouse.customer import build_customers
from warehouse.customer_xref import assign_ids
from warehouse.source_log import write_quarantine, write_source_run


def build_warehouse_assets(cfg: Config, partitions) -> list[dg.AssetsDefinition]:
    by_kind = activity_sources(cfg)
    all_sources = [n for n, s in cfg.sources.items() if s.enabled]

    @dg.asset(
        group_name=C.GROUP_WAREHOUSE,
        partitions_def=partitions,
        deps=[accepted_key(n) for srcs in by_kind.values() for n in srcs],
        kinds={"duckdb"},
    )
    def activity(
        context: dg.AssetExecutionContext, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:
        """One row per accepted order, event and consent row of every source, in three staging
        tables (stage.orders, stage.events, stage.consents) that the timeline models read."""
        counts = stack_activity(warehouse.store, by_kind)
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
        ids = assign_ids(cfg, warehouse.store, night(context).run_at)
        context.log.info(
            f"customer ids: {ids.records_assigned:,} records assigned tonight"
            + (f", {ids.xref_rows - ids.records_assigned:,} carried" if ids.incremental else "")
        )
        yield dg.MaterializeResult(
            asset_key="customer_xref",
            metadata=readable({
                "dagster/row_count": ids.xref_rows,
                "mode": "incremental (relink scope)" if ids.incremental else "full",
                "written": ids.written,
                "records_assigned_tonight": ids.records_assigned,
                "customers": ids.customers,
                "new_customer_ids": ids.new_customer_ids,
                "kept_customer_ids": ids.customers - ids.new_customer_ids,
            }),
        )
        yield dg.MaterializeResult(
            asset_key="customer_id_history",
            metadata=readable({
                "merges_this_run": ids.changes.get("merge", 0),
                "splits_this_run": ids.changes.get("split", 0),
                "changes_made_by_overrides": ids.changes_by_overrides,
                "dagster/row_count": ids.history_rows,
            }),
        )
        yield dg.MaterializeResult(
            asset_key="review_queue",
            metadata=readable({
                "dagster/row_count": ids.review_pairs,
                "pairs_by_reason": dg.MetadataValue.json(ids.review_pairs_by_reason),
            }),
        )
        yield dg.AssetCheckResult(
            asset_key="customer_xref",
            check_name=C.CHECK_XREF_COMPLETE,
            passed=ids.complete,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={"person_records": ids.person_records, "xref_rows": ids.xref_rows, "duplicates": ids.duplicates},
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
        g = build_customers(cfg, warehouse.store, full_requested=context.run.tags.get(FULL_TAG) == "true")
        context.log.info(f"golden records ({g.mode}): {g.decided:,} of {g.customers:,} customers decided tonight")
        yield dg.MaterializeResult(
            asset_key="customer",
            metadata=readable({
                "dagster/row_count": g.customers,
                "mode": g.mode,
                "written": g.written,
                "customers_decided_tonight": g.decided,
                "customers_carried": g.customers - g.decided,
                "with_email": g.with_email,
                "with_phone": g.with_phone,
                "multi_source_customers": g.multi_source,
            }),
        )
        yield dg.MaterializeResult(
            asset_key="customer_field_provenance",
            metadata=readable({"dagster/row_count": g.provenance_rows, "decided_by_rule": g.decided_by_rule}),
        )
        yield dg.MaterializeResult(
            asset_key="person_record",
            metadata=readable({
                "dagster/row_count": g.person_records,
                "with_field_issues": g.with_field_issues,
                "written": g.person_records_written,
            }),
        )
        yield dg.AssetCheckResult(
            asset_key="customer",
            check_name=C.CHECK_IDS_UNIQUE,
            passed=g.ids_unique and g.ids_match,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={"customers": g.customers, "xref_customers": g.xref_customers},
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
        figures = write_touchpoint(warehouse.store)
        rows = figures.pop("rows")
        return dg.MaterializeResult(metadata=readable({"dagster/row_count": rows, **figures}))

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
        rows, granted = write_consent(warehouse.store, night(context).as_of)
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
        rows, by_rule = write_quarantine(warehouse.store, all_sources)
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
        rows, this_run = write_source_run(warehouse.store, all_sources, night(context).run_id)
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
