"""The source-file sensor: fires when a source file lands or changes (once it is quiet), skips
otherwise, and never advances its cursor past a change it did not request a run for."""

from __future__ import annotations

import json
import os
import time
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import pytest
import yaml
from tests_support import copy_project

from dagster_project import constants as C
from dagster_project.definitions import build_definitions
from dagster_project.sensors import (
    SETTLE_SECONDS,
    TAG_CHANGED_SOURCES,
    TAG_TRIGGER,
    _as_of_today,
)
from sources.config import ConfigError, load_config

AN_HOUR_AGO = time.time() - 3600


def _age(path: Path, seconds_ago: float) -> None:
    """Set a file's modification time `seconds_ago` into the past (settled unless small)."""
    t = time.time() - seconds_ago
    os.utime(path, (t, t))


def _rewrite(path: Path, *, seconds_ago: float | None) -> None:
    """Change a file's bytes (one more line) and its mtime: now, or `seconds_ago` back."""
    with open(path, "ab") as fh:
        fh.write(b"\n")
    if seconds_ago is not None:
        _age(path, seconds_ago)


@pytest.fixture
def project(demo_sources, tmp_path):
    """A private copy of the demo (its files are changed here), every file an hour old."""
    config = copy_project(demo_sources / "scv.yml", tmp_path / "proj")
    cfg = load_config(config)
    for src in cfg.sources.values():
        os.utime(src.path, (AN_HOUR_AGO, AN_HOUR_AGO))
    return cfg


@pytest.fixture
def instance():
    with dg.DagsterInstance.ephemeral() as inst:
        yield inst


def _tick(cfg, instance, cursor=None):
    """One evaluation through Dagster's own tick path (it resolves the run request against the
    job, so a partition key on the unpartitioned job would raise here)."""
    built = build_definitions(cfg)
    sensor = built.resolve_sensor_def(C.SENSOR_SOURCE_FILES)
    context = dg.build_sensor_context(cursor=cursor, instance=instance, definitions=built)
    return sensor.evaluate_tick(context)


def _a_csv_source(cfg) -> str:
    return next(n for n, s in sorted(cfg.sources.items()) if s.path.suffix == ".csv" and s.enabled)


def test_first_tick_fires_for_today_then_an_unchanged_tick_skips(project, instance):
    first = _tick(project, instance)
    assert first.skip_message is None
    [request] = first.run_requests
    today = datetime.now(ZoneInfo(project.schedule.timezone)).date().isoformat()
    assert request.tags["scv/as_of"] == today
    assert request.partition_key is None
    assert request.tags[TAG_TRIGGER] == "source_files"
    enabled = sorted(n for n, s in project.sources.items() if s.enabled)
    assert request.tags[TAG_CHANGED_SOURCES].split(",") == enabled
    assert request.tags["dagster/sensor_name"] == C.SENSOR_SOURCE_FILES
    assert set(json.loads(first.cursor)["files"]) == set(enabled)

    second = _tick(project, instance, cursor=first.cursor)
    assert not second.run_requests
    assert second.skip_message.startswith("no source file changed since")
    assert second.cursor == first.cursor


def test_a_changed_settled_file_fires_naming_its_source(project, instance):
    first = _tick(project, instance)
    name = _a_csv_source(project)
    _rewrite(project.sources[name].path, seconds_ago=SETTLE_SECONDS + 30)

    fired = _tick(project, instance, cursor=first.cursor)
    [request] = fired.run_requests
    assert request.tags[TAG_CHANGED_SOURCES] == name
    assert request.run_key != first.run_requests[0].run_key
    assert fired.cursor != first.cursor

    # the same file touched again (same size, new mtime) is another change
    _age(project.sources[name].path, SETTLE_SECONDS + 10)
    again = _tick(project, instance, cursor=fired.cursor)
    assert [r.tags[TAG_CHANGED_SOURCES] for r in again.run_requests] == [name]


def test_a_file_still_being_written_waits_and_keeps_the_cursor(project, instance):
    first = _tick(project, instance)
    name = _a_csv_source(project)
    path = project.sources[name].path
    _rewrite(path, seconds_ago=None)  # modified just now

    waiting = _tick(project, instance, cursor=first.cursor)
    assert not waiting.run_requests
    assert "still being written" in waiting.skip_message
    assert str(path) in waiting.skip_message
    assert waiting.cursor == first.cursor  # the change is not forgotten

    _age(path, SETTLE_SECONDS + 1)  # the copy finished a while ago
    settled = _tick(project, instance, cursor=waiting.cursor)
    assert [r.tags[TAG_CHANGED_SOURCES] for r in settled.run_requests] == [name]


def test_a_missing_file_skips_naming_source_and_path(project, instance):
    name = _a_csv_source(project)
    path = project.sources[name].path
    path.unlink()

    on_first_tick = _tick(project, instance)
    assert not on_first_tick.run_requests
    assert name in on_first_tick.skip_message and str(path) in on_first_tick.skip_message
    assert on_first_tick.cursor is None

    cursor = json.dumps({"version": 1, "files": {}, "requested_at": "x"})
    later = _tick(project, instance, cursor=cursor)
    assert not later.run_requests and str(path) in later.skip_message
    assert later.cursor == cursor


def test_a_run_in_progress_defers_the_request(project, instance):
    instance.add_run(
        dg.DagsterRun(job_name=C.JOB_NIGHTLY, run_id="busy-run", status=dg.DagsterRunStatus.STARTED)
    )
    busy = _tick(project, instance)
    assert not busy.run_requests
    assert "busy-run" in busy.skip_message
    assert busy.cursor is None

    instance.report_run_canceled(instance.get_run_by_id("busy-run"))
    assert _tick(project, instance).run_requests


def test_the_as_of_date_is_today_in_the_schedule_timezone(project, instance):
    utc_today = datetime.now(ZoneInfo("UTC")).date()
    # UTC+14 is a day ahead from 10:00 UTC, UTC-11 a day behind until 11:00 UTC: one differs now
    tz = next(
        z
        for z in ("Pacific/Kiritimati", "Pacific/Pago_Pago")
        if datetime.now(ZoneInfo(z)).date() != utc_today
    )
    raw = yaml.safe_load(project.config_path.read_text())
    raw["schedule"] = {"timezone": tz}
    path = project.config_path.with_name("scv_tz.yml")
    path.write_text(yaml.safe_dump(raw))
    [request] = _tick(load_config(path), instance).run_requests
    assert request.tags["scv/as_of"] == datetime.now(ZoneInfo(tz)).date().isoformat()
    assert request.tags["scv/as_of"] != utc_today.isoformat()


def test_a_disabled_source_is_forgotten_without_a_run(project, instance):
    first = _tick(project, instance)
    name = _a_csv_source(project)
    raw = yaml.safe_load(project.config_path.read_text())
    raw["sources"][name]["enabled"] = False
    path = project.config_path.with_name("scv_disabled.yml")
    path.write_text(yaml.safe_dump(raw))
    project.sources[name].path.unlink()  # its file may go too: no longer watched

    after = _tick(load_config(path), instance, cursor=first.cursor)
    assert not after.run_requests
    assert after.skip_message.startswith("no source file changed")
    assert name in json.loads(first.cursor)["files"]
    assert name not in json.loads(after.cursor)["files"]


def test_a_garbled_cursor_counts_as_a_first_tick(project, instance):
    assert _tick(project, instance, cursor="not json").run_requests


def test_no_run_for_a_day_before_the_start_date():
    today = datetime.now(ZoneInfo("UTC")).date()
    assert _as_of_today("UTC", date(2024, 1, 1)) == today
    assert _as_of_today("UTC", today) == today
    assert _as_of_today("UTC", date(2999, 1, 1)) is None


def test_sensor_is_in_the_definitions_stopped_and_follows_config(project):
    built = build_definitions(project)
    sensor = built.resolve_sensor_def(C.SENSOR_SOURCE_FILES)
    assert sensor.default_status == dg.DefaultSensorStatus.STOPPED
    assert sensor.job_name == C.JOB_NIGHTLY
    assert sensor.minimum_interval_seconds == 300

    raw = yaml.safe_load(project.config_path.read_text())
    raw["schedule"] = {"timezone": "Europe/London", "sensor_interval_seconds": 120}
    path = project.config_path.with_name("scv_sensor.yml")
    path.write_text(yaml.safe_dump(raw))
    sensor = build_definitions(load_config(path)).resolve_sensor_def(C.SENSOR_SOURCE_FILES)
    assert sensor.minimum_interval_seconds == 120

    raw["schedule"] = {"sensor_interval_seconds": 5}
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match="schedule.sensor_interval_seconds"):
        load_config(path)
