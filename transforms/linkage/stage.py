"""The linkage stage behind one seam: from the prepared person records to clusters.

Everything identity resolution does between the standardised person records and the clusters
(training the model, scoring, the incremental night's carried and new edges, clustering with
the guards and a steward's overrides, the relink scope) is reached through `LinkageStage`,
built by `transforms.linkage.linkage_stage(settings)` from `settings.engine`:

- 'duckdb' (`DuckDBLinkageStage`, below): Splink on an in-process DuckDB, clustering in numpy;
- 'spark' (`transforms.linkage.spark_stage.SparkLinkageStage`): Splink's Spark backend.

The stage meets the rest of the night only through files: it reads the person records and the
published night's state as Parquet (`LinkageJob`) and writes tonight's clusters, edges,
fingerprints and review pairs as Parquet (`LinkageFiles`). Nothing here opens the warehouse;
the asset layer decides a full or an incremental night (`warehouse.nightly`) and hands the
files over.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import duckdb
import pandas as pd

from transforms.frame_types import declared_types_of, typed_table
from transforms.incremental import FINGERPRINT_VERSION, MATCH_COLUMNS, carried_edges_sql, fingerprints_sql, plan_incremental, relink_scope

from .charts import write_charts
from .clustering import CLUSTER_COLUMNS, cluster_with_review
from .model import guard_policy, train_model
from .overrides import OverrideSet
from .predict import empty_edges, link_and_dedupe, predict_changed
from .settings import LinkageSettings

__all__ = [
    "LinkageFiles",
    "LinkageJob",
    "LinkageRun",
    "LinkageStage",
    "PreviousLinkage",
    "DuckDBLinkageStage",
]

#: A logger with `.info` and `.warning` (`logging.Logger`, or a Dagster step's `context.log`).
Log = Any


@dataclass(frozen=True)
class LinkageFiles:
    """Where a linkage run writes tonight's results (Parquet, each whole or not at all)."""

    clusters: Path  # CLUSTER_COLUMNS, one row per record
    edges: Path  # unique_id_l, unique_id_r, match_probability, match_weight
    fingerprints: Path  # unique_id, fingerprint (transforms.incremental)
    review: Path  # clustering.REVIEW_COLUMNS


@dataclass(frozen=True)
class PreviousLinkage:
    """What the published night left for an incremental night, as Parquet files: its edges and
    record fingerprints (the nightly state), the clusters it published (`source,
    source_record_id, cluster_key, match_probability`) and the clustering key it ran with."""

    edges: Path
    fingerprints: Path
    clusters: Path
    clustering: str


@dataclass(frozen=True)
class LinkageJob:
    """One night's linkage. `persons`: Parquet of every standardised person record (at least
    `LINKAGE_COLUMNS`). `previous`: the published night's state for an incremental night, None
    for a full one. `clustering`: tonight's clustering key (`clustering_key`); when it differs
    from the previous one, every record is clustered again. `charts_dir`: where a full night
    draws Splink's charts (None: none)."""

    persons: Path
    model: dict[str, Any]
    overrides: OverrideSet
    out: LinkageFiles
    clustering: str
    previous: PreviousLinkage | None = None
    charts_dir: Path | None = None


@dataclass
class LinkageRun:
    """What a linkage run did. `scope`: the records clustered again tonight (None: all of
    them); `metrics`: figures for the Dagster metadata; `charts`: name -> file of the charts
    drawn; `review_pairs`: rows written to the review file."""

    scope: frozenset[str] | None
    metrics: dict[str, Any] = field(default_factory=dict)
    charts: dict[str, str] = field(default_factory=dict)
    review_pairs: int = 0


class LinkageStage(Protocol):
    """The linkage stage of one engine. A second engine implements these two methods and
    nothing else changes."""

    settings: LinkageSettings
    #: How this engine hashes a record's match keys (`LinkageFiles.fingerprints`): an
    #: incremental night compares fingerprints only when the published night's were made the
    #: same way (the nightly state keeps it).
    fingerprint_version: str

    def train(
        self, persons: Path, *, created_at: datetime, labels: pd.DataFrame | None = None
    ) -> dict[str, Any]:
        """A trained model (the JSON document `transforms.linkage.model` describes) from the
        person records in the Parquet file `persons`."""
        ...

    def link(self, job: LinkageJob, log: Log) -> LinkageRun:
        """Tonight's clusters, edges, fingerprints and review pairs, written to `job.out`."""
        ...


def must_links(overrides: OverrideSet) -> pd.DataFrame:
    """A steward's must-links as links of probability 1, so the relink scope keeps their
    records together."""
    return pd.DataFrame(
        {
            "unique_id_l": [a for a, _, _ in overrides.must],
            "unique_id_r": [b for _, b, _ in overrides.must],
            "match_probability": [1.0] * len(overrides.must),
        }
    )


def override_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    keys = ("overrides_must_applied", "overrides_cannot_applied", "vetoed_by_override", "review_pairs")
    return {k: metrics[k] for k in keys if k in metrics}


def _frame(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> pd.DataFrame:
    """The result of `sql` as a pandas frame, through Arrow (3-6x faster than `.df()` on wide
    text tables, and the dtypes the rest of the night sees)."""
    return (con.sql(sql, params=params) if params else con.sql(sql)).to_arrow_table().to_pandas()


def _parquet(path: Path) -> str:
    return "read_parquet('" + str(path).replace("'", "''") + "')"


def _with_match_columns(persons: Path) -> str:
    """The person records of `persons`, with any match column it lacks as NULL (a frame
    without, say, emails still gets fingerprints)."""
    import pyarrow.parquet as pq

    missing = [c for c in MATCH_COLUMNS if c not in set(pq.read_schema(persons).names)]
    if not missing:
        return _parquet(persons)
    nulls = ", ".join(f'NULL::VARCHAR AS "{c}"' for c in missing)
    return f"(SELECT *, {nulls} FROM {_parquet(persons)})"


def release_memory() -> None:
    """Give the memory freed by a big step back to the OS before the next one (glibc keeps
    freed heap; the night's steps share one process)."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class DuckDBLinkageStage:
    """The linkage stage on Splink's DuckDB backend (the embedded default)."""

    fingerprint_version = FINGERPRINT_VERSION

    def __init__(self, settings: LinkageSettings) -> None:
        self.settings = settings

    # ------------------------------------------------------------------------- files
    def _con(self) -> duckdb.DuckDBPyConnection:
        con = duckdb.connect(":memory:")
        con.execute(f"SET threads = {int(self.settings.threads)}")
        return con

    @staticmethod
    def _copy(con: duckdb.DuckDBPyConnection, sql: str, path: Path) -> None:
        """Rows of `sql` to the Parquet file `path`, whole or not at all."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        con.execute(f"COPY ({sql}) TO '{str(tmp).replace(chr(39), chr(39) * 2)}' (FORMAT parquet)")
        tmp.replace(path)

    def _write_frame(self, con: duckdb.DuckDBPyConnection, frame: pd.DataFrame, path: Path) -> None:
        declared = declared_types_of(frame, f"linkage file {path.name}")
        con.register("_frame", typed_table(frame, declared, what=f"linkage file {path.name}"))
        try:
            self._copy(con, "SELECT * FROM _frame", path)
        finally:
            con.unregister("_frame")

    @staticmethod
    def _persons(path: Path, columns: tuple[str, ...] | None = None) -> pd.DataFrame:
        """The person records of the Parquet file `path` (only those of `columns` it has)."""
        import pyarrow.parquet as pq

        if columns is not None:
            have = set(pq.read_schema(path).names)
            columns = [c for c in columns if c in have]
        return pq.read_table(path, columns=columns).to_pandas()

    # ------------------------------------------------------------------------- the seam
    def train(
        self, persons: Path, *, created_at: datetime, labels: pd.DataFrame | None = None
    ) -> dict[str, Any]:
        frame = self._persons(persons)
        model = train_model(frame, self.settings, created_at=created_at, labels=labels)
        del frame
        release_memory()
        return model

    def link(self, job: LinkageJob, log: Log) -> LinkageRun:
        from . import LINKAGE_COLUMNS

        persons = self._persons(job.persons, LINKAGE_COLUMNS)
        with self._con() as con:
            self._copy(con, fingerprints_sql(_with_match_columns(job.persons)), job.out.fingerprints)
        if job.previous is None:
            run = self._link_full(job, persons, log)
        else:
            run = self._link_incremental(job, persons, log)
        return run

    def _link_full(self, job: LinkageJob, persons: pd.DataFrame, log: Log) -> LinkageRun:
        result = link_and_dedupe(persons, job.model, self.settings, job.overrides)
        with self._con() as con:
            self._write_frame(con, result.clusters, job.out.clusters)
            self._write_frame(con, result.edges, job.out.edges)
            self._write_frame(con, result.review, job.out.review)
        charts: dict[str, str] = {}
        if job.charts_dir is not None:
            try:
                charts = write_charts(persons, job.model, result, job.charts_dir)
            except Exception as exc:  # charts are a view, never a reason to fail the night
                log.warning(f"linkage charts not written: {exc}")
        return LinkageRun(scope=None, metrics=result.metrics, charts=charts, review_pairs=len(result.review))

    def _link_incremental(self, job: LinkageJob, persons: pd.DataFrame, log: Log) -> LinkageRun:
        """Score only new and changed records, then cluster again only the records connected
        to a touched one (`relink_scope`); every other record keeps the cluster it was
        published with. The scope is dropped (everything clustered again) when the clustering
        settings or code changed, or the published clusters and the stored state disagree."""
        settings, previous, out = self.settings, job.previous, job.out
        assert previous is not None
        edges_state = _parquet(previous.edges)
        published = _parquet(previous.clusters)
        with self._con() as con:
            plan = plan_incremental(con, _parquet(out.fingerprints), _parquet(previous.fingerprints))
            old_links = _frame(
                con,
                f"SELECT unique_id_l, unique_id_r, match_probability FROM {edges_state} "
                "WHERE match_probability >= ?",
                [settings.threshold],
            )
        rescored = int(persons["unique_id"].isin(plan.changed).sum())
        new_edges = (
            predict_changed(persons, plan.changed, job.model, settings) if rescored else empty_edges()
        )
        scope = None
        policy = guard_policy(job.model, settings.guards)
        if previous.clustering != job.clustering:
            log.info("clustering settings, overrides or code changed: every record is clustered again")
        else:
            old_links = pd.concat([old_links, must_links(job.overrides)], ignore_index=True)
            scope = relink_scope(old_links, new_edges, plan.touched, settings.threshold) - plan.deleted
        del old_links
        with self._con() as con:
            con.register("_touched", pd.DataFrame({"unique_id": sorted(plan.touched)}, dtype="str"))
            con.register("_new_edges", new_edges)
            con.register("_scope", pd.DataFrame({"unique_id": sorted(scope or ())}, dtype="str"))
            con.register("_persons", persons[["unique_id", "source", "source_record_id"]])
            # Tonight's edges: last night's between two unchanged records, plus the new ones.
            self._copy(
                con,
                carried_edges_sql(edges_state, "_touched")
                + " UNION ALL SELECT unique_id_l, unique_id_r, match_probability, match_weight FROM _new_edges",
                out.edges,
            )
            edges = _parquet(out.edges)
            if scope is not None:
                outside = con.execute(
                    f"SELECT count(*) FROM _persons p JOIN {published} x USING (source, source_record_id) "
                    "WHERE p.unique_id NOT IN (SELECT unique_id FROM _scope)"
                ).fetchall()[0][0]
                if outside + len(scope) != len(persons):
                    log.warning(
                        f"published xref holds {outside:,} of the {len(persons) - len(scope):,} "
                        "records outside tonight's scope: every record is clustered again"
                    )
                    scope = None
            if scope is None:
                clusters, part_metrics, review = cluster_with_review(
                    persons,
                    _frame(con, f"SELECT * FROM {edges}"),
                    settings.threshold,
                    guards=policy,
                    overrides=job.overrides,
                )
                self._write_frame(con, clusters[CLUSTER_COLUMNS], out.clusters)
                part_metrics, reclustered = override_metrics(part_metrics), len(persons)
            else:
                part, part_metrics, review = cluster_with_review(
                    persons[persons["unique_id"].isin(scope)],
                    _frame(
                        con,
                        f"SELECT * FROM {edges} WHERE unique_id_l IN (SELECT unique_id FROM _scope) "
                        "AND unique_id_r IN (SELECT unique_id FROM _scope)",
                    ),
                    settings.threshold,
                    guards=policy,
                    overrides=job.overrides,
                )
                part = part[CLUSTER_COLUMNS]
                con.register("_part", part)
                self._copy(
                    con,
                    f"""
                    SELECT unique_id, source, source_record_id, cluster_key, match_probability FROM _part
                    UNION ALL
                    SELECT p.unique_id, p.source, p.source_record_id, x.cluster_key, x.match_probability
                    FROM _persons p
                    JOIN {published} x USING (source, source_record_id)
                    WHERE p.unique_id NOT IN (SELECT unique_id FROM _scope)
                    """,
                    out.clusters,
                )
                con.unregister("_part")
                part_metrics = {
                    **{f"scope_{k}": v for k, v in part_metrics.items() if k != "records"},
                    **override_metrics(part_metrics),
                }
                reclustered = len(part)
            carried = con.execute(f"SELECT count(*) FROM {edges}").fetchall()[0][0] - len(new_edges)
            self._write_frame(con, review, out.review)
        metrics = {
            "records_rescored": rescored,
            "records_deleted": len(plan.deleted),
            "records_unchanged": plan.unchanged,
            "edges_carried": int(carried),
            "edges_new": len(new_edges),
            "records_reclustered": reclustered,
            **part_metrics,
        }
        return LinkageRun(scope=scope, metrics=metrics, review_pairs=len(review))
