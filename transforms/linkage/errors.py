"""Errors of the linkage engines, in a module of their own so `engine` and `spark_session` can
both raise them without importing each other."""

from __future__ import annotations

__all__ = ["EngineUnavailableError"]


class EngineUnavailableError(RuntimeError):
    """The configured `linkage.engine` cannot be started in this environment."""
