"""Saved audiences end to end: declared in config, rebuilt on a night as one Dagster asset each
(counts as metadata), exported with the tables under exports/audiences/<name>/, consenting
customers only, and rewritten by `scv forget`."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import pytest
import yaml
from conftest import DEMO_AS_OF
from tests_support import copy_project, run_scv

from dagster_project.assets.audiences import CHECK_AUDIENCE_VALUES
from dagster_project.definitions import build_definitions
from sources.config import load_config
from warehouse.audience import audience_export_problems

AUDIENCES = {
    "lapsed_vips": {"stage": "at_risk", "segment": ["At Risk", "Can't Lose Them"], "purpose": "email_marketing",
                    "format": "hashed"},
    "store_regulars": {"channel": "store", "min_spend": 100, "purpose": "email_marketing", "format": "plain"},
}  # fmt: skip


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def with_audiences(config: Path, audiences: dict) -> None:
    settings = yaml.safe_load(config.read_text(encoding="utf-8"))
    settings["audiences"] = audiences
    config.write_text(yaml.safe_dump(settings, sort_keys=False), encoding="utf-8")


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_each_saved_audience_is_an_asset_with_a_check(demo_sources, tmp_path):
    config = copy_project(demo_sources / "scv.yml", tmp_path / "project")
    with_audiences(config, AUDIENCES)
    defs = build_definitions(load_config(config))
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert {"audience/lapsed_vips", "audience/store_regulars"} <= keys
    node = graph.get(dg.AssetKey(["audience", "lapsed_vips"]))
    assert node.group_name == "audiences"
    assert dg.AssetKey("published_warehouse") in node.parent_keys
    assert {c.name for c in node.check_keys} == {CHECK_AUDIENCE_VALUES}


def test_export_problems_name_what_is_behind(tmp_path):
    folder = tmp_path / "audiences" / "a"
    folder.mkdir(parents=True)
    pd.DataFrame({"Email": ["x", "y"], "Phone": ["", ""]}).to_parquet(folder / "data.parquet")
    entry = {"path": "audiences/a/data.parquet", "csv": "audiences/a/a.csv", "rows": 3}
    manifest = {"run_id": "old", "audiences": {"a": entry}}
    problems = audience_export_problems(manifest, tmp_path, "tonight", "a")
    assert problems == [
        f"{tmp_path / 'manifest.json'} is of run old",
        f"{tmp_path / 'audiences/a/a.csv'} is missing",
        f"{tmp_path / 'audiences/a/data.parquet'} holds 2 rows, the manifest 3",
    ]
    assert audience_export_problems(manifest, tmp_path, "old", "b") == [f"{tmp_path / 'manifest.json'} has no audience 'b'"]


@pytest.mark.slow
def test_saved_audiences_are_rebuilt_and_exported_on_a_night(demo_run, tmp_path, capsys):
    config = copy_project(demo_run, tmp_path / "project")
    with_audiences(config, AUDIENCES)
    assert run_scv("run", "--config", config, "--as-of", DEMO_AS_OF) == 0
    cfg = load_config(config)
    root = cfg.exports / "audiences"
    manifest = json.loads((cfg.exports / "manifest.json").read_text(encoding="utf-8"))
    assert sorted(manifest["audiences"]) == ["lapsed_vips", "store_regulars"]

    con = duckdb.connect(str(cfg.warehouse), read_only=True)
    try:
        latest = dict(
            con.execute(
                "SELECT customer_id, granted FROM scv.consent WHERE purpose = 'email_marketing' "
                "QUALIFY row_number() OVER (PARTITION BY customer_id ORDER BY recorded_at DESC, granted) = 1"
            ).fetchall()
        )
        vips = con.execute(
            "SELECT c.customer_id, c.email FROM scv.customer AS c JOIN scv.lifecycle AS l USING (customer_id) "
            "JOIN scv.rfm AS r USING (customer_id) WHERE l.stage = 'at_risk' "
            "AND r.segment IN ('At Risk', 'Can''t Lose Them')"
        ).fetchall()
        withdrawn_emails = {
            r[0].strip().lower()
            for r in con.execute(
                "SELECT c.email FROM scv.customer AS c JOIN scv.consent AS k USING (customer_id) "
                "WHERE k.purpose = 'email_marketing' AND NOT k.granted AND c.email IS NOT NULL"
            ).fetchall()
        }
    finally:
        con.close()

    # hashed: exactly the consenting customers of the two dimensions, as SHA-256 of the email
    hashed = pd.read_parquet(root / "lapsed_vips" / "data.parquet")
    expected = sorted(sha(e.strip().lower()) for cid, e in vips if latest.get(cid) is True and e)
    assert sorted(h for h in hashed["Email"] if h) == expected and expected
    assert read_csv(root / "lapsed_vips" / "lapsed_vips.csv") == hashed.to_dict("records")
    entry = manifest["audiences"]["lapsed_vips"]
    assert entry["rows"] == len(hashed) and entry["matched"] == len(vips)
    assert entry["no_consent_record"] + entry["withdrawn"] == sum(1 for cid, _ in vips if latest.get(cid) is not True)

    # plain: consenting customers only; nobody whose latest decision is a withdrawal
    plain = read_csv(root / "store_regulars" / "store_regulars.csv")
    assert plain and all(latest.get(r["customer_id"]) is True for r in plain)
    assert withdrawn_emails and not withdrawn_emails & {r["email"] for r in plain}
    assert not (withdrawn_emails | {sha(e) for e in withdrawn_emails}) & {h for h in hashed["Email"]}

    # one asset per audience, materialised in tonight's run, its counts as metadata
    with dg.DagsterInstance.get() as instance:
        for name in AUDIENCES:
            event = instance.get_latest_materialization_event(dg.AssetKey(["audience", name]))
            assert event is not None and event.run_id == manifest["run_id"]
            meta = {k: getattr(v, "value", v) for k, v in event.asset_materialization.metadata.items()}
            assert meta["dagster/row_count"] == manifest["audiences"][name]["rows"]
            assert meta["match_every_filter"] == manifest["audiences"][name]["matched"]
            assert "@" not in json.dumps({k: str(v) for k, v in meta.items()})

    # scv forget rewrites the saved audiences; one taken out of the config is deleted
    gone = plain[0]
    with_audiences(config, {"store_regulars": AUDIENCES["store_regulars"]})
    assert run_scv("forget", "--config", config, "--customer-id", gone["customer_id"]) == 0
    after = read_csv(root / "store_regulars" / "store_regulars.csv")
    assert len(after) == len(plain) - 1 and gone["email"] not in {r["email"] for r in after}
    assert sorted(p.name for p in root.iterdir()) == ["store_regulars"]
    manifest = json.loads((cfg.exports / "manifest.json").read_text(encoding="utf-8"))
    assert list(manifest["audiences"]) == ["store_regulars"]
    assert manifest["audiences"]["store_regulars"]["rows"] == len(after)
