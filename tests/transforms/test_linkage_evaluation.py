"""Accuracy metrics of the linkage benchmark, on tiny hand-made clusterings."""

import pandas as pd
import pytest

from transforms.linkage.evaluation import (
    bcubed_metrics,
    blocking_recall,
    hard_negative_merges,
    pairwise_metrics,
    true_pairs,
)

# Person P1 has records a,b,c; P2 has d,e; P3 has f.
TRUTH = pd.DataFrame(
    {
        "source": ["s"] * 6,
        "source_record_id": list("abcdef"),
        "person_id": ["P1", "P1", "P1", "P2", "P2", "P3"],
    }
)


def clusters(*groups: str) -> pd.DataFrame:
    rows = [(rid, g[0]) for g in groups for rid in g]
    return pd.DataFrame(
        {
            "source": "s",
            "source_record_id": [r for r, _ in rows],
            "cluster_key": [k for _, k in rows],
        }
    )


def test_perfect_clustering():
    m = pairwise_metrics(clusters("abc", "de", "f"), TRUTH)
    assert (m["precision"], m["recall"], m["f1"]) == (1.0, 1.0, 1.0)
    assert m["true_pairs"] == 4
    b = bcubed_metrics(clusters("abc", "de", "f"), TRUTH)
    assert b == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "exact_clusters": 1.0}


def test_split_person_costs_recall_only():
    m = pairwise_metrics(clusters("ab", "c", "de", "f"), TRUTH)
    assert m["precision"] == 1.0
    assert m["recall"] == pytest.approx(2 / 4)  # ab, de found; ac, bc missed
    b = bcubed_metrics(clusters("ab", "c", "de", "f"), TRUTH)
    assert b["precision"] == 1.0
    # recall per record: a,b 2/3, c 1/3, d,e,f 1
    assert b["recall"] == pytest.approx((2 / 3 + 2 / 3 + 1 / 3 + 3) / 6)
    assert b["exact_clusters"] == pytest.approx(2 / 3)


def test_merged_people_cost_precision():
    m = pairwise_metrics(clusters("abcdef"), TRUTH)
    assert m["predicted_pairs"] == 15 and m["true_positive_pairs"] == 4
    assert m["precision"] == pytest.approx(4 / 15) and m["recall"] == 1.0
    assert m["f1"] == pytest.approx(2 * (4 / 15) / (1 + 4 / 15))


def test_records_missing_from_either_side_are_left_out():
    c = clusters("ab", "de", "f", "zz")  # zz: not in truth; c: no cluster (quarantined)
    m = pairwise_metrics(c, TRUTH)
    assert (m["precision"], m["recall"], m["true_pairs"]) == (1.0, 1.0, 2)


def test_hard_negative_merges_per_kind():
    hn = pd.DataFrame(
        {
            "person_id_a": ["P1", "P2", "P1", "P9"],
            "person_id_b": ["P2", "P3", "P3", "P1"],
            "kind": ["twin", "couple", "couple", "twin"],
        }
    )
    out = hard_negative_merges(clusters("abd", "ce", "f"), TRUTH, hn).set_index("kind")
    # P1-P2 merged (a,b,d / c,e); P2-P3 and P1-P3 not; P9 has no records: not judged.
    assert out.loc["twin", "merged"] == 1 and out.loc["twin", "pairs"] == 1
    assert out.loc["couple", "merged"] == 0 and out.loc["couple", "pairs"] == 2
    assert out.loc["all", "pairs"] == 3 and out.loc["all", "rate"] == pytest.approx(1 / 3)


def test_true_pairs_and_blocking_recall():
    tp = true_pairs(TRUTH)
    assert sorted(zip(tp["unique_id_l"], tp["unique_id_r"])) == [
        ("s:a", "s:b"),
        ("s:a", "s:c"),
        ("s:b", "s:c"),
        ("s:d", "s:e"),
    ]
    cand = pd.DataFrame(
        {"unique_id_l": ["s:b", "s:d", "s:a"], "unique_id_r": ["s:a", "s:e", "s:f"]}
    )
    assert blocking_recall(cand, tp) == pytest.approx(2 / 4)  # orientation does not matter
    assert blocking_recall(cand, tp.iloc[0:0]) == 1.0
    assert len(true_pairs(TRUTH, ids=["s:a", "s:b", "s:d"])) == 1
