"""What every asset needs to know about the night it runs in."""


from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path

import dagster as dg

from sources.config import Config


@dataclass(frozen=True)
class Night:
    """The run an asset executes in: the as-of date (the partition) and the run's start time."""

    as_of: date
    run_id: str
    run_at: datetime


def nightly_partitions(cfg: Config) -> dg.DailyPartitionsDefinition:
    """One partition per as-of date; today's date included so a night can run for its own day."""
    return dg.DailyPartitionsDefinition(
        start_date=cfg.start_date.isoformat(), timezone=cfg.schedule.timezone, end_offset=1
    )


def night(context: dg.AssetExecutionContext) -> Night:
    as_of = (
        date.fromisoformat(context.partition_key)
        if context.has_partition_key
        else datetime.now(timezone.utc).date()
    )
    record = context.instance.get_run_record_by_id(context.run_id)
    run_at = record.create_timestamp if record else datetime.now(timezone.utc)
    if run_at.tzinfo is not None:
        run_at = run_at.astimezone(timezone.utc).replace(tzinfo=None)
    return Night(as_of=as_of, run_id=context.run_id, run_at=run_at.replace(microsecond=0))


def file_link(path: Path) -> dg.MetadataValue:
    return dg.MetadataValue.path(str(path))
