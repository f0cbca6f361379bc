"""Saved audiences: one asset per audience of the config (`audiences:`), rebuilt every night.

The audience files are written by the publish step's one export routine, from the very file it
publishes (`Warehouse.prepare_exports` → `warehouse.audience.prepare_audience_exports`), and put
in place with the warehouse and the tables: so an audience never belongs to another night than
the warehouse beside it, and `scv forget` rewrites it. The asset checks that tonight's files are
there and hold what the manifest says, and records the counts (never a person) as metadata.
"""

import dagster as dg

from dagster_project.assets.common import file_link, night
from dagster_project.resources import WarehouseResource
from sources.config import Config
from transforms.audience import AudienceError, AudienceSpec
from warehouse.audience import exported_audience

__all__ = ["GROUP_AUDIENCES", "build_audience_assets"]

GROUP_AUDIENCES = "audiences"
#: WARN: a value the audience names is not in tonight's warehouse, so that filter matches nobody.
CHECK_AUDIENCE_VALUES = "audience_values_in_warehouse"


def _filters_table(counts: dict[str, int]) -> str:
    lines = ["| filter | customers |", "|---|---:|"]
    lines += [f"| {label.replace('|', '/')} | {n:,} |" for label, n in counts.items()]
    return "\n".join(lines)


def _audience_asset(spec: AudienceSpec, partitions) -> dg.AssetsDefinition:
    key = dg.AssetKey(["audience", str(spec.name)])

    @dg.asset(
        key=key,
        group_name=GROUP_AUDIENCES,
        partitions_def=partitions,
        deps=["published_warehouse"],
        kinds={"csv", "parquet"},
        description=f"One row per consenting customer of the saved audience {spec.name!r}: "
        f"{spec.describe()}. Written with the exports (exports/audiences/{spec.name}/).",
        check_specs=[
            dg.AssetCheckSpec(
                CHECK_AUDIENCE_VALUES,
                asset=key,
                description="Every value the audience names is in tonight's warehouse: consent "
                "recorded for its purpose, customers seen on its channels, spend in its currency. "
                "Otherwise that filter matches nobody (the night goes on).",
            )
        ],
    )
    def _audience(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
        n = night(context)
        try:
            entry = exported_audience(warehouse.store.exports, n.run_id, str(spec.name))
        except AudienceError as exc:
            raise dg.Failure(
                description=f"audience {spec.name} not at tonight's night ({n.run_id}): {exc}",
                allow_retries=False,
            ) from None
        context.log.info(f"audience {spec.name}: {entry['rows']:,} rows ({entry['description']})")
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": entry["rows"],
                "definition": entry["description"],
                "purpose": spec.purpose,
                "format": spec.format,
                "customers_in_warehouse": entry["customers"],
                "customers_by_filter": dg.MetadataValue.md(_filters_table(entry["filters"])),
                "match_every_filter": entry["matched"],
                "left_out_no_consent_decision": entry["no_consent_record"],
                "left_out_consent_withdrawn": entry["withdrawn"],
                "left_out_no_email_or_phone": entry["no_identifier"],
                "csv": file_link(entry["csv"]),
                "parquet": file_link(entry["path"]),
            },
            check_results=[
                dg.AssetCheckResult(
                    check_name=CHECK_AUDIENCE_VALUES,
                    passed=not entry["problems"],
                    severity=dg.AssetCheckSeverity.WARN,
                    description="; ".join(entry["problems"]) or "every value named is in the warehouse",
                )
            ],
        )

    return _audience


def build_audience_assets(cfg: Config, partitions) -> list[dg.AssetsDefinition]:
    """One asset per saved audience (none without an `audiences:` section)."""
    return [_audience_asset(spec, partitions) for spec in cfg.audience_specs()]
