"""u probabilities from pairs that are certainly different people.

Splink's `estimate_u_using_random_sampling` treats every random pair as a non-match. That is
fine for names, but not for identifiers: a random pair agrees on an email almost only when it
*is* a match, so the sampled u of "same email" is about `P(match) * m`, and an exact email
(or phone, or street address) alone comes out at even odds whatever the data. Here the same
deterministic random sample of pairs is scored, but u is counted only over pairs that
disagree beyond doubt on first name or on date of birth (the "else" levels of those two
comparisons), which are non-matches; u of the first-name and birth-date comparisons
themselves is counted over pairs that disagree on the other one. Couples sharing an email and
families sharing a phone are in that set, so shared identifiers get the u they deserve.

When the data has neither first names nor birth dates, all pairs are used and the expected
share of matches (`prior * m`) is subtracted instead.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pandas as pd
from splink import Linker

from .comparisons import COUNT_SUFFIX, SHARED_VALUE_RECORDS
from .settings import LinkageSettings
from .training_frame import PreparedFrame

__all__ = ["NON_MATCH_PROXIES", "estimate_u_from_non_matches"]

#: Comparisons whose "else" level marks a definite non-match.
NON_MATCH_PROXIES = ("first_name", "dob")

#: Comparisons whose first (exact) level is an identifier's, with the column to join on.
IDENTIFIER_COLUMNS = {"email": "email_key", "phone": "phone_e164", "address": "address_std"}

#: A level never seen among n non-matching pairs gets u = this / n.
_UNSEEN = 0.5


def _without_tf(spec: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(spec)
    for comp in out["comparisons"]:
        for level in comp["comparison_levels"]:
            level.pop("tf_adjustment_column", None)
            level.pop("tf_adjustment_weight", None)
            level.pop("tf_minimum_u_value", None)
    out["retain_matching_columns"] = False
    out["retain_intermediate_calculation_columns"] = False
    return out


def _u_linker(db_api: Any, frame: PreparedFrame, spec: dict[str, Any]) -> Linker:
    return Linker(frame.register(db_api, "u_frame"), _without_tf(spec), log_level=None)


def _gamma_counts(linker: Linker, pairs_sql: str) -> pd.DataFrame:
    """Counts of each combination of comparison levels over the pairs `pairs_sql` selects
    (a FROM ... clause naming the two sides `l` and `r`)."""
    so = linker._settings_obj
    gammas = [f"gamma_{c.output_column_name}" for c in so.comparisons]
    blocking_cols = ", ".join(so._columns_to_select_for_blocking)
    cv_cols = ", ".join(so._columns_to_select_for_comparison_vector_values)
    sql = f"""
    WITH blocked AS (
        SELECT {blocking_cols}, 0 AS match_key {pairs_sql}
    ), cv AS (
        SELECT {cv_cols} FROM blocked
    )
    SELECT {", ".join(gammas)}, count(*) AS n FROM cv GROUP BY {", ".join(gammas)}
    """
    counts = linker.misc.query_sql(sql, output_type="pandas")
    counts.columns = [c.removeprefix("gamma_") for c in counts.columns]
    return counts


def _proxy_mask(counts: pd.DataFrame, proxies: list[str]) -> np.ndarray:
    cond = np.zeros(len(counts), dtype=bool)
    for p in proxies:
        cond |= (counts[p] == 0).to_numpy()
    return cond


def estimate_u_from_non_matches(
    db_api: Any,
    frame: PreparedFrame,
    spec: dict[str, Any],
    settings: LinkageSettings,
    *,
    prior: float,
) -> dict[str, Any]:
    """u per (comparison, comparison vector value) from a seeded sample of about
    `settings.u_max_pairs` record pairs (`PreparedFrame.sample`); see the module docstring.

    For identifiers (email, phone, street line) agreement between different people is so rare
    that a sample of millions of pairs sees it a handful of times, if at all. Their exact
    level is therefore counted over *all* pairs of the data that share the value (a cheap
    self-join; values shared by more than `SHARED_VALUE_RECORDS` records are left out, they
    are scored as no information anyway) and divided by the number of non-matching pairs
    the sample implies.
    """
    linker = _u_linker(db_api, frame, spec)
    t = frame.sample(db_api, settings.u_max_pairs, settings.seed).physical_name
    counts = _gamma_counts(linker, f"FROM {t} AS l JOIN {t} AS r ON l.unique_id < r.unique_id")
    pairs = int(counts["n"].sum())
    comps = [c["output_column_name"] for c in spec["comparisons"]]
    proxies = [p for p in NON_MATCH_PROXIES if p in comps]
    u: dict[tuple[str, int], float] = {}
    unseen: set[tuple[str, int]] = set()
    methods = set()
    for comp in spec["comparisons"]:
        name = comp["output_column_name"]
        others = [p for p in proxies if p != name]
        observed = counts[counts[name] >= 0]
        sub = observed[_proxy_mask(observed, others)] if others else observed.iloc[0:0]
        levels = _non_null_levels(comp["comparison_levels"])
        if len(sub) and sub["n"].sum() > 0:
            total = float(sub["n"].sum())
            per = sub.groupby(name)["n"].sum()
            for cvv, _level in levels:
                if not per.get(cvv, 0):
                    unseen.add((name, cvv))
                u[(name, cvv)] = max(float(per.get(cvv, 0)), _UNSEEN) / total
            methods.add("non-matches")
            column = IDENTIFIER_COLUMNS.get(name)
            if column is not None and column in frame.columns:
                exact = _exact_u_from_join(
                    linker,
                    frame,
                    column,
                    name,
                    others,
                    levels[0][0],
                    proxy_share=total / float(observed["n"].sum()),
                )
                if exact is not None:
                    u[(name, levels[0][0])] = exact
                    unseen.discard((name, levels[0][0]))
        elif observed["n"].sum() > 0:
            total = float(observed["n"].sum())
            per = observed.groupby(name)["n"].sum()
            for cvv, level in levels:
                share = float(per.get(cvv, 0)) / total
                if not share:
                    unseen.add((name, cvv))
                expected_matches = prior * float(level.get("m_probability") or 0.0)
                u[(name, cvv)] = max(share - expected_matches, _UNSEEN / total)
            methods.add("all pairs less expected matches")
    method = " + ".join(sorted(methods)) or "none"
    return {"u": u, "unseen": unseen, "pairs": pairs, "method": method}


def _exact_u_from_join(
    linker: Linker,
    frame: PreparedFrame,
    column: str,
    name: str,
    proxies: list[str],
    exact_cvv: int,
    *,
    proxy_share: float,
) -> float | None:
    """u of `name`'s exact level: non-matching pairs agreeing on `column` over the whole
    data, divided by all non-matching pairs (pairs with both values present x the share of
    them that the proxies mark as non-matches)."""
    present = frame.present(column)
    all_pairs = present * (present - 1) / 2
    if all_pairs <= 0 or proxy_share <= 0:
        return None
    table = linker._input_tables_dict
    physical = next(iter(table.values())).physical_name
    limit = (
        f"l.{column}{COUNT_SUFFIX} <= {SHARED_VALUE_RECORDS}"
        if f"{column}{COUNT_SUFFIX}" in frame.columns
        else "1=1"
    )
    counts = _gamma_counts(
        linker,
        f"FROM {physical} AS l JOIN {physical} AS r "
        f"ON l.{column} = r.{column} AND l.unique_id < r.unique_id WHERE {limit}",
    )
    if counts.empty:
        return _UNSEEN / (all_pairs * proxy_share)
    hits = counts[(counts[name] == exact_cvv) & _proxy_mask(counts, proxies)]["n"].sum()
    return max(float(hits), _UNSEEN) / (all_pairs * proxy_share)


def _non_null_levels(levels: list[dict[str, Any]]) -> list[tuple[int, dict[str, Any]]]:
    """(comparison vector value, level) of the non-null levels; Splink numbers them from the
    last one (ELSE = 0) upwards."""
    real = [lv for lv in levels if not lv.get("is_null_level")]
    return [(len(real) - 1 - i, lv) for i, lv in enumerate(real)]
