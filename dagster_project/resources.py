"""Resources are storage roles: the warehouse (staging + published + exports) and the project
config. Built from the config in `definitions.py`; local paths by default."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from sources.config import Config, load_config
from warehouse.store import Warehouse


class ScvConfigResource(dg.ConfigurableResource):
    """The project configuration file every asset reads its rules from."""

    path: str

    def load(self) -> Config:
        return load_config(self.path)


class WarehouseResource(dg.ConfigurableResource):
    """The DuckDB warehouse: the staging file a night is built in, the published file analysts
    read, and the Parquet exports folder."""

    published: str
    staging: str
    exports: str

    @property
    def store(self) -> Warehouse:
        return Warehouse(Path(self.published), Path(self.staging), Path(self.exports))


def build_resources(cfg: Config) -> dict[str, dg.ConfigurableResource]:
    return {
        "scv_config": ScvConfigResource(path=str(cfg.config_path)),
        "warehouse": WarehouseResource(
            published=str(cfg.warehouse),
            staging=str(cfg.staging_warehouse),
            exports=str(cfg.exports),
        ),
    }
