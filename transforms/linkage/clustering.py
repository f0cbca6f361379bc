"""Records -> clusters, from scored edges, with the hard-conflict guards.

1. Edges at or above the threshold are accepted, except those whose two records conflict
   under the guard policy (`guards.pair_conflicts`, `GuardPolicy`): a veto.
2. Connected components of the accepted edges.
3. Chaining guard: a component in which any two records conflict (a family joined through a
   record that has no first name or date of birth, say) is rebuilt greedily: its edges are
   taken strongest first and two groups are joined only if no record of one conflicts with a
   record of the other. Weak bridges between people therefore fall away, strong duplicates stay.

A data steward's overrides (`overrides.OverrideSet`) win over all of it: a must-link is an
accepted edge no guard vetoes, taken first in a rebuild, and guard conflicts between records it
joins are ignored; a cannot-link is a conflict like the guards', applied even with the guards off.

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
from .overrides import OverrideSet

#: Veto bit of a steward's cannot-link (bits 1 and 2 are the guards').
CONFLICT_OVERRIDE = 4
#: Weight given to a must-link: stronger than any scored link, so a rebuild takes it first.
MUST_WEIGHT = 1e9

__all__ = [
    "CLUSTER_COLUMNS",
    "REVIEW_COLUMNS",
    "cluster_edges",
    "cluster_with_metrics",
    "cluster_with_review",
]

CLUSTER_COLUMNS = ["unique_id", "source", "source_record_id", "cluster_key", "match_probability"]

#: Components larger than this are not checked pair by pair; they go straight to the greedy
#: rebuild, which only compares the groups it is about to join.
_FULL_CHECK_MAX = 2000

#: In a split component, a record whose links to two people differ by less than this many
#: bits of match weight is left on its own rather than given to either (see
#: `_isolate_ambiguous`).
AMBIGUITY_MARGIN = 4.0


def check_columns(node_columns: list[str], edge_columns: list[str], guards_active: bool) -> None:
    """Refuse nodes and edges without the columns clustering reads (the same refusals on every
    engine)."""
    if "unique_id" not in node_columns:
        raise ValueError("nodes: column 'unique_id' is missing")
    for col in ("unique_id_l", "unique_id_r", "match_probability"):
        if col not in edge_columns:
            raise ValueError(f"edges: column {col!r} is missing")
    missing = [c for c in ("first_name_std", "dob") if c not in node_columns]
    if guards_active and missing:
        raise ValueError(
            f"nodes: guard column(s) {missing} missing; pass the standardised persons frame "
            "(the guards read first names and birth dates) or guards=False"
        )


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
    overrides: OverrideSet | None = None,
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
    strict policy or False for none. `overrides` are a steward's must- and cannot-links
    (`overrides.resolve_overrides`); those naming a record not among `nodes` are skipped.
    """
    clusters, metrics = cluster_with_metrics(
        nodes, edges, threshold, guards=guards, overrides=overrides
    )
    clusters.attrs["metrics"] = metrics
    return clusters


def cluster_with_metrics(
    nodes: pd.DataFrame,
    edges: pd.DataFrame,
    threshold: float,
    *,
    guards: bool | GuardPolicy = True,
    overrides: OverrideSet | None = None,
) -> tuple[pd.DataFrame, dict[str, int]]:
    """`cluster_edges`, returning the figures (vetoed edges, split clusters…) separately."""
    out, metrics, _ = cluster_with_review(
        nodes, edges, threshold, guards=guards, overrides=overrides
    )
    return out, metrics


#: Scored pairs below the threshold by at most this many bits of match weight go to the review
#: queue as "near the threshold" (0.8 -> from about 0.33), the most probable first, at most
#: `REVIEW_NEAR_MAX` of them.
REVIEW_NEAR_BITS = 3.0
REVIEW_NEAR_MAX = 5000


def cluster_with_review(
    nodes: pd.DataFrame,
    edges: pd.DataFrame,
    threshold: float,
    *,
    guards: bool | GuardPolicy = True,
    overrides: OverrideSet | None = None,
) -> tuple[pd.DataFrame, dict[str, int], pd.DataFrame]:
    """`cluster_with_metrics` plus the review queue: the pairs a steward may want to look at
    (`unique_id_l, unique_id_r, match_probability, reason`): scored near the threshold,
    vetoed, kept apart when a cluster was split, or joined by a must-link."""
    policy = _policy(guards)
    guards = policy.active
    check_columns(list(nodes.columns), list(edges.columns), guards)
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
    rules = _Rules(attrs, policy, pos, n, overrides)
    metrics["overrides_must_applied"] = len(rules.must_pairs)
    metrics["overrides_cannot_applied"] = len(rules.cannot_pairs)
    if len(rules.must_pairs):
        # A must-link is an accepted edge of its own, replacing any scored one.
        forced = pd.DataFrame(
            {
                "a": rules.must_pairs[:, 0],
                "b": rules.must_pairs[:, 1],
                "p": 1.0,
                "w": MUST_WEIGHT,
            }
        )
        acc = pd.concat([forced, acc], ignore_index=True).drop_duplicates(
            ["a", "b"], keep="first"
        )
        acc = acc.reset_index(drop=True)
    review: list[pd.DataFrame] = []
    if len(acc) and (guards or rules.has_overrides):
        flags = rules.flags(acc["a"].to_numpy(), acc["b"].to_numpy())
        metrics["vetoed_edges"] = int((flags != 0).sum())
        metrics["vetoed_dob"] = int(((flags & CONFLICT_DOB) != 0).sum())
        metrics["vetoed_first_name"] = int(((flags & CONFLICT_FIRST_NAME) != 0).sum())
        metrics["vetoed_by_override"] = int(((flags & CONFLICT_OVERRIDE) != 0).sum())
        vetoed = acc[flags != 0]
        if len(vetoed):
            review.append(vetoed.assign(reason=[_veto_reason(f) for f in flags[flags != 0]]))
        acc = acc[flags == 0].reset_index(drop=True)
    else:
        metrics.update(vetoed_edges=0, vetoed_dob=0, vetoed_first_name=0, vetoed_by_override=0)

    labels = _components(n, acc["a"].to_numpy(), acc["b"].to_numpy())
    split = isolated = 0
    if (guards or rules.has_overrides) and len(acc):
        labels, split, isolated = _split_conflicted(labels, acc, rules)
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
    if len(acc):
        apart = acc[~np.asarray(same, dtype=bool)]
        if len(apart):
            review.append(apart.assign(reason="kept apart when a guard split the cluster"))
    t = min(max(threshold, 1e-12), 1 - 1e-12)
    floor = np.log2(t / (1 - t)) - REVIEW_NEAR_BITS
    near = e[(e["p"] < threshold) & (e["w"] >= floor)]
    if len(near):
        near = near.sort_values(["p", "a", "b"], ascending=[False, True, True]).head(
            REVIEW_NEAR_MAX
        )
        review.append(near.assign(reason="scored near the threshold"))
    review_frame = _review_frame(review, ids, rules)

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
    metrics["review_pairs"] = len(review_frame)
    return out, metrics, review_frame


def _veto_reason(flag: int) -> str:
    parts = []
    if flag & CONFLICT_OVERRIDE:
        parts.append("cannot-link override")
    if flag & CONFLICT_FIRST_NAME:
        parts.append("different first name")
    if flag & CONFLICT_DOB:
        parts.append("different date of birth")
    return "vetoed: " + ", ".join(parts)


REVIEW_COLUMNS = ["unique_id_l", "unique_id_r", "match_probability", "reason"]


def _review_frame(parts: list[pd.DataFrame], ids: np.ndarray, rules: _Rules) -> pd.DataFrame:
    """The pairs clustering decided against the score (and every applied must-link), by id."""
    if rules.must_pairs is not None and len(rules.must_pairs):
        parts = [
            *parts,
            pd.DataFrame(
                {
                    "a": rules.must_pairs[:, 0],
                    "b": rules.must_pairs[:, 1],
                    "p": 1.0,
                    "reason": "joined by a must-link override",
                }
            ),
        ]
    if not parts:
        return pd.DataFrame({c: pd.Series([], dtype="string") for c in REVIEW_COLUMNS}).astype(
            {"match_probability": "float64"}
        )
    r = pd.concat([x[["a", "b", "p", "reason"]] for x in parts], ignore_index=True)
    r = r.drop_duplicates(["a", "b"], keep="first")
    return pd.DataFrame(
        {
            "unique_id_l": pd.array(ids[r["a"].to_numpy()], dtype="string"),
            "unique_id_r": pd.array(ids[r["b"].to_numpy()], dtype="string"),
            "match_probability": r["p"].to_numpy(dtype=float),
            "reason": pd.array(r["reason"].to_numpy(dtype=object), dtype="string"),
        }
    )


class _Rules:
    """Which pairs of node positions may not share a cluster: the guard policy's conflicts,
    minus those between records a must-link joins, plus the cannot-links."""

    def __init__(
        self,
        attrs: NodeAttributes | None,
        policy: GuardPolicy,
        pos: pd.Series,
        n: int,
        overrides: OverrideSet | None,
    ) -> None:
        self.attrs = attrs
        self.policy = policy if attrs is not None else GuardPolicy("off")
        self.n = n
        self.must_pairs = np.zeros((0, 2), dtype=np.int64)
        self.cannot_pairs = np.zeros((0, 2), dtype=np.int64)
        self.must_group = None
        self.protected: set[int] = set()
        if overrides is None or not len(overrides):
            return

        def positions(pairs):
            out = []
            for a, b, _ in pairs:
                pa, pb = pos.get(a), pos.get(b)
                if pa is not None and pb is not None:
                    out.append((min(int(pa), int(pb)), max(int(pa), int(pb))))
            return np.asarray(sorted(set(out)), dtype=np.int64).reshape(-1, 2)

        self.must_pairs = positions(overrides.must)
        self.cannot_pairs = positions(overrides.cannot)
        if len(self.must_pairs):
            group = np.full(n, -1, dtype=np.int64)
            for uid, root in overrides.group_of.items():
                p_, r_ = pos.get(uid), pos.get(root)
                if p_ is not None:
                    # Members absent tonight leave their group's root unknown: use its id hash.
                    group[int(p_)] = int(r_) if r_ is not None else -2 - (hash(root) & 0xFFFFFFF)
            self.must_group = group
            self.protected = set(np.flatnonzero(group != -1).tolist())
        self._cannot_keys = np.sort(self.cannot_pairs[:, 0] * n + self.cannot_pairs[:, 1])

    @property
    def has_overrides(self) -> bool:
        return bool(len(self.must_pairs) or len(self.cannot_pairs))

    def flags(self, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        left = np.asarray(left, dtype=np.int64)
        right = np.asarray(right, dtype=np.int64)
        if self.attrs is not None and self.policy.active:
            out = pair_conflicts(self.attrs, left, right, self.policy)
        else:
            out = np.zeros(len(left), dtype=np.uint8)
        if self.must_group is not None and len(left):
            g = self.must_group
            same = (g[left] != -1) & (g[left] == g[right])
            out = np.where(same, 0, out).astype(np.uint8)
        if len(self.cannot_pairs) and len(left):
            lo, hi = np.minimum(left, right), np.maximum(left, right)
            hit = np.isin(lo * self.n + hi, self._cannot_keys)
            out = out | np.where(hit, CONFLICT_OVERRIDE, 0).astype(np.uint8)
        return out

    def conflicts(self, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        return self.flags(left, right) != 0


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
    labels: np.ndarray, acc: pd.DataFrame, rules: _Rules
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
        hit = rules.conflicts(pairs["node_a"].to_numpy(), pairs["node_b"].to_numpy())
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
            conflict = _vector_conflict(rules)
        else:
            conflict = _lookup_conflict(known)
        a, b, w = group["a"].tolist(), group["b"].tolist(), group["w"].tolist()
        groups = _greedy_merge(nodes, a, b, conflict)
        if len(groups) > 1:
            split += 1
            groups, n_iso = _isolate_ambiguous(groups, a, b, w, conflict, rules.protected)
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


def _vector_conflict(rules: _Rules):
    def conflict(xs: list[int], ys: list[int]) -> bool:
        left = np.repeat(np.asarray(xs), len(ys))
        right = np.tile(np.asarray(ys), len(xs))
        return bool(rules.conflicts(left, right).any())

    return conflict


def _isolate_ambiguous(
    groups: list[list[int]],
    a: list[int],
    b: list[int],
    w: list[float],
    conflict,
    protected: set[int] | frozenset[int] = frozenset(),
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
        if node in protected:
            continue  # a must-link decides where this record belongs
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
