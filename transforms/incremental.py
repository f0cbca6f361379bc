"""Incremental nights: which person records changed since the last published night, and which
stored edges still hold.

A record's fingerprint is a hash of the match keys the model reads, so a change in a field the
model ignores (say, a new loyalty tier) does not make the record "changed". Edges between two
unchanged records are carried over as scored; every edge touching a new, changed or deleted
record is dropped, and the new and changed records are scored again.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

__all__ = [
    "IncrementalPlan",
    "carry_edges",
    "plan_incremental",
    "record_fingerprints",
    "relink_scope",
]

#: Standardised columns whose change means a record must be scored again.
MATCH_COLUMNS = (
    "first_name_std",
    "last_name_std",
    "first_name_alias",
    "email_std",
    "email_key",
    "phone_e164",
    "dob",
    "address_std",
    "postcode_std",
    "city_std",
    "country_code",
)


def record_fingerprints(persons: pd.DataFrame) -> pd.DataFrame:
    """One row per record: unique_id and a 64-bit hash of its match keys."""
    cols = [c for c in MATCH_COLUMNS if c in persons.columns]
    keys = persons[cols].astype("string").fillna("\x00")
    return pd.DataFrame(
        {
            "unique_id": persons["unique_id"].astype(str).to_numpy(),
            "fingerprint": pd.util.hash_pandas_object(keys, index=False).astype("int64").to_numpy(),
        }
    )


@dataclass(frozen=True)
class IncrementalPlan:
    """What an incremental night must do."""

    changed: frozenset[str]  # new or changed records: to be scored against everything
    deleted: frozenset[str]  # records gone from their source: their edges go
    unchanged: int

    @property
    def touched(self) -> frozenset[str]:
        return self.changed | self.deleted


def plan_incremental(previous: pd.DataFrame, current: pd.DataFrame) -> IncrementalPlan:
    """Compare last night's fingerprints with tonight's."""
    prev = pd.Series(
        previous["fingerprint"].to_numpy(),
        index=pd.Index(previous["unique_id"].astype(str)),
        dtype="Int64",  # nullable, so a missing record does not turn 64-bit hashes into floats
    )
    cur_ids = current["unique_id"].astype(str)
    before = prev.reindex(cur_ids.to_numpy())
    now = pd.array(current["fingerprint"].to_numpy(), dtype="Int64")
    same = (before.array == now).fillna(False).to_numpy(dtype=bool)
    changed = set(cur_ids[~same])
    deleted = set(prev.index.difference(pd.Index(cur_ids)))
    return IncrementalPlan(
        changed=frozenset(changed),
        deleted=frozenset(deleted),
        unchanged=len(current) - len(changed),
    )


def carry_edges(previous_edges: pd.DataFrame, plan: IncrementalPlan) -> pd.DataFrame:
    """Stored edges whose two records are both unchanged."""
    touched = plan.touched
    if not touched or previous_edges.empty:
        return previous_edges
    keep = ~(
        previous_edges["unique_id_l"].isin(touched) | previous_edges["unique_id_r"].isin(touched)
    )
    return previous_edges[keep].reset_index(drop=True)


def relink_scope(
    previous_edges: pd.DataFrame,
    new_edges: pd.DataFrame,
    touched: frozenset[str] | set[str],
    threshold: float,
) -> frozenset[str]:
    """Records whose cluster an incremental night must decide again.

    The connected parts, in the graph of last night's and tonight's links at or above
    `threshold` together, that hold a touched (new, changed or deleted) record. Clustering
    (connected components, then the conflict split) is decided per component of tonight's
    accepted links, and each such component lies either wholly inside this scope or wholly
    outside it with exactly last night's records and links; so outside the scope the clusters,
    their keys and their strongest links are last night's. Deleted records are part of the
    scope only as bridges: drop them before clustering.
    """
    seeds = np.asarray(sorted(touched), dtype=object)
    parts = [
        e.loc[
            pd.to_numeric(e["match_probability"], errors="coerce").to_numpy() >= threshold,
            ["unique_id_l", "unique_id_r"],
        ]
        for e in (previous_edges, new_edges)
        if len(e)
    ]
    links = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        {"unique_id_l": [], "unique_id_r": []}
    )
    ids = np.concatenate(
        [
            seeds,
            links["unique_id_l"].astype(str).to_numpy(dtype=object),
            links["unique_id_r"].astype(str).to_numpy(dtype=object),
        ]
    )
    codes, uniques = pd.factorize(ids)
    n, m = len(uniques), len(links)
    if n == 0:
        return frozenset()
    a = codes[len(seeds) : len(seeds) + m]
    b = codes[len(seeds) + m :]
    graph = coo_matrix((np.ones(m, dtype=np.int8), (a, b)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    hit = np.isin(labels, labels[codes[: len(seeds)]])
    return frozenset(uniques[hit].tolist())
