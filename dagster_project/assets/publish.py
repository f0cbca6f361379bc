"""Write-audit-publish: audit the staged night, publish it atomically, export Parquet for BI."""


import dagster as dg

from dagster_project import constants as C
from dagster_project.assets.common import file_link, night
from dagster_project.file_server import night_pages, page_link, page_url, pages_markdown
from dagster_project.metadata import readable
from dagster_project.resources import WarehouseResource
from sources.config import Config
from warehouse.publish import PublishRefused, check_exports, publish_night
from warehouse.report import (
    build_run_report,
    load_previous_summary,
    latest_report,
    relative_pages,
    write_run_report,
)

#: Every asset whose tables the publish step copies.
PUBLISHED_FROM = [
    "customer_xref",
    "customer_id_history",
    "review_queue",
    "customer",
    "customer_field_provenance",
    "person_record",
    "touchpoint",
    "consent",
    "customer_profile",
    "rfm",
    "lifecycle",
    "lifecycle_history",
    "quarantine",
    "source_run",
]


def build_publish_assets(cfg: Config, partitions) -> list[dg.AssetsDefinition]:
    @dg.asset(
        group_name=C.GROUP_EXPORTS,
        partitions_def=partitions,
        # The review page reads the staged night too: it is written before the swap.
        deps=[*PUBLISHED_FROM, "review_page"],
        kinds={"duckdb"},
    )
    def published_warehouse(
        context: dg.AssetExecutionContext, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:
        """The warehouse analysts query: the staged night, audited, then swapped in atomically
        together with the Parquet exports (README: both move to tonight or neither does). A
        failed audit or an export that cannot be written publishes nothing and leaves
        yesterday's warehouse and exports in place."""
        n = night(context)
        try:
            done = publish_night(cfg, warehouse.store, n.run_id, n.as_of.isoformat())
        except PublishRefused as exc:
            metadata = {"failures": exc.failures} if exc.failures else None
            raise dg.Failure(description=str(exc), metadata=metadata, allow_retries=False) from None
        counts, figures = done.counts, done.audits
        context.log.info(f"published {sum(counts.values()):,} rows in {len(counts)} tables")
        return dg.MaterializeResult(
            metadata=readable({
                "path": file_link(warehouse.store.published),
                "rows_by_table": counts,
                "audits_passed": list(figures),
                **{k: v for k, v in figures.items() if isinstance(v, (int, float))},
            })
        )

    @dg.asset(
        group_name=C.GROUP_EXPORTS,
        partitions_def=partitions,
        deps=[published_warehouse],
        kinds={"parquet"},
    )
    def bi_exports(
        context: dg.AssetExecutionContext, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:
        """One Parquet file per published table under exports/<table>/ and exports/manifest.json
        (as-of date, run id, row counts, schema), written and put in place with the warehouse by
        `published_warehouse`; checked here to hold tonight's night, table by table."""
        n = night(context)
        exports = check_exports(warehouse.store, n.run_id)
        if exports.problems:
            raise dg.Failure(
                description=f"exports not at tonight's night ({n.run_id}): " + "; ".join(exports.problems),
                allow_retries=False,
            )
        return dg.MaterializeResult(
            metadata=readable({
                "folder": file_link(warehouse.store.exports),
                "manifest": file_link(warehouse.store.exports_manifest),
                "rows_by_table": exports.rows_by_table,
            })
        )

    @dg.asset(
        group_name=C.GROUP_EXPORTS,
        partitions_def=partitions,
        deps=[published_warehouse],
        kinds={"html"},
    )
    def run_report(
        context: dg.AssetExecutionContext, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:
        """One self-contained HTML page per run (counts only, no personal data): rows per source,
        quarantine by rule, people found, merges and splits, segments, stages, change since the
        previously published night; it links to the night's Splink charts and Data Docs."""
        n = night(context)
        extra = {"linkage": _linkage_figures(context), "timings": _step_seconds(context)}
        # the previously published night: a second run on the same day compares with the first
        previous = load_previous_summary(cfg.reports_dir, on_or_before=n.as_of, exclude_run=n.run_id)
        pages = night_pages(cfg)
        with warehouse.store.read_published() as con:
            html, summary = build_run_report(
                con, n.run_id, n.as_of, previous, extra, relative_pages(cfg.reports_dir, pages)
            )
        path = write_run_report(html, summary, cfg.reports_dir, n.run_id)
        context.log.info(f"run report: {page_url(cfg, path) or path}")
        return dg.MaterializeResult(
            metadata=readable({
                "report": page_link(cfg, path),
                "latest": page_link(cfg, latest_report(cfg.reports_dir)),
                "pages": pages_markdown(cfg, [("Run report", path), *pages]),
                **{k: v for k, v in summary.items() if isinstance(v, (int, float))},
            })
        )

    return [published_warehouse, bi_exports, run_report]


def _linkage_figures(context: dg.AssetExecutionContext) -> dict:
    """This run's linkage figures, read back from the materialisations recorded in the run."""
    figures: dict = {}
    for key in ("linkage_model", "person_clusters"):
        event = context.instance.get_latest_materialization_event(dg.AssetKey(key))
        if event is None or event.run_id != context.run_id:
            continue
        for name, value in event.asset_materialization.metadata.items():
            raw = getattr(value, "value", value)
            if isinstance(raw, (int, float, str, bool)) and not name.startswith("chart_"):
                figures[name] = raw
    return figures


def _step_seconds(context: dg.AssetExecutionContext) -> dict[str, float]:
    stats = context.instance.get_run_step_stats(context.run_id)
    return {
        s.step_key: round(s.end_time - s.start_time, 2)
        for s in stats
        if s.end_time and s.start_time
    }
