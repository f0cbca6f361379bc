"""Helpers shared by tests (importable: tests/ is on sys.path through its conftest)."""

from __future__ import annotations

import shutil
from pathlib import Path


def copy_project(config: Path, dest_root: Path) -> Path:
    """Copy a demo project (the folder above the config's folder: sources and any data built so
    far) to dest_root; returns the copied config's path."""
    shutil.copytree(config.parent.parent, dest_root, dirs_exist_ok=True)
    return dest_root / config.parent.name / config.name


def run_scv(*args: object) -> int:
    """Run the `scv` command in-process; returns its exit status."""
    from sources.cli import main

    return main([str(a) for a in args])
