"""Helpers shared by tests (importable: tests/ is on sys.path through its conftest)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

# generous: a render takes 1-2 s; a cold first Chromium start on a CI machine can take longer
RENDER_TIMEOUT_S = 60


def copy_project(config: Path, dest_root: Path) -> Path:
    """Copy a demo project (the folder above the config's folder: sources and any data built so
    far) to dest_root; returns the copied config's path."""
    shutil.copytree(config.parent.parent, dest_root, dirs_exist_ok=True)
    return dest_root / config.parent.name / config.name


def run_scv(*args: object) -> int:
    """Run the `scv` command in-process; returns its exit status."""
    from scv_cli.main import main

    return main([str(a) for a in args])


def require_chromium() -> str:
    """The Chromium binary; skip without one outside CI, fail without one in CI."""
    from warehouse.report_render import find_chromium

    chromium = find_chromium()
    if chromium is not None:
        return chromium
    if os.environ.get("CI", "").strip().lower() in ("true", "1"):
        pytest.fail(
            "Chromium not found on PATH but CI is set: the report render tests must run in CI. "
            ".ci/run installs it (apt-get install -y --no-install-recommends chromium); "
            "check that step ran.",
            pytrace=False,
        )
    pytest.skip("Chromium not installed (apt-get install chromium); CI installs it and runs this")
