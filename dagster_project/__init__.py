"""Dagster project: thin assets over the pure transforms; `definitions.defs` is the entry point."""

from dagster_project.definitions import defs

__all__ = ["defs"]
