"""What changed for the golden records since the published night, and what they leave for the next.

The section `golden` holds the published night's record fingerprints (`source,
source_record_id, customer_id, fingerprint`: a hash of everything survivorship reads) and a
hash of the survivorship rules, trust ranks and code. With both unchanged, only customers
touched by a new, changed, moved or deleted record are decided again.
"""

from __future__ import annotations

import hashlib
import json
from importlib.metadata import version as _package_version
from pathlib import Path
from typing import TYPE_CHECKING

from . import state_of

if TYPE_CHECKING:
    from sources.config import Config

__all__ = ["SECTION", "golden_config_hash", "load_golden_state", "stage_golden_state"]

SECTION = "golden"
__version__ = _package_version("scv-warehouse")


def golden_config_hash(cfg: Config) -> str:
    """What survivorship depends on besides the records: the rules, the trust ranks, the code."""
    parts = {
        "fields": {k: list(v) for k, v in cfg.survivorship.fields.items()},
        "default": list(cfg.survivorship.default),
        "trust": {n: s.trust for n, s in sorted(cfg.sources.items())},
        "code": __version__,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def load_golden_state(cfg: Config) -> dict | None:
    """Record fingerprints (`records`, a Parquet file) and config hash of the last published
    night, or None."""
    section = state_of(cfg).published(SECTION)
    if section is None:
        return None
    return {"records": section.files["records"], "config_hash": section.values["config_hash"]}


def stage_golden_state(cfg: Config, records: Path, config_hash: str) -> None:
    """Tonight's record fingerprints and config hash, committed with the warehouse."""
    state_of(cfg).stage_section(SECTION, {"config_hash": config_hash}, {"records": records})
