"""The state one published night leaves for the next, in one versioned manifest.

Every stage that works incrementally (linkage, golden records, …) needs to know what the
*published* night was made of: its scored edges, its record fingerprints, the settings it ran
with. Each stage hands tonight's part to `NightlyState.stage_section` while the night is built
(files are copied into `state/pending/`, like the staging warehouse they sit beside); nothing of
it counts until the publish step commits it together with the warehouse:

    state/
      manifest.json              {"format": 1, "run_id", "as_of", "sections": {name: {...}}}
      nights/<run_id>/<section>/  the committed files of the sections written that night
      pending/<section>.json      tonight's sections, waiting for the publish step
      pending/<section>/          … and their files

`prepare_commit` links the pending files into `nights/<run_id>/` and writes the new manifest
to a hidden file; the publish step renames it over `manifest.json` in the same journal as the
warehouse and the exports (`Warehouse.publish(also_move=…)`), so the manifest always describes
the published warehouse. A section a night did not write is carried over from the last
manifest. `sweep` then deletes what no manifest names.

A manifest of another format, or none, means "no usable state": each stage then does a full
night (and says so). Stages read their section with `published(name)`.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from warehouse.exports import fsync_dir

__all__ = ["STATE_FORMAT", "NightlyState", "Section"]

#: The manifest's layout. A manifest of another format is ignored (a full night follows).
STATE_FORMAT = 1
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class Section:
    """One stage's state: plain values (JSON) and files (absolute paths, committed)."""

    values: dict[str, Any] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)

    def file(self, key: str) -> Path | None:
        """The committed file `key`, or None when it is not there any more."""
        path = self.files.get(key)
        return path if path is not None and path.exists() else None


class NightlyState:
    """The state folder of one warehouse (`<data_dir>/state`)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST

    @property
    def pending_dir(self) -> Path:
        return self.root / "pending"

    # ------------------------------------------------------------------------- reading
    def manifest(self) -> dict[str, Any] | None:
        """The committed manifest, or None (none yet, unreadable, or of another format)."""
        try:
            data = json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return None
        if not isinstance(data, dict) or data.get("format") != STATE_FORMAT:
            return None
        return data

    def published(self, name: str) -> Section | None:
        """The section `name` of the published night, or None when there is none (a first
        night, a manifest of another format, or a file of it gone)."""
        data = self.manifest()
        entry = (data or {}).get("sections", {}).get(name)
        if entry is None:
            return None
        files = {k: self.root / rel for k, rel in entry.get("files", {}).items()}
        if not all(p.exists() for p in files.values()):
            return None
        return Section(values=dict(entry.get("values", {})), files=files)

    def pending(self, name: str) -> Section | None:
        """Tonight's section `name`, staged but not committed."""
        path = self.pending_dir / f"{name}.json"
        if not path.exists():
            return None
        entry = json.loads(path.read_text(encoding="utf-8"))
        return Section(
            values=entry["values"], files={k: self.root / rel for k, rel in entry["files"].items()}
        )

    # ------------------------------------------------------------------------- writing
    def stage_section(self, name: str, values: dict[str, Any], files: dict[str, Path] | None = None) -> None:
        """Tonight's state of one stage, waiting for the publish step: `values` (JSON) and
        copies of `files`. Writing a section again replaces it (a re-executed step)."""
        if "/" in name or name.startswith("."):
            raise ValueError(f"state section name {name!r}: use letters, digits, '_' and '.'")
        folder = self.pending_dir / name
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        rel_files = {}
        for key, src in (files or {}).items():
            dest = folder / f"{key}{Path(src).suffix}"
            shutil.copyfile(src, dest)
            rel_files[key] = str(dest.relative_to(self.root))
        entry = {"values": values, "files": rel_files}
        _write_json(self.pending_dir / f"{name}.json", entry)

    def prepare_commit(self, run_id: str, as_of: str | None) -> tuple[Path, Path] | None:
        """Link tonight's pending files into `nights/<run_id>/` and write the new manifest to a
        hidden file; returns (hidden file, manifest path) for the publish step to rename with
        the warehouse, or None when nothing is pending."""
        names = sorted(p.stem for p in self.pending_dir.glob("*.json")) if self.pending_dir.exists() else []
        if not names:
            return None
        sections = dict((self.manifest() or {}).get("sections", {}))
        night_dir = self.root / "nights" / run_id
        for name in names:
            entry = json.loads((self.pending_dir / f"{name}.json").read_text(encoding="utf-8"))
            files = {}
            for key, rel in entry["files"].items():
                src = self.root / rel
                dest = night_dir / name / src.name
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.unlink(missing_ok=True)
                try:  # a second name for the file: the pending one stays until the sweep
                    os.link(src, dest)
                except OSError:
                    shutil.copyfile(src, dest)
                files[key] = str(dest.relative_to(self.root))
            sections[name] = {"values": entry["values"], "files": files}
        if night_dir.exists():
            for folder in night_dir.iterdir():
                fsync_dir(folder)
        manifest = {
            "format": STATE_FORMAT,
            "run_id": run_id,
            "as_of": as_of,
            "committed_at": datetime.now(UTC).replace(microsecond=0).isoformat(),
            "sections": sections,
        }
        hidden = self.root / f".{MANIFEST}.{run_id}.tmp"
        _write_json(hidden, manifest)
        return hidden, self.manifest_path

    def sweep(self) -> None:
        """After a commit: drop the pending area and every night folder no section names."""
        shutil.rmtree(self.pending_dir, ignore_errors=True)
        data = self.manifest() or {}
        keep = {
            Path(rel).parts[1]
            for entry in data.get("sections", {}).values()
            for rel in entry.get("files", {}).values()
            if Path(rel).parts[:1] == ("nights",)
        }
        nights = self.root / "nights"
        if nights.exists():
            for folder in nights.iterdir():
                if folder.name not in keep:
                    shutil.rmtree(folder, ignore_errors=True)
        for stale in self.root.glob(f".{MANIFEST}.*.tmp"):
            stale.unlink(missing_ok=True)

    def commit_now(self, run_id: str, as_of: str | None = None) -> None:
        """Commit without a warehouse swap (tests, and tools that keep no warehouse)."""
        prepared = self.prepare_commit(run_id, as_of)
        if prepared is not None:
            os.replace(*prepared)
            fsync_dir(self.root)
        self.sweep()


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=1, default=str)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
