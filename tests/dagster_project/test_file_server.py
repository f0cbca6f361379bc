"""The file server `make ui` starts: the night's pages open from the Dagster UI's links, and
nothing else under the data folder is served."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

import dagster as dg
import pytest
import yaml

from dagster_project.file_server import (
    night_pages,
    page_link,
    page_url,
    start_file_server,
)
from sources.config import load_config


@pytest.fixture
def cfg(tmp_path):
    data = tmp_path / "data"
    (tmp_path / "people.csv").write_text("id,email\n1,a@x.io\n")
    config = tmp_path / "scv.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "data_dir": "data",
                "warehouse": "data/warehouse/warehouse.duckdb",
                "exports": "data/exports",
                "sources": {"crm": {"kind": "person", "path": "people.csv", "id": "id"}},
                "ui": {"files_url": "http://127.0.0.1:0"},
            }
        )
    )
    pages = {
        "reports/latest.html": "<p>report</p>",
        "reports/linkage/run-1/match_weights.html": "<p>chart</p>",
        "quality/docs/crm/index.html": "<p>docs</p>",
        "quality/docs/crm/static/vendor/jquery-3.7.1/jquery.min.js": "/* js */",
        "reports/.latest.html.123.tmp": "half written",
        "private/review/review_queue.html": "<p>personal data</p>",
        "warehouse/warehouse.duckdb": "db",
    }
    for rel, text in pages.items():
        (data / rel).parent.mkdir(parents=True, exist_ok=True)
        (data / rel).write_text(text)
    return load_config(config)


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.read().decode("utf-8")
    except urllib.error.HTTPError as exc:
        return exc.code, ""


def test_urls_mirror_the_data_folder(cfg):
    data = cfg.data_dir
    base = cfg.ui.files_url
    assert page_url(cfg, data / "reports" / "latest.html") == f"{base}/reports/latest.html"
    assert page_url(cfg, data / "quality/docs/crm/index.html") == f"{base}/quality/docs/crm/index.html"
    assert page_url(cfg, data / "private/review/review_queue.html") is None
    assert isinstance(page_link(cfg, data / "reports" / "latest.html"), dg.UrlMetadataValue)
    # not served: the plain path, as before
    assert isinstance(page_link(cfg, data / "warehouse" / "warehouse.duckdb"), dg.PathMetadataValue)
    labels = [label for label, _ in night_pages(cfg)]
    assert labels == ["Splink: match weights", "Data Docs: crm"]


def test_serves_the_pages_and_nothing_else(cfg):
    server = start_file_server(cfg, port=0)
    try:
        base = server.url
        assert _get(f"{base}/reports/latest.html") == (200, "<p>report</p>")
        assert _get(f"{base}/reports/linkage/run-1/match_weights.html")[1] == "<p>chart</p>"
        assert _get(f"{base}/quality/docs/crm/")[1] == "<p>docs</p>"  # a site's index.html
        assert _get(f"{base}/quality/docs/crm/static/vendor/jquery-3.7.1/jquery.min.js")[0] == 200
        for refused in (
            "/private/review/review_queue.html",
            "/warehouse/warehouse.duckdb",
            "/reports/.latest.html.123.tmp",
            "/reports/../private/review/review_queue.html",
            "/reports/%2e%2e/private/review/review_queue.html",
            "/quality/",
            "/reports/linkage/",  # no folder listings
        ):
            assert _get(base + refused)[0] == 404, refused
        status, index = _get(f"{base}/")
        assert status == 200
        assert 'href="/reports/latest.html"' in index and 'href="/quality/docs/crm/index.html"' in index
        assert "private" not in index
    finally:
        server.stop()


def test_a_symlink_out_of_the_served_folders_is_refused(cfg):
    link = Path(cfg.reports_dir) / "secret.html"
    link.symlink_to(cfg.data_dir / "private" / "review" / "review_queue.html")
    server = start_file_server(cfg, port=0)
    try:
        assert _get(f"{server.url}/reports/secret.html")[0] == 404
    finally:
        server.stop()
