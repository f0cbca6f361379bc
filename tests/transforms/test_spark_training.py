"""Training on Spark (`spark_training.SparkTrainingFrame`) answers what training asks exactly as
the pandas frame does: records, filled fields, the guards' look-alike pair counts, the prepared
frame's filled counts, u estimation's sample and the labelled pairs found; and the model it
trains equals the one trained from a pandas frame on the same Spark engine (and m from labelled
pairs equals DuckDB's). The stage's `train` never builds a pandas frame of every record.

The records are the toy company plus what trips a careless port: padded and blank values, a
first name starting with a non-ASCII letter, a field too sparse to learn, an anchor group too
big to count, twins with their own email addresses, and replaced first names (so the guards'
evidence has disagreements to count). Four shuffle partitions split the anchor groups' keys
across partitions. With CI=true a missing pyspark or Java fails these tests (spark_support)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from spark_support import require_spark
from test_guards_adaptive import _company
from test_linkage import toy_company

from transforms.linkage import LinkageSettings, guard_evidence, train_model
from transforms.linkage.fields import available_fields, blocking_keys_for
from transforms.linkage.training_frame import PandasTrainingFrame


def _messy() -> pd.DataFrame:
    company = toy_company().drop(columns=["person_id"]).astype("string")
    extra = _company(0.2, people=60).astype("string")
    extra["unique_id"] = "g:" + extra["unique_id"]
    rows = pd.concat([company, extra], ignore_index=True)
    rows.loc[3, "last_name_std"] = "  " + str(rows.loc[3, "last_name_std"]) + " "
    rows.loc[5, "dob"] = "   "
    rows.loc[7, "first_name_std"] = "\u00e9lodie"
    rows.loc[9, "first_name_std"] = " \u00e9lodie "
    # Thirty-five records of one junk anchor value: left out of the evidence.
    junk = pd.DataFrame(
        {
            "unique_id": [f"j:{i}" for i in range(35)],
            "first_name_std": [["sam", "alex", "kim"][i % 3] for i in range(35)],
            "last_name_std": "unknown",
            "dob": "1900-01-01",
            "address_std": "n/a",
            "postcode_std": "zz99",
        }
    ).astype("string")
    # Twins with their own mailboxes: not look-alike pairs.
    twins = pd.DataFrame(
        {
            "unique_id": ["tw:1", "tw:2"],
            "first_name_std": ["anna", "hanna"],
            "last_name_std": "quist",
            "dob": "1991-02-03",
            "address_std": "7 birch way",
            "postcode_std": "qq1",
            "email_key": ["anna@quist.example", "hanna@quist.example"],
        }
    ).astype("string")
    out = pd.concat([rows, junk, twins], ignore_index=True)
    out["city_std"] = pd.array([None] * len(out), dtype="string")
    out.loc[0, "city_std"] = "york"  # too sparse to be a match field
    return out


@pytest.fixture(scope="module")
def persons(tmp_path_factory):
    frame = _messy()
    path = tmp_path_factory.mktemp("persons") / "persons.parquet"
    frame.to_parquet(path)
    return frame, path


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    return LinkageSettings(
        engine="spark",
        spark_master="local[2]",
        spark_conf={"spark.sql.shuffle.partitions": 4, "spark.default.parallelism": 2},
        temp_directory=tmp_path_factory.mktemp("spark_tmp"),
    )


@pytest.fixture(scope="module")
def job(settings):
    require_spark()
    from transforms.linkage.spark_session import spark_job, stop_spark

    with spark_job(settings, "training-test") as job:
        yield job
    stop_spark()


@pytest.fixture(scope="module")
def both(job, persons):
    from transforms.linkage import LINKAGE_COLUMNS
    from transforms.linkage.spark_frames import read_persons
    from transforms.linkage.spark_training import SparkTrainingFrame

    frame, path = persons
    spark = SparkTrainingFrame(job, read_persons(job.session, path, LINKAGE_COLUMNS))
    return PandasTrainingFrame(frame), spark


def test_records_fields_and_guard_evidence_equal_pandas(both):
    pandas_, spark = both
    assert spark.records() == pandas_.records()
    assert spark.fields() == pandas_.fields()
    assert "city" not in spark.fields()
    want = pandas_.guard_evidence()
    assert spark.guard_evidence() == want
    # The evidence has something to agree on: look-alike pairs, some of them disagreeing.
    assert want["first_name"]["pairs"] >= 30 and want["first_name"]["disagree"] > 0


def test_guard_evidence_over_many_small_partitions_equals_pandas(both, monkeypatch):
    from transforms.linkage import spark_training

    pandas_, spark = both
    monkeypatch.setattr(spark_training, "PARTITION_RECORDS", 40)
    assert spark._partitions() >= pandas_.records() // 40 > 4
    assert spark.guard_evidence() == pandas_.guard_evidence()


def test_the_prepared_frame_the_sample_and_the_labels_equal_pandas(both, job):
    pandas_, spark = both
    fields = pandas_.fields()
    keys = blocking_keys_for(fields)
    want, got = pandas_.prepare(fields, keys), spark.prepare(fields, keys)
    assert got.columns == want.columns
    for column in want.columns:
        assert got.present(column) == want.present(column), column

    from splink import DuckDBAPI

    for pairs in (50, 1_000, 1e9):
        a = want.sample(DuckDBAPI(), pairs, 42).as_pandas_dataframe()
        b = got.sample(job.db_api(), pairs, 42).as_spark_dataframe().toPandas()
        job.session.catalog.dropTempView("u_sample")
        assert 2 <= len(a) == len(b)
        assert sorted(a["unique_id"]) == sorted(b["unique_id"])
    # Another seed, another sample.
    other = got.sample(job.db_api(), 1_000, 7).as_spark_dataframe().toPandas()
    job.session.catalog.dropTempView("u_sample")
    assert sorted(other["unique_id"]) != sorted(b["unique_id"]) or len(b) == pandas_.records()

    ids = list(pandas_.persons["unique_id"][:6])
    labels = pd.DataFrame(
        {
            "unique_id_l": [ids[0], ids[2], "nobody", ids[4]],
            "unique_id_r": [ids[1], ids[3], ids[5], "ghost"],
            "is_match": [True, False, True, True],
        }
    )
    pd.testing.assert_frame_equal(got.known_pairs(labels), want.known_pairs(labels))
    assert len(got.known_pairs(labels)) == 2


def _comparable(model: dict) -> dict:
    out = {k: v for k, v in model.items() if k != "scv"}
    meta = dict(model["scv"])
    training = dict(meta.pop("training"))
    training.pop("seconds")
    for session in training.get("m_sessions", []):
        session.pop("seconds", None)
    return {"splink": out, "meta": meta, "training": training}


def _parameters(model: dict) -> np.ndarray:
    return np.array(
        [[p["m"] or 0.0, p["u"] or 0.0] for p in model["scv"]["training"]["parameters"]]
    )


@pytest.fixture(scope="module")
def stage_model(persons, settings, job):
    """The Spark stage's `train` on the records' file, with every way of reading the whole
    file into pandas refused."""
    import pyarrow.parquet as pq

    from transforms.linkage import training_frame
    from transforms.linkage.spark_stage import SparkLinkageStage

    def refuse(*_a, **_k):
        raise AssertionError("a pandas frame of every record was built")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(training_frame.PandasTrainingFrame, "__init__", refuse)
        mp.setattr(pd, "read_parquet", refuse)
        mp.setattr(pq, "read_table", refuse)
        return SparkLinkageStage(settings, stop_after=False).train(
            persons[1], created_at="2026-01-01"
        )


def test_the_stage_trains_without_a_pandas_frame_of_every_record(stage_model, persons):
    meta = stage_model["scv"]
    assert meta["training"]["records"] == len(persons[0])
    assert meta["fields"] == available_fields(persons[0])
    assert meta["guards"] == guard_evidence(persons[0])
    assert stage_model["sql_dialect"] == "spark"


def test_a_model_trained_on_spark_records_equals_one_trained_from_pandas(
    stage_model, both, settings
):
    pandas_, _ = both
    got = stage_model
    want = train_model(pandas_.persons, settings, created_at="2026-01-01")
    a, b = _comparable(got), _comparable(want)
    for key in ("fields", "blocking_keys", "guards", "version"):
        assert a["meta"][key] == b["meta"][key], key
    for key in ("records", "u_pairs", "u_method", "prior", "levels_adjusted"):
        assert a["training"][key] == b["training"][key], key
    assert [s.get("pairs") for s in a["training"]["m_sessions"]] == [
        s.get("pairs") for s in b["training"]["m_sessions"]
    ]
    # m and u: the same queries on the same rows (EM sums in Spark's order: 1e-9 apart at most).
    np.testing.assert_allclose(_parameters(got), _parameters(want), rtol=1e-6)
    assert a["training"]["u_pairs"] > 1_000


def test_m_from_labels_on_spark_equals_duckdb(persons, settings, job):
    """A steward's labelled pairs (`linkage.labels`): m from labels on Spark, as on DuckDB."""
    from transforms.linkage.spark_stage import SparkLinkageStage

    truth = toy_company()[["unique_id", "person_id"]]
    pairs = truth.merge(truth, on="person_id")
    pairs = pairs[pairs["unique_id_x"] < pairs["unique_id_y"]].head(60)
    labels = pd.DataFrame(
        {
            "unique_id_l": list(pairs["unique_id_x"]) + ["nobody"],
            "unique_id_r": list(pairs["unique_id_y"]) + [pairs["unique_id_y"].iloc[0]],
            "is_match": True,
        }
    )
    got = SparkLinkageStage(settings, stop_after=False).train(
        persons[1], created_at="2026-01-01", labels=labels
    )
    want = train_model(persons[0], LinkageSettings(), created_at="2026-01-01", labels=labels)
    sessions = got["scv"]["training"]["m_sessions"]
    assert sessions == want["scv"]["training"]["m_sessions"] == [
        {"method": "labels", "pairs": 60}
    ]
    np.testing.assert_allclose(_parameters(got)[:, 0], _parameters(want)[:, 0], atol=1e-6)
