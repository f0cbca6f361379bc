"""The linkage stage with Splink's Spark backend (`linkage.engine: spark`).

What runs where, today:
- **On Spark** (`spark_session`: the configured master, Splink's UDF jar, a clean session per
  job): every Splink query, i.e. training's u sampling and EM passes, blocking, scoring
  (`predict`, and an incremental night's `predict_within` / `predict_between` with term
  frequencies over every record).
- **On the driver, from and to Parquet:** preparing the frame, the incremental plan (which
  records changed), the relink scope and clustering with the guards and a steward's overrides
  (`clustering.cluster_with_review`), the same code as the DuckDB stage, so both engines
  decide clusters by one rule.

Splink's own Spark clustering and a distributed preparation are not used yet (README, "Linkage
on Spark", says what this means for size); the seam (`stage.LinkageStage`) is where they go.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from .settings import LinkageSettings
from .spark_session import stop_spark
from .stage import DuckDBLinkageStage, LinkageJob, LinkageRun, Log

__all__ = ["SparkLinkageStage"]


class SparkLinkageStage(DuckDBLinkageStage):
    """`LinkageStage` whose Splink queries run on Spark."""

    def __init__(self, settings: LinkageSettings) -> None:
        if settings.engine != "spark":
            settings = replace(settings, engine="spark")
        super().__init__(settings)

    def train(
        self, persons: Path, *, created_at: datetime, labels: pd.DataFrame | None = None
    ) -> dict[str, Any]:
        try:
            return super().train(persons, created_at=created_at, labels=labels)
        finally:
            stop_spark()

    def link(self, job: LinkageJob, log: Log) -> LinkageRun:
        log.info(f"linkage on Spark, master {self.settings.spark_master}")
        try:
            return super().link(job, log)
        finally:
            stop_spark()
