"""A sensor that starts the nightly job when a source file lands or changes.

Every tick stats each enabled source's `path` (file exports and database files alike) and
compares (path, size, mtime_ns) with what the previous request saw; the cursor keeps that
signature as JSON. Stat only: nothing is read or hashed here, so a tick over large exports costs
nothing. The landing assets compare SHA-256 fingerprints, so a run started for one changed file
only redoes the work that file changes.

A run is requested only when

- every enabled source's file exists (a missing file would fail the run; the tick names it),
- each changed file has been quiet for `settle_seconds` (default 60 s), so a file still being
  copied is not read half-written,
- no run of the nightly job is queued or in progress (DuckDB allows one writer per file).

Otherwise the tick skips with the reason and keeps its cursor, so the change is picked up by a
later tick. The first tick after the sensor is switched on (no cursor) requests a run: files that
landed before it was switched on deserve one too. The run is for today's as-of date in the
schedule's timezone (the `scv/as_of` tag), never one before the config's `start_date`.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from datetime import date, datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg

from dagster_project import constants as C
from dagster_project.assets.common import as_of_tags
from sources.config import Config

#: Seconds a changed file must go unmodified before a run is requested for it.
SETTLE_SECONDS = 60

TAG_TRIGGER = "scv/trigger"
TAG_CHANGED_SOURCES = "scv/changed_sources"
TRIGGER_SOURCE_FILES = "source_files"

_CURSOR_VERSION = 1
_BUSY_STATUSES = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]

# source name -> [path, size, mtime_ns]
Signature = dict[str, list]


def watched_paths(cfg: Config) -> dict[str, Path]:
    """The file each enabled source is read from (database sources: the database file)."""
    return {name: Path(src.path) for name, src in sorted(cfg.sources.items()) if src.enabled}


def file_signature(paths: dict[str, Path]) -> tuple[Signature, dict[str, Path]]:
    """(source -> [path, size, mtime_ns]) for the files that exist, and the sources whose file
    does not (or is not a regular file)."""
    signature: Signature = {}
    missing: dict[str, Path] = {}
    for name, path in paths.items():
        try:
            st = os.stat(path)
        except OSError:
            missing[name] = path
            continue
        if not os.path.isfile(path):
            missing[name] = path
            continue
        signature[name] = [str(path), st.st_size, st.st_mtime_ns]
    return signature, missing


def _read_cursor(cursor: str | None) -> tuple[Signature | None, str | None]:
    """The signature and request time stored by the last request; (None, None) when there is no
    usable cursor (first tick, or a cursor reset or edited by hand)."""
    if not cursor:
        return None, None
    try:
        data = json.loads(cursor)
        files = data["files"]
        if data.get("version") != _CURSOR_VERSION or not isinstance(files, dict):
            return None, None
        return {str(k): list(v) for k, v in files.items()}, data.get("requested_at")
    except (ValueError, KeyError, TypeError, AttributeError):
        return None, None


def _write_cursor(signature: Signature, requested_at: str | None) -> str:
    return json.dumps(
        {"version": _CURSOR_VERSION, "files": signature, "requested_at": requested_at},
        sort_keys=True,
    )


def _run_key(signature: Signature, as_of: date) -> str:
    digest = hashlib.sha256(
        json.dumps(signature, sort_keys=True).encode("utf-8")
    ).hexdigest()[:16]
    return f"source-files-{as_of.isoformat()}-{digest}"


def _as_of_today(tz: str, start_date: date) -> date | None:
    """Today's as-of date in the schedule timezone; None before the config's start_date."""
    today = datetime.now(ZoneInfo(tz)).date()
    return today if today >= start_date else None


def source_files_sensor(
    cfg: Config, job, *, settle_seconds: float = SETTLE_SECONDS
) -> dg.SensorDefinition:
    """The sensor that requests a nightly run when an enabled source's file lands or changes."""
    paths = watched_paths(cfg)
    tz = cfg.schedule.timezone

    @dg.sensor(
        name=C.SENSOR_SOURCE_FILES,
        job=job,
        minimum_interval_seconds=cfg.schedule.sensor_interval_seconds,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description=(
            f"Runs {C.JOB_NIGHTLY} for today's as-of date ({tz}) when a source file lands or "
            f"changes (size or modification time), once it has been quiet for "
            f"{settle_seconds:g} s. Checks every {cfg.schedule.sensor_interval_seconds} s."
        ),
    )
    def _source_files(context: dg.SensorEvaluationContext):
        current, missing = file_signature(paths)
        if missing:
            listed = "; ".join(f"{name} ({path})" for name, path in missing.items())
            return dg.SkipReason(
                f"source file missing, no run requested (it would fail): {listed}"
            )

        previous, requested_at = _read_cursor(context.cursor)
        if previous is None:
            changed = sorted(current)
        else:
            changed = sorted(n for n in current if previous.get(n) != current[n])
        if not changed:
            if set(previous or {}) != set(current):
                # Sources disabled or removed from the config: forget them, nothing to run.
                context.update_cursor(_write_cursor(current, requested_at))
            return dg.SkipReason(
                f"no source file changed since the run requested at {requested_at or '?'} "
                f"({len(current)} files watched)"
            )

        now_ns = time.time_ns()
        settle_ns = int(settle_seconds * 1e9)
        unsettled = [n for n in changed if now_ns - current[n][2] < settle_ns]
        if unsettled:
            listed = "; ".join(f"{n} ({current[n][0]})" for n in unsettled)
            return dg.SkipReason(
                f"waiting for files still being written (changed less than "
                f"{settle_seconds:g} s ago): {listed}"
            )

        busy = context.instance.get_run_records(
            filters=dg.RunsFilter(job_name=C.JOB_NIGHTLY, statuses=_BUSY_STATUSES), limit=1
        )
        if busy:
            return dg.SkipReason(
                f"changed source file(s) {', '.join(changed)}: waiting for run "
                f"{busy[0].dagster_run.run_id} of {C.JOB_NIGHTLY} to finish "
                "(one writer per DuckDB file)"
            )

        as_of = _as_of_today(tz, cfg.start_date)
        if as_of is None:
            return dg.SkipReason(
                f"no as-of date to run for yet: start_date {cfg.start_date} is in the future"
            )

        now_iso = datetime.now(timezone.utc).isoformat(timespec="seconds")
        context.update_cursor(_write_cursor(current, now_iso))
        return dg.RunRequest(
            run_key=_run_key(current, as_of),
            tags={
                **as_of_tags(as_of),
                TAG_TRIGGER: TRIGGER_SOURCE_FILES,
                TAG_CHANGED_SOURCES: ",".join(changed),
            },
        )

    return _source_files
