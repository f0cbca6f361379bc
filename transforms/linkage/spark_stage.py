"""The linkage stage with Splink's Spark backend (`linkage.engine: spark`).

Data moves as Parquet: the person records are read with `spark.read.parquet`
(`spark_frames.read_persons`), every result is written by Spark (`_write_parquet`: one file
per result, as the rest of the night expects).

What runs where:
- **On Spark** (`spark_session`: the configured master, Splink's UDF jar, one clean session per
  job): preparing the frame for Splink (`fields.prepare_frame` per Arrow batch through
  `mapInPandas`; its statistics over the whole frame, the cap on crowded blocking-key values,
  the `<column>_count` columns and the repeated-id check, as Spark window and group counts: see
  `prepare_on_spark`), scoring (`predict`, and an incremental night's `predict_within` /
  `predict_between` with term frequencies over every record), the fingerprints
  (`fingerprints_sql`: Spark's `xxhash64`, so this stage has its own `fingerprint_version`), the
  incremental plan, the carried edges, the relink scope (Splink's Spark connected components),
  clustering with the guards and a steward's overrides (`spark_clustering.cluster_on_spark`,
  `cluster_with_review`'s rule), and joining the re-clustered part with the published clusters.
- **Training** (`train`) on Spark as well: `spark_training.SparkTrainingFrame` answers every
  question `model.train_model` asks of the records (how many, which fields are filled enough,
  the guards' look-alike pair counts, u estimation's seeded sample, which labelled pairs exist)
  with Spark jobs that apply the pandas rule per Arrow batch, so the model equals one trained
  from a pandas frame of the same records; Splink's training queries (prior, u, EM) run on
  Spark.
- **On the driver:** what `cluster_on_spark` rebuilds there (the components the chaining guard
  splits), the relink scope as a set of ids (`LinkageRun.scope` is one: the records connected
  to a touched one), the review pairs (bounded by `clustering.REVIEW_NEAR_MAX` plus the vetoed
  and split pairs), the charts (a sample of 20 merges, and how many clusters have each size)
  and training's counts. No step gathers every record into one pandas frame.

Python workers run `prepare_frame`, training's per-batch counts and the guards' veto: they
import this package, so on a cluster the executors need the project installed (locally:
`_python_for_workers`).
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from transforms.incremental import MATCH_COLUMNS

from .charts import score_record_pairs, size_counts_html
from .clustering import CLUSTER_COLUMNS, REVIEW_COLUMNS
from .fields import GUARD_COLUMNS
from .model import guard_policy, model_meta, splink_settings, train_model
from .predict import EDGE_COLUMNS, _linker_over, _tf_columns
from .settings import LinkageSettings
from .spark_clustering import cluster_on_spark
from .spark_frames import prepare_on_spark, prepared_schema, read_persons
from .spark_session import SparkJob, spark_job, stop_spark
from .spark_training import SparkTrainingFrame
from .stage import (
    LinkageJob,
    LinkageRun,
    Log,
    must_links,
    override_metrics,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType

__all__ = [
    "SPARK_FINGERPRINT_VERSION",
    "SparkLinkageStage",
    "fingerprints_sql",
    "prepare_on_spark",
    "prepared_schema",
]

#: Names the fingerprint function of this stage (kept with the stored fingerprints, like
#: `transforms.incremental.FINGERPRINT_VERSION` for DuckDB's `hash`): Spark's `xxhash64` and
#: DuckDB's `hash` give different numbers for the same record.
SPARK_FINGERPRINT_VERSION = "spark-xxhash64-v1"

_NODE_COLUMNS = ("unique_id", "source", "source_record_id", *GUARD_COLUMNS)


def _q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def fingerprints_sql(table: str) -> str:
    """Spark SQL: one row per record of `table`, unique_id and a 64-bit `xxhash64` of its match
    keys. Spark's hash skips NULL arguments, so each key is hashed as (is it NULL, its value or
    ''): NULL differs from '', and a value cannot move to the next key unnoticed; each value is
    hashed whole (with its length), so two values never run together."""
    parts = ", ".join(
        f"{_q(c)} IS NULL, coalesce(CAST({_q(c)} AS STRING), '')" for c in MATCH_COLUMNS
    )
    return f"SELECT CAST(unique_id AS STRING) AS unique_id, xxhash64({parts}) AS fingerprint FROM {table}"


# ----------------------------------------------------------------------------- files
def _write_parquet(df: DataFrame, path: Path) -> None:
    """`df` to the single Parquet file `path`, whole or not at all.

    Spark writes a folder of part files; the night reads one file (`read_parquet('<path>')`).
    The frame is repartitioned to one partition (a shuffle, so the work before it stays
    parallel: `coalesce(1)` would pull it into one task) and Spark's one part file is moved into
    place. Chosen over merging the part files on the driver with pyarrow because the data is
    then written once, by Spark, and never passes through the driver's memory; the cost is one
    task writing the file, which for tonight's edges and clusters is seconds. The folder must be
    on storage the driver sees (the stage's files are the driver's)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    folder = path.with_name(path.name + ".spark")
    shutil.rmtree(folder, ignore_errors=True)
    df.repartition(1).write.mode("overwrite").parquet(folder.resolve().as_uri())
    parts = sorted(folder.glob("part-*.parquet"))
    if len(parts) != 1:
        raise RuntimeError(
            f"{folder}: expected one part file from Spark, found {len(parts)}"
        )
    tmp = path.with_name(path.name + ".tmp")
    shutil.move(str(parts[0]), tmp)
    tmp.replace(path)
    shutil.rmtree(folder, ignore_errors=True)


_REVIEW_SCHEMA = pa.schema(
    [
        ("unique_id_l", pa.string()),
        ("unique_id_r", pa.string()),
        ("match_probability", pa.float64()),
        ("reason", pa.string()),
    ]
)


def _write_review(review: pd.DataFrame, path: Path) -> None:
    """The review pairs (a pandas frame, bounded: see `clustering.REVIEW_NEAR_MAX`) to `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = review[REVIEW_COLUMNS].astype(
        {
            "unique_id_l": "string",
            "unique_id_r": "string",
            "match_probability": "float64",
            "reason": "string",
        }
    )
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(
        pa.Table.from_pandas(frame, schema=_REVIEW_SCHEMA, preserve_index=False), tmp
    )
    tmp.replace(path)


def _edges_schema() -> StructType:
    from pyspark.sql.types import DoubleType, StringType, StructField, StructType

    return StructType(
        [
            StructField("unique_id_l", StringType()),
            StructField("unique_id_r", StringType()),
            StructField("match_probability", DoubleType()),
            StructField("match_weight", DoubleType()),
        ]
    )


def _edge_columns(df: DataFrame) -> DataFrame:
    from pyspark.sql import functions as F

    return df.select(
        F.col("unique_id_l").cast("string").alias("unique_id_l"),
        F.col("unique_id_r").cast("string").alias("unique_id_r"),
        F.col("match_probability").cast("double").alias("match_probability"),
        F.col("match_weight").cast("double").alias("match_weight"),
    )


# ----------------------------------------------------------------------------- clustering
#: Clustering of a Spark night (`cluster_with_review`'s rule on Spark DataFrames); the driver
#: sees only the components the chaining guard rebuilds and the review pairs.
_cluster = cluster_on_spark


# ----------------------------------------------------------------------------- the stage
def _python_for_workers(settings: LinkageSettings) -> None:
    """Spark's Python workers (they run `prepare_frame` per batch) use this interpreter, with
    its pandas, pyarrow and this project, when the master is on this machine: pyspark reads
    PYSPARK_PYTHON once, when the SparkContext starts, and otherwise runs `python3` from PATH.
    An explicit PYSPARK_PYTHON wins; on a real cluster the executors' Python and the project's
    code are the deployment's (PYSPARK_PYTHON / spark.pyspark.python, `--py-files`)."""
    from .spark_session import _is_on_this_machine

    if _is_on_this_machine(settings.spark_master):
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)


class SparkLinkageStage:
    """`LinkageStage` on Spark: Parquet in, Parquet out, the work in Spark (module docstring
    says what still runs on the driver). `stop_after`: stop the process's Spark session after
    each train/link (the night's other steps then get the JVM's memory back); tests keep it."""

    fingerprint_version = SPARK_FINGERPRINT_VERSION

    def __init__(self, settings: LinkageSettings, *, stop_after: bool = True) -> None:
        if settings.engine != "spark":
            settings = replace(settings, engine="spark")
        self.settings = settings
        self.stop_after = stop_after

    def train(
        self, persons: Path, *, created_at: datetime, labels: pd.DataFrame | None = None
    ) -> dict[str, Any]:
        """Trained on Spark (`spark_training.SparkTrainingFrame`): the records are read by
        Spark and never gathered on the driver."""
        from . import LINKAGE_COLUMNS

        _python_for_workers(self.settings)
        try:
            with spark_job(self.settings, "train") as job, job.phase("train"):
                records = read_persons(job.session, persons, LINKAGE_COLUMNS)
                return train_model(
                    SparkTrainingFrame(job, records),
                    self.settings,
                    created_at=created_at,
                    labels=labels,
                )
        finally:
            if self.stop_after:
                stop_spark()

    def link(self, job: LinkageJob, log: Log) -> LinkageRun:
        log.info(f"linkage on Spark, master {self.settings.spark_master}")
        _python_for_workers(self.settings)
        try:
            with spark_job(self.settings, "link") as spark:
                return _Night(self.settings, spark, job, log).run()
        finally:
            if self.stop_after:
                stop_spark()


class _Night:
    """One `link` on one Spark job: the night's frames and the steps over them."""

    def __init__(
        self, settings: LinkageSettings, spark: SparkJob, job: LinkageJob, log: Log
    ) -> None:
        self.settings, self.spark, self.job, self.log = settings, spark, job, log
        self.session: SparkSession = spark.session
        self.db_api = spark.db_api()
        self.meta = model_meta(job.model)
        self.seconds: dict[str, float] = {}
        self._tmp = 0

    # ------------------------------------------------------------------ helpers
    def _save(self, df: DataFrame, name: str) -> DataFrame:
        """`df` computed once, written under the job's checkpoint folder and read back (what
        Splink does with its own intermediate tables): later steps do not recompute it."""
        self._tmp += 1
        path = f"{self.spark.checkpoint_dir}/stage-{self._tmp}-{name}"
        df.write.mode("overwrite").parquet(path)
        return self.session.read.parquet(path)

    def _read(self, path: Path) -> DataFrame:
        return self.session.read.parquet(path.resolve().as_uri())

    @contextmanager
    def _phase(self, name: str) -> Iterator[None]:
        """`SparkJob.phase` (one log line) plus the phase's seconds in the night's metrics."""
        t0 = time.perf_counter()
        try:
            with self.spark.phase(name):
                yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - t0

    def _persons(self) -> DataFrame:
        """The person records: the columns linkage reads, every match column (NULL when the
        file lacks it), unique_id as text."""
        from . import LINKAGE_COLUMNS

        return read_persons(
            self.session,
            self.job.persons,
            LINKAGE_COLUMNS,
            fill=[*MATCH_COLUMNS, *_NODE_COLUMNS],
        )

    def _nodes(self, persons: DataFrame) -> DataFrame:
        return persons.select(*_NODE_COLUMNS)

    def _empty_edges(self) -> DataFrame:
        return self.session.createDataFrame([], _edges_schema())

    # ------------------------------------------------------------------ the night
    def run(self) -> LinkageRun:
        job = self.job
        persons = self._persons()
        persons.createOrReplaceTempView("scv_persons")
        with self._phase("fingerprints"):
            _write_parquet(
                self.session.sql(fingerprints_sql("scv_persons")), job.out.fingerprints
            )
        self.records = persons.count()
        scorable = splink_settings(job.model) is not None and self.records >= 2
        self.prepared = None
        if scorable:
            with self._phase("prepare"):
                self.prepared = self._save(
                    prepare_on_spark(
                        persons, self.meta["fields"], self.meta["blocking_keys"]
                    ),
                    "prepared",
                )
        if job.previous is None:
            return self._full(persons)
        return self._incremental(persons)

    def _full(self, persons: DataFrame) -> LinkageRun:
        job, settings = self.job, self.settings
        metrics: dict[str, Any] = {
            "records": self.records,
            "model_version": self.meta.get("version"),
        }
        linker = None
        if self.prepared is None:
            edges = self._empty_edges()
            metrics["candidate_pairs"] = 0
        else:
            sdf = self.db_api.register(self.prepared, dataset_display_name="persons")
            linker = _linker_over(sdf, job.model)
            with self._phase("blocking"):
                blocked = linker.inference.compute_blocked_pairs_for_predict()
                metrics["candidate_pairs"] = blocked.as_spark_dataframe().count()
            with self._phase("predict"):
                preds = linker.inference.predict(
                    threshold_match_probability=settings.edge_floor or None,
                    warning_mode="never",
                )
                edges = self._save(_edge_columns(preds.as_spark_dataframe()), "edges")
        with self._phase("write edges"):
            _write_parquet(edges, job.out.edges)
        metrics["edges"] = edges.count()
        with self._phase("cluster"):
            clusters, cm, review = _cluster(
                self._nodes(persons),
                edges,
                settings.threshold,
                guards=guard_policy(job.model, settings.guards),
                overrides=job.overrides,
                db_api=self.db_api,
            )
            _write_parquet(clusters.select(*CLUSTER_COLUMNS), job.out.clusters)
        _write_review(review, job.out.review)
        metrics.update({k: v for k, v in cm.items() if k not in ("records", "edges")})
        metrics["seconds"] = {k: round(v, 3) for k, v in self.seconds.items()}
        charts: dict[str, str] = {}
        if job.charts_dir is not None:
            try:
                charts = self._charts(edges)
            except Exception as exc:  # noqa: BLE001  (charts are a view, never a reason to fail the night)
                self.log.warning(f"linkage charts not written: {exc}")
        return LinkageRun(
            scope=None, metrics=metrics, charts=charts, review_pairs=len(review)
        )

    def _predict_changed(self, changed: DataFrame) -> DataFrame:
        """Edges of the new and changed records (`changed`: unique_id): new x new with
        `predict_within`, new x every record with `predict_between`, term frequencies over
        every record; smaller id on the left, as a full night (`predict.predict_changed`)."""
        from pyspark.sql import functions as F

        assert self.prepared is not None
        prepared = self.prepared
        new = self._save(
            prepared.join(F.broadcast(changed), "unique_id", "left_semi"), "new"
        )
        n_new = new.count()
        persons_sdf = self.db_api.register(prepared, dataset_display_name="persons")
        linker = _linker_over(persons_sdf, self.job.model)
        for col in _tf_columns(self.job.model):
            linker.table_management.compute_tf_table(col)
        floor = self.settings.edge_floor or None
        new_sdf = self.db_api.register(new, dataset_display_name="new")
        parts = []
        if n_new >= 2:
            within = linker.inference.predict_within(
                new_sdf, threshold_match_probability=floor, warning_mode="never"
            )
            parts.append(_edge_columns(within.as_spark_dataframe()))
        if n_new < self.records:
            between = _edge_columns(
                linker.inference.predict_between(
                    persons_sdf,
                    new_sdf,
                    threshold_match_probability=floor,
                    warning_mode="never",
                ).as_spark_dataframe()
            )
            # Pairs of two new records (or a new record with itself) are predict_within's.
            ids = changed.select("unique_id")
            between = between.join(
                F.broadcast(ids.withColumnRenamed("unique_id", "unique_id_l")),
                "unique_id_l",
                "left_anti",
            ).unionByName(
                between.join(
                    F.broadcast(ids.withColumnRenamed("unique_id", "unique_id_l")),
                    "unique_id_l",
                    "left_semi",
                ).join(
                    F.broadcast(ids.withColumnRenamed("unique_id", "unique_id_r")),
                    "unique_id_r",
                    "left_anti",
                )
            )
            parts.append(between)
        if not parts:
            return self._empty_edges()
        edges = parts[0]
        for part in parts[1:]:
            edges = edges.unionByName(part)
        swap = F.col("unique_id_l") > F.col("unique_id_r")
        edges = edges.select(
            F.when(swap, F.col("unique_id_r"))
            .otherwise(F.col("unique_id_l"))
            .alias("unique_id_l"),
            F.when(swap, F.col("unique_id_l"))
            .otherwise(F.col("unique_id_r"))
            .alias("unique_id_r"),
            "match_probability",
            "match_weight",
        )
        return self._save(edges, "new_edges")

    def _relink_scope(
        self, links: DataFrame, touched: DataFrame, deleted: DataFrame
    ) -> DataFrame:
        """`incremental.relink_scope` on Spark: the records (minus the deleted) of every
        connected part, in the graph of `links` (already at or above the threshold), that holds
        a `touched` record; Splink's connected components on the job's SparkAPI."""
        from pyspark.sql import functions as F
        from splink.clustering import cluster_pairwise_predictions_at_threshold

        nodes = (
            touched.select("unique_id")
            .unionByName(links.select(F.col("unique_id_l").alias("unique_id")))
            .unionByName(links.select(F.col("unique_id_r").alias("unique_id")))
            .distinct()
        )
        nodes_sdf = self.db_api.register(
            self._save(nodes, "scope_nodes"), dataset_display_name="scope_nodes"
        )
        links_sdf = self.db_api.register(
            self._save(links, "scope_links"), dataset_display_name="scope_links"
        )
        cc = cluster_pairwise_predictions_at_threshold(
            nodes_sdf,
            links_sdf,
            self.db_api,
            "unique_id",
            threshold_match_probability=self.settings.threshold,
        ).as_spark_dataframe()
        hit = (
            cc.join(F.broadcast(touched.select("unique_id")), "unique_id", "left_semi")
            .select("cluster_id")
            .distinct()
        )
        scope = cc.join(hit, "cluster_id", "left_semi").select("unique_id")
        return self._save(scope.join(deleted, "unique_id", "left_anti"), "scope")

    def _incremental(self, persons: DataFrame) -> LinkageRun:
        """As `DuckDBLinkageStage._link_incremental`, on Spark."""
        from pyspark.sql import functions as F

        job, settings = self.job, self.settings
        previous = job.previous
        assert previous is not None
        with self._phase("plan"):
            tonight = self._read(job.out.fingerprints)
            before = self._read(previous.fingerprints)
            # Compared as text: a state written by another engine (another hash, another
            # integer type) then marks every record changed instead of failing.
            same = (
                F.col("c.fingerprint")
                .cast("string")
                .eqNullSafe(F.col("p.fingerprint").cast("string"))
            )
            changed = self._save(
                tonight.alias("c")
                .join(
                    before.alias("p"),
                    F.col("c.unique_id") == F.col("p.unique_id"),
                    "left",
                )
                .filter(~same)
                .select(F.col("c.unique_id").alias("unique_id")),
                "changed",
            )
            deleted = self._save(
                before.join(tonight, "unique_id", "left_anti").select("unique_id"),
                "deleted",
            )
            touched = self._save(changed.unionByName(deleted), "touched")
            rescored, n_deleted = changed.count(), deleted.count()
        with self._phase("predict changed"):
            new_edges = (
                self._predict_changed(changed)
                if rescored and self.prepared is not None
                else self._empty_edges()
            )
        n_new_edges = new_edges.count()
        stored = self._read(previous.edges)
        with self._phase("carried edges"):
            ids = F.broadcast(touched)
            carried = (
                _edge_columns(stored)
                .join(
                    ids.withColumnRenamed("unique_id", "unique_id_l"),
                    "unique_id_l",
                    "left_anti",
                )
                .join(
                    ids.withColumnRenamed("unique_id", "unique_id_r"),
                    "unique_id_r",
                    "left_anti",
                )
                .select(*EDGE_COLUMNS)
            )
            _write_parquet(carried.unionByName(new_edges), job.out.edges)
        edges = self._read(job.out.edges)
        policy = guard_policy(job.model, settings.guards)
        scope_df: DataFrame | None = None
        if previous.clustering != job.clustering:
            self.log.info(
                "clustering settings, overrides or code changed: every record is clustered again"
            )
        else:
            with self._phase("relink scope"):
                must = self.session.createDataFrame(
                    must_links(job.overrides).astype(
                        {"unique_id_l": object, "unique_id_r": object}
                    ),
                    "unique_id_l string, unique_id_r string, match_probability double",
                )
                links = (
                    stored.select(
                        "unique_id_l",
                        "unique_id_r",
                        F.col("match_probability").cast("double"),
                    )
                    .unionByName(
                        new_edges.select(
                            "unique_id_l", "unique_id_r", "match_probability"
                        )
                    )
                    .filter(F.col("match_probability") >= settings.threshold)
                    .unionByName(must)
                )
                scope_df = self._relink_scope(links, touched, deleted)
        published = self._read(previous.clusters)
        keys = persons.select("unique_id", "source", "source_record_id")
        scope: frozenset[str] | None = None
        if scope_df is not None:
            scope = frozenset(r[0] for r in scope_df.collect())
            outside = (
                keys.join(scope_df, "unique_id", "left_anti")
                .join(published, ["source", "source_record_id"])
                .count()
            )
            if outside + len(scope) != self.records:
                self.log.warning(
                    f"published xref holds {outside:,} of the {self.records - len(scope):,} "
                    "records outside tonight's scope: every record is clustered again"
                )
                scope, scope_df = None, None
        with self._phase("cluster"):
            if scope_df is None:
                clusters, part_metrics, review = _cluster(
                    self._nodes(persons),
                    edges,
                    settings.threshold,
                    guards=policy,
                    overrides=job.overrides,
                    db_api=self.db_api,
                )
                _write_parquet(clusters.select(*CLUSTER_COLUMNS), job.out.clusters)
                part_metrics, reclustered = override_metrics(part_metrics), self.records
            else:
                in_scope = (
                    F.broadcast(scope_df) if len(scope or ()) < 1_000_000 else scope_df
                )
                part, part_metrics, review = _cluster(
                    self._nodes(persons).join(in_scope, "unique_id", "left_semi"),
                    edges.join(
                        in_scope.withColumnRenamed("unique_id", "unique_id_l"),
                        "unique_id_l",
                        "left_semi",
                    ).join(
                        in_scope.withColumnRenamed("unique_id", "unique_id_r"),
                        "unique_id_r",
                        "left_semi",
                    ),
                    settings.threshold,
                    guards=policy,
                    overrides=job.overrides,
                    db_api=self.db_api,
                )
                kept = (
                    keys.join(scope_df, "unique_id", "left_anti")
                    .join(
                        published.select(
                            "source",
                            "source_record_id",
                            "cluster_key",
                            "match_probability",
                        ),
                        ["source", "source_record_id"],
                    )
                    .select(*CLUSTER_COLUMNS)
                )
                _write_parquet(
                    part.select(*CLUSTER_COLUMNS).unionByName(kept), job.out.clusters
                )
                part_metrics = {
                    **{
                        f"scope_{k}": v
                        for k, v in part_metrics.items()
                        if k != "records"
                    },
                    **override_metrics(part_metrics),
                }
                reclustered = len(scope or ())
        carried_count = edges.count() - n_new_edges
        _write_review(review, job.out.review)
        metrics = {
            "records_rescored": rescored,
            "records_deleted": n_deleted,
            "records_unchanged": self.records - rescored,
            "edges_carried": int(carried_count),
            "edges_new": n_new_edges,
            "records_reclustered": reclustered,
            **part_metrics,
        }
        return LinkageRun(scope=scope, metrics=metrics, review_pairs=len(review))

    # ------------------------------------------------------------------ charts
    def _charts(self, edges: DataFrame, sample: int = 20) -> dict[str, Any]:
        """`charts.write_charts` from Spark: the size distribution (counted by Spark: how many
        clusters have each size) and Splink's model and waterfall charts over a sample of
        merges picked as `write_charts` picks them (the smallest sha1 of 'l|r'), scored with
        the records' prepared rows (counts over every record) on the job's SparkAPI."""
        from pyspark.sql import functions as F

        out_dir = Path(self.job.charts_dir)  # type: ignore[arg-type]
        out_dir.mkdir(parents=True, exist_ok=True)
        clusters = self._read(self.job.out.clusters)
        sizes = (
            clusters.groupBy("cluster_key").count().groupBy("count").count().collect()
        )
        written: dict[str, Any] = {}
        path = out_dir / "cluster_sizes.html"
        path.write_text(size_counts_html({r[0]: r[1] for r in sizes}), encoding="utf-8")
        written["cluster_sizes"] = path
        if self.prepared is None:
            return written
        key = clusters.select("unique_id", "cluster_key")
        merged = (
            edges.join(
                key.withColumnRenamed("unique_id", "unique_id_l").withColumnRenamed(
                    "cluster_key", "kl"
                ),
                "unique_id_l",
            )
            .join(
                key.withColumnRenamed("unique_id", "unique_id_r").withColumnRenamed(
                    "cluster_key", "kr"
                ),
                "unique_id_r",
            )
            .filter("kl = kr")
        )
        picked = (
            merged.withColumn(
                "_h", F.sha1(F.concat_ws("|", "unique_id_l", "unique_id_r"))
            )
            .orderBy("_h")
            .limit(sample)
            .select("unique_id_l", "unique_id_r")
            .collect()
        )
        wanted = [(str(r[0]), str(r[1])) for r in picked]
        ids = sorted({i for pair in wanted for i in pair})
        frame = (
            self.prepared.filter(F.col("unique_id").isin(ids)).toPandas()
            if ids
            else None
        )
        linker = _linker_over(
            self.db_api.register(
                frame if frame is not None else self.prepared.limit(2),
                dataset_display_name="chart_records",
            ),
            self.job.model,
            retain_matching_columns=True,
            retain_intermediate_calculation_columns=True,
        )
        charts = {
            "match_weights": linker.visualisations.match_weights_chart(),
            "m_u_parameters": linker.visualisations.m_u_parameters_chart(),
        }
        records = score_record_pairs(linker, frame, wanted) if frame is not None else []
        if records:
            charts["waterfall"] = linker.visualisations.waterfall_chart(
                records, filter_nulls=True, remove_sensitive_data=True
            )
        for name, chart in charts.items():
            path = out_dir / f"{name}.html"
            path.write_text(chart.to_html(inline=True), encoding="utf-8")
            written[name] = path
        return written
