"""What every asset needs to know about the night it runs in.

The night's as-of date is a run tag, `scv/as_of` (YYYY-MM-DD), set by `scv run --as-of`, the
schedule and the sensor, and copied by Dagster when a run is re-executed. The assets are not
partitioned: the warehouse is one snapshot, rebuilt and replaced each night, so a partition per
calendar day showed "0% filled" after every good night (README, "The asset graph").
"""


from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import dagster as dg


@dataclass(frozen=True)
class Night:
    """The run an asset executes in: the as-of date (the `scv/as_of` tag) and the run's start time."""

    as_of: date
    run_id: str
    run_at: datetime


#: The run tag holding the night's as-of date (YYYY-MM-DD).
TAG_AS_OF = "scv/as_of"
#: Where runs recorded while the assets were partitioned by day kept it (re-executing one of
#: them copies its tags, so it still names the night).
_LEGACY_PARTITION_TAG = "dagster/partition"


def as_of_tags(as_of: date) -> dict[str, str]:
    """The tags that make a run the night of `as_of`."""
    return {TAG_AS_OF: as_of.isoformat()}


def as_of_from_tags(tags: Mapping[str, str], run_at: datetime) -> date:
    """The as-of date a run's tags name; without one, the day the run was created (UTC), so
    a run launched from the UI without the tag is tonight's, the same date for every step.
    Raises dg.Failure naming the tag when it is not a date."""
    key = TAG_AS_OF if tags.get(TAG_AS_OF) else _LEGACY_PARTITION_TAG
    text = tags.get(key)
    if not text:
        return run_at.date()
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise dg.Failure(
            description=f"run tag {key}: expected an as-of date YYYY-MM-DD, got {text!r}",
            allow_retries=False,
        ) from None


def night(context: dg.AssetExecutionContext) -> Night:
    record = context.instance.get_run_record_by_id(context.run_id)
    run_at = record.create_timestamp if record else datetime.now(UTC)
    if run_at.tzinfo is not None:
        run_at = run_at.astimezone(UTC).replace(tzinfo=None)
    as_of = as_of_from_tags(context.run.tags, run_at)
    return Night(as_of=as_of, run_id=context.run_id, run_at=run_at.replace(microsecond=0))


def file_link(path: Path) -> dg.MetadataValue:
    return dg.MetadataValue.path(str(path))
