"""Records -> clusters, from scored edges, with the hard-conflict guards.

1. Edges at or above the threshold are accepted, except those whose two records conflict
   under the guard policy (`guards.pair_conflicts`, `GuardPolicy`): a veto.
2. Connected components of the accepted edges.
3. Chaining guard: a component in which any two records conflict (a family joined through a
   record that has no first name or date of birth, say) is rebuilt greedily: its edges are
   taken strongest first and two groups are joined only if no record of one conflicts with a
   record of the other. Weak bridges between people therefore fall away, strong duplicates stay.

The same function serves a full night (edges just scored) and an incremental night (stored
edges + new edges), so the two give the same clusters.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from .guards import (
    CONFLICT_DOB,
    CONFLICT_FIRST_NAME,
    STRICT,
    GuardPolicy,
    NodeAttributes,
    pair_conflicts,
)

__all__ = ["CLUSTER_COLUMNS", "cluster_edges", "cluster_with_metrics"]

CLUSTER_COLUMNS = ["unique_id", "source", "source_record_id", "cluster_key", "match_probability"]

#: Components larger than this are not checked pair by pair; they go straight to the greedy
#: rebuild, which only compares the groups it is about to join.
_FULL_CHECK_MAX = 2000

#: In a split component, a record whose links to two people differ by less than this many
#: bits of match weight is left on its own rather than given to either (see
#: `_isolate_ambiguous`).
AMBIGUITY_MARGIN = 4.0


def _policy(guards: bool | GuardPolicy) -> GuardPolicy:
    if isinstance(guards, GuardPolicy):
        return guards
    return STRICT if guards else GuardPolicy("off")


def cluster_edges(
    nodes: pd.DataFrame,
    edges: pd.DataFrame,
    threshold: float,
    *,
    guards: bool | GuardPolicy = True,
) -> pd.DataFrame:
    """Cluster records from stored edges: one row per node.

    `nodes` needs `unique_id` (plus `source`, `source_record_id` to carry through, and the
    guard columns `first_name_std`, `first_name_alias`, `last_name_std`, `dob` for the guards:
    the standardised persons frame has them all). `edges` needs `unique_id_l`, `unique_id_r`,
    `match_probability`; a pair listed twice counts once, at its highest probability; edges
    naming unknown records are ignored (the caller should drop edges of changed or deleted
    records before re-clustering). Returns `unique_id, source, source_record_id, cluster_key,
    match_probability`: `cluster_key` is the smallest unique_id in the cluster (not stable
    across nights), `match_probability` the probability of the record's strongest link kept
    inside its cluster, 1.0 for a record alone. Figures are in `.attrs["metrics"]`.
    `guards` is a `GuardPolicy` (`guard_policy(model, mode)` gives the model's), True for the
    strict policy or False for none.
    """
    clusters, metrics = cluster_with_metrics(nodes, edges, threshold, guards=guards)
    clusters.attrs["metrics"] = metrics
    return clusters


def cluster_with_metrics(
    nodes: pd.DataFrame,
    edges: pd.DataFrame,
    threshold: float,
    *,
    guards: bool | GuardPolicy = True,
) -> tuple[pd.DataFrame, dict[str, int]]:
    """`cluster_edges`, returning the figures (vetoed edges, split clusters…) separately."""
    policy = _policy(guards)
    guards = policy.active
    if "unique_id" not in nodes.columns:
        raise ValueError("nodes: column 'unique_id' is missing")
    for col in ("unique_id_l", "unique_id_r", "match_probability"):
        if col not in edges.columns:
            raise ValueError(f"edges: column {col!r} is missing")
    missing = [c for c in ("first_name_std", "dob") if c not in nodes.columns]
    if guards and missing:
        raise ValueError(
            f"nodes: guard column(s) {missing} missing; pass the standardised persons frame "
            "(the guards read first names and birth dates) or guards=False"
        )
    nodes = nodes.sort_values("unique_id", kind="stable").reset_index(drop=True)
    ids = nodes["unique_id"].astype("string").to_numpy(dtype=object)
    if pd.Series(ids).duplicated().any():
        row = int(pd.Series(ids).duplicated().to_numpy().argmax())
        raise ValueError(f"nodes: row {row}: field 'unique_id' repeats an earlier record")
    n = len(ids)
    pos = pd.Series(np.arange(n), index=pd.Index(ids))

    li = pd.Series(edges["unique_id_l"].astype("string").to_numpy(dtype=object)).map(pos)
    ri = pd.Series(edges["unique_id_r"].astype("string").to_numpy(dtype=object)).map(pos)
    prob = pd.to_numeric(edges["match_probability"], errors="coerce").to_numpy(dtype=float)
    if "match_weight" in edges.columns:
        weight = pd.to_numeric(edges["match_weight"], errors="coerce").to_numpy(dtype=float)
    else:
        weight = np.full(len(prob), np.nan)
    # A probability of exactly 1.0 (float saturation) still has a finite weight to compare.
    clipped = np.clip(prob, 1e-15, 1 - 1e-15)
    weight = np.where(np.isnan(weight), np.log2(clipped / (1 - clipped)), weight)
    known = (li.notna() & ri.notna()).to_numpy() & ~np.isnan(prob)
    e = pd.DataFrame(
        {
            "a": li.to_numpy()[known].astype(np.int64),
            "b": ri.to_numpy()[known].astype(np.int64),
            "p": prob[known],
            "w": weight[known],
        }
    )
    e = e[e["a"] != e["b"]]
    lo = np.minimum(e["a"].to_numpy(), e["b"].to_numpy())
    hi = np.maximum(e["a"].to_numpy(), e["b"].to_numpy())
    e = pd.DataFrame({"a": lo, "b": hi, "p": e["p"].to_numpy(), "w": e["w"].to_numpy()})
    e = e.sort_values(["a", "b", "w"], ascending=[True, True, False], kind="stable")
    e = e.drop_duplicates(["a", "b"], keep="first")
    metrics: dict[str, int] = {
        "records": n,
        "edges": len(e),
        "edges_unknown_records": int((~known).sum()),
    }
    acc = e[e["p"] >= threshold].reset_index(drop=True)
    metrics["edges_above_threshold"] = len(acc)

    attrs = NodeAttributes(nodes) if guards else None
    if guards and len(acc):
        flags = pair_conflicts(attrs, acc["a"].to_numpy(), acc["b"].to_numpy(), policy)
        metrics["vetoed_edges"] = int((flags != 0).sum())
        metrics["vetoed_dob"] = int(((flags & CONFLICT_DOB) != 0).sum())
        metrics["vetoed_first_name"] = int(((flags & CONFLICT_FIRST_NAME) != 0).sum())
        acc = acc[flags == 0].reset_index(drop=True)
    else:
        metrics.update(vetoed_edges=0, vetoed_dob=0, vetoed_first_name=0)

    labels = _components(n, acc["a"].to_numpy(), acc["b"].to_numpy())
    split = isolated = 0
    if guards and len(acc):
        labels, split, isolated = _split_conflicted(labels, acc, attrs, policy)
    metrics["split_clusters"] = split
    metrics["isolated_ambiguous"] = isolated

    # Cluster key: the smallest unique_id, i.e. the smallest node position (nodes are sorted).
    first_pos = pd.Series(np.arange(n)).groupby(labels).transform("min").to_numpy()
    cluster_key = ids[first_pos] if n else np.array([], dtype=object)

    same = labels[acc["a"].to_numpy()] == labels[acc["b"].to_numpy()] if len(acc) else []
    kept = acc[np.asarray(same, dtype=bool)] if len(acc) else acc
    best = np.ones(n, dtype=float)
    if len(kept):
        strongest = (
            pd.concat(
                [
                    pd.DataFrame({"node": kept["a"], "p": kept["p"]}),
                    pd.DataFrame({"node": kept["b"], "p": kept["p"]}),
                ]
            )
            .groupby("node")["p"]
            .max()
        )
        best[strongest.index.to_numpy()] = strongest.to_numpy()
    metrics["edges_kept"] = len(kept)

    out = pd.DataFrame(
        {
            "unique_id": pd.array(ids, dtype="string"),
            "source": _col_or_na(nodes, "source"),
            "source_record_id": _col_or_na(nodes, "source_record_id"),
            "cluster_key": pd.array(cluster_key, dtype="string"),
            "match_probability": best,
        }
    )
    sizes = out.groupby("cluster_key").size()
    metrics["clusters"] = len(sizes)
    metrics["singletons"] = int((sizes == 1).sum())
    metrics["largest_cluster"] = int(sizes.max()) if len(sizes) else 0
    return out, metrics


def _col_or_na(nodes: pd.DataFrame, col: str) -> pd.arrays.StringArray:
    if col in nodes.columns:
        return pd.array(nodes[col].astype("string").to_numpy(dtype=object), dtype="string")
    return pd.array([pd.NA] * len(nodes), dtype="string")


def _components(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    graph = coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return labels.astype(np.int64)


def _split_conflicted(
    labels: np.ndarray, acc: pd.DataFrame, attrs: NodeAttributes, policy: GuardPolicy
) -> tuple[np.ndarray, int, int]:
    """Rebuild every component that holds a conflicting pair.

    Returns the new labels, the number of components split and the number of ambiguous
    records left on their own.
    """
    sizes = np.bincount(labels)
    big = np.flatnonzero(sizes >= 3)
    if not len(big):
        return labels, 0, 0
    members = pd.DataFrame({"node": np.arange(len(labels)), "comp": labels})
    members = members[np.isin(members["comp"].to_numpy(), big)]
    checkable = members[sizes[members["comp"].to_numpy()] <= _FULL_CHECK_MAX]
    pairs = checkable.merge(checkable, on="comp", suffixes=("_a", "_b"))
    pairs = pairs[pairs["node_a"] < pairs["node_b"]]
    # Every conflicting pair inside a checkable component, found in one vectorised pass; the
    # rebuild below only looks pairs up.
    known: set[tuple[int, int]] = set()
    conflicted: set[int] = set()
    if len(pairs):
        flags = pair_conflicts(
            attrs, pairs["node_a"].to_numpy(), pairs["node_b"].to_numpy(), policy
        )
        hit = flags != 0
        conflicted = set(pairs["comp"].to_numpy()[hit].tolist())
        known = set(
            zip(
                pairs["node_a"].to_numpy()[hit].tolist(),
                pairs["node_b"].to_numpy()[hit].tolist(),
                strict=True,
            )
        )
    huge = set(big[sizes[big] > _FULL_CHECK_MAX].tolist())
    conflicted |= huge
    if not conflicted:
        return labels, 0, 0

    labels = labels.copy()
    next_label = int(labels.max()) + 1
    comp_of_edge = labels[acc["a"].to_numpy()]
    in_scope = np.isin(comp_of_edge, np.fromiter(conflicted, dtype=np.int64))
    sub = acc[in_scope].assign(comp=comp_of_edge[in_scope])
    # Strongest first; ties broken by node positions so the result does not depend on order.
    sub = sub.sort_values(["comp", "w", "a", "b"], ascending=[True, False, True, True])
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(len(sizes) + 1))
    split = isolated = 0
    for comp, group in sub.groupby("comp", sort=True):
        nodes = order[bounds[comp] : bounds[comp + 1]].tolist()
        if comp in huge:
            conflict = _vector_conflict(attrs, policy)
        else:
            conflict = _lookup_conflict(known)
        a, b, w = group["a"].tolist(), group["b"].tolist(), group["w"].tolist()
        groups = _greedy_merge(nodes, a, b, conflict)
        if len(groups) > 1:
            split += 1
            groups, n_iso = _isolate_ambiguous(groups, a, b, w, conflict)
            isolated += n_iso
        # Keep the component's label for the group holding its smallest node; new labels
        # for the others.
        for g in sorted(groups, key=min)[1:]:
            labels[np.asarray(g)] = next_label
            next_label += 1
    return labels, split, isolated


def _lookup_conflict(known: set[tuple[int, int]]):
    def conflict(xs: list[int], ys: list[int]) -> bool:
        return any((x, y) in known if x < y else (y, x) in known for x in xs for y in ys)

    return conflict


def _vector_conflict(attrs: NodeAttributes, policy: GuardPolicy):
    def conflict(xs: list[int], ys: list[int]) -> bool:
        left = np.repeat(np.asarray(xs), len(ys))
        right = np.tile(np.asarray(ys), len(xs))
        return bool(pair_conflicts(attrs, left, right, policy).any())

    return conflict


def _isolate_ambiguous(
    groups: list[list[int]], a: list[int], b: list[int], w: list[float], conflict
) -> tuple[list[list[int]], int]:
    """Take out records that could belong to two of the people a component was split into.

    A record whose best link into another group (one it does not conflict with) is nearly as
    strong as its best link into its own group (within `AMBIGUITY_MARGIN` bits) has nothing
    that tells the two people apart: typically an e-mail-only record with a couple's shared
    address. Guessing would merge the two people's histories, so it stays on its own. Groups
    that fall apart without it are re-split into their connected parts.
    """
    group_of = {x: i for i, g in enumerate(groups) for x in g}
    best: dict[int, dict[int, float]] = {}
    for x, y, wt in zip(a, b, w, strict=True):
        for u, v in ((x, y), (y, x)):
            per = best.setdefault(u, {})
            g = group_of[v]
            if wt > per.get(g, -np.inf):
                per[g] = wt
    ambiguous: set[int] = set()
    for node, per in best.items():
        own = group_of[node]
        own_best = per.get(own, -np.inf)
        for g, wt in per.items():
            if g != own and wt >= own_best - AMBIGUITY_MARGIN and not conflict([node], groups[g]):
                ambiguous.add(node)
                break
    if not ambiguous:
        return groups, 0
    kept_edges = [
        (x, y)
        for x, y in zip(a, b, strict=True)
        if x not in ambiguous and y not in ambiguous and group_of[x] == group_of[y]
    ]
    out = [[x] for x in sorted(ambiguous)]
    for g in groups:
        members = [x for x in g if x not in ambiguous]
        if members:
            out.extend(_small_components(members, kept_edges))
    return out, len(ambiguous)


def _small_components(members: list[int], edges: list[tuple[int, int]]) -> list[list[int]]:
    """Connected parts of a handful of nodes (plain union-find; scipy is slower at this size)."""
    parent = {x: x for x in members}

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for x, y in edges:
        if x in parent and y in parent:
            rx, ry = find(x), find(y)
            if rx != ry:
                parent[max(rx, ry)] = min(rx, ry)
    parts: dict[int, list[int]] = {}
    for x in members:
        parts.setdefault(find(x), []).append(x)
    return [sorted(p) for p in parts.values()]


def _greedy_merge(nodes: list[int], a: list[int], b: list[int], conflict) -> list[list[int]]:
    """Join the component's records along its links, strongest first, never joining two
    groups that hold a conflicting pair."""
    parent = {x: x for x in nodes}
    group = {x: [x] for x in nodes}

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for x, y in zip(a, b, strict=True):
        rx, ry = find(x), find(y)
        if rx == ry or conflict(group[rx], group[ry]):
            continue
        if len(group[rx]) < len(group[ry]):
            rx, ry = ry, rx
        parent[ry] = rx
        group[rx].extend(group.pop(ry))
    return [sorted(g) for g in group.values()]
