"""Saved audiences: one asset per audience of the config (`audiences:`), rebuilt every night.

The audience files are written by the publish step's one export routine, from the very file it
publishes (`Warehouse.prepare_exports` → `warehouse.audience.prepare_audience_exports`), and put
in place with the warehouse and the tables: so an audience never belongs to another night than
the warehouse beside it, and `scv forget` rewrites it. The asset checks that tonight's files are
there and hold what the manifest says, and records the counts (never a person) as metadata.
"""

import json
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq

from dagster_project.assets.common import file_link, night
from dagster_project.resources import WarehouseResource
from sources.config import Config
from transforms.audience import AudienceSpec

__all__ = ["GROUP_AUDIENCES", "audience_export_problems", "build_audience_assets"]

GROUP_AUDIENCES = "audiences"
#: WARN: a value the audience names is not in tonight's warehouse, so that filter matches nobody.
CHECK_AUDIENCE_VALUES = "audience_values_in_warehouse"


def audience_export_problems(manifest: dict, exports: Path, run_id: str, name: str) -> list[str]:
    """One line per way the export of audience `name` does not hold tonight's night: the
    manifest names another run or lacks the audience, a file is missing, or the Parquet file
    holds another number of rows than the manifest says."""
    problems = []
    if manifest.get("run_id") != run_id:
        problems.append(f"{exports / 'manifest.json'} is of run {manifest.get('run_id')}")
    entry = manifest.get("audiences", {}).get(name)
    if entry is None:
        return [*problems, f"{exports / 'manifest.json'} has no audience {name!r}"]
    data, csv = exports / entry["path"], exports / entry["csv"]
    for path in (data, csv):
        if not path.exists():
            problems.append(f"{path} is missing")
    if data.exists() and pq.read_metadata(data).num_rows != entry["rows"]:
        problems.append(f"{data} holds {pq.read_metadata(data).num_rows} rows, the manifest {entry['rows']}")
    return problems


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
        exports = warehouse.store.exports
        manifest = json.loads((exports / "manifest.json").read_text(encoding="utf-8"))
        problems = audience_export_problems(manifest, exports, n.run_id, str(spec.name))
        if problems:
            raise dg.Failure(
                description=f"audience {spec.name} not at tonight's night ({n.run_id}): " + "; ".join(problems),
                allow_retries=False,
            )
        entry = manifest["audiences"][spec.name]
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
                "csv": file_link(exports / entry["csv"]),
                "parquet": file_link(exports / entry["path"]),
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
