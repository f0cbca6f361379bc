"""The engineer's day one in the Dagster UI (issue 20), checked as a person would see it: after a
real small night, `dagster-webserver` is started on 127.0.0.1 over a temporary Dagster home, and
headless Chromium, with no name resolving but 127.0.0.1, screenshots the asset graph, an asset
page, the run page, the run report opened at the URL the UI links to, and a Data Docs page.
Each PNG must be a real page (`check_png` / `verdict`, as the run report's render check) and
each page's text must show what it is for, never "% filled" partitions or a blank shell.

Needs Chromium: skips outside CI without it, fails in CI without it (tests_support).
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request

import pytest
import yaml
from tests_support import copy_project, require_chromium, run_scv

from dagster_project.ui_check import PAGES, check_ui, free_port
from sources.config import load_config

AS_OF = "2026-11-20"


@pytest.mark.slow
def test_the_dagster_ui_and_the_pages_it_links_render_offline(demo_sources, tmp_path, monkeypatch):
    chromium = require_chromium()
    started = time.monotonic()
    config = copy_project(demo_sources / "scv.yml", tmp_path / "project")
    raw = yaml.safe_load(config.read_text(encoding="utf-8"))
    # the night's links point at the file server: give it a free port for this test
    raw["ui"] = {"files_url": f"http://127.0.0.1:{free_port()}"}
    config.write_text(yaml.safe_dump(raw), encoding="utf-8")
    home = tmp_path / "dagster_home"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    assert run_scv("run", "--config", config, "--as-of", AS_OF) == 0
    night_done = time.monotonic()

    results = check_ui(chromium, load_config(config), home, tmp_path / "shots")

    assert [r.name for r in results] == list(PAGES)
    problems = {
        r.name: {
            "verdict": r.verdict,
            "missing": r.missing,
            "unwanted": r.unwanted,
            "stats": r.stats,
            "url": r.url,
        }
        for r in results
        if not r.passed
    }
    assert not problems, problems
    # the report and the Data Docs were opened from the links the UI shows: the file server
    assert results[3].url.startswith(raw["ui"]["files_url"] + "/reports/")
    assert results[4].url.startswith(raw["ui"]["files_url"] + "/quality/docs/crm/")
    # both servers were stopped
    for url in (results[0].url, results[3].url):
        with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
            urllib.request.urlopen(url, timeout=3)
    print(
        f"night {night_done - started:.1f} s, UI and screenshots {time.monotonic() - night_done:.1f} s: "
        + ", ".join(f"{r.name} {r.seconds:.1f} s" for r in results)
    )
