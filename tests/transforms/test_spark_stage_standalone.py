"""The whole Spark linkage stage against a Spark standalone cluster (a master and a worker
started on 127.0.0.1 from the pyspark package, always stopped): the same customers as the
DuckDB stage. Slow; with CI=true a missing pyspark or Java fails (spark_support)."""

from __future__ import annotations

import logging

import pandas as pd
import pytest
from spark_support import require_spark, standalone_cluster, standalone_settings
from test_linkage import toy_company

from transforms.linkage import LinkageSettings, OverrideSet, train_model
from transforms.linkage.stage import DuckDBLinkageStage, LinkageFiles, LinkageJob

pytestmark = pytest.mark.slow
LOG = logging.getLogger("test")


def _files(folder) -> LinkageFiles:
    folder.mkdir(parents=True, exist_ok=True)
    return LinkageFiles(*(folder / f"{n}.parquet" for n in ("clusters", "edges", "fingerprints", "review")))


def _partition(clusters_file) -> set[frozenset[str]]:
    clusters = pd.read_parquet(clusters_file, columns=["unique_id", "cluster_key"])
    return {frozenset(g.astype(str)) for _, g in clusters.groupby("cluster_key")["unique_id"]}


def test_the_spark_stage_on_a_standalone_cluster_gives_the_duckdb_stages_customers(tmp_path):
    require_spark()
    from transforms.linkage.spark_session import stop_spark
    from transforms.linkage.spark_stage import SparkLinkageStage

    persons = tmp_path / "persons.parquet"
    toy_company().drop(columns=["person_id"]).to_parquet(persons)
    model = train_model(pd.read_parquet(persons), LinkageSettings(), created_at="2026-01-01")
    duck = _files(tmp_path / "duckdb")
    DuckDBLinkageStage(LinkageSettings()).link(LinkageJob(persons, model, OverrideSet(), duck, "k"), LOG)

    spark = _files(tmp_path / "spark")
    with standalone_cluster(tmp_path / "cluster") as master:
        settings = standalone_settings(master, tmp_path / "linkage_tmp")
        try:
            run = SparkLinkageStage(settings).link(LinkageJob(persons, model, OverrideSet(), spark, "k"), LOG)
        finally:
            stop_spark()  # before the master goes away
    assert run.scope is None
    duck_clusters = _partition(duck.clusters)
    assert any(len(c) > 1 for c in duck_clusters)
    assert _partition(spark.clusters) == duck_clusters
    a, b = pd.read_parquet(duck.edges), pd.read_parquet(spark.edges)
    assert len(a) == len(b)
