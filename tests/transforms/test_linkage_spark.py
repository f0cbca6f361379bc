"""The linkage stage's Spark infrastructure (issue 18): sessions, Splink's UDF jar, clean jobs,
a standalone cluster, and one-line errors when pyspark or Java is missing.

Plain Splink 5 on a small labelled frame: a model trained once on DuckDB scores the same pairs,
with the same probabilities, and clusters the same way on Spark (`local[2]` and a standalone
master + worker on 127.0.0.1). With CI=true a missing pyspark or Java fails these tests.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pandas as pd
import pytest
from spark_support import require_spark, standalone_cluster, standalone_settings

from transforms.linkage.engine import EngineUnavailableError
from transforms.linkage.settings import LinkageSettings
from transforms.linkage.spark_session import _java_major, find_java, session_conf

ROOT = Path(__file__).resolve().parents[2]

FIRST = ["amelia", "oliver", "isla", "george", "ava", "noah", "mia", "arthur", "ivy", "leo",
         "grace", "oscar", "freya", "harry", "lily", "jack", "rosie", "charlie", "ella", "theo"]
LAST = ["smith", "jones", "taylor", "brown", "williams", "wilson", "johnson", "davies", "patel",
        "wright", "walker", "evans", "thomas", "roberts", "khan", "lewis", "hughes", "clarke"]
CITIES = ["leeds", "york", "bath", "derby", "hull", "ely"]
MATCH_THRESHOLD = 0.9


def _typo(rng: np.random.Generator, word: str) -> str:
    i = int(rng.integers(0, len(word) - 1))
    return word[:i] + word[i + 1] + word[i] + word[i + 2 :]


def people(n_people: int = 150, seed: int = 7) -> pd.DataFrame:
    """One row per record: 1-3 records per person (`person_id`), later ones with typos and gaps."""
    rng = np.random.default_rng(seed)
    rows = []
    for pid in range(n_people):
        first, last = str(rng.choice(FIRST)), str(rng.choice(LAST))
        person = {
            "first_name": first,
            "surname": last,
            "dob": f"19{rng.integers(40, 99)}-{rng.integers(1, 13):02d}-{rng.integers(1, 28):02d}",
            "city": str(rng.choice(CITIES)),
            "email": f"{first}.{last}{rng.integers(1, 99)}@example.com",
        }
        for k in range(int(rng.integers(1, 4))):
            rec = dict(person, unique_id=f"p{pid}-{k}", person_id=pid)
            if k:
                if rng.random() < 0.3:
                    rec["first_name"] = _typo(rng, first)
                if rng.random() < 0.3:
                    rec["surname"] = _typo(rng, last)
                if rng.random() < 0.2:
                    rec["email"] = None
                if rng.random() < 0.1:
                    rec["city"] = None
            rows.append(rec)
    return pd.DataFrame(rows)


def splink_settings():
    import splink.comparison_library as cl
    from splink import SettingsCreator, block_on

    return SettingsCreator(
        link_type="dedupe_only",
        comparisons=[
            cl.JaroWinklerAtThresholds("first_name"),  # jaro_winkler: the UDF from Splink's jar
            cl.JaroWinklerAtThresholds("surname"),
            cl.ExactMatch("dob"),
            cl.ExactMatch("city"),
            cl.LevenshteinAtThresholds("email"),
        ],
        blocking_rules_to_generate_predictions=[
            block_on("dob"),
            block_on("surname"),
            block_on("first_name", "city"),
        ],
    )


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return people()


@pytest.fixture(scope="module")
def duckdb_result(frame):
    """The model trained on DuckDB, and its pairs and clusters on DuckDB."""
    from splink import DuckDBAPI, Linker, block_on

    db_api = DuckDBAPI()
    linker = Linker(db_api.register(frame.drop(columns="person_id")), splink_settings())
    linker.training.estimate_u_using_random_sampling(max_pairs=1e5)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("dob"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("surname"))
    model = linker.misc.save_model_to_json()
    pairs, clusters = _predict_and_cluster(linker)
    return model, pairs, clusters


def _predict_and_cluster(linker) -> tuple[pd.DataFrame, set[frozenset[str]]]:
    predictions = linker.inference.predict()
    clustered = linker.clustering.cluster_pairwise_predictions_at_threshold(
        predictions, MATCH_THRESHOLD
    )
    pairs = predictions.as_pandas_dataframe()[["unique_id_l", "unique_id_r", "match_probability"]]
    pairs = _canonical(pairs)
    groups = clustered.as_pandas_dataframe().groupby("cluster_id")["unique_id"]
    return pairs, {frozenset(g) for _, g in groups}


def _canonical(pairs: pd.DataFrame) -> pd.DataFrame:
    lo = pairs[["unique_id_l", "unique_id_r"]].min(axis=1)
    hi = pairs[["unique_id_l", "unique_id_r"]].max(axis=1)
    out = pd.DataFrame({"l": lo, "r": hi, "p": pairs["match_probability"].astype(float)})
    return out.sort_values(["l", "r"]).reset_index(drop=True)


def model_for_dialect(model: dict, dialect: str) -> dict:
    """The trained `model` with its SQL written for `dialect`: the same comparison creators, their
    m and u copied level by level. A model JSON saved on DuckDB quotes columns "like_this", which
    Spark SQL reads as string literals: loaded as it is on Spark, every pair scores the same."""
    ported = splink_settings().create_settings_dict(dialect)
    ported["probability_two_random_records_match"] = model["probability_two_random_records_match"]
    for theirs, ours in zip(model["comparisons"], ported["comparisons"], strict=True):
        assert theirs["output_column_name"] == ours["output_column_name"]
        for a, b in zip(theirs["comparison_levels"], ours["comparison_levels"], strict=True):
            for key in ("m_probability", "u_probability"):
                if key in a:
                    b[key] = a[key]
    return ported


def _spark_linkage(job, frame, model) -> tuple[pd.DataFrame, set[frozenset[str]]]:
    from splink import Linker

    db_api = job.db_api()
    settings = model_for_dialect(model, "spark")
    linker = Linker(db_api.register(frame.drop(columns="person_id")), settings)
    return _predict_and_cluster(linker)


def _assert_same_as_duckdb(spark_result, duckdb_result) -> None:
    _, duck_pairs, duck_clusters = duckdb_result
    spark_pairs, spark_clusters = spark_result
    assert len(spark_pairs) == len(duck_pairs)  # the same candidate pairs were blocked …
    assert spark_pairs[["l", "r"]].equals(duck_pairs[["l", "r"]])
    # … and scored alike: jaro_winkler from Splink's jar equals DuckDB's on these names
    np.testing.assert_allclose(spark_pairs["p"], duck_pairs["p"], rtol=0, atol=1e-9)
    assert spark_clusters == duck_clusters


@pytest.fixture(scope="module")
def local_settings(tmp_path_factory) -> LinkageSettings:
    require_spark()
    from transforms.linkage.spark_session import stop_spark

    settings = LinkageSettings(
        engine="spark",
        spark_master="local[2]",
        spark_conf={"spark.sql.shuffle.partitions": "4", "spark.default.parallelism": "4"},
        temp_directory=tmp_path_factory.mktemp("linkage_tmp"),
    )
    yield settings
    stop_spark()


@pytest.mark.slow
def test_local_spark_scores_and_clusters_like_duckdb(local_settings, frame, duckdb_result, caplog):
    from transforms.linkage.spark_session import spark_job

    model = duckdb_result[0]
    assert duckdb_result[1]["p"].ge(MATCH_THRESHOLD).sum() > 50  # a real amount of links
    caplog.set_level(logging.INFO, logger="transforms.linkage.spark_session")
    with spark_job(local_settings, "predict") as job:
        with job.phase("predict and cluster"):
            result = _spark_linkage(job, frame, model)
        checkpoints = Path(urlparse(job.checkpoint_dir).path)
        # Splink's intermediate Parquet lands in this job's own folder …
        assert checkpoints.is_dir() and any(checkpoints.iterdir())
        assert job.temp_views()
    # … and goes, with the job's temporary views, when the job ends
    assert not checkpoints.exists()
    assert job.temp_views() == []
    _assert_same_as_duckdb(result, duckdb_result)
    phase_lines = [r.getMessage() for r in caplog.records if "predict and cluster" in r.getMessage()]
    assert len(phase_lines) == 1, phase_lines
    assert "done in" in phase_lines[0] and "Spark jobs" in phase_lines[0]


@pytest.mark.slow
def test_jobs_in_a_row_do_not_see_each_others_views(local_settings, frame):
    from transforms.linkage.spark_session import open_spark_job, spark_job

    with spark_job(local_settings, "first") as first:
        first.db_api().register(frame, dataset_display_name="persons")
        assert "persons" in first.temp_views()
        # a second job while the first is open: a fresh session, same name registers fine
        second = open_spark_job(local_settings, "second")
        assert "persons" not in second.temp_views()
        second.db_api().register(frame.head(5), dataset_display_name="persons")
        assert second.session.table("persons").count() == 5
        assert first.session.table("persons").count() == len(frame)
        second.close()
    with spark_job(local_settings, "third") as third:
        assert third.temp_views() == []
        third.db_api().register(frame, dataset_display_name="persons")


@pytest.mark.slow
def test_jaro_winkler_resolves_through_make_db_api(local_settings):
    import duckdb

    from transforms.linkage.engine import make_db_api

    db_api = make_db_api(local_settings)
    (spark_jw,) = db_api.spark.sql("SELECT jaro_winkler('MARTHA', 'MARHTA')").first()
    (duck_jw,) = duckdb.sql("SELECT jaro_winkler_similarity('MARTHA', 'MARHTA')").fetchall()[0]
    assert spark_jw == pytest.approx(duck_jw, abs=1e-12)
    # every other function Splink's Spark comparisons call from the jar resolves, too
    for fn in ("jaro_sim('a', 'b')", "jaccard('ab', 'ac')", "Dmetaphone('smith')",
               "damerau_levenshtein('ab', 'ba')", "cosine_distance('ab', 'ac')"):
        db_api.spark.sql(f"SELECT {fn}").first()


@pytest.mark.slow
def test_standalone_cluster_scores_like_duckdb(tmp_path, frame, duckdb_result):
    require_spark()
    from transforms.linkage.spark_session import spark_job, stop_spark

    with standalone_cluster(tmp_path / "cluster") as master:
        assert master.startswith("spark://127.0.0.1:")
        settings = standalone_settings(master, tmp_path / "linkage_tmp")
        try:
            with spark_job(settings, "cluster") as job:
                assert job.session.sparkContext.master == master
                result = _spark_linkage(job, frame, duckdb_result[0])
                executors = job.session.sparkContext.statusTracker().getExecutorInfos()
                assert len(executors) >= 2  # the driver and the worker's executor
        finally:
            stop_spark()  # before the master goes away
    _assert_same_as_duckdb(result, duckdb_result)


# --- one-line errors; no Spark needed --------------------------------------------------------


def test_missing_java_is_one_line(tmp_path):
    with pytest.raises(EngineUnavailableError, match=r"no Java runtime was found.*default-jre-headless"):
        find_java({"PATH": str(tmp_path)})
    with pytest.raises(EngineUnavailableError, match=r"JAVA_HOME=.* has no bin/java"):
        find_java({"JAVA_HOME": str(tmp_path), "PATH": os.environ.get("PATH", "")})


def test_old_java_is_refused(tmp_path):
    java = tmp_path / "bin" / "java"
    java.parent.mkdir()
    java.write_text('#!/bin/sh\necho \'openjdk version "11.0.2" 2019-01-15\' >&2\n')
    java.chmod(0o755)
    with pytest.raises(EngineUnavailableError, match=r"is Java 11; Spark 4 needs Java 17\+"):
        find_java({"JAVA_HOME": str(tmp_path)})


@pytest.mark.parametrize(
    ("text", "major"),
    [('openjdk version "17.0.15" 2025-04-15', 17), ('java version "1.8.0_392"', 8),
     ('openjdk version "21" 2023-09-19', 21), ("garbage", None)],
)
def test_java_major(text, major):
    assert _java_major(text) == major


_MAKE_SPARK_API = (
    "from transforms.linkage.engine import make_db_api\n"
    "from transforms.linkage.settings import LinkageSettings\n"
    "make_db_api(LinkageSettings(engine='spark'))\n"
)


def _run_isolated(code: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=120, check=False,
    )


def test_make_db_api_without_java_says_so_in_one_line(tmp_path):
    pytest.importorskip("pyspark")  # without pyspark the message is about pyspark (next test)
    env = {k: v for k, v in os.environ.items() if k != "JAVA_HOME"}
    env["PATH"] = str(tmp_path)  # no java anywhere; the interpreter is called by its full path
    out = _run_isolated(_MAKE_SPARK_API, env)
    assert out.returncode != 0
    last = out.stderr.strip().splitlines()[-1]
    assert last == (
        "transforms.linkage.errors.EngineUnavailableError: linkage.engine is 'spark' but no Java "
        "runtime was found; install a JRE 17+ (Debian: apt install default-jre-headless) or set "
        "linkage.engine: duckdb"
    )
    assert "java_gateway" not in out.stderr and "Py4JError" not in out.stderr


def test_make_db_api_without_pyspark_says_so_in_one_line():
    code = "import sys; sys.modules['pyspark'] = None\n" + _MAKE_SPARK_API
    out = _run_isolated(code, dict(os.environ))
    assert out.returncode != 0
    last = out.stderr.strip().splitlines()[-1]
    assert "linkage.engine is 'spark' but pyspark is not installed" in last
    assert "scv-warehouse[spark]" in last


# --- configuration ----------------------------------------------------------------------------


def test_spark_config_reaches_the_session_settings(tmp_path):
    from types import SimpleNamespace

    from sources.config import LinkageConfig
    from warehouse.identity import linkage_settings

    linkage_block = LinkageConfig(
        engine="spark",
        spark={"master": "spark://10.0.0.5:7077",
               "conf": {"spark.executor.memory": "8g", "spark.ui.enabled": True,
                        "spark.jars": "/opt/extra.jar",
                        "spark.checkpoint.dir": "hdfs://nn/scv/checkpoints"}},
    )
    cfg = SimpleNamespace(linkage=linkage_block, data_dir=tmp_path)
    settings = linkage_settings(cfg, temp_directory=tmp_path)
    assert settings.spark_master == "spark://10.0.0.5:7077"
    assert settings.spark_conf["spark.ui.enabled"] == "true"
    conf = session_conf(settings, tmp_path / "spark", "/x/splink-udf.jar", tmp_path / "l.p")
    assert conf["spark.master"] == "spark://10.0.0.5:7077"
    assert conf["spark.executor.memory"] == "8g"
    assert conf["spark.jars"] == "/opt/extra.jar,/x/splink-udf.jar"  # ours added, theirs kept
    assert conf["spark.local.dir"] == str(tmp_path / "spark" / "local")
    assert "-Dlog4j2.configurationFile=" in conf["spark.driver.extraJavaOptions"]
    assert "spark.driver.host" not in conf  # a remote cluster must reach the driver by name
    assert LinkageSettings().spark_master == "local[*]"
    with pytest.raises(ValueError, match="start with 'spark.'"):
        LinkageConfig(engine="spark", spark={"conf": {"executor.memory": "8g"}})
