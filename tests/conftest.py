"""Shared fixtures: a small demo company, and one whole pipeline run over it.

Integration tests materialise the real Dagster assets into a real DuckDB file under a temp dir.
The session-scoped run is shared read-only; tests that change data copy it first.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from tests_support import copy_project, run_scv

DEMO_PEOPLE = 300
DEMO_AS_OF = "2026-11-20"


@pytest.fixture(autouse=True, scope="session")
def _isolated_environment(tmp_path_factory):
    """No test reads the developer's own config, Dagster home or privacy key."""
    home = tmp_path_factory.mktemp("dagster_home")
    saved = {k: os.environ.get(k) for k in ("SCV_CONFIG", "DAGSTER_HOME", "SCV_PRIVACY_KEY")}
    os.environ.pop("SCV_CONFIG", None)
    os.environ["DAGSTER_HOME"] = str(home)
    os.environ["SCV_PRIVACY_KEY"] = "test-only-key"
    yield
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def demo_sources(tmp_path_factory) -> Path:
    """A generated demo company: <root>/sources/{files, scv.yml, truth.csv}."""
    from sources.demo import generate_demo

    root = tmp_path_factory.mktemp("demo")
    generate_demo(root / "sources", people=DEMO_PEOPLE, seed=7)
    return root / "sources"


@pytest.fixture(scope="session")
def demo_run(demo_sources, tmp_path_factory) -> Path:
    """The demo after one successful `scv run`; returns the config path (treat as read-only)."""
    config = copy_project(demo_sources / "scv.yml", tmp_path_factory.mktemp("run"))
    assert run_scv("run", "--config", config, "--as-of", DEMO_AS_OF) == 0
    return config
