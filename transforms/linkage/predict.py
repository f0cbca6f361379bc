"""Scoring candidate pairs with a trained model, and turning them into clusters."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from splink import Linker

from .clustering import CLUSTER_COLUMNS, REVIEW_COLUMNS, cluster_with_review
from .engine import make_db_api
from .fields import GUARD_COLUMNS, prepare_frame
from .model import guard_policy, model_meta, splink_settings
from .overrides import OverrideSet
from .settings import LinkageSettings

__all__ = [
    "EDGE_COLUMNS",
    "LinkageResult",
    "candidate_pairs",
    "empty_edges",
    "link_and_dedupe",
    "predict_changed",
    "predict_incremental",
]

EDGE_COLUMNS = ["unique_id_l", "unique_id_r", "match_probability", "match_weight"]


@dataclass
class LinkageResult:
    """What a linkage run produces.

    `clusters`: one row per input record (`unique_id, source, source_record_id, cluster_key,
    match_probability`; 1.0 for a record alone). `edges`: scored candidate pairs with
    probability at or above `settings.edge_floor` (`unique_id_l, unique_id_r,
    match_probability, match_weight`), kept so a later night can re-cluster without rescoring.
    `metrics`: records, candidate pairs, edges above threshold, vetoed edges, split clusters,
    clusters, seconds per phase.
    """

    clusters: pd.DataFrame
    edges: pd.DataFrame
    metrics: dict[str, Any] = field(default_factory=dict)
    #: pairs for a steward to look at (`clustering.cluster_with_review`)
    review: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=REVIEW_COLUMNS)
    )


def _check_model(model: dict[str, Any]) -> dict[str, Any]:
    return model_meta(model)


def empty_edges() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "unique_id_l": pd.array([], dtype="string"),
            "unique_id_r": pd.array([], dtype="string"),
            "match_probability": pd.array([], dtype="float64"),
            "match_weight": pd.array([], dtype="float64"),
        }
    )


def _nodes(persons: pd.DataFrame) -> pd.DataFrame:
    keep = ["unique_id", "source", "source_record_id", *GUARD_COLUMNS]
    nodes = persons[[c for c in keep if c in persons.columns]].copy()
    for col in GUARD_COLUMNS:
        if col not in nodes.columns:
            nodes[col] = pd.Series(pd.NA, index=nodes.index, dtype="string")
    return nodes


def _linker(frame: pd.DataFrame, model: dict[str, Any], db_api: Any, **overrides: Any) -> Linker:
    return _linker_over(db_api.register(frame, dataset_display_name="persons"), model, **overrides)


def _linker_over(sdf: Any, model: dict[str, Any], **overrides: Any) -> Linker:
    # the model's SQL written for the engine that holds `sdf` (a model may come from the other)
    settings = splink_settings(model, sdf.db_api.sql_dialect.sql_dialect_str) or {}
    settings.update(overrides)
    return Linker(sdf, settings, log_level=None)


def _edges_frame(linker: Linker, sdf: Any) -> pd.DataFrame:
    sql = f"SELECT {', '.join(EDGE_COLUMNS)} FROM {sdf.physical_name}"
    df = linker.misc.query_sql(sql, output_type="pandas")
    out = pd.DataFrame(
        {
            "unique_id_l": df["unique_id_l"].astype("string"),
            "unique_id_r": df["unique_id_r"].astype("string"),
            "match_probability": df["match_probability"].astype("float64"),
            "match_weight": df["match_weight"].astype("float64"),
        }
    )
    return out.sort_values(["unique_id_l", "unique_id_r"], kind="stable").reset_index(drop=True)


def link_and_dedupe(
    persons: pd.DataFrame,
    model: dict[str, Any],
    settings: LinkageSettings,
    overrides: OverrideSet | None = None,
) -> LinkageResult:
    """Score candidate pairs of `persons` with `model`, and cluster them with the guards and
    a steward's `overrides`.

    `persons` is the standardised persons frame of every source together. Columns the model
    needs but the frame lacks are treated as empty.
    """
    meta = _check_model(model)
    metrics: dict[str, Any] = {"records": len(persons), "model_version": meta.get("version")}
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    if splink_settings(model) is None or len(persons) < 2:
        edges = empty_edges()
        metrics["candidate_pairs"] = 0
    else:
        frame = prepare_frame(persons, meta["fields"], meta["blocking_keys"])
        db_api = make_db_api(settings)
        linker = _linker(frame, model, db_api)
        seconds["prepare"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        blocked = linker.inference.compute_blocked_pairs_for_predict()
        metrics["candidate_pairs"] = _count(linker, blocked)
        seconds["blocking"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        preds = linker.inference.predict(
            threshold_match_probability=settings.edge_floor or None, warning_mode="never"
        )
        edges = _edges_frame(linker, preds)
        seconds["predict"] = time.perf_counter() - t0
    metrics["edges"] = len(edges)

    t0 = time.perf_counter()
    clusters, cm, review = cluster_with_review(
        _nodes(persons),
        edges,
        settings.threshold,
        guards=guard_policy(model, settings.guards),
        overrides=overrides,
    )
    seconds["cluster"] = time.perf_counter() - t0
    metrics.update({k: v for k, v in cm.items() if k not in ("records", "edges")})
    metrics["seconds"] = {k: round(v, 3) for k, v in seconds.items()}
    return LinkageResult(
        clusters=clusters[CLUSTER_COLUMNS], edges=edges, metrics=metrics, review=review
    )


def _count(linker: Linker, sdf: Any) -> int:
    df = linker.misc.query_sql(
        f"SELECT count(*) AS n FROM {sdf.physical_name}", output_type="pandas"
    )
    return int(df["n"].iloc[0])


def candidate_pairs(
    persons: pd.DataFrame, model: dict[str, Any], settings: LinkageSettings
) -> pd.DataFrame:
    """Every candidate pair the model's blocking rules generate (`unique_id_l, unique_id_r,
    match_key`), unscored: for measuring blocking recall."""
    meta = _check_model(model)
    if splink_settings(model) is None or len(persons) < 2:
        return pd.DataFrame({"unique_id_l": [], "unique_id_r": [], "match_key": []})
    frame = prepare_frame(persons, meta["fields"], meta["blocking_keys"])
    db_api = make_db_api(settings)
    linker = _linker(frame, model, db_api)
    blocked = linker.inference.compute_blocked_pairs_for_predict()
    # Splink names the id columns of its blocked-pairs table join_key_l / join_key_r.
    sql = (
        f"SELECT join_key_l AS unique_id_l, join_key_r AS unique_id_r, match_key "
        f"FROM {blocked.physical_name}"
    )
    return linker.misc.query_sql(sql, output_type="pandas")


def predict_incremental(
    new_persons: pd.DataFrame,
    existing_persons: pd.DataFrame,
    model: dict[str, Any],
    settings: LinkageSettings,
) -> pd.DataFrame:
    """Edges for a night's new or changed records: new x existing and new x new.

    Uses Splink's `predict_between` and `predict_within`, with term frequencies taken from
    existing + new records together. A record present in both frames counts as new (its
    changed version). Returns `unique_id_l, unique_id_r, match_probability, match_weight`
    at or above `settings.edge_floor`; cluster them with the stored edges (minus those of
    changed or deleted records) through `cluster_edges`.
    """
    if splink_settings(model) is None or len(new_persons) == 0:
        return empty_edges()
    new_ids = set(new_persons["unique_id"].astype("string"))
    existing = existing_persons[~existing_persons["unique_id"].astype("string").isin(new_ids)]
    return predict_changed(pd.concat([existing, new_persons], ignore_index=True), new_ids, model, settings)


def predict_changed(
    persons: pd.DataFrame,
    new_ids: set[str] | frozenset[str],
    model: dict[str, Any],
    settings: LinkageSettings,
) -> pd.DataFrame:
    """`predict_incremental` over one frame of every record tonight, `new_ids` naming the new
    or changed ones: no copy of the unchanged records is made (at a million people, splitting
    and stacking the frame again cost seconds)."""
    meta = _check_model(model)
    if splink_settings(model) is None or not new_ids:
        return empty_edges()
    frame = prepare_frame(persons, meta["fields"], meta["blocking_keys"])
    is_new = frame["unique_id"].isin(new_ids).to_numpy()
    if not is_new.any():
        return empty_edges()

    db_api = make_db_api(settings)
    persons_sdf = db_api.register(frame, dataset_display_name="persons")
    linker = _linker_over(persons_sdf, model)
    for col in _tf_columns(model):
        linker.table_management.compute_tf_table(col)
    floor = settings.edge_floor or None
    new_rows = np.flatnonzero(is_new)
    new_frame = frame.take(new_rows).reset_index(drop=True)
    new_sdf = db_api.register(new_frame, dataset_display_name="new")
    parts = []
    if len(new_rows) >= 2:
        within = linker.inference.predict_within(
            new_sdf, threshold_match_probability=floor, warning_mode="never"
        )
        parts.append(_edges_frame(linker, within))
    if len(new_rows) < len(frame):
        # New x existing, scored against the frame Splink already holds rather than a copy of
        # its unchanged records (at a million people that copy cost seconds). The pairs this
        # adds, two new records or a new record with itself, are `predict_within`'s or none,
        # and are dropped here.
        between = _edges_frame(
            linker,
            linker.inference.predict_between(
                persons_sdf, new_sdf, threshold_match_probability=floor, warning_mode="never"
            ),
        )
        new_uid = frame["unique_id"].take(new_rows)
        both_new = between["unique_id_l"].isin(new_uid) & between["unique_id_r"].isin(new_uid)
        parts.append(between[~both_new.to_numpy()])
    if not parts:
        return empty_edges()
    edges = pd.concat(parts, ignore_index=True)
    # Same orientation as a full run: smaller id on the left.
    swap = edges["unique_id_l"] > edges["unique_id_r"]
    edges.loc[swap, ["unique_id_l", "unique_id_r"]] = edges.loc[
        swap, ["unique_id_r", "unique_id_l"]
    ].to_numpy()
    return edges.sort_values(["unique_id_l", "unique_id_r"], kind="stable").reset_index(drop=True)


def _tf_columns(model: dict[str, Any]) -> list[str]:
    cols = []
    for comp in (splink_settings(model) or {}).get("comparisons", []):
        for level in comp.get("comparison_levels", []):
            col = level.get("tf_adjustment_column")
            if col and col not in cols:
                cols.append(col)
    return cols
