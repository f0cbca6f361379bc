"""The nightly job over every asset, and its schedule."""

import dagster as dg

from dagster_project import constants as C
from dagster_project.assets.common import TAG_AS_OF, as_of_tags
from sources.config import Config


def nightly_job():
    # In-process: DuckDB allows one writer per file, and every asset writes the staging file.
    return dg.define_asset_job(
        C.JOB_NIGHTLY,
        selection=dg.AssetSelection.all(),
        executor_def=dg.in_process_executor,
        description="The whole night: extract, validate, link, build, audit, publish, export. "
        f"The as-of date is the run tag {TAG_AS_OF} (YYYY-MM-DD; without it, the day the run "
        f"starts, UTC): to rerun a past night, re-execute its run or launch with that tag.",
        tags={"dagster/max_retries": "0"},
    )


def nightly_schedule(cfg: Config, job) -> dg.ScheduleDefinition:
    """Runs the job at the configured cron and timezone, for that day's as-of date."""

    @dg.schedule(
        name=C.SCHEDULE_NIGHTLY,
        cron_schedule=cfg.schedule.cron,
        execution_timezone=cfg.schedule.timezone,
        job=job,
        description=f"Nightly refresh ({cfg.schedule.cron}, {cfg.schedule.timezone}): "
        "the whole pipeline for the day the tick falls on.",
        default_status=dg.DefaultScheduleStatus.STOPPED,
    )
    def _nightly(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        as_of = context.scheduled_execution_time.date()
        return dg.RunRequest(run_key=f"nightly-{as_of.isoformat()}", tags=as_of_tags(as_of))

    return _nightly
