"""Clustering on Spark (`spark_clustering.cluster_on_spark`) gives exactly what the driver-side
`clustering.cluster_with_review` gives: the same partition, cluster_key and match_probability
per record, the same metrics and the same review frame, row for row.

On the toy company of test_linkage (trained and scored on DuckDB) under each guard policy with
a steward's overrides, and on random graphs with planted conflicts: families bridged by records
without a first name or birth date, vetoed links, ambiguous bridges, cannot- and must-links
(one must-link group rooted at a record absent tonight), messy edges (pairs listed twice or
reversed, unknown records, a self-link, missing weights and probabilities) and components above
`_FULL_CHECK_MAX`. One Spark job on local[2] for the module; with CI=true a missing pyspark or
Java fails these tests.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from spark_support import require_spark
from test_linkage import SETTINGS, toy_company

from transforms.linkage import clustering
from transforms.linkage.clustering import (
    CLUSTER_COLUMNS,
    REVIEW_COLUMNS,
    cluster_with_review,
)
from transforms.linkage.guards import GuardPolicy
from transforms.linkage.overrides import OverrideSet
from transforms.linkage.settings import LinkageSettings

pytestmark = pytest.mark.filterwarnings(
    "ignore:PySpark does not yet fully support pandas:FutureWarning"
)


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    require_spark()
    from transforms.linkage.spark_session import spark_job, stop_spark

    settings = LinkageSettings(
        engine="spark",
        spark_master="local[2]",
        spark_conf={"spark.sql.shuffle.partitions": "2", "spark.default.parallelism": "2"},
        temp_directory=tmp_path_factory.mktemp("spark_clustering"),
    )
    # Python workers (the veto's mapInPandas) must run this interpreter, which has the project's
    # packages; pyspark starts `$PYSPARK_PYTHON`, else the first `python3` on PATH.
    saved = os.environ.get("PYSPARK_PYTHON")
    os.environ["PYSPARK_PYTHON"] = sys.executable
    stop_spark()  # a session started before would keep its workers' interpreter
    try:
        with spark_job(settings, "cluster") as job:
            job.api = job.db_api()  # one Splink SparkAPI for the module (UDFs registered once)
            yield job
    finally:
        stop_spark()
        if saved is None:
            os.environ.pop("PYSPARK_PYTHON", None)
        else:
            os.environ["PYSPARK_PYTHON"] = saved


def _to_spark(session, frame: pd.DataFrame):
    """A Spark DataFrame of `frame`, row order kept, missing values as NULL."""
    return session.createDataFrame(pa.Table.from_pandas(frame, preserve_index=False))


def _overrides(must=(), cannot=()) -> OverrideSet:
    rows = [("must", a, b) for a, b in must] + [("cannot", a, b) for a, b in cannot]
    frame = pd.DataFrame(rows, columns=["decision", "record_a", "record_b"])
    frame["row"] = np.arange(1, len(frame) + 1)
    return OverrideSet.from_frame(frame)


def _assert_same_as_driver(job, nodes, edges, threshold, *, guards, overrides=None):
    """cluster_on_spark equals cluster_with_review on the same data; returns the metrics and
    how many records went to the driver (those of the components rebuilt there)."""
    from transforms.linkage import spark_clustering
    from transforms.linkage.spark_clustering import cluster_on_spark

    collected = []
    decide = spark_clustering._decide_on_driver

    def spy(sub_nodes, *args):
        collected.append(len(sub_nodes))
        return decide(sub_nodes, *args)

    want_clusters, want_metrics, want_review = cluster_with_review(
        nodes, edges, threshold, guards=guards, overrides=overrides
    )
    started = time.monotonic()
    spark_clustering._decide_on_driver = spy
    try:
        clusters, metrics, review = cluster_on_spark(
            _to_spark(job.session, nodes),
            _to_spark(job.session, edges),
            threshold,
            guards=guards,
            overrides=overrides,
            db_api=job.api,
        )
    finally:
        spark_clustering._decide_on_driver = decide
    got = clusters.toPandas().sort_values("unique_id", kind="stable").reset_index(drop=True)
    print(f"cluster_on_spark: {len(nodes)} records, {len(edges)} edges in "
          f"{time.monotonic() - started:.1f} s")
    assert list(got.columns) == CLUSTER_COLUMNS
    # the same rows (cluster_with_review's are in unique_id order), keys and probabilities
    for col in ("unique_id", "source", "source_record_id", "cluster_key"):
        assert got[col].astype("string").tolist() == want_clusters[col].astype("string").tolist(), col
    np.testing.assert_array_equal(
        got["match_probability"].to_numpy(float), want_clusters["match_probability"].to_numpy(float)
    )
    assert metrics == want_metrics
    assert list(metrics) == list(want_metrics)
    assert list(review.columns) == REVIEW_COLUMNS
    pd.testing.assert_frame_equal(review, want_review)
    return metrics, sum(collected)


# --- the toy company, trained and scored on DuckDB ------------------------------------------


@pytest.fixture(scope="module")
def toy():
    from transforms.linkage import guard_policy, link_and_dedupe, train_model
    from transforms.linkage.predict import _nodes

    persons = toy_company().drop(columns=["person_id"])
    model = train_model(persons, SETTINGS, created_at="2026-01-01T00:00:00")
    edges = link_and_dedupe(persons, model, SETTINGS).edges
    return _nodes(persons), edges, guard_policy(model, "adaptive")


@pytest.mark.slow
def test_toy_company_with_overrides(job, toy):
    nodes, edges, policy = toy
    n = 120
    overrides = _overrides(
        # the twins joined by a steward, and a record absent tonight in a must-link group
        must=[(f"crm:{n}-0", f"crm:{n + 1}-0"), (f"shop:{n + 1}-1", "aaa:absent")],
        # a real duplicate (nickname, new address) kept apart
        cannot=[(f"crm:{n + 6}-0", f"shop:{n + 6}-1")],
    )
    m, collected = _assert_same_as_driver(job, nodes, edges, 0.5, guards=policy,
                                          overrides=overrides)
    assert 0 < collected <= 10  # the split clusters' records only
    # the father and son, the couple: vetoed by the guards; the steward's pair split
    assert m["vetoed_dob"] > 0 and m["vetoed_first_name"] > 0 and m["vetoed_by_override"] == 1
    assert m["overrides_must_applied"] == 1 and m["split_clusters"] > 0


# --- random graphs with planted conflicts ----------------------------------------------------

NAMES = ["anna", "boris", "clara", "dmitri", "elena", "fyodor", "galina", "igor"]


def planted_graph(seed: int, families: int = 40, big: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Records of families (2-3 people each, 1-4 records a person, each person's own first
    name and birth date), linked strongly within a person, weakly across people; records
    without first name or birth date bridging two people of a family, some equally well
    (ambiguous), some clearly; near-threshold pairs; messy edge rows. `big` > 0 adds one
    component of that many records (two people of one name, different birth dates, and
    nameless records) linked as a random tree."""
    rng = np.random.default_rng(seed)
    recs: list[dict] = []
    edges: list[tuple] = []

    def rec(uid, first, dob, last="stone"):
        recs.append({"unique_id": uid, "source": uid.split(":")[0],
                     "source_record_id": uid.split(":")[1], "first_name_std": first,
                     "first_name_alias": first, "last_name_std": last, "dob": dob})

    def link(a, b, p, weight=True):
        w = float(np.log2(p / (1 - p))) if weight and p < 1 else None
        edges.append((a, b, p, w))

    for f in range(families):
        people = []
        for k in range(int(rng.integers(2, 4))):
            first = NAMES[(f + k) % len(NAMES)]
            dob = f"19{50 + k * 17 + f % 7}-0{1 + k}-1{f % 9}"
            ids = [f"s{int(rng.integers(0, 3))}:f{f}p{k}r{r}" for r in range(int(rng.integers(1, 5)))]
            ids = list(dict.fromkeys(ids))
            for uid in ids:
                rec(uid, first, dob, f"fam{f}")
            for i in range(1, len(ids)):
                link(ids[int(rng.integers(0, i))], ids[i], float(rng.uniform(0.93, 0.99999)))
            people.append(ids)
        # people of one family scored alike: a direct link above the threshold (vetoed)
        if rng.random() < 0.6:
            link(people[0][0], people[1][-1], float(rng.uniform(0.85, 0.97)))
        # a record with neither first name nor birth date, bridging two people
        for j in range(int(rng.integers(1, 3))):
            uid = f"web:f{f}b{j}"
            rec(uid, None, None, f"fam{f}")
            x, y = rng.choice(len(people), size=2, replace=False)
            p1 = float(rng.uniform(0.9, 0.999))
            # equally good (ambiguous: left alone) or clearly better on one side
            p2 = p1 if rng.random() < 0.4 else float(rng.uniform(0.8, 0.9))
            link(uid, people[x][0], p1)
            link(people[y][-1], uid, p2)
        # near the threshold: below it by less than REVIEW_NEAR_BITS, or far below
        a, b = people[0][0], people[-1][0]
        link(a, b, float(rng.choice([0.7, 0.55, 0.2, 0.05])))
    if big:
        # one component: a random tree (shallow, so connected components converge in a few
        # rounds) whose links never join two different birth dates directly: no veto breaks it
        ids = [f"big:r{i:05d}" for i in range(big)]
        dobs = ["1970-01-01", "1999-12-31", None]
        kind = [(i + 2) % 3 for i in range(big)]  # the first record has no birth date
        for i, uid in enumerate(ids):
            rec(uid, "sam" if kind[i] < 2 else None, dobs[kind[i]], "big")
            if i:
                j = int(rng.integers(0, i))
                while kind[i] < 2 and kind[j] < 2 and kind[j] != kind[i]:
                    j = int(rng.integers(0, i))
                link(ids[j], uid, float(rng.uniform(0.9, 0.9999)))
    nodes = pd.DataFrame(recs).drop_duplicates("unique_id")
    e = pd.DataFrame(edges, columns=["unique_id_l", "unique_id_r", "match_probability", "match_weight"])
    # messy rows: a pair listed twice (reversed, weaker), unknown records, a self-link, a
    # missing probability, missing weights, a probability of exactly 1
    first = e.iloc[0]
    messy = pd.DataFrame(
        [
            (first["unique_id_r"], first["unique_id_l"], 0.5, 0.0),
            ("zz:unknown", first["unique_id_l"], 0.99, 6.6),
            (first["unique_id_l"], first["unique_id_l"], 0.99, 6.6),
            # listed twice with the same weight: the first row listed wins (on both sides)
            (e.iloc[3]["unique_id_r"], e.iloc[3]["unique_id_l"], 0.971, 5.0),
            (e.iloc[3]["unique_id_l"], e.iloc[3]["unique_id_r"], 0.972, 5.0),
            (e.iloc[1]["unique_id_l"], e.iloc[1]["unique_id_r"], None, None),
            (e.iloc[2]["unique_id_l"], e.iloc[2]["unique_id_r"], 1.0, None),
        ],
        columns=e.columns,
    )
    e = pd.concat([e, messy], ignore_index=True)
    e.loc[rng.random(len(e)) < 0.1, "match_weight"] = None
    return nodes.sample(frac=1, random_state=seed).reset_index(drop=True), e


def _graph_overrides(nodes: pd.DataFrame) -> OverrideSet:
    ids = sorted(nodes["unique_id"])
    fam = lambda f, p: [x for x in ids if f":f{f}p{p}r" in x]
    # two people of family 0 joined; a chain through a record absent tonight joins two of
    # family 1 (its group's root, "a:absent", is not a record)
    must = [(fam(0, 0)[0], fam(0, 1)[0]), ("a:absent", fam(1, 0)[0]), ("a:absent", fam(1, 1)[0])]
    return _overrides(
        # records of two families (never linked); two people of family 5 (linked through a
        # bridge or directly: the guards' work, done by a steward when they are off); one
        # person's two records (a duplicate kept apart)
        cannot=[(fam(2, 0)[0], fam(3, 0)[0]), (fam(5, 0)[0], fam(5, 1)[0])]
        + ([tuple(fam(4, 0)[:2])] if len(fam(4, 0)) > 1 else [])
        # in the big component: two birth dates joined, one birth date's records kept apart
        + ([("big:r00004", "big:r00007")] if "big:r00000" in ids else []),
        must=must + ([("big:r00001", "big:r00002")] if "big:r00000" in ids else []),
    )


@pytest.mark.slow
def test_planted_conflicts_overrides_and_a_component_above_full_check_max(job):
    nodes, edges = planted_graph(seed=11, big=2100)
    unguarded = cluster_with_review(nodes, edges, 0.9, guards=False)[1]
    assert unguarded["largest_cluster"] > clustering._FULL_CHECK_MAX  # rebuilt unchecked
    m, collected = _assert_same_as_driver(job, nodes, edges, 0.9, guards=GuardPolicy("strict"),
                                          overrides=_graph_overrides(nodes))
    assert m["split_clusters"] > 0 and m["isolated_ambiguous"] > 0 and m["vetoed_edges"] > 0
    # the big component and the families whose people were chained, not the others
    assert 2100 < collected < len(nodes) - 50
    # the must-links through "a:absent" are not applied, but group their records
    assert m["overrides_must_applied"] == 2 and m["overrides_cannot_applied"] == 4
    assert m["largest_cluster"] < clustering._FULL_CHECK_MAX
    assert m["edges_unknown_records"] == 2


@pytest.mark.slow
def test_no_edges_and_guards_off(job):
    nodes, edges = planted_graph(seed=3, families=10)
    # no scored edge at all: one must-link is the only link
    ids = sorted(nodes["unique_id"])
    m, collected = _assert_same_as_driver(job, nodes, edges.iloc[:0], 0.9,
                                          guards=GuardPolicy("strict"),
                                          overrides=_overrides(must=[(ids[0], ids[-1])]))
    assert collected == 0
    assert m["clusters"] == len(nodes) - 1 and m["edges"] == 0
    # no guards: overrides alone veto and split; weights computed from the probabilities
    m, _ = _assert_same_as_driver(job, nodes, edges.drop(columns="match_weight"), 0.9,
                                  guards=False, overrides=_graph_overrides(nodes))
    assert m["vetoed_by_override"] > 0 and m["vetoed_dob"] == m["vetoed_first_name"] == 0
    assert m["split_clusters"] > 0


# --- the veto's batches, without Spark ------------------------------------------------------


@pytest.mark.parametrize("policy", [GuardPolicy("strict"), GuardPolicy("off")])
def test_batch_flags_equal_the_rules_over_every_record(policy):
    """Flags decided batch by batch (each batch's records only, must-link roots absent from it
    added) equal `_Rules.flags` over every record, as `cluster_with_review` computes them."""
    from transforms.linkage.clustering import _Rules
    from transforms.linkage.guards import GUARD_NODE_COLUMNS, NodeAttributes
    from transforms.linkage.spark_clustering import _batch_flags

    nodes, _ = planted_graph(seed=11)
    nodes = nodes.sort_values("unique_id").reset_index(drop=True)
    overrides = _graph_overrides(nodes)
    ids = nodes["unique_id"].to_numpy(dtype=object)
    pos = pd.Series(np.arange(len(ids)), index=pd.Index(ids))
    rules = _Rules(NodeAttributes(nodes) if policy.active else None, policy, pos, len(ids),
                   overrides)
    rng = np.random.default_rng(1)
    left, right = rng.integers(0, len(ids), 3000), rng.integers(0, len(ids), 3000)
    # every override pair too, both ways round
    for a, b, _ in (*overrides.must, *overrides.cannot):
        if a in pos and b in pos:
            left, right = np.append(left, [pos[a], pos[b]]), np.append(right, [pos[b], pos[a]])
    keep = left != right
    left, right = left[keep], right[keep]
    want = rules.flags(left, right)
    pairs = pd.DataFrame({"l": ids[left], "r": ids[right]})
    for side, idx in (("l", left), ("r", right)):
        for col in GUARD_NODE_COLUMNS:
            pairs[f"{col}_{side}"] = nodes[col].to_numpy(dtype=object)[idx]
    got = np.concatenate(
        [_batch_flags(pairs.iloc[i : i + 97], policy, overrides) for i in range(0, len(pairs), 97)]
    )
    np.testing.assert_array_equal(got, want)
    assert want.any()
