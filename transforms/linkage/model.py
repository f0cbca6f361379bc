"""Training the linkage model, and the JSON document it is kept as between nights.

The model document is Splink's own `save_model_to_json` output (loadable by Splink once the
`scv` key is removed) plus, under `scv`, what we need to use it safely later: the match fields
and blocking keys it was built for, a version hash of its specification, when it was made, and
training figures (pairs used, seconds, m/u per level).
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
from splink import Linker, block_on
from splink.internals.exceptions import EMTrainingException

from .comparisons import (
    DOB_DIFFERENT_LABEL,
    DOB_DIFFERENT_M,
    build_settings,
    comparison_plan,
    deterministic_rules_for,
    em_rules_for,
)
from .fields import MATCH_FIELDS, blocking_keys_for
from .guards import MIN_EVIDENCE_PAIRS, GuardPolicy
from .settings import LinkageSettings
from .training_frame import PandasTrainingFrame, PreparedFrame, TrainingFrame
from .u_estimation import _non_null_levels, estimate_u_from_non_matches

__all__ = [
    "MODEL_FORMAT",
    "MODEL_FORMAT_VERSION",
    "LabelsError",
    "guard_policy",
    "model_covers",
    "model_meta",
    "read_labels",
    "splink_settings",
    "train_model",
]

log = logging.getLogger(__name__)

MODEL_FORMAT = "scv-linkage-model"
#: Bump when the comparisons, blocking keys or guards change meaning: older models retrain.
MODEL_FORMAT_VERSION = 2

#: Share of true matches the deterministic rules are assumed to find, for the prior
#: probability that two random records match (Splink's direct estimation method).
DETERMINISTIC_RECALL = 0.7


class LabelsError(ValueError):
    """A clerical labels file that cannot be used; names the file, row and field."""


def read_labels(path: Path) -> pd.DataFrame:
    """Read a clerical labels CSV (`unique_id_l, unique_id_r, is_match`) and validate it.

    `is_match` accepts 1/0, true/false, yes/no. Errors name the file, the row (1 = first data
    row) and the field.
    """
    try:
        raw = pd.read_csv(path, dtype="string", keep_default_na=False)
    except (OSError, pd.errors.ParserError) as exc:
        raise LabelsError(f"{path}: cannot read labels CSV: {exc}") from exc
    missing = [c for c in ("unique_id_l", "unique_id_r", "is_match") if c not in raw.columns]
    if missing:
        raise LabelsError(f"{path}: missing column(s) {missing}")
    truth = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}
    flags = raw["is_match"].str.strip().str.lower().map(truth)
    for col in ("unique_id_l", "unique_id_r"):
        empty = raw[col].str.strip() == ""
        if empty.any():
            row = int(empty.to_numpy().argmax()) + 1
            raise LabelsError(f"{path}: row {row}: field '{col}' is empty")
    if flags.isna().any():
        row = int(flags.isna().to_numpy().argmax()) + 1
        raise LabelsError(f"{path}: row {row}: field 'is_match' must be 1/0, true/false or yes/no")
    return pd.DataFrame(
        {
            "unique_id_l": raw["unique_id_l"].str.strip(),
            "unique_id_r": raw["unique_id_r"].str.strip(),
            "is_match": flags.astype(bool),
        }
    )


def model_meta(model: dict[str, Any]) -> dict[str, Any]:
    """Our part of a model document (`model["scv"]`): format, version, fields, blocking keys,
    created_at, training figures. Raises ValueError for anything that is not a model."""
    meta = model.get("scv") if isinstance(model, dict) else None
    if not isinstance(meta, dict) or meta.get("format") != MODEL_FORMAT:
        raise ValueError("model: not a linkage model document (train_model's output)")
    return meta


def splink_settings(model: dict[str, Any], dialect: str | None = None) -> dict[str, Any] | None:
    """Splink's part of a model document (what `save_model_to_json` wrote), or None for a
    model without comparisons (a dataset with no person fields).

    With `dialect` ('duckdb', 'spark') the comparisons' SQL is written for that engine: a model
    trained on one engine and used on the other keeps its parameters but not its SQL (DuckDB
    quotes columns "like_this", which Spark reads as text, so every pair would score the
    same, silently). The same comparisons are built again for `dialect` and the trained m and
    u copied over level by level."""
    meta = model_meta(model)
    if not model.get("comparisons"):
        return None
    settings = copy.deepcopy({k: v for k, v in model.items() if k != "scv"})
    if dialect is None or settings.get("sql_dialect") == dialect:
        return settings
    keys = {k: tuple(v) for k, v in meta["blocking_keys"].items()}
    ported = build_settings(meta["fields"], keys).create_settings_dict(dialect)
    ported["sql_dialect"] = dialect
    for key in ("probability_two_random_records_match", "em_convergence", "max_iterations"):
        if key in settings:
            ported[key] = settings[key]
    theirs_by_name = {c["output_column_name"]: c for c in settings["comparisons"]}
    for ours in ported["comparisons"]:
        theirs = theirs_by_name[ours["output_column_name"]]
        levels = theirs["comparison_levels"]
        if len(levels) != len(ours["comparison_levels"]):
            raise ValueError(
                f"model: comparison {ours['output_column_name']!r} has {len(levels)} levels, "
                f"this code builds {len(ours['comparison_levels'])}; retrain (`scv run --retrain`)"
            )
        for a, b in zip(levels, ours["comparison_levels"], strict=True):
            for key in ("m_probability", "u_probability", "tf_adjustment_weight"):
                if key in a:
                    b[key] = a[key]
    return ported


def guard_policy(model: dict[str, Any] | None, mode: str) -> GuardPolicy:
    """The hard-conflict policy for `mode` ('adaptive', 'strict', 'off') with this model's
    guard evidence (what share of look-alike pairs disagree on first name / date of birth)."""
    evidence = None
    if model:
        try:
            evidence = model_meta(model).get("guards")
        except ValueError:
            evidence = None
    return GuardPolicy.from_evidence(mode, evidence)


def model_covers(model: dict[str, Any] | None, fields: Sequence[str]) -> bool:
    """Whether `model` was trained for exactly these match fields (and this model format).

    The caller retrains when this is False: a field added to the config would otherwise be
    ignored, and a field removed would leave a comparison that only ever sees nulls.
    """
    try:
        meta = model_meta(model or {})
    except ValueError:
        return False
    if meta.get("format_version") != MODEL_FORMAT_VERSION:
        return False
    return sorted(meta.get("fields", [])) == sorted(fields)


def _spec_version(spec: dict[str, Any], settings: LinkageSettings, fields: list[str]) -> str:
    doc = {
        "format_version": MODEL_FORMAT_VERSION,
        "spec": spec,
        "training": settings.training_key(),
        "fields": fields,
    }
    blob = json.dumps(doc, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _cols(fields: Sequence[str]) -> list[str]:
    return [MATCH_FIELDS[f][0] for f in fields]


def train_model(
    persons: pd.DataFrame | TrainingFrame,
    settings: LinkageSettings,
    *,
    created_at: datetime | str | None = None,
    labels: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """Train a Splink model on the standardised persons; return it as a JSON-able dict.

    `persons` is a pandas frame, or a `TrainingFrame` that holds the records in an engine
    (`spark_training.SparkTrainingFrame`): training reads the records only through it.
    Comparisons and blocking rules come from the fields the records really have
    (`available_fields`). u is estimated by deterministic random sampling of
    `settings.u_max_pairs` pairs; m by EM over one or two blocks (each capped at
    `settings.em_max_pairs` pairs), or from clerical labels when given (`labels`, or the CSV at
    `settings.labels`, read here); the prior match probability by Splink's direct estimation
    from near-certain rules. `created_at` is stamped into the document as given (this
    function reads no clock for it).
    """
    source: TrainingFrame = (
        PandasTrainingFrame(persons) if isinstance(persons, pd.DataFrame) else persons
    )
    records = source.records()
    fields = source.fields()
    keys = blocking_keys_for(fields)
    spec = build_settings(fields, keys)
    dialect = "spark" if settings.engine == "spark" else "duckdb"
    spec_dict = spec.create_settings_dict(dialect)
    # Counted before anything else: the guards and the birth-date disagreement's m read it.
    evidence = source.guard_evidence()
    meta: dict[str, Any] = {
        "format": MODEL_FORMAT,
        "format_version": MODEL_FORMAT_VERSION,
        "version": _spec_version(spec_dict, settings, fields),
        "fields": fields,
        "blocking_keys": {k: list(v) for k, v in keys.items()},
        "created_at": created_at.isoformat() if isinstance(created_at, datetime) else created_at,
        "settings": settings.training_key(),
        "training": {"records": records},
        "guards": evidence,
    }
    _set_dob_disagreement_m(spec_dict, evidence.get("dob"))
    if not comparison_plan(fields) or records < 2:
        # Nothing to compare on: every record will be its own customer.
        return {"scv": meta}

    if labels is None and settings.labels is not None:
        labels = read_labels(settings.labels)

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    frame = source.prepare(fields, keys)
    db_api = source.db_api(settings)
    sdf = frame.register(db_api, "persons")
    timings["prepare"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    # Prior first: it is needed to correct u when no definite non-matches can be recognised.
    linker = Linker(sdf, copy.deepcopy(spec_dict), log_level=None)
    prior = _estimate_prior(linker, fields)
    timings["prior"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    u_info = estimate_u_from_non_matches(db_api, frame, spec_dict, settings, prior=prior["value"])
    trained = copy.deepcopy(spec_dict)
    trained["probability_two_random_records_match"] = prior["value"]
    _set_u(trained, u_info["u"])
    linker = Linker(sdf, trained, log_level=None)
    timings["u"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    sessions: list[dict[str, Any]] = []
    if labels is not None:
        sessions.append(_m_from_labels(linker, db_api, labels, frame))
    else:
        for rule in em_rules_for(fields):
            sessions.append(_em(linker, rule, settings))
    timings["m"] = time.perf_counter() - t0

    splink_model = linker.misc.save_model_to_json()
    # A random id of this Python object: it would make two identical trainings differ.
    splink_model.pop("linker_uid", None)
    _round_parameters(splink_model)
    capped = _sanitise_weights(splink_model, spec_dict, u_info["unseen"])
    meta["training"] = {
        "records": records,
        "u_pairs": u_info["pairs"],
        "u_method": u_info["method"],
        "prior": prior,
        "m_sessions": sessions,
        "levels_adjusted": capped,
        "seconds": {k: round(v, 3) for k, v in timings.items()},
        "parameters": parameters_table(splink_model),
    }
    return {**splink_model, "scv": meta}


def _set_dob_disagreement_m(spec_dict: dict[str, Any], ev: dict[str, Any] | None) -> None:
    """m of "dates of birth differ beyond a typo" from the counted evidence (the share of
    look-alike pairs whose birth dates differ), never below `DOB_DIFFERENT_M`. It stays fixed
    during EM, which would otherwise count twins and namesakes as matches."""
    share = (ev or {}).get("share")
    if share is None or (ev or {}).get("pairs", 0) < MIN_EVIDENCE_PAIRS:
        return
    m = min(max(float(share), DOB_DIFFERENT_M), 0.5)
    for comp in spec_dict.get("comparisons", []):
        if comp.get("output_column_name") != "dob":
            continue
        for level in comp["comparison_levels"]:
            if level.get("label_for_charts") == DOB_DIFFERENT_LABEL:
                level["m_probability"] = m


def _estimate_prior(linker: Linker, fields: list[str]) -> dict[str, Any]:
    rules = deterministic_rules_for(fields)
    if not rules:
        return {"method": "default", "value": 1e-4}
    try:
        linker.training.estimate_probability_two_random_records_match(
            [block_on(*_cols(r)) for r in rules], recall=DETERMINISTIC_RECALL
        )
    except ValueError as exc:
        # Tiny or degenerate data sets: the rules match more than the recall allows.
        log.warning("prior match probability not estimated (%s); keeping the default", exc)
        return {"method": "default", "value": 1e-4, "rules": [list(r) for r in rules]}
    value = linker._settings_obj._probability_two_random_records_match
    if not value or value <= 0:
        linker._settings_obj._probability_two_random_records_match = 1e-6
        value = 1e-6
    return {"method": "deterministic rules", "value": value, "rules": [list(r) for r in rules]}


def _set_u(settings_dict: dict[str, Any], u: dict[tuple[str, int], float]) -> None:
    for comp in settings_dict["comparisons"]:
        levels = comp["comparison_levels"]
        for cvv, level in _non_null_levels(levels):
            value = u.get((comp["output_column_name"], cvv))
            if value is not None:
                level["u_probability"] = value


#: Significant digits m and u are kept to. EM sums match probabilities in DuckDB's parallel
#: aggregation, whose order varies between runs: the last bit of an m could differ between two
#: trainings on the same data, and with it the model document.
_PARAMETER_DIGITS = 10


def _round_parameters(model: dict[str, Any]) -> None:
    """Round every level's m and u to `_PARAMETER_DIGITS` significant digits (in place)."""
    for comp in model.get("comparisons", []):
        for level in comp.get("comparison_levels", []):
            for key in ("m_probability", "u_probability"):
                value = level.get(key)
                if isinstance(value, float) and value:
                    level[key] = float(f"{value:.{_PARAMETER_DIGITS}g}")


def _sanitise_weights(
    model: dict[str, Any], spec: dict[str, Any], unseen: set[tuple[str, int]]
) -> list[str]:
    """Keep level weights sane where training had no data for them; edits `model` in place.

    * A level seen neither among sampled non-matches (u) nor by EM (m still its prior) has no
      evidence either way: its u is set to its m, weight 0.
    * No partial agreement may outweigh full agreement: a level whose weight exceeds the
      comparison's exact level is brought down to it (an initial, a one-digit phone typo or a
      swapped name must not count for more than the same name or number).
    Returns the labels of the levels changed.
    """
    changed: list[str] = []
    priors = {
        c["output_column_name"]: {
            cvv: lv.get("m_probability") for cvv, lv in _non_null_levels(c["comparison_levels"])
        }
        for c in spec["comparisons"]
    }
    for comp in model["comparisons"]:
        name = comp["output_column_name"]
        levels = _non_null_levels(comp["comparison_levels"])
        top = None
        for cvv, level in sorted(levels, key=lambda x: -x[0]):
            m, u = level.get("m_probability"), level.get("u_probability")
            if not isinstance(m, (int, float)) or not isinstance(u, (int, float)) or cvv == 0:
                continue
            label = f"{name}: {level.get('label_for_charts') or level.get('sql_condition')}"
            untrained_m = priors.get(name, {}).get(cvv) == m
            if (name, cvv) in unseen and untrained_m:
                level["u_probability"] = m
                changed.append(label + " (no data: weight 0)")
                continue
            if top is None:
                top = m / u
            elif m / u > top:
                level["u_probability"] = m / top
                changed.append(label + " (capped at the exact level)")
    return changed


def _em(linker: Linker, rule: tuple[str, ...], settings: LinkageSettings) -> dict[str, Any]:
    t0 = time.perf_counter()
    out: dict[str, Any] = {"method": "em", "block_on": list(rule)}
    try:
        session = linker.training.estimate_parameters_using_expectation_maximisation(
            block_on(*_cols(rule)),
            estimate_without_term_frequencies=True,
            max_pairs=settings.em_max_pairs,
        )
    except EMTrainingException:
        out["skipped"] = "no record pairs in this block"
        return out
    info = getattr(session, "_sample_info", None) or {}
    pairs = info.get("expected_pairs_after_sampling") or info.get("estimated_total_pairs")
    out["pairs"] = int(pairs) if pairs else None
    out["sampled"] = bool(info.get("sampling_applied"))
    out["iterations"] = len(getattr(session, "_core_model_settings_history", []) or [])
    out["seconds"] = round(time.perf_counter() - t0, 3)
    return out


def _m_from_labels(
    linker: Linker, db_api: Any, labels: pd.DataFrame, frame: PreparedFrame
) -> dict[str, Any]:
    pos = frame.known_pairs(labels[labels["is_match"].astype(bool)])
    if pos.empty:
        raise LabelsError(
            "labels: no positive label (is_match true) refers to two records of this data set"
        )
    table = db_api.register(
        pos[["unique_id_l", "unique_id_r"]].reset_index(drop=True),
        dataset_display_name="labels",
    )
    linker.training.estimate_m_from_pairwise_labels(table)
    return {"method": "labels", "pairs": len(pos)}


def parameters_table(splink_model: dict[str, Any] | None) -> list[dict[str, Any]]:
    """m and u per comparison level of a Splink model dict (null levels left out)."""
    rows: list[dict[str, Any]] = []
    for comp in (splink_model or {}).get("comparisons", []):
        for level in comp.get("comparison_levels", []):
            if level.get("is_null_level"):
                continue
            rows.append(
                {
                    "comparison": comp.get("output_column_name"),
                    "level": level.get("label_for_charts") or level.get("sql_condition"),
                    "m": level.get("m_probability"),
                    "u": level.get("u_probability"),
                }
            )
    return rows
