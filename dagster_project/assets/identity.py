"""Identity resolution assets: all standardised person records, the Splink model, the clusters,
the steward's review page. Each makes one call into `warehouse.identity`."""

import dagster as dg

from dagster_project import constants as C
from dagster_project.assets.common import file_link, night
from dagster_project.assets.sources import accepted_key
from dagster_project.file_server import page_link
from dagster_project.metadata import readable, training_metadata
from dagster_project.resources import WarehouseResource
from dagster_project.splink_log import splink_to_dagster
from sources.config import Config
from warehouse.identity import (
    ensure_model,
    link_persons,
    stack_person_records,
    write_review_page,
)

#: The run tag of `scv run --full`: re-link every record tonight.
FULL_TAG = "scv/full"


class LinkageModelConfig(dg.Config):
    """Run-time switches for the linkage model."""

    retrain: bool = False


def build_identity_assets(cfg: Config, partitions) -> list[dg.AssetsDefinition]:
    person_sources = list(cfg.person_sources())

    @dg.asset(
        group_name=C.GROUP_IDENTITY,
        partitions_def=partitions,
        deps=[accepted_key(n) for n in person_sources],
        kinds={"duckdb"},
    )
    def person_records(
        context: dg.AssetExecutionContext, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:
        """One row per accepted person record from every person source, standardised with match
        keys (unique_id = source:source_record_id)."""
        per_source = stack_person_records(warehouse.store, person_sources)
        total = sum(per_source.values())
        context.log.info(f"{total:,} person records from {len(per_source)} sources")
        return dg.MaterializeResult(
            metadata=readable({"dagster/row_count": total, "records_by_source": per_source})
        )

    @dg.asset(
        group_name=C.GROUP_IDENTITY,
        partitions_def=partitions,
        deps=[person_records],
        kinds={"splink", "json"},
    )
    def linkage_model(
        context: dg.AssetExecutionContext, config: LinkageModelConfig, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:
        """The trained Splink model (JSON under the models folder). Reused every night; retrained
        when asked (`scv run --retrain`) or when the configured sources provide fields that the
        saved model does not cover."""
        with splink_to_dagster(context.log, "training the linkage model"):
            chosen = ensure_model(cfg, warehouse.store, config.retrain, context.log)
        meta = chosen.model.get("scv", {})
        return dg.MaterializeResult(
            metadata=readable({
                "trained_this_run": chosen.reason is not None,
                "reason": chosen.reason or "reused",
                "model_version": str(meta.get("version")),
                "fields": meta.get("fields", chosen.fields),
                **training_metadata(meta.get("training", {})),
                "path": file_link(chosen.path),
            })
        )

    @dg.asset(
        group_name=C.GROUP_IDENTITY,
        partitions_def=partitions,
        deps=[person_records, linkage_model],
        kinds={"splink", "duckdb"},
    )
    def person_clusters(
        context: dg.AssetExecutionContext, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:
        """One row per accepted person record with its cluster (the real person behind it) and
        the match probability of its strongest link, staged for the xref step; tonight's edges
        and fingerprints staged for the next night.

        Incremental by default: only new and changed records are scored against the rest, and
        clusters are recomputed from the stored edges plus the new ones. A full re-link runs on
        the first night, with `scv run --full`, or when the model changed."""
        with splink_to_dagster(context.log, "linking"):
            done = link_persons(
                cfg,
                warehouse.store,
                full_requested=context.run.tags.get(FULL_TAG) == "true",
                run_id=night(context).run_id,
                log=context.log,
            )
        return dg.MaterializeResult(
            metadata=readable({
                "mode": done.mode,
                "records": done.records,
                "people_found": done.people,
                "duplicates_merged": done.records - done.people,
                "match_rate": float(done.in_multi / max(done.records, 1)),
                "cluster_size_distribution": {str(k): v for k, v in done.size_distribution.items()},
                "threshold": done.threshold,
                "guard_policy": done.guard_policy,
                "overrides_in_file": done.overrides_in_file,
                "overrides_stale": done.overrides_stale,
                "review_queue_pairs": done.review_pairs,
                **{k: v for k, v in done.metrics.items() if isinstance(v, (int, float, str))},
                **{f"chart_{k}": page_link(cfg, v) for k, v in done.charts.items()},
                "dagster/row_count": done.records,
            })
        )

    @dg.asset(
        group_name=C.GROUP_IDENTITY,
        partitions_def=partitions,
        deps=["review_queue"],
        kinds={"html"},
    )
    def review_page(
        context: dg.AssetExecutionContext, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:
        """One HTML page per night for the data steward: tonight's review queue with both
        records side by side and Splink's waterfall chart per pair. It shows personal data, so
        it is written to the private folder (owner-only), never to reports/ or exports/."""
        n = night(context)
        with splink_to_dagster(context.log, "drawing the review page"):
            path, pairs = write_review_page(cfg, warehouse.store, f"Review queue, {n.run_id}")
        context.log.info(f"review page: {pairs:,} pairs, {path}")
        return dg.MaterializeResult(
            metadata=readable({"pairs": pairs, "shown": min(pairs, 200), "path": file_link(path)})
        )

    return [person_records, linkage_model, person_clusters, review_page]
