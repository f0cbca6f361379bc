"""One home for the nightly state: what changed since the published night, per stage.

`state.NightlyState` keeps the versioned manifest that the publish step commits together with
the warehouse; `linkage` and `golden` answer, for their stage, what the published night left and
whether tonight can build on it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .state import STATE_FORMAT, NightlyState, Section

if TYPE_CHECKING:
    from sources.config import Config

__all__ = ["STATE_FORMAT", "NightlyState", "Section", "state_of"]


def state_of(cfg: Config) -> NightlyState:
    """The nightly state of the warehouse `cfg` describes (`<data_dir>/state`)."""
    return NightlyState(cfg.data_dir / "state")
