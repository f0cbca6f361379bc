"""The definitions load from a config, show every stage, and carry the nightly schedule."""

from datetime import datetime
from zoneinfo import ZoneInfo

import dagster as dg
import pytest
import yaml

from dagster_project import constants as C
from dagster_project.definitions import build_definitions, defs
from sources.config import load_config


def test_definitions_build_one_asset_pair_per_source(demo_sources, monkeypatch):
    monkeypatch.setenv("SCV_CONFIG", str(demo_sources / "scv.yml"))
    cfg = load_config()
    loaded = defs()  # the lazy entry point dagster dev uses, reading $SCV_CONFIG
    keys = {k.to_user_string() for k in loaded.resolve_asset_graph().get_all_asset_keys()}
    for name in cfg.sources:
        assert f"landing/{name}" in keys
        assert f"accepted/{name}" in keys
    for table in ("customer", "customer_xref", "touchpoint", "consent", "customer_profile",
                  "rfm", "lifecycle", "published_warehouse", "bi_exports"):
        assert table in keys
    groups = {
        spec.group_name
        for spec in loaded.resolve_asset_graph().asset_nodes
    }
    assert {C.GROUP_SOURCES, C.GROUP_QUALITY, C.GROUP_IDENTITY, C.GROUP_WAREHOUSE,
            C.GROUP_ANALYTICS, C.GROUP_EXPORTS} <= groups


def test_schedule_follows_config(demo_sources, tmp_path):
    raw = yaml.safe_load((demo_sources / "scv.yml").read_text())
    raw["schedule"] = {"cron": "30 3 * * *", "timezone": "Europe/London"}
    # keep relative paths valid by writing next to the original
    path = demo_sources / "scv_schedule_test.yml"
    path.write_text(yaml.safe_dump(raw))
    try:
        built = build_definitions(load_config(path))
        schedule = built.resolve_schedule_def(C.SCHEDULE_NIGHTLY)
        assert schedule.cron_schedule == "30 3 * * *"
        assert schedule.execution_timezone == "Europe/London"
        assert schedule.job_name == C.JOB_NIGHTLY
        job = built.resolve_job_def(C.JOB_NIGHTLY)
        # not partitioned: the schedule names the night by the scv/as_of tag
        assert job.partitions_def is None
        tick = datetime(2026, 3, 29, 3, 30, tzinfo=ZoneInfo("Europe/London"))
        with dg.build_schedule_context(scheduled_execution_time=tick) as context:
            [request] = schedule.evaluate_tick(context).run_requests
        assert request.tags["scv/as_of"] == "2026-03-29"
        assert request.partition_key is None
    finally:
        path.unlink()


def test_a_source_added_by_config_alone_gets_assets(demo_sources):
    raw = yaml.safe_load((demo_sources / "scv.yml").read_text())
    raw["sources"]["newsletter_signups"] = {
        "kind": "person",
        "path": "signups.csv",
        "id": "signup_id",
        "columns": {"email": "mail"},
    }
    path = demo_sources / "scv_added_source.yml"
    path.write_text(yaml.safe_dump(raw))
    try:
        built = build_definitions(load_config(path))
        keys = {k.to_user_string() for k in built.resolve_asset_graph().get_all_asset_keys()}
        assert {"landing/newsletter_signups", "accepted/newsletter_signups"} <= keys
    finally:
        path.unlink()


def test_defs_without_a_config_fail_clearly(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SCV_CONFIG", raising=False)
    with pytest.raises(Exception, match="config file not found"):
        defs()
