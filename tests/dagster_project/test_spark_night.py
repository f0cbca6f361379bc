"""The demo night with `linkage.engine: spark` on a local Spark (`local[2]`): its customers
agree with DuckDB's, and an incremental night on Spark equals `--full` on Spark.

Slow (a JVM and three nights). With CI=true a missing pyspark or Java fails (spark_support)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import yaml

from spark_support import require_spark
from test_pipeline import AS_OF, GOLDEN_SNAPSHOT, change_people, materialization, query
from tests_support import copy_project, run_scv

pytestmark = pytest.mark.slow


def _on_spark(config: Path) -> None:
    doc = yaml.safe_load(config.read_text())
    doc.setdefault("linkage", {}).update(
        {
            "engine": "spark",
            "spark": {
                "master": "local[2]",
                "conf": {"spark.sql.shuffle.partitions": 4, "spark.default.parallelism": 4},
            },
        }
    )
    config.write_text(yaml.safe_dump(doc, sort_keys=False))


def _same_customer_pairs(config: Path) -> set[tuple[str, str]]:
    rows = query(config, "SELECT source || ':' || source_record_id, customer_id FROM scv.customer_xref")
    by_customer: dict[str, list[str]] = {}
    for uid, customer in rows:
        by_customer.setdefault(customer, []).append(uid)
    return {
        tuple(sorted(p)) for members in by_customer.values() for p in itertools.combinations(members, 2)
    }


def pairwise_agreement(a: set, b: set) -> float:
    """F1 of one engine's same-customer pairs against the other's (1.0: the same customers)."""
    if not a and not b:
        return 1.0
    return 2 * len(a & b) / (len(a) + len(b))


@pytest.fixture(scope="module")
def spark_run(demo_sources, tmp_path_factory):
    require_spark()
    config = copy_project(demo_sources / "scv.yml", tmp_path_factory.mktemp("spark_run"))
    _on_spark(config)
    assert run_scv("run", "--config", config, "--as-of", AS_OF) == 0
    return config


def test_the_demo_on_spark_gives_duckdbs_customers(spark_run, demo_run):
    clusters = materialization("person_clusters")
    assert clusters["mode"].startswith("full")
    spark_pairs, duck_pairs = _same_customer_pairs(spark_run), _same_customer_pairs(demo_run)
    agreement = pairwise_agreement(spark_pairs, duck_pairs)
    print(f"pairwise agreement Spark vs DuckDB: {agreement:.4f} ({len(spark_pairs)} vs {len(duck_pairs)} pairs)")
    assert len(duck_pairs) > 100
    assert agreement >= 0.99
    assert query(spark_run, "SELECT count(*) FROM scv.customer_xref WHERE customer_id IS NULL")[0][0] == 0


def test_an_incremental_night_on_spark_equals_full_on_spark(spark_run, tmp_path):
    config = copy_project(spark_run, tmp_path)
    change_people(config.parent)
    assert run_scv("run", "--config", config, "--as-of", AS_OF) == 0
    assert materialization("person_clusters")["mode"] == "incremental"
    assert materialization("person_clusters")["records_rescored"] > 0
    incremental = {t: query(config, sql) for t, sql in GOLDEN_SNAPSHOT.items()}
    assert run_scv("run", "--config", config, "--as-of", AS_OF, "--full") == 0
    assert materialization("person_clusters")["mode"] == "full (requested)"
    full = {t: query(config, sql) for t, sql in GOLDEN_SNAPSHOT.items()}
    for table in GOLDEN_SNAPSHOT:
        assert incremental[table] == full[table], table
