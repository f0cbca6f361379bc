"""The one entry point: Dagster definitions built from the project config.

The config is read when Dagster loads the definitions (`dagster dev -m dagster_project`, or
`scv run`), never at import time: `--config`, else `$SCV_CONFIG`, else the demo config.
"""

from __future__ import annotations

import dagster as dg

from dagster_project.assets.analytics import build_analytics_assets
from dagster_project.assets.audiences import build_audience_assets
from dagster_project.assets.identity import build_identity_assets
from dagster_project.assets.publish import build_publish_assets
from dagster_project.assets.sources import build_accepted_asset, build_landing_asset
from dagster_project.assets.warehouse import build_warehouse_assets
from dagster_project.jobs import nightly_job, nightly_schedule
from dagster_project.metadata import with_warehouse_schemas
from dagster_project.resources import build_resources
from dagster_project.sensors import source_files_sensor
from sources.config import Config, load_config


def build_definitions(cfg: Config) -> dg.Definitions:
    """Every asset, check, job, schedule and resource for one config."""
    # Not partitioned: the night's as-of date is the run's `scv/as_of` tag (assets/common.py).
    partitions = None
    assets: list[dg.AssetsDefinition] = []
    for src in cfg.sources.values():
        if not src.enabled:
            continue
        assets.append(build_landing_asset(cfg, src, partitions))
        assets.append(build_accepted_asset(cfg, src, partitions))
    assets += build_identity_assets(cfg, partitions)
    assets += build_warehouse_assets(cfg, partitions)
    assets += build_analytics_assets(cfg, partitions)
    assets += build_publish_assets(cfg, partitions)
    assets += build_audience_assets(cfg, partitions)
    job = nightly_job()
    return dg.Definitions(
        # the catalog shows each scv table's columns from the warehouse's COMMENTs
        assets=with_warehouse_schemas(assets),
        jobs=[job],
        schedules=[nightly_schedule(cfg, job)],
        sensors=[source_files_sensor(cfg, job)],
        resources=build_resources(cfg),
        executor=dg.in_process_executor,
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions(load_config())


def nightly_job_from_env() -> dg.JobDefinition:
    """The nightly job for `$SCV_CONFIG` (or the demo config): a module-level target so `scv run`
    records runs that the Dagster UI can re-execute."""
    from dagster_project.constants import JOB_NIGHTLY

    return build_definitions(load_config()).resolve_job_def(JOB_NIGHTLY)
