"""Erased people at the door: the key check every source step makes before it reads (issue 19,
item 3). The rows of erased people are taken out as a source is read by `warehouse.privacy`
(`split_erased_raw`, `landed_erased`, …); this module only turns a refused key into a
`dg.Failure` that names the source.
"""

from __future__ import annotations

import dagster as dg

from sources.config import Config
from warehouse.privacy import PrivacyError, check_privacy_key, load_suppression

__all__ = ["privacy_gate"]


def privacy_gate(cfg: Config, name: str) -> tuple[set[str], str | None]:
    """(the suppression list, the privacy key) once the key is known to be the one the list was
    written with; a dg.Failure with the one-line reason and the fix otherwise."""
    key = cfg.privacy_key()
    try:
        check_privacy_key(cfg.data_dir, key, cfg.privacy.key_env)
    except PrivacyError as exc:
        raise dg.Failure(description=f"source {name}: {exc}", allow_retries=False) from None
    return load_suppression(cfg.data_dir), key
