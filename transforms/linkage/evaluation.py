"""Accuracy of a clustering against known truth (the demo's truth.csv), for the benchmark.

Inputs are plain frames: `clusters` (`source, source_record_id, cluster_key`, as produced by
`link_and_dedupe`), `truth` (`source, source_record_id, person_id`) and `hard_negatives`
(`person_id_a, person_id_b, kind`). Records present in only one of clusters / truth are left
out (a quarantined row has no cluster). Everything is counted from group sizes, so a million
records take seconds.

Definitions:
* **pairwise** precision / recall / F1: over record pairs, a pair is predicted when both
  records share a cluster and true when both belong to one person.
* **cluster** precision / recall / F1 are **B-cubed**: per record, precision is the share of
  its cluster that is the same person, recall the share of its person that is in its cluster;
  both averaged over records. `exact_clusters` is the share of true persons whose records form
  exactly one cluster with nothing else in it.
* **hard-negative false merges**: listed pairs of distinct people (twins, parent and child…)
  with at least one record of each in one cluster, over all listed pairs.
* **blocking recall**: share of true matching record pairs that appear among the candidate
  pairs the blocking rules generate.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

__all__ = [
    "bcubed_metrics",
    "blocking_recall",
    "hard_negative_merges",
    "pairwise_metrics",
    "true_pairs",
]

_KEY = ["source", "source_record_id"]


def _joined(clusters: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    c = clusters[[*_KEY, "cluster_key"]].astype("string")
    t = truth[[*_KEY, "person_id"]].astype("string")
    return c.merge(t, on=_KEY, how="inner")


def _pairs(counts: pd.Series) -> int:
    n = counts.to_numpy(dtype=np.int64)
    return int((n * (n - 1) // 2).sum())


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0


def pairwise_metrics(clusters: pd.DataFrame, truth: pd.DataFrame) -> dict[str, float]:
    """Pairwise precision, recall, F1 and the pair counts behind them."""
    j = _joined(clusters, truth)
    predicted = _pairs(j.groupby("cluster_key").size())
    actual = _pairs(j.groupby("person_id").size())
    tp = _pairs(j.groupby(["cluster_key", "person_id"]).size())
    precision = tp / predicted if predicted else 1.0
    recall = tp / actual if actual else 1.0
    return {
        "precision": precision,
        "recall": recall,
        "f1": _f1(precision, recall),
        "true_positive_pairs": tp,
        "predicted_pairs": predicted,
        "true_pairs": actual,
    }


def bcubed_metrics(clusters: pd.DataFrame, truth: pd.DataFrame) -> dict[str, float]:
    """B-cubed cluster precision, recall, F1, and the share of persons clustered exactly."""
    j = _joined(clusters, truth)
    if j.empty:
        return {"precision": 1.0, "recall": 1.0, "f1": 1.0, "exact_clusters": 1.0}
    both = j.groupby(["cluster_key", "person_id"])["source"].transform("size")
    csize = j.groupby("cluster_key")["source"].transform("size")
    psize = j.groupby("person_id")["source"].transform("size")
    precision = float((both / csize).mean())
    recall = float((both / psize).mean())
    exact = (both == csize) & (both == psize)
    per_person = exact.groupby(j["person_id"]).all()
    return {
        "precision": precision,
        "recall": recall,
        "f1": _f1(precision, recall),
        "exact_clusters": float(per_person.mean()),
    }


def hard_negative_merges(
    clusters: pd.DataFrame, truth: pd.DataFrame, hard_negatives: pd.DataFrame
) -> pd.DataFrame:
    """Per kind (plus `all`): listed pairs, pairs falsely merged, and their share."""
    j = _joined(clusters, truth)[["person_id", "cluster_key"]].drop_duplicates()
    hn = hard_negatives[["person_id_a", "person_id_b", "kind"]].astype("string")
    hn = hn.reset_index(drop=True).rename_axis("pair").reset_index()
    a = hn.merge(j, left_on="person_id_a", right_on="person_id")[["pair", "cluster_key"]]
    b = hn.merge(j, left_on="person_id_b", right_on="person_id")[["pair", "cluster_key"]]
    merged_pairs = set(a.merge(b, on=["pair", "cluster_key"])["pair"].tolist())
    hn["merged"] = hn["pair"].isin(merged_pairs)
    # Pairs whose people have no linked record at all cannot be judged.
    present = set(j["person_id"].tolist())
    hn = hn[hn["person_id_a"].isin(present) & hn["person_id_b"].isin(present)]
    out = hn.groupby("kind")["merged"].agg(pairs="size", merged="sum").reset_index()
    total = pd.DataFrame({"kind": ["all"], "pairs": [len(hn)], "merged": [int(hn["merged"].sum())]})
    out = pd.concat([out, total], ignore_index=True)
    out["rate"] = np.where(out["pairs"] > 0, out["merged"] / out["pairs"].clip(lower=1), 0.0)
    return out


def true_pairs(truth: pd.DataFrame, ids: Iterable[str] | None = None) -> pd.DataFrame:
    """All record pairs of one person (`unique_id_l < unique_id_r`), unique_id being
    `source:source_record_id`; limited to `ids` when given."""
    t = truth[[*_KEY, "person_id"]].astype("string")
    t = t.assign(unique_id=t["source"] + ":" + t["source_record_id"])
    if ids is not None:
        t = t[t["unique_id"].isin(set(ids))]
    t = t[t.groupby("person_id")["unique_id"].transform("size") > 1]
    p = t[["person_id", "unique_id"]].merge(t[["person_id", "unique_id"]], on="person_id")
    p = p[p["unique_id_x"] < p["unique_id_y"]]
    return pd.DataFrame(
        {"unique_id_l": p["unique_id_x"].to_numpy(), "unique_id_r": p["unique_id_y"].to_numpy()}
    ).reset_index(drop=True)


def _ordered(df: pd.DataFrame) -> pd.DataFrame:
    a = df["unique_id_l"].astype("string").to_numpy(dtype=object)
    b = df["unique_id_r"].astype("string").to_numpy(dtype=object)
    swap = a > b
    return pd.DataFrame({"lo": np.where(swap, b, a), "hi": np.where(swap, a, b)})


def blocking_recall(candidates: pd.DataFrame, pairs: pd.DataFrame) -> float:
    """Share of `pairs` (true matches) found among `candidates`, in either orientation."""
    if pairs.empty:
        return 1.0
    found = _ordered(candidates).drop_duplicates()
    hits = _ordered(pairs).drop_duplicates().merge(found, on=["lo", "hi"], how="inner")
    return len(hits) / len(pairs)
