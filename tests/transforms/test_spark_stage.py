"""The Spark linkage stage behind its seam (files in, files out) on the toy company, `local[2]`:
a full night equals the DuckDB stage's, an incremental night with nothing changed keeps every
cluster, and an incremental night after a change equals a full night on Spark.

With CI=true a missing pyspark or Java fails these tests (spark_support)."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import pytest
from spark_support import require_spark
from test_linkage import toy_company

from transforms.linkage import LinkageSettings, OverrideSet, train_model
from transforms.linkage.charts import cluster_size_html
from transforms.linkage.stage import (
    DuckDBLinkageStage,
    LinkageFiles,
    LinkageJob,
    PreviousLinkage,
)

LOG = logging.getLogger("test")


@pytest.fixture(scope="module")
def spark_stage(tmp_path_factory):
    require_spark()
    from transforms.linkage.spark_session import stop_spark
    from transforms.linkage.spark_stage import SparkLinkageStage

    settings = LinkageSettings(
        engine="spark",
        spark_master="local[2]",
        spark_conf={"spark.sql.shuffle.partitions": 2, "spark.default.parallelism": 2},
        temp_directory=tmp_path_factory.mktemp("spark_tmp"),
    )
    yield SparkLinkageStage(settings, stop_after=False)
    stop_spark()


@pytest.fixture(scope="module")
def persons(tmp_path_factory):
    company = toy_company().drop(columns=["person_id"])
    path = tmp_path_factory.mktemp("persons") / "persons.parquet"
    company.to_parquet(path)
    return company, path


@pytest.fixture(scope="module")
def model(persons):
    # Trained on DuckDB: the Spark stage uses it through splink_settings(model, "spark").
    return train_model(persons[0], LinkageSettings(), created_at="2026-01-01")


def _files(folder) -> LinkageFiles:
    folder.mkdir(parents=True, exist_ok=True)
    return LinkageFiles(
        *(
            folder / f"{n}.parquet"
            for n in ("clusters", "edges", "fingerprints", "review")
        )
    )


def _published(clusters_file, dest):
    clusters = pd.read_parquet(clusters_file)
    clusters[
        ["source", "source_record_id", "cluster_key", "match_probability"]
    ].to_parquet(dest)
    return dest


def _partition(clusters_file) -> set[frozenset[str]]:
    c = pd.read_parquet(clusters_file)
    return {frozenset(g["unique_id"].astype(str)) for _, g in c.groupby("cluster_key")}


def _edges(edges_file) -> pd.DataFrame:
    e = pd.read_parquet(edges_file)
    e = e.astype({"unique_id_l": str, "unique_id_r": str})
    return e.sort_values(["unique_id_l", "unique_id_r"]).reset_index(drop=True)


def _clusters(clusters_file) -> pd.DataFrame:
    c = pd.read_parquet(clusters_file).astype(
        {"unique_id": str, "source": str, "source_record_id": str, "cluster_key": str}
    )
    return c.sort_values("unique_id").reset_index(drop=True)


@pytest.fixture(scope="module")
def spark_full(spark_stage, persons, model, tmp_path_factory):
    out = _files(tmp_path_factory.mktemp("spark_full"))
    charts = tmp_path_factory.mktemp("charts")
    run = spark_stage.link(
        LinkageJob(
            persons[1], model, OverrideSet(), out, clustering="k", charts_dir=charts
        ),
        LOG,
    )
    return run, out


def test_a_full_night_on_spark_equals_the_duckdb_stage(
    spark_full, persons, model, tmp_path
):
    run, spark_out = spark_full
    duck_out = _files(tmp_path / "duck")
    duck = DuckDBLinkageStage(LinkageSettings()).link(
        LinkageJob(persons[1], model, OverrideSet(), duck_out, clustering="k"), LOG
    )
    assert run.scope is None and run.metrics["records"] == len(persons[0])
    spark_edges, duck_edges = _edges(spark_out.edges), _edges(duck_out.edges)
    assert len(duck_edges) > 0
    pd.testing.assert_frame_equal(
        spark_edges[["unique_id_l", "unique_id_r"]],
        duck_edges[["unique_id_l", "unique_id_r"]],
    )
    for col in ("match_probability", "match_weight"):
        assert (spark_edges[col] - duck_edges[col]).abs().max() <= 1e-9, col
    assert _partition(spark_out.clusters) == _partition(duck_out.clusters)
    pd.testing.assert_frame_equal(
        _clusters(spark_out.clusters), _clusters(duck_out.clusters), check_dtype=False
    )
    for key in (
        "candidate_pairs",
        "edges",
        "clusters",
        "vetoed_edges",
        "split_clusters",
    ):
        assert run.metrics[key] == duck.metrics[key], key
    assert len(pd.read_parquet(spark_out.review)) == len(
        pd.read_parquet(duck_out.review)
    )
    assert {"cluster_sizes", "match_weights", "m_u_parameters", "waterfall"} <= set(
        run.charts
    )
    # The size chart counted in Spark reads as the one drawn from the clusters in pandas.
    assert Path(run.charts["cluster_sizes"]).read_text(encoding="utf-8") == cluster_size_html(
        pd.read_parquet(spark_out.clusters)
    )
    # one fingerprint per record, Spark's own hash
    fp = pd.read_parquet(spark_out.fingerprints)
    assert len(fp) == len(persons[0]) and fp["unique_id"].is_unique


def test_preparation_on_spark_equals_prepare_frame(spark_stage, persons, model):
    from transforms.linkage.fields import prepare_frame
    from transforms.linkage.model import model_meta
    from transforms.linkage.spark_session import spark_job
    from transforms.linkage.spark_stage import prepare_on_spark

    meta = model_meta(model)
    frame = persons[0]
    want = prepare_frame(
        frame, meta["fields"], meta["blocking_keys"], max_key_records=3
    )
    with spark_job(spark_stage.settings, "prepare-test") as job:
        sdf = job.session.read.parquet(str(persons[1]))
        got = prepare_on_spark(
            sdf, meta["fields"], meta["blocking_keys"], max_key_records=3
        ).toPandas()
    assert list(got.columns) == list(want.columns)
    got = (
        got.sort_values("unique_id")
        .reset_index(drop=True)
        .astype(want.dtypes.to_dict())
    )
    want = want.sort_values("unique_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want, check_dtype=False)


def test_an_incremental_night_with_nothing_changed_keeps_every_cluster(
    spark_stage, spark_full, persons, model, tmp_path
):
    _, full = spark_full
    again = _files(tmp_path / "again")
    previous = PreviousLinkage(
        full.edges,
        full.fingerprints,
        _published(full.clusters, tmp_path / "pub.parquet"),
        "k",
    )
    run = spark_stage.link(
        LinkageJob(persons[1], model, OverrideSet(), again, "k", previous), LOG
    )
    assert run.scope == frozenset() and run.metrics["records_rescored"] == 0
    pd.testing.assert_frame_equal(
        _clusters(again.clusters), _clusters(full.clusters), check_dtype=False
    )
    pd.testing.assert_frame_equal(_edges(again.edges), _edges(full.edges))


def test_an_incremental_night_after_a_change_equals_a_full_night_on_spark(
    spark_stage, spark_full, persons, model, tmp_path
):
    _, full = spark_full
    company = persons[0].copy()
    # A changed email, a record gone, and a new record for an existing person.
    company.loc[company.index[5], "email_std"] = "someone.new@example.org"
    company.loc[company.index[5], "email_key"] = "someone.new@example.org"
    newcomer = company.iloc[[1]].copy()
    newcomer["unique_id"] = "web:new-1"
    newcomer["source"] = "web"
    newcomer["source_record_id"] = "new-1"
    company = pd.concat([company.drop(company.index[9]), newcomer], ignore_index=True)
    tonight = tmp_path / "tonight.parquet"
    company.to_parquet(tonight)

    previous = PreviousLinkage(
        full.edges,
        full.fingerprints,
        _published(full.clusters, tmp_path / "pub.parquet"),
        "k",
    )
    inc = _files(tmp_path / "inc")
    run = spark_stage.link(
        LinkageJob(tonight, model, OverrideSet(), inc, "k", previous), LOG
    )
    assert run.metrics["records_rescored"] == 2 and run.metrics["records_deleted"] == 1
    assert run.scope is not None and "web:new-1" in run.scope
    assert 0 < len(run.scope) < len(company)
    fresh = _files(tmp_path / "fresh")
    spark_stage.link(LinkageJob(tonight, model, OverrideSet(), fresh, "k"), LOG)
    assert _partition(inc.clusters) == _partition(fresh.clusters)
    inc_edges, fresh_edges = _edges(inc.edges), _edges(fresh.edges)
    pd.testing.assert_frame_equal(
        inc_edges[["unique_id_l", "unique_id_r"]],
        fresh_edges[["unique_id_l", "unique_id_r"]],
    )
    # Edges of a touched record are scored tonight on both nights; the others are carried with
    # last night's score (term frequencies and shared-value counts of last night's records).
    touched = {
        "web:new-1",
        company.loc[company.index[5], "unique_id"],
        persons[0]["unique_id"].iloc[9],
    }
    rescored = inc_edges["unique_id_l"].isin(touched) | inc_edges["unique_id_r"].isin(
        touched
    )
    assert rescored.any()
    diff = (inc_edges["match_probability"] - fresh_edges["match_probability"]).abs()
    assert diff[rescored].max() <= 1e-9
    carried = inc_edges[~rescored].merge(
        _edges(full.edges), on=["unique_id_l", "unique_id_r"], suffixes=("", "_last")
    )
    assert len(carried) == int((~rescored).sum())
    assert (
        carried["match_probability"] - carried["match_probability_last"]
    ).abs().max() == 0


def test_the_spark_stage_has_its_own_fingerprint_version():
    from transforms.incremental import FINGERPRINT_VERSION
    from transforms.linkage.spark_stage import (
        SPARK_FINGERPRINT_VERSION,
        SparkLinkageStage,
    )

    assert (
        SparkLinkageStage.fingerprint_version
        == SPARK_FINGERPRINT_VERSION
        != FINGERPRINT_VERSION
    )
