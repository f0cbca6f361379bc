"""Lifecycle stages: the stage names and the thresholds the SQL models take as parameters.

The stages are computed in SQL (`warehouse/sql/lifecycle.sql`, then `lifecycle_history.sql`);
docs/analytics.md defines them. This module checks the thresholds from config and turns them into
the parameters those models bind (`$as_of`, `$new_days`, `$active_days`, `$at_risk_days`,
`$lost_days`).
"""

from __future__ import annotations

from datetime import date
from itertools import pairwise
from typing import Any

__all__ = ["STAGES", "THRESHOLDS", "LifecycleConfigError", "lifecycle_params"]

#: Every stage a customer can be in, from no order to lost and back.
STAGES: tuple[str, ...] = (
    "prospect",
    "new",
    "active",
    "reactivated",
    "at_risk",
    "lost",
)

#: The config fields (`lifecycle.*`), in the order they must not decrease, with their defaults.
THRESHOLDS: dict[str, int] = {
    "new_days": 30,
    "active_days": 90,
    "at_risk_days": 180,
    "lost_days": 365,
}


class LifecycleConfigError(ValueError):
    """Lifecycle thresholds that cannot describe a coherent sequence of stages."""


def lifecycle_params(config: Any = None, as_of: date | None = None) -> dict[str, Any]:
    """Model parameters from a `LifecycleConfig` (or mapping; None: the defaults), checked.

    The thresholds must be whole numbers with 0 <= new_days <= active_days <= at_risk_days <=
    lost_days: a customer is new only while still active, and a one-day buyer is lost no later than
    a repeat buyer. Raises `LifecycleConfigError` naming the `lifecycle.<field>` at fault.
    `as_of`, when given, is added as `as_of`.
    """
    params: dict[str, Any] = {}
    for field, default in THRESHOLDS.items():
        if config is None:
            value = default
        elif isinstance(config, dict):
            value = config.get(field, default)
        else:
            value = getattr(config, field, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise LifecycleConfigError(
                f"lifecycle.{field}: must be a whole number of days >= 0, got {value!r}"
            )
        params[field] = value
    names = list(THRESHOLDS)
    for lower, upper in pairwise(names):
        if params[lower] > params[upper]:
            raise LifecycleConfigError(
                f"lifecycle.{lower} ({params[lower]}) must not exceed lifecycle.{upper} "
                f"({params[upper]}): the thresholds must satisfy "
                "new_days <= active_days <= at_risk_days <= lost_days"
            )
    if as_of is not None:
        params["as_of"] = as_of
    return params
