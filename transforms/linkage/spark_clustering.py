"""Records -> clusters on Spark: `clustering.cluster_with_review`'s result, computed where the data is.

The rule is the driver-side one (`clustering`: veto, connected components, chaining guard,
overrides); this module decides the same things with Spark holding every record and every edge,
and the driver holding only what needs a sequential decision.

On Spark:
1. Edges: ids as text, pairs named smaller id first, a pair listed twice kept once at its
   highest match weight (ties: the first listed), the weight filled in from the probability
   where missing with the same numpy expression (a pandas UDF), edges naming unknown records
   counted and dropped.
2. The veto: every edge at or above the threshold, plus a steward's must-links as edges of
   probability 1 replacing a scored one, gets the guard attributes of its two records joined
   on, and `_Rules.flags` (the guard policy's `pair_conflicts`, must-link groups, cannot-links)
   decides it batch by batch in `mapInPandas`.
3. Connected components of the edges left: Splink's Spark clustering
   (`cluster_pairwise_predictions_at_threshold`) over the records that have one; its cluster
   id is the smallest unique_id (a record without a link is its own cluster).
4. Components of 3 to `clustering._FULL_CHECK_MAX` records are self-joined on Spark and every
   pair flagged as in 2; those holding a conflicting pair, and every component above
   `_FULL_CHECK_MAX` (the numpy code rebuilds those unchecked), are the only ones collected.
5. Per record: cluster_key (the component's smallest unique_id) and match_probability (its
   strongest accepted link, 1.0 alone) for every record outside a rebuilt component.

On the driver: the rebuilt components (`_split_conflicted`, the greedy rebuild and
`_isolate_ambiguous`, unchanged), their nodes and accepted edges only: memory bounded by the
conflicted components' records and links, not by the data. Also the review queue's rows (every
vetoed pair, the pairs kept apart, at most `REVIEW_NEAR_MAX` near the threshold, the must-links),
the overrides' records, and the figures.

Equal to `cluster_with_review` on the same data (tests/transforms/test_spark_clustering.py), with
these precisions: ids are compared as text (Spark's `CAST(... AS STRING)`), a pair listed twice
with equal weights keeps the row first in the input DataFrame's partition order (pandas: first
row), and a node without a unique_id is refused here.
"""

from __future__ import annotations

import uuid
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from . import clustering
from .clustering import (
    CLUSTER_COLUMNS,
    CONFLICT_OVERRIDE,
    MUST_WEIGHT,
    REVIEW_NEAR_BITS,
    REVIEW_NEAR_MAX,
    _components,
    _policy,
    check_columns,
    _review_frame,
    _Rules,
    _split_conflicted,
    _veto_reason,
)
from .guards import (
    CONFLICT_DOB,
    CONFLICT_FIRST_NAME,
    GUARD_NODE_COLUMNS,
    GuardPolicy,
    NodeAttributes,
)
from .overrides import OverrideSet

if TYPE_CHECKING:
    from pyspark.sql import DataFrame as SparkDataFrame

__all__ = ["cluster_on_spark"]

#: The guard columns carried with a record (what `NodeAttributes` reads).
_GUARDS = tuple(GUARD_NODE_COLUMNS)


def cluster_on_spark(
    nodes: SparkDataFrame,
    edges: SparkDataFrame,
    threshold: float,
    *,
    guards: bool | GuardPolicy,
    overrides: OverrideSet | None,
    db_api: Any,
) -> tuple[SparkDataFrame, dict[str, int], pd.DataFrame]:
    """`cluster_with_review` for Spark DataFrames: (clusters, metrics, review).

    `nodes` holds `unique_id` (plus `source`, `source_record_id` carried through, and the guard
    columns `first_name_std`, `first_name_alias`, `last_name_std`, `dob`); `edges` holds
    `unique_id_l, unique_id_r, match_probability` and optionally `match_weight`. `db_api` is the
    job's Splink `SparkAPI` (`spark_session.spark_job(...).db_api()`): its session runs
    everything; Splink's tables and the clusters are written as Parquet under its checkpoint
    folder, the steps' own tables are cached and released before returning.
    Returns the clusters as a Spark DataFrame of `CLUSTER_COLUMNS`, one row per record in no
    particular order (read from that folder: write it out before the job ends), the same
    metrics as `cluster_with_review`, and its review frame (pandas: a bounded queue).

    Python workers (the veto's batches) import this package: on a cluster the executors need
    the project installed, and locally `PYSPARK_PYTHON` must name an interpreter that has it.
    """
    from pyspark import StorageLevel

    policy = _policy(guards)
    check_columns(list(nodes.columns), list(edges.columns), policy.active)
    held: list[SparkDataFrame] = []

    def keep(df: SparkDataFrame) -> SparkDataFrame:
        # computed once for the steps that read it; released before returning
        held.append(df.persist(StorageLevel.MEMORY_AND_DISK))
        return held[-1]

    try:
        return _cluster(nodes, edges, float(threshold), policy, overrides, db_api, keep)
    finally:
        for df in held:
            df.unpersist()


def _cluster(nodes, edges, threshold, policy, overrides, db_api, keep):
    """`cluster_on_spark`'s steps; `keep` caches a DataFrame that several steps read."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    spark = db_api.spark
    active = policy.active
    run = uuid.uuid4().hex[:8]

    def text(df: SparkDataFrame, col: str):
        return F.col(col).cast("string") if col in df.columns else F.lit(None).cast("string")

    nd = keep(
        nodes.select(
            F.col("unique_id").cast("string").alias("unique_id"),
            text(nodes, "source").alias("source"),
            text(nodes, "source_record_id").alias("source_record_id"),
            *(text(nodes, c).alias(c) for c in _GUARDS),
        )
    )
    agg = nd.agg(
        F.count(F.lit(1)).alias("n"),
        F.count_distinct("unique_id").alias("distinct"),
        F.count("unique_id").alias("named"),
    ).first()
    n = int(agg["n"])
    if int(agg["named"]) != n:
        raise ValueError("nodes: field 'unique_id' is empty on some record")
    if int(agg["distinct"]) != n:
        dup = nd.groupBy("unique_id").count().filter("count > 1").agg(F.min("unique_id")).first()[0]
        raise ValueError(f"nodes: field 'unique_id' repeats an earlier record ({dup!r})")
    attrs = nd.select("unique_id", *_GUARDS)

    # --- 1. edges: known records, one row per pair at its highest weight --------------------
    weight_udf = F.pandas_udf(_weight_from_probability, T.DoubleType())
    p = F.col("match_probability").try_cast("double")
    mw = (
        F.col("match_weight").try_cast("double")
        if "match_weight" in edges.columns
        else F.lit(None).cast("double")
    )
    raw = edges.select(
        F.col("unique_id_l").cast("string").alias("l"),
        F.col("unique_id_r").cast("string").alias("r"),
        p.alias("p"),
        mw.alias("mw"),
        F.monotonically_increasing_id().alias("row"),
    )
    ids = nd.select("unique_id")
    tagged = keep(
        raw.join(ids.select(F.col("unique_id").alias("l"), F.lit(True).alias("_lk")), "l", "left")
        .join(ids.select(F.col("unique_id").alias("r"), F.lit(True).alias("_rk")), "r", "left")
        .withColumn(
            "known",
            F.col("_lk").isNotNull()
            & F.col("_rk").isNotNull()
            & F.col("p").isNotNull()
            & ~F.isnan("p"),
        )
    )
    tally = tagged.agg(
        F.count(F.lit(1)).alias("n"), F.sum(F.col("known").cast("int")).alias("known")
    ).first()
    known = tagged.filter("known")
    best_first = _window_first(["l", "r"], [F.col("w").desc(), F.col("row").asc()])
    e = (
        known.filter(F.col("l") != F.col("r"))
        .select(
            F.least("l", "r").alias("l"),
            F.greatest("l", "r").alias("r"),
            "p",
            F.when(F.col("mw").isNull() | F.isnan("mw"), weight_udf("p"))
            .otherwise(F.col("mw"))
            .alias("w"),
            "row",
        )
        .withColumn("_k", best_first)
        .filter("_k = 1")
        .select("l", "r", "p", "w")
    )
    e = keep(e)
    counts = e.agg(
        F.count(F.lit(1)).alias("edges"),
        F.sum(F.when(F.col("p") >= F.lit(threshold), 1).otherwise(0)).alias("above"),
    ).first()
    metrics: dict[str, int] = {
        "records": n,
        "edges": int(counts["edges"]),
        "edges_unknown_records": int(tally["n"]) - int(tally["known"] or 0),
        "edges_above_threshold": int(counts["above"] or 0),
    }

    # --- 2. the veto: guards, must-links as edges, cannot-links as conflicts -----------------
    must_pairs, cannot_pairs = _present_overrides(nd, overrides)
    metrics["overrides_must_applied"] = len(must_pairs)
    metrics["overrides_cannot_applied"] = len(cannot_pairs)
    has_overrides = bool(must_pairs or cannot_pairs)
    pair_schema = "l string, r string, p double, w double, must boolean"
    acc = e.filter(F.col("p") >= F.lit(threshold)).select(
        "l", "r", "p", "w", F.lit(False).alias("must")
    )
    if must_pairs:
        forced = spark.createDataFrame(
            [(a, b, 1.0, MUST_WEIGHT, True) for a, b in must_pairs], pair_schema
        )
        acc = forced.unionByName(acc.join(forced.select("l", "r"), ["l", "r"], "left_anti"))
    if active or has_overrides:
        acc = _flag_pairs(acc, attrs, policy, overrides, ["l", "r", "p", "w", "must"])
    else:
        acc = acc.withColumn("flag", F.lit(0))
    acc = keep(acc)
    n_acc = acc.count()
    review: list[pd.DataFrame] = []
    vetoed = (
        acc.filter(F.col("flag") != 0)
        .orderBy(F.col("must").desc(), "l", "r")
        .select("l", "r", "p", "flag")
        .toPandas()
    )
    flags = vetoed["flag"].to_numpy(dtype=np.int64)
    metrics["vetoed_edges"] = len(flags)
    metrics["vetoed_dob"] = int(((flags & CONFLICT_DOB) != 0).sum())
    metrics["vetoed_first_name"] = int(((flags & CONFLICT_FIRST_NAME) != 0).sum())
    metrics["vetoed_by_override"] = int(((flags & CONFLICT_OVERRIDE) != 0).sum())
    if len(vetoed):
        review.append(vetoed.assign(reason=[_veto_reason(int(f)) for f in vetoed["flag"]]))
    kept_edges = acc.filter(F.col("flag") == 0).select("l", "r", "p", "w", "must")
    n_accepted = n_acc - metrics["vetoed_edges"]

    # --- 3. connected components: Splink's Spark clustering ---------------------------------
    from splink.clustering import cluster_pairwise_predictions_at_threshold

    # Only records with an accepted link take part; every other record is a cluster of its own.
    in_play = (
        kept_edges.select(F.col("l").alias("unique_id"))
        .unionByName(kept_edges.select(F.col("r").alias("unique_id")))
        .distinct()
    )
    cc = cluster_pairwise_predictions_at_threshold(
        in_play,
        kept_edges.select(
            F.col("l").alias("unique_id_l"),
            F.col("r").alias("unique_id_r"),
            F.col("p").alias("match_probability"),
        ),
        db_api=db_api,
        node_id_column_name="unique_id",
        # the edges are already the accepted ones (threshold, veto, must-links)
        threshold_match_probability=None,
    )
    comp = ids.join(
        spark.table(cc.physical_name).select("unique_id", "cluster_id"), "unique_id", "left"
    ).select("unique_id", F.coalesce("cluster_id", "unique_id").alias("cluster_id"))
    comp = keep(
        comp.join(comp.groupBy("cluster_id").agg(F.count(F.lit(1)).alias("size")), "cluster_id")
    )

    # --- 4. the chaining guard: only conflicted components go to the driver -----------------
    split = isolated = 0
    apart = pd.DataFrame({"l": [], "r": [], "p": [], "must": []})
    decided = None
    if (active or has_overrides) and n_accepted:
        conflicted = keep(_conflicted_components(comp, attrs, policy, overrides))
        sub_nodes = (
            comp.join(F.broadcast(conflicted), "cluster_id", "left_semi")
            .join(attrs, "unique_id")
            .select("unique_id", *_GUARDS)
            .toPandas()
        )
        if len(sub_nodes):
            sub_edges = (
                kept_edges.join(
                    comp.join(F.broadcast(conflicted), "cluster_id", "left_semi")
                    .select(F.col("unique_id").alias("l")),
                    "l",
                    "left_semi",
                )
                .toPandas()
            )
            out, apart, split, isolated = _decide_on_driver(sub_nodes, sub_edges, policy, overrides)
            decided = spark.createDataFrame(
                out, "unique_id string, sub_key string, sub_p double"
            )
    metrics["split_clusters"] = split
    metrics["isolated_ambiguous"] = isolated

    # --- 5. cluster_key and match_probability per record ------------------------------------
    ends = kept_edges.select(F.col("l").alias("unique_id"), "p").unionByName(
        kept_edges.select(F.col("r").alias("unique_id"), "p")
    )
    best = ends.groupBy("unique_id").agg(F.max("p").alias("best"))
    clusters = nd.select("unique_id", "source", "source_record_id").join(comp, "unique_id")
    clusters = clusters.join(best, "unique_id", "left")
    key = F.col("cluster_id")
    prob = F.coalesce(F.col("best"), F.lit(1.0))
    if decided is not None:
        clusters = clusters.join(decided, "unique_id", "left")
        key = F.coalesce(F.col("sub_key"), key)
        prob = F.when(F.col("sub_key").isNotNull(), F.col("sub_p")).otherwise(prob)
    clusters = _materialise(
        db_api,
        clusters.select(
            "unique_id",
            "source",
            "source_record_id",
            key.alias("cluster_key"),
            prob.cast("double").alias("match_probability"),
        ),
        f"__scv_clusters_{run}",
    )

    metrics["edges_kept"] = n_accepted - len(apart)
    if len(apart):
        review.append(apart.assign(reason="kept apart when a guard split the cluster"))

    t = min(max(threshold, 1e-12), 1 - 1e-12)
    floor = float(np.log2(t / (1 - t)) - REVIEW_NEAR_BITS)
    near = (
        e.filter((F.col("p") < F.lit(threshold)) & (F.col("w") >= F.lit(floor)))
        .orderBy(F.col("p").desc(), "l", "r")
        .limit(REVIEW_NEAR_MAX)
        .select("l", "r", "p")
        .toPandas()
    )
    if len(near):
        review.append(near.assign(reason="scored near the threshold"))
    review_frame = _review(review, must_pairs)

    sizes = clusters.groupBy("cluster_key").agg(F.count(F.lit(1)).alias("size"))
    stats = sizes.agg(
        F.count(F.lit(1)).alias("clusters"),
        F.sum(F.when(F.col("size") == 1, 1).otherwise(0)).alias("singletons"),
        F.max("size").alias("largest"),
    ).first()
    metrics["clusters"] = int(stats["clusters"])
    metrics["singletons"] = int(stats["singletons"] or 0)
    metrics["largest_cluster"] = int(stats["largest"] or 0)
    metrics["review_pairs"] = len(review_frame)
    return clusters.select(*CLUSTER_COLUMNS), metrics, review_frame


def _materialise(db_api: Any, df: SparkDataFrame, name: str) -> SparkDataFrame:
    """Write `df` as Parquet where the job's Splink tables go, and read it back: each step's
    result is computed once, and its lineage does not grow into the next step's plan."""
    folder = str(db_api._get_checkpoint_dir_path(df)).rstrip("/")
    path = f"{folder}/{name}"
    df.write.mode("overwrite").parquet(path)
    return db_api.spark.read.parquet(path)


def _window_first(keys: list[str], order: list[Any]):
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    return F.row_number().over(Window.partitionBy(*keys).orderBy(*order))


def _weight_from_probability(p: pd.Series) -> pd.Series:
    """`cluster_with_review`'s weight for an edge without one: log2 odds of the clipped
    probability (a probability of exactly 1.0 still gets a finite weight)."""
    prob = p.to_numpy(dtype=float)
    clipped = np.clip(prob, 1e-15, 1 - 1e-15)
    return pd.Series(np.log2(clipped / (1 - clipped)), index=p.index)


def _present_overrides(
    nd: SparkDataFrame, overrides: OverrideSet | None
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """The must- and cannot-link pairs whose two records are both among the nodes, each pair
    smaller id first, sorted (`_Rules`' `must_pairs` / `cannot_pairs`, by id)."""
    if overrides is None or not len(overrides):
        return [], []
    from pyspark.sql import functions as F

    named = sorted({x for a, b, _ in (*overrides.must, *overrides.cannot) for x in (a, b)})
    wanted = nd.sparkSession.createDataFrame([(x,) for x in named], "unique_id string")
    present = {
        r["unique_id"]
        for r in nd.select("unique_id").join(F.broadcast(wanted), "unique_id", "left_semi").collect()
    }

    def pairs(items) -> list[tuple[str, str]]:
        return sorted(
            {(min(a, b), max(a, b)) for a, b, _ in items if a in present and b in present}
        )

    return pairs(overrides.must), pairs(overrides.cannot)


def _flag_pairs(
    pairs: SparkDataFrame,
    attrs: SparkDataFrame,
    policy: GuardPolicy,
    overrides: OverrideSet | None,
    keep: list[str],
) -> SparkDataFrame:
    """`pairs` (`l`, `r`, …) with `flag`: `_Rules.flags` of the two records, computed in
    batches by `mapInPandas` on the records' guard attributes joined onto each pair."""
    from pyspark.sql import functions as F

    def side(suffix: str):
        return attrs.select(
            F.col("unique_id").alias(suffix), *(F.col(c).alias(f"{c}_{suffix}") for c in _GUARDS)
        )

    joined = pairs.join(side("l"), "l").join(side("r"), "r")
    types = dict(pairs.dtypes)
    schema = ", ".join(f"`{c}` {types[c]}" for c in keep) + ", flag int"

    def flag_batches(batches):
        for pdf in batches:
            out = pdf[keep].copy()
            out["flag"] = _batch_flags(pdf, policy, overrides).astype(np.int32)
            yield out

    return joined.mapInPandas(flag_batches, schema)


def _batch_flags(pdf: pd.DataFrame, policy: GuardPolicy, overrides: OverrideSet | None) -> np.ndarray:
    """`_Rules(...).flags(l, r)` for one batch of pairs with both records' guard columns
    (`<column>_l`, `<column>_r`), over a node table of the batch's records."""
    if not len(pdf):
        return np.zeros(0, dtype=np.uint8)
    sides = [
        pd.DataFrame(
            {"unique_id": pdf[s].astype(object).to_numpy(), **{c: pdf[f"{c}_{s}"] for c in _GUARDS}}
        )
        for s in ("l", "r")
    ]
    local = pd.concat(sides, ignore_index=True).drop_duplicates("unique_id")
    rules, pos = _rules_for(local, policy, overrides)
    left = pos.loc[pdf["l"].astype(object).to_numpy()].to_numpy()
    right = pos.loc[pdf["r"].astype(object).to_numpy()].to_numpy()
    return rules.flags(left, right)


def _rules_for(
    local: pd.DataFrame, policy: GuardPolicy, overrides: OverrideSet | None
) -> tuple[_Rules, pd.Series]:
    """`_Rules` over a subset of the records (one batch, or the rebuilt components), with the
    positions it uses. The roots of the must-link groups its records belong to are added as
    records without attributes, so that two records are in one group exactly when they share
    a root, as with every record present (no position stands for a root: no hash of its id)."""
    local = local.reset_index(drop=True)
    if overrides is not None and overrides.group_of:
        have = set(local["unique_id"].tolist())
        roots = {overrides.group_of[x] for x in have if x in overrides.group_of} - have
        if roots:
            extra = pd.DataFrame({"unique_id": sorted(roots)})
            local = pd.concat([local, extra], ignore_index=True)
    local = local.sort_values("unique_id", kind="stable").reset_index(drop=True)
    ids = local["unique_id"].to_numpy(dtype=object)
    pos = pd.Series(np.arange(len(ids)), index=pd.Index(ids))
    attrs = NodeAttributes(local) if policy.active else None
    return _Rules(attrs, policy, pos, len(ids), overrides), pos


def _conflicted_components(
    comp: SparkDataFrame, attrs: SparkDataFrame, policy: GuardPolicy, overrides: OverrideSet | None
) -> SparkDataFrame:
    """Cluster ids of the components the chaining guard rebuilds, as `_split_conflicted` picks
    them: 3 to `_FULL_CHECK_MAX` records with a conflicting pair among them (every pair checked,
    a self-join on Spark), or more than `_FULL_CHECK_MAX` records (rebuilt unchecked)."""
    from pyspark.sql import functions as F

    full_max = clustering._FULL_CHECK_MAX
    members = comp.filter((F.col("size") >= 3) & (F.col("size") <= full_max)).select(
        "unique_id", "cluster_id"
    )
    pairs = (
        members.withColumnRenamed("unique_id", "l")
        .join(members.withColumnRenamed("unique_id", "r"), "cluster_id")
        .filter(F.col("l") < F.col("r"))
    )
    hit = (
        _flag_pairs(pairs, attrs, policy, overrides, ["cluster_id", "l", "r"])
        .filter(F.col("flag") != 0)
        .select("cluster_id")
    )
    huge = comp.filter(F.col("size") > full_max).select("cluster_id")
    return hit.unionByName(huge).distinct()


def _decide_on_driver(
    sub_nodes: pd.DataFrame,
    sub_edges: pd.DataFrame,
    policy: GuardPolicy,
    overrides: OverrideSet | None,
) -> tuple[pd.DataFrame, pd.DataFrame, int, int]:
    """The chaining guard on the conflicted components only, with `clustering`'s own code:
    (per record `unique_id, sub_key, sub_p`, the accepted pairs kept apart in acceptance
    order, components split, records isolated)."""
    rules, pos = _rules_for(sub_nodes.astype({"unique_id": object}), policy, overrides)
    ids = pos.index.to_numpy(dtype=object)
    n = len(ids)
    # Acceptance order, as `cluster_with_review` builds it: must-links first, then by pair.
    sub_edges = sub_edges.assign(_scored=~sub_edges["must"].astype(bool)).sort_values(
        ["_scored", "l", "r"], kind="stable"
    )
    a = pos.loc[sub_edges["l"].astype(object).to_numpy()].to_numpy(dtype=np.int64)
    b = pos.loc[sub_edges["r"].astype(object).to_numpy()].to_numpy(dtype=np.int64)
    acc = pd.DataFrame(
        {"a": a, "b": b, "p": sub_edges["p"].to_numpy(float), "w": sub_edges["w"].to_numpy(float)}
    )
    labels = _components(n, a, b)
    labels, split, isolated = _split_conflicted(labels, acc, rules)
    first_pos = pd.Series(np.arange(n)).groupby(labels).transform("min").to_numpy()
    same = labels[a] == labels[b]
    best = np.ones(n, dtype=float)
    if same.any():
        strongest = (
            pd.concat(
                [
                    pd.DataFrame({"node": a[same], "p": acc["p"].to_numpy()[same]}),
                    pd.DataFrame({"node": b[same], "p": acc["p"].to_numpy()[same]}),
                ]
            )
            .groupby("node")["p"]
            .max()
        )
        best[strongest.index.to_numpy()] = strongest.to_numpy()
    real = pos.loc[sub_nodes["unique_id"].astype(object).to_numpy()].to_numpy()  # no added roots
    out = pd.DataFrame(
        {"unique_id": ids[real], "sub_key": ids[first_pos[real]], "sub_p": best[real]}
    )
    apart = pd.DataFrame(
        {
            "l": sub_edges["l"].to_numpy()[~same],
            "r": sub_edges["r"].to_numpy()[~same],
            "p": acc["p"].to_numpy()[~same],
        }
    )
    return out, apart, split, isolated


def _review(parts: list[pd.DataFrame], must_pairs: list[tuple[str, str]]) -> pd.DataFrame:
    """`clustering._review_frame` over the review rows found (`l, r, p, reason`, by id)."""
    named = {x for part in parts for col in ("l", "r") for x in part[col].tolist()}
    named |= {x for pair in must_pairs for x in pair}
    ids = np.array(sorted(named), dtype=object)
    pos = {x: i for i, x in enumerate(ids.tolist())}
    framed = [
        pd.DataFrame(
            {
                "a": [pos[x] for x in part["l"].tolist()],
                "b": [pos[x] for x in part["r"].tolist()],
                "p": part["p"].to_numpy(dtype=float),
                "reason": part["reason"].to_numpy(dtype=object),
            }
        )
        for part in parts
    ]
    must = np.array([(pos[a], pos[b]) for a, b in must_pairs], dtype=np.int64).reshape(-1, 2)
    return _review_frame(framed, ids, SimpleNamespace(must_pairs=must))
