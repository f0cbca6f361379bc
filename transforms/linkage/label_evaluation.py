"""How far the matching agrees with a user's own labelled pairs (`scv evaluate`).

A labels file holds pairs of source person records, `unique_id_l, unique_id_r, is_match`, each
id written `SOURCE:SOURCE_RECORD_ID` (the `unique_id` of a person record; read and checked by
`model.read_labels`). Two figures are counted over the labelled pairs:

* **decided**: what the warehouse did. A pair is predicted a match when both records carry the
  same customer_id in `scv.customer_xref`: whatever decided the customer_id is in it (blocking,
  the model, the guards, clustering: a pair can be joined through a third record).
* **scored**: the model, as Splink scores pairs. Splink's
  `linker.evaluation.accuracy_analysis_from_labels_table` scores every labelled pair with the
  saved model from the standardised records (term frequencies over all of them, as on a full
  night) and gives the truth-space table (TP/FP/FN/TN at every score) the figure is read from,
  and the threshold chart. By Splink's convention a pair that no blocking rule would generate
  counts as scored zero: it is never compared on a night either. A pair is predicted a match
  when its match_probability is at or above the threshold. What separates the two figures is
  then what happens after scoring: the guards and clustering.

Everything here takes and returns plain frames and numbers; reading the warehouse and writing
the page are the caller's. Nothing returned holds a record's values: ids, counts and rates only.
"""

from __future__ import annotations

import copy
import html
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from splink import Linker

from .engine import make_db_api
from .fields import GUARD_COLUMNS, MATCH_FIELDS, prepare_frame
from .model import LabelsError, model_meta, splink_settings
from .settings import LinkageSettings

__all__ = [
    "LabelSet",
    "PairCounts",
    "ScoredLabels",
    "counts_at_threshold",
    "decided_counts",
    "evaluation_page",
    "model_columns",
    "not_compared",
    "pair_counts",
    "score_labels",
    "usable_labels",
]

#: Metrics Splink adds to its threshold chart besides precision and recall.
CHART_METRICS = ["f1"]


@dataclass(frozen=True)
class PairCounts:
    """A confusion matrix over labelled pairs, and the rates read from it. A rate whose
    denominator is zero (no pair predicted a match, no labelled match) is None."""

    tp: int
    fp: int
    fn: int
    tn: int

    @property
    def pairs(self) -> int:
        return self.tp + self.fp + self.fn + self.tn

    @property
    def matches(self) -> int:
        return self.tp + self.fn

    @property
    def non_matches(self) -> int:
        return self.fp + self.tn

    @property
    def precision(self) -> float | None:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None

    @property
    def f1(self) -> float | None:
        denominator = 2 * self.tp + self.fp + self.fn
        return 2 * self.tp / denominator if denominator else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "pairs": self.pairs,
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "tn": self.tn,
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
        }


def pair_counts(predicted: Iterable[bool], actual: Iterable[bool]) -> PairCounts:
    """TP/FP/FN/TN of predicted against labelled (both one boolean per pair)."""
    p = np.asarray(list(predicted), dtype=bool)
    a = np.asarray(list(actual), dtype=bool)
    if p.shape != a.shape:
        raise ValueError(f"pair_counts: {p.size} predictions for {a.size} labels")
    return PairCounts(
        tp=int((p & a).sum()),
        fp=int((p & ~a).sum()),
        fn=int((~p & a).sum()),
        tn=int((~p & ~a).sum()),
    )


@dataclass(frozen=True)
class LabelSet:
    """The labelled pairs that can be judged, and what was set aside.

    `pairs`: `unique_id_l < unique_id_r, is_match`, one row per distinct pair, both ids known.
    `unknown_ids`: distinct ids naming no known record (sorted); `unknown_pairs`: the pairs
    left out for them. `self_pairs`: rows pairing a record with itself; `duplicates`: rows
    repeating an earlier row's pair and label."""

    pairs: pd.DataFrame
    unknown_ids: list[str]
    unknown_pairs: int
    self_pairs: int
    duplicates: int


def usable_labels(
    labels: pd.DataFrame, known_ids: Iterable[str], source: str = "labels"
) -> LabelSet:
    """Labels (`read_labels`' frame) reduced to the pairs of two known records.

    Each pair is put smaller id first; a row pairing a record with itself is left out, a pair
    labelled twice alike counts once, and a pair labelled both a match and a non-match is an
    error (LabelsError naming `source` and the two rows, 1 = first data row)."""
    left = labels["unique_id_l"].astype("string").to_numpy(dtype=object)
    right = labels["unique_id_r"].astype("string").to_numpy(dtype=object)
    swap = left > right
    frame = pd.DataFrame(
        {
            "unique_id_l": np.where(swap, right, left),
            "unique_id_r": np.where(swap, left, right),
            "is_match": labels["is_match"].astype(bool).to_numpy(),
            "_row": np.arange(1, len(labels) + 1),
        }
    )
    same = frame["unique_id_l"] == frame["unique_id_r"]
    frame = frame[~same]
    conflicting = frame.groupby(["unique_id_l", "unique_id_r"])["is_match"].transform("nunique") > 1
    if conflicting.any():
        first = frame[conflicting].iloc[0]
        rows = frame.loc[
            conflicting
            & (frame["unique_id_l"] == first["unique_id_l"])
            & (frame["unique_id_r"] == first["unique_id_r"]),
            "_row",
        ].tolist()
        raise LabelsError(
            f"{source}: rows {rows[0]} and {rows[1]}: the same pair is labelled both a match "
            "and a non-match"
        )
    repeated = frame.duplicated(["unique_id_l", "unique_id_r"])
    frame = frame[~repeated]
    known = set(known_ids)
    has_l = frame["unique_id_l"].isin(known)
    has_r = frame["unique_id_r"].isin(known)
    unknown = set(frame.loc[~has_l, "unique_id_l"]) | set(frame.loc[~has_r, "unique_id_r"])
    kept = frame[has_l & has_r]
    return LabelSet(
        pairs=pd.DataFrame(
            {
                "unique_id_l": pd.array(kept["unique_id_l"], dtype="string"),
                "unique_id_r": pd.array(kept["unique_id_r"], dtype="string"),
                "is_match": kept["is_match"].to_numpy(dtype=bool),
            }
        ),
        unknown_ids=sorted(unknown),
        unknown_pairs=int((~(has_l & has_r)).sum()),
        self_pairs=int(same.sum()),
        duplicates=int(repeated.sum()),
    )


def decided_counts(pairs: pd.DataFrame, xref: pd.DataFrame) -> PairCounts:
    """What the warehouse decided: a pair is predicted a match when both records have the same
    customer_id. `xref`: `unique_id, customer_id` (one row per record); every id of `pairs`
    must be in it (`usable_labels` over the xref's ids)."""
    customer = pd.Series(
        xref["customer_id"].astype("string").to_numpy(dtype=object),
        index=xref["unique_id"].astype("string").to_numpy(dtype=object),
    )
    if customer.index.has_duplicates:
        dup = customer.index[customer.index.duplicated()][0]
        raise ValueError(f"xref: record {dup} appears more than once")
    left = customer.reindex(pairs["unique_id_l"].astype("string").to_numpy(dtype=object))
    right = customer.reindex(pairs["unique_id_r"].astype("string").to_numpy(dtype=object))
    missing = left.isna().to_numpy() | right.isna().to_numpy()
    if missing.any():
        row = int(missing.argmax())
        raise ValueError(f"labels: pair {row + 1} names a record without a customer_id")
    return pair_counts(left.to_numpy() == right.to_numpy(), pairs["is_match"].to_numpy(dtype=bool))


def _weight(probability: float) -> float:
    """The match weight (log2 Bayes factor) Splink gives a match_probability."""
    return math.log2(probability / (1 - probability))


def counts_at_threshold(
    truth_space: pd.DataFrame, threshold: float, matches: int, non_matches: int
) -> PairCounts:
    """The counts at a match probability `threshold`, from Splink's truth-space table over
    labelled pairs with `matches` labelled matches and `non_matches` labelled non-matches.

    The table has a row per score (`truth_threshold`, a match weight) that some compared pair
    got, with `tp` and `fp`: the labelled matches and non-matches scored at or above it. The
    row for the threshold is the first at or above its weight; above every score nothing is
    predicted. Pairs the blocking rules never generate have no row (Splink leaves them out as
    scored zero): they are false negatives or true negatives at any threshold."""
    t = truth_space.sort_values("truth_threshold", kind="stable")
    at_or_above = t[t["truth_threshold"].to_numpy(dtype=float) >= _weight(threshold)]
    tp = fp = 0
    if not at_or_above.empty:
        tp = round(float(at_or_above["tp"].iloc[0]))
        fp = round(float(at_or_above["fp"].iloc[0]))
    if tp > matches or fp > non_matches:
        raise ValueError(
            f"truth space: {tp} true and {fp} false positives for {matches} labelled matches "
            f"and {non_matches} non-matches"
        )
    return PairCounts(tp=tp, fp=fp, fn=matches - tp, tn=non_matches - fp)


def not_compared(truth_space: pd.DataFrame, matches: int, non_matches: int) -> tuple[int, int]:
    """(labelled matches, labelled non-matches) that no blocking rule generates: those
    missing from the truth-space table's lowest score, which counts every compared pair."""
    if truth_space.empty:
        return matches, non_matches
    lowest = truth_space.sort_values("truth_threshold", kind="stable").iloc[0]
    return matches - round(float(lowest["tp"])), non_matches - round(float(lowest["fp"]))


def model_columns(model: dict[str, Any]) -> list[str]:
    """The standardised columns scoring with `model` reads (besides `unique_id`): what
    `fields.prepare_frame` takes for its fields and blocking keys."""
    meta = model_meta(model)
    cols = {c for f in meta.get("fields", []) for c in MATCH_FIELDS.get(f, ())}
    cols |= set(GUARD_COLUMNS)
    cols |= {
        c
        for parts in meta.get("blocking_keys", {}).values()
        for c in parts
        if not c.startswith("_")
    }
    return sorted(cols)


@dataclass
class ScoredLabels:
    """The model's side: its counts at the threshold; the labelled matches and non-matches no
    blocking rule generates (`not_compared`); Splink's truth-space table (counts and rates at
    every score; no record values) and its chart (None when the labels lack either matches or
    non-matches, or no labelled pair is compared: the rates would be undefined). `chart_kind`
    names the chart."""

    counts: PairCounts
    not_compared: tuple[int, int]
    truth_space: pd.DataFrame
    chart: Any | None
    chart_kind: str | None


def score_labels(
    persons: pd.DataFrame,
    model: dict[str, Any],
    pairs: pd.DataFrame,
    settings: LinkageSettings,
) -> ScoredLabels:
    """Score every labelled pair with `model` through Splink's
    `linker.evaluation.accuracy_analysis_from_labels_table`.

    `persons`: the standardised person records (every record: term frequencies and the shared
    value counts are taken over all of them); `pairs`: `usable_labels(...).pairs` over their
    ids. The chart is Splink's threshold selection tool (precision, recall and F1 against the
    score); Splink draws it only where both precision and recall exceed 0.5, so when no score
    gets there the plain accuracy chart is drawn instead."""
    meta = model_meta(model)
    spec = splink_settings(model)
    if spec is None:
        raise ValueError("model: it has no comparisons (no person fields to compare)")
    if pairs.empty:
        raise ValueError("labels: no labelled pair to score")
    frame = prepare_frame(persons, meta["fields"], meta["blocking_keys"])
    spec = copy.deepcopy(spec)
    # Splink's accuracy analysis needs the compared columns kept.
    spec["retain_matching_columns"] = True
    db_api = make_db_api(settings)
    spec = splink_settings(model, db_api.sql_dialect.sql_dialect_str) | {
        k: v for k, v in spec.items() if k.startswith("retain_")
    }
    linker = Linker(db_api.register(frame, dataset_display_name="persons"), spec, log_level=None)
    labels = db_api.register(
        pd.DataFrame(
            {
                "unique_id_l": pairs["unique_id_l"].astype("string"),
                "unique_id_r": pairs["unique_id_r"].astype("string"),
                "clerical_match_score": pairs["is_match"].astype("float64"),
            }
        ),
        dataset_display_name="labels",
    )
    evaluation = linker.evaluation
    truth_space = evaluation.accuracy_analysis_from_labels_table(
        labels, output_type="table", match_weight_round_to_nearest=None
    ).as_pandas_dataframe()
    matches = int(pairs["is_match"].astype(bool).sum())
    non_matches = len(pairs) - matches
    counts = counts_at_threshold(truth_space, settings.threshold, matches, non_matches)
    chart, kind = None, None
    if matches and non_matches and not truth_space.empty:
        both = (truth_space["precision"] > 0.5) & (truth_space["recall"] > 0.5)
        kind = "threshold_selection" if both.any() else "accuracy"
        chart = evaluation.accuracy_analysis_from_labels_table(
            labels, output_type=kind, add_metrics=CHART_METRICS
        )
    return ScoredLabels(
        counts=counts,
        not_compared=not_compared(truth_space, matches, non_matches),
        truth_space=truth_space,
        chart=chart,
        chart_kind=kind,
    )


def _rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def evaluation_page(
    chart_html: str | None,
    rows: Sequence[tuple[str, PairCounts]],
    notes: Sequence[str] = (),
    *,
    title: str = "How far to trust the matching",
) -> str:
    """One self-contained HTML page: a table of the figures (`rows`: label, counts), `notes`
    (plain text, escaped) and Splink's chart (`chart.to_html(inline=True)`: a whole document
    with its scripts inlined), which the figures are put in front of. Without a chart the
    page is the figures alone."""
    head = ["", "pairs", "TP", "FP", "FN", "TN", "precision", "recall", "F1"]
    body = "".join(
        "<tr><th scope='row' style='text-align:left'>"
        + html.escape(label)
        + "</th>"
        + "".join(
            f"<td>{v}</td>"
            for v in (
                c.pairs,
                c.tp,
                c.fp,
                c.fn,
                c.tn,
                _rate(c.precision),
                _rate(c.recall),
                _rate(c.f1),
            )
        )
        + "</tr>"
        for label, c in rows
    )
    summary = (
        "<section style='font-family:sans-serif;margin:1em'>"
        f"<h1 style='font-size:1.4em'>{html.escape(title)}</h1>"
        "<table style='border-collapse:collapse;text-align:right' cellpadding='4'>"
        "<tr>"
        + "".join(f"<th scope='col'>{h}</th>" for h in head)
        + "</tr>"
        + body
        + "</table>"
        + "".join(f"<p>{html.escape(n)}</p>" for n in notes)
        + "</section>"
    )
    if chart_html is None:
        return (
            "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<title>{html.escape(title)}</title></head><body>{summary}</body></html>"
        )
    page = chart_html.replace(
        "<title>Splink chart</title>", f"<title>{html.escape(title)}</title>", 1
    )
    if "<body>" in page:
        return page.replace("<body>", "<body>" + summary, 1)
    return summary + page
