"""A source as read, landed as Parquet (`landing/<source>/<source>.parquet`): every original
column as text plus `_row_number`, the rows of erased people held back.

An unchanged file (same fingerprint, read with the same suppression key) is not read again: its
landing and the metadata recorded with it stand (`warehouse.nightly.sources`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from quality.suites import warm_up
from sources.config import Config, SourceConfig
from sources.readers import file_fingerprint, read_source
from warehouse.nightly.sources import landing_state, save_landing_state
from warehouse.privacy import read_key, split_erased_raw, write_landed_erased

__all__ = ["Landed", "land_source", "landing_path"]

#: A logger with `.info` (`logging.Logger`, or a Dagster step's `context.log`).
Log = Any


def landing_path(cfg: Config, name: str) -> Path:
    """The landed Parquet file of source `name`."""
    return cfg.landing_dir / name / f"{name}.parquet"


@dataclass(frozen=True)
class Landed:
    """A landing: where it is, whether the file was unchanged (not read again), its metadata
    (rows read and erased, columns, format, file and fingerprint) and the rows landed."""

    path: Path
    unchanged: bool
    metadata: dict[str, Any]
    rows: int | None = None


def _write_parquet_atomically(df: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    df.to_parquet(tmp, index=False)
    os.replace(tmp, path)


def land_source(cfg: Config, src: SourceConfig, suppressed: set[str], key: str | None, log: Log) -> Landed:
    """Land source `src` (unless its file is unchanged since its last landing), holding back the
    rows of erased people (`suppressed`, hashed with `key`). Raises SourceReadError when the
    file cannot be read."""
    name = src.name
    out = landing_path(cfg, name)
    fingerprint = file_fingerprint(src.path)
    reading = read_key(cfg, src, suppressed)
    previous = landing_state(cfg, name)
    if previous.unchanged(fingerprint, reading, out):
        # Incremental night: the export did not change, so neither does its landing.
        log.info(f"{name}: source unchanged since last extraction, not re-read")
        return Landed(out, True, previous.metadata)
    warm_up()  # the changed source is validated next: import GX while it is read
    raw = read_source(src)
    rows_read = len(raw)
    raw, erased = split_erased_raw(raw, cfg, src, suppressed, key)
    write_landed_erased(cfg, name, erased)
    _write_parquet_atomically(raw, out)
    meta = {
        "rows": rows_read,
        "rows_erased": len(erased),
        "columns": [c for c in raw.columns if c != "_row_number"],
        "format": src.resolved_format,
        "source_file": str(src.path),
        "fingerprint": fingerprint,
    }
    save_landing_state(cfg, name, fingerprint, reading, meta, previous)
    log.info(
        f"{name}: landed {len(raw):,} rows from {src.path.name}"
        + (f" ({len(erased):,} rows of erased people held back)" if len(erased) else "")
    )
    return Landed(out, False, meta, len(raw))
