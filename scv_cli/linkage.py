"""`scv evaluate` and `scv link`: a steward's view of the matching, and overrides of it."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from scv_cli.errors import CliError
from sources.config import load_config

__all__ = ["register"]


def cmd_evaluate(args: argparse.Namespace) -> int:
    """P/R/F1 of the warehouse's decisions and of the model's scores over labelled pairs, and
    Splink's threshold chart as HTML next to the run report (README: `scv evaluate`)."""
    import json

    from transforms.linkage.engine import EngineUnavailableError
    from transforms.linkage.label_evaluation import (
        decided_counts,
        evaluation_page,
        model_columns,
        score_labels,
        usable_labels,
    )
    from transforms.linkage.model import (
        LabelsError,
        model_meta,
        read_labels,
        splink_settings,
    )
    from warehouse.identity import linkage_settings, model_path
    from warehouse.label_evaluation import (
        EvaluationUnavailable,
        read_evaluation_inputs,
        write_evaluation_page,
    )
    from warehouse.store import Warehouse, WarehouseBusy

    cfg = load_config(args.config)
    labels_path = Path(args.labels)
    try:
        labels = read_labels(labels_path)
    except LabelsError as exc:
        raise CliError(str(exc)) from None
    if labels.empty:
        raise CliError(f"{labels_path}: no labelled pairs")
    if not cfg.warehouse.exists():
        raise CliError(f"{cfg.warehouse}: no warehouse yet (run `scv run` first)")
    model_file = model_path(cfg)
    if not model_file.exists():
        raise CliError(f"{model_file}: no linkage model yet (run `scv run` first)")
    try:
        model = json.loads(model_file.read_text(encoding="utf-8"))
        version = model_meta(model).get("version")
    except (OSError, ValueError) as exc:
        raise CliError(f"{model_file}: cannot use the linkage model: {exc}") from None
    if splink_settings(model) is None:
        raise CliError(
            f"{model_file}: the linkage model compares no field, so there is no score to evaluate"
        )
    settings = linkage_settings(cfg)
    store = Warehouse(cfg.warehouse, cfg.staging_warehouse, cfg.exports)
    try:
        inputs = read_evaluation_inputs(store, model_columns(model))
    except (WarehouseBusy, EvaluationUnavailable) as exc:
        raise CliError(str(exc)) from None

    try:
        decided_set = usable_labels(labels, inputs.xref["unique_id"], source=str(labels_path))
    except LabelsError as exc:
        raise CliError(str(exc)) from None

    def warn(message: str) -> None:  # a note on stderr; the command goes on
        print(f"scv {args.command}: {message}", file=sys.stderr)

    if decided_set.self_pairs or decided_set.duplicates:
        warn(
            f"{decided_set.self_pairs:,} row(s) pairing a record with itself and "
            f"{decided_set.duplicates:,} repeated pair(s) left out"
        )
    if decided_set.unknown_ids:
        warn(
            f"{decided_set.unknown_pairs:,} labelled pair(s) left out: "
            f"{len(decided_set.unknown_ids):,} record id(s) not in the warehouse "
            f"({_few(decided_set.unknown_ids)})"
        )
    if decided_set.pairs.empty:
        raise CliError(f"{labels_path}: no labelled pair names two records of the warehouse")
    decided = decided_counts(decided_set.pairs, inputs.xref)

    if inputs.persons is None:
        raise CliError(
            f"{cfg.staging_warehouse}: the standardised person records of the last night are not "
            "there (cleared by `scv forget`, or no night has run): run `scv run` first"
        )
    staged = set(inputs.persons["unique_id"].astype("string"))
    differ = len(staged.symmetric_difference(inputs.xref["unique_id"].astype("string")))
    if differ:
        warn(
            f"the standardised records in staging differ from the published warehouse by "
            f"{differ:,} record(s) (a later night did not publish): the model is scored on "
            "staging's"
        )
    pairs = decided_set.pairs
    scored_pairs = pairs[
        pairs["unique_id_l"].isin(staged) & pairs["unique_id_r"].isin(staged)
    ].reset_index(drop=True)
    if len(scored_pairs) < len(pairs):
        warn(
            f"{len(pairs) - len(scored_pairs):,} labelled pair(s) not scored: "
            "their records are missing from staging"
        )
    if scored_pairs.empty:
        raise CliError(f"{labels_path}: no labelled pair names two standardised records to score")
    try:
        scored = score_labels(inputs.persons, model, scored_pairs, settings)
    except EngineUnavailableError as exc:
        raise CliError(str(exc)) from None

    threshold = settings.threshold
    unblocked_matches, unblocked_non_matches = scored.not_compared
    rows = [
        ("warehouse: same customer_id", decided),
        (f"model: match_probability >= {threshold:g}", scored.counts),
    ]
    notes = [
        (
            f"Labels: {labels_path.name}, {len(labels):,} row(s); {decided.pairs:,} pair(s) of two "
            f"warehouse records ({decided.matches:,} labelled matches, {decided.non_matches:,} "
            f"non-matches). Threshold (linkage.threshold): {threshold:g}. Model version {version}."
        ),
        (
            "warehouse: a labelled pair counts as predicted a match when both records have the "
            "same customer_id in scv.customer_xref: whatever decided the customer_id counts "
            "(blocking, model, guards, clustering)."
        ),
        (
            "model: Splink scores each labelled pair with the saved model (a pair no blocking "
            "rule generates counts as scored zero, as it is never compared on a night); "
            "predicted a match at or above the threshold. The chart below is Splink's, over the "
            "same pairs."
        ),
        (
            f"Labelled pairs no blocking rule generates: {unblocked_matches:,} match(es), "
            f"{unblocked_non_matches:,} non-match(es)."
        ),
    ]
    if scored.chart is None:
        notes.append(
            "No chart: it needs labelled matches and non-matches, and pairs the blocking rules "
            "compare."
        )
    chart_html = scored.chart.to_html(inline=True) if scored.chart is not None else None
    page = evaluation_page(chart_html, rows, notes)
    path = write_evaluation_page(cfg.reports_dir, page)

    print(
        f"scv evaluate: {decided.pairs:,} labelled pairs ({decided.matches:,} matches, "
        f"{decided.non_matches:,} non-matches), threshold {threshold:g}"
    )
    print(
        f"{'':<36}{'pairs':>7}{'TP':>7}{'FP':>7}{'FN':>7}{'TN':>7}"
        f"{'precision':>11}{'recall':>9}{'F1':>9}"
    )
    for label, c in rows:
        print(
            f"{label:<36}{c.pairs:>7,}{c.tp:>7,}{c.fp:>7,}{c.fn:>7,}{c.tn:>7,}"
            f"{_rate(c.precision):>11}{_rate(c.recall):>9}{_rate(c.f1):>9}"
        )
    print(f"labelled matches no blocking rule generates (scored 0): {unblocked_matches:,}")
    no_chart = " (figures only: no chart for these labels)" if chart_html is None else ""
    print(f"chart: {path}{no_chart}")
    return 0


def _rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _few(ids: list[str], n: int = 5) -> str:
    shown = ", ".join(ids[:n])
    return shown + (f", … {len(ids) - n:,} more" if len(ids) > n else "")


# ----------------------------------------------------------------------------------- link
def cmd_link(args: argparse.Namespace) -> int:
    """Append a steward's must-link / cannot-link to the overrides file; it applies from the
    next night on, over every re-link and retraining."""
    import getpass

    from transforms.linkage.overrides import OverrideError, append_override

    cfg = load_config(args.config)
    decision, pair = ("must", args.must) if args.must else ("cannot", args.cannot)
    who = args.who or os.environ.get("SCV_STEWARD") or getpass.getuser()
    try:
        row = append_override(
            cfg.linkage.overrides, decision, pair[0], pair[1], who=who, why=args.reason or ""
        )
    except OverrideError as exc:
        raise CliError(str(exc)) from None
    print(
        f"{decision}-link {row['record_a']} / {row['record_b']} recorded in "
        f"{cfg.linkage.overrides} by {who}; it applies from the next night (`scv run`)"
    )
    return 0


def register(add) -> None:
    """Add `evaluate` and `link` to the `scv` parser (`add(name, help)` → subparser)."""
    e = add("evaluate", "precision/recall of the matching on labelled pairs, and a threshold chart")
    e.add_argument(
        "--labels",
        required=True,
        help="CSV of unique_id_l, unique_id_r, is_match (ids as SOURCE:SOURCE_RECORD_ID)",
    )
    e.set_defaults(func=cmd_evaluate)

    lk = add("link", "a steward's override: two records are (--must) or are not (--cannot) one person")
    which = lk.add_mutually_exclusive_group(required=True)
    which.add_argument("--must", nargs=2, metavar=("RECORD", "RECORD"), help="SOURCE:SOURCE_RECORD_ID twice")
    which.add_argument("--cannot", nargs=2, metavar=("RECORD", "RECORD"), help="SOURCE:SOURCE_RECORD_ID twice")
    lk.add_argument("--reason", help="why (kept with the decision)")
    lk.add_argument("--who", help="who decided (default: $SCV_STEWARD, else the login name)")
    lk.set_defaults(func=cmd_link)
