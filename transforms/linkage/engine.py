"""The one place that builds Splink's database API for linkage (DuckDB by default, or Spark).

Everything in `transforms.linkage` that needs a SQL engine asks `make_db_api`; nothing else opens
a DuckDB connection or a Spark session for linkage.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import duckdb

from .errors import EngineUnavailableError

if TYPE_CHECKING:
    from .settings import LinkageSettings

__all__ = ["EngineUnavailableError", "make_db_api"]


def make_db_api(settings: LinkageSettings) -> Any:
    """A fresh Splink database API for one linkage job.

    'duckdb' gets its own in-memory connection (threads capped by `settings.threads`, so the
    nightly job shares the machine politely). 'spark' gets a new session of the process's base
    SparkSession (`spark_session`: master and conf from the settings, Splink's UDF jar loaded,
    temporary views not shared with other jobs); pyspark is imported only then. A Spark job
    that should drop its views and checkpoints when done uses `spark_session.spark_job`.
    """
    if settings.engine == "duckdb":
        from splink import DuckDBAPI

        con = duckdb.connect(":memory:")
        con.execute(f"SET threads = {int(settings.threads)}")
        # Splink's intermediate tables do not need row order; dropping it saves memory.
        con.execute("SET preserve_insertion_order = false")
        if settings.memory_limit:
            # Past the cap DuckDB spills to disk instead of growing: the night's peak stays bounded.
            con.execute("SET memory_limit = ?", [settings.memory_limit])
        if settings.temp_directory:
            settings.temp_directory.mkdir(parents=True, exist_ok=True)
            con.execute("SET temp_directory = ?", [str(settings.temp_directory)])
        return DuckDBAPI(connection=con)
    if settings.engine == "spark":
        from .spark_session import open_spark_job

        return open_spark_job(settings).db_api()
    raise EngineUnavailableError(
        f"linkage.engine: unknown engine {settings.engine!r} (use 'duckdb' or 'spark')"
    )
