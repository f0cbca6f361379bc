"""Resources are storage roles: the warehouse (staging + published + exports). Built from the
config in `definitions.py`; local paths by default. (Assets take the config itself as an argument
of their factory, so no resource carries it.)"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import PrivateAttr

from dagster_project.assets.common import as_of_from_tags
from sources.config import Config
from transforms.audience import specs_from_json, specs_to_json
from warehouse.store import PublishedLocked, Warehouse, WarehouseBusy


class WarehouseResource(dg.ConfigurableResource):
    """The DuckDB warehouse: the staging file a night is built in, the published file analysts
    read, and the Parquet exports folder."""

    published: str
    staging: str
    exports: str
    #: the saved audiences (config `audiences:`) as JSON, exported with the tables
    audiences: str = "[]"
    _lock: Any = PrivateAttr(default=None)

    @property
    def store(self) -> Warehouse:
        return Warehouse(
            Path(self.published), Path(self.staging), Path(self.exports), specs_from_json(self.audiences)
        )

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        """A run holds the warehouse's lock from start to end (the executor is in-process, so
        this is once per run): a second night, or `scv forget`, started meanwhile stops with
        a clear message instead of mixing its writes with this one's."""
        run = context.dagster_run
        if run is not None:  # a mistyped as-of tag stops the run before any step
            as_of_from_tags(run.tags, datetime.now(UTC))
        lock = self.store.exclusive(run_holder(context.run_id, run.tags if run else {}))
        try:
            lock.__enter__()
        except WarehouseBusy as exc:
            raise dg.Failure(description=str(exc), allow_retries=False) from None
        self._lock = lock
        try:
            self.store.check_published_readable()
        except PublishedLocked as exc:
            self.teardown_after_execution(context)
            raise dg.Failure(description=str(exc), allow_retries=False) from None

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._lock is not None:
            self._lock.__exit__(None, None, None)
            self._lock = None


def run_holder(run_id: str | None, tags: dict[str, str]) -> str:
    """What the lock file says holds the warehouse during a run: the run and what started it,
    so that a second night or `scv forget` can say who to wait for."""
    if tags.get("scv/trigger") == "cli":
        origin = "started by `scv run`"
    elif tags.get("dagster/schedule_name"):
        origin = f"started by schedule {tags['dagster/schedule_name']}"
    elif tags.get("dagster/sensor_name"):
        origin = f"started by sensor {tags['dagster/sensor_name']}"
    elif tags.get("dagster/backfill"):
        origin = f"of backfill {tags['dagster/backfill']}"
    else:  # the UI's Materialize / Launch run, or Python
        return f"Dagster run {run_id}"
    return f"Dagster run {run_id} {origin}"


def build_resources(cfg: Config) -> dict[str, dg.ConfigurableResource]:
    return {
        "warehouse": WarehouseResource(
            published=str(cfg.warehouse),
            staging=str(cfg.staging_warehouse),
            exports=str(cfg.exports),
            audiences=specs_to_json(cfg.audience_specs()),
        ),
    }
