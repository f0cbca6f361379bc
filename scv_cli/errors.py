"""The one failure every `scv` command reports: a line on stderr, exit status 1."""

from __future__ import annotations

__all__ = ["CliError"]


class CliError(Exception):
    """A failure reported to the user as one line."""
