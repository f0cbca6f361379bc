"""The linkage stage behind its seam, called directly (no Dagster): files in, files out."""

from __future__ import annotations

import logging

import pandas as pd
import pytest

from transforms.linkage import LinkageSettings, OverrideSet, train_model
from transforms.linkage import linkage_stage
from transforms.linkage.stage import LinkageFiles, LinkageJob, PreviousLinkage

from test_linkage import toy_company

LOG = logging.getLogger("test")


@pytest.fixture(scope="module")
def persons_file(tmp_path_factory):
    company = toy_company()
    path = tmp_path_factory.mktemp("persons") / "persons.parquet"
    company.drop(columns=["person_id"]).to_parquet(path)
    return path


@pytest.fixture(scope="module")
def model(persons_file):
    return train_model(pd.read_parquet(persons_file), LinkageSettings(), created_at="2026-01-01")


def _files(folder) -> LinkageFiles:
    folder.mkdir(parents=True, exist_ok=True)
    return LinkageFiles(*(folder / f"{n}.parquet" for n in ("clusters", "edges", "fingerprints", "review")))


def _published(clusters_file, dest):
    """What the xref step would publish: the clusters by (source, source_record_id)."""
    clusters = pd.read_parquet(clusters_file)
    clusters[["source", "source_record_id", "cluster_key", "match_probability"]].to_parquet(dest)
    return dest


def test_an_incremental_night_with_nothing_changed_keeps_every_cluster(tmp_path, persons_file, model):
    stage = linkage_stage(LinkageSettings())
    full = _files(tmp_path / "full")
    job = LinkageJob(persons_file, model, OverrideSet(), full, clustering="k")
    run = stage.link(job, LOG)
    assert run.scope is None and run.metrics["records"] == len(pd.read_parquet(persons_file))
    clusters = pd.read_parquet(full.clusters)
    assert clusters["cluster_key"].nunique() < len(clusters)  # some records were linked

    again = _files(tmp_path / "again")
    previous = PreviousLinkage(full.edges, full.fingerprints, _published(full.clusters, tmp_path / "pub.parquet"), "k")
    run2 = stage.link(LinkageJob(persons_file, model, OverrideSet(), again, "k", previous), LOG)
    assert run2.scope == frozenset() and run2.metrics["records_rescored"] == 0
    pd.testing.assert_frame_equal(
        pd.read_parquet(again.clusters).sort_values("unique_id").reset_index(drop=True),
        clusters.sort_values("unique_id").reset_index(drop=True),
        check_dtype=False,
    )
    assert len(pd.read_parquet(again.edges)) == len(pd.read_parquet(full.edges))


def test_a_changed_clustering_key_clusters_everything_again(tmp_path, persons_file, model):
    stage = linkage_stage(LinkageSettings())
    full = _files(tmp_path / "full")
    stage.link(LinkageJob(persons_file, model, OverrideSet(), full, clustering="old"), LOG)
    previous = PreviousLinkage(full.edges, full.fingerprints, _published(full.clusters, tmp_path / "p.parquet"), "old")
    run = stage.link(LinkageJob(persons_file, model, OverrideSet(), _files(tmp_path / "b"), "new", previous), LOG)
    assert run.scope is None and run.metrics["records_reclustered"] == len(pd.read_parquet(persons_file))


def test_the_engine_is_a_setting(tmp_path):
    assert type(linkage_stage(LinkageSettings())).__name__ == "DuckDBLinkageStage"


def test_a_model_used_on_the_other_engine_keeps_its_parameters_with_that_engines_sql(model):
    from transforms.linkage.model import splink_settings

    duck = splink_settings(model, "duckdb")
    spark = splink_settings(model, "spark")
    assert duck["sql_dialect"] == "duckdb" and spark["sql_dialect"] == "spark"
    assert duck == splink_settings(model)  # already DuckDB's: unchanged
    for a, b in zip(duck["comparisons"], spark["comparisons"], strict=True):
        assert [lv.get("m_probability") for lv in a["comparison_levels"]] == [
            lv.get("m_probability") for lv in b["comparison_levels"]
        ]
        assert [lv.get("u_probability") for lv in a["comparison_levels"]] == [
            lv.get("u_probability") for lv in b["comparison_levels"]
        ]
    # DuckDB's quoting, which Spark would read as text, is gone from the Spark SQL
    spark_sql = " ".join(lv["sql_condition"] for c in spark["comparisons"] for lv in c["comparison_levels"])
    assert '"first_name_std_l"' not in spark_sql and "`first_name_std_l`" in spark_sql
    assert spark["probability_two_random_records_match"] == duck["probability_two_random_records_match"]
