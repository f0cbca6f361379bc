"""The five checks every accepted source reports (Dagster asset checks of `accepted/<source>`),
as plain `CheckOutcome`s: made by the validation, kept as JSON with it, reported again by a night
that reuses it. Severity is chosen deliberately: ERROR blocks downstream, WARN asks a human.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from quality.validate import SEVERITY_ERROR, SEVERITY_WARN, CheckOutcome

__all__ = [
    "CHECK_CONSERVATION",
    "CHECK_EXPECTATIONS",
    "CHECK_FIELD_FINDINGS",
    "CHECK_FILE_LEVEL",
    "CHECK_QUARANTINE_SHARE",
    "FIELD_INVALID_WARN_SHARE",
    "QUARANTINE_WARN_SHARE",
    "check_from_state",
    "check_state",
    "conservation_check",
    "expectations_check",
    "field_findings_check",
    "file_level_check",
    "quarantine_share_check",
]

CHECK_FILE_LEVEL = "file_is_usable"  # ERROR: empty, shrunk or drifted file
CHECK_CONSERVATION = "rows_conserved"  # ERROR: rows_in = accepted + quarantined
CHECK_QUARANTINE_SHARE = "quarantine_share_below_limit"  # WARN
CHECK_FIELD_FINDINGS = "optional_fields_valid"  # WARN
CHECK_EXPECTATIONS = "great_expectations_suite"  # WARN (row failures are quarantined)

#: Share of quarantined rows above which a human should look (WARN check)
QUARANTINE_WARN_SHARE = 0.05
#: Share of accepted rows with one optional field invalid above which a human should look
#: (WARN check): a few placeholders are ordinary, a field mostly invalid is a mapping problem
FIELD_INVALID_WARN_SHARE = 0.10


def file_level_check(
    name: str, path: Any, blocking: Sequence[CheckOutcome], rows_in: int, previous_rows_in: int | None
) -> CheckOutcome:
    """ERROR: the delivery is usable (not empty, not shrunk, columns as before)."""
    reason = lambda c: c.metadata.get("reason", c.description)
    return CheckOutcome(
        CHECK_FILE_LEVEL,
        not blocking,
        SEVERITY_ERROR,
        f"source {name}: {path}: " + "; ".join(reason(c) for c in blocking) if blocking else "file usable",
        {"rows_in": rows_in, **({"previous_rows_in": previous_rows_in} if previous_rows_in is not None else {})},
    )


def conservation_check(rows_in: int, rows_accepted: int, rows_quarantined: int) -> CheckOutcome:
    """ERROR: nothing lost, rows_in = rows_accepted + rows_quarantined."""
    return CheckOutcome(
        CHECK_CONSERVATION,
        rows_in == rows_accepted + rows_quarantined,
        SEVERITY_ERROR,
        None,
        {"rows_in": rows_in, "rows_accepted": rows_accepted, "rows_quarantined": rows_quarantined},
    )


def quarantine_share_check(rows_in: int, rows_quarantined: int, by_rule: dict) -> CheckOutcome:
    """WARN: at most `QUARANTINE_WARN_SHARE` of the rows quarantined."""
    rows_q = rows_quarantined
    return CheckOutcome(
        CHECK_QUARANTINE_SHARE,
        rows_q <= QUARANTINE_WARN_SHARE * max(rows_in, 1),
        SEVERITY_WARN,
        f"{rows_q:,} of {rows_in:,} rows quarantined ({rows_q / max(rows_in, 1):.1%}; "
        f"a human should look above {QUARANTINE_WARN_SHARE:.0%})",
        {"share": rows_q / max(rows_in, 1), "quarantined_by_rule": by_rule},
    )


def expectations_check(name: str, outcomes: Sequence[CheckOutcome]) -> CheckOutcome:
    """The GX suite as one WARN check that fires only when a human has something to do: an
    expectation failed whose rows were not quarantined (a `warn` expectation, a file-level
    warning) or that could not run. Failing rows that went to quarantine are already handled,
    and counted by the quarantine-share check, so they leave this check passing: it fired on
    every demo night (one duplicate id in a source) and meant nothing."""
    failed = [c for c in outcomes if not c.passed and not c.blocking]
    handled = [c for c in failed if c.metadata.get("rule") and "exception" not in c.metadata]
    open_ = [c for c in failed if c not in handled]

    def why(c: CheckOutcome) -> str:
        return c.metadata.get("exception") or c.metadata.get("reason", c.description)

    if open_:
        description = "; ".join(f"{c.name}: {why(c)}" for c in open_)[:2000]
    elif handled:
        description = f"{len(outcomes)} expectations; failing rows quarantined: " + ", ".join(
            f"{c.name} ({c.metadata.get('rows_quarantined', c.metadata.get('rows_failing', '?'))})"
            for c in handled
        )
    else:
        description = f"all {len(outcomes)} expectations passed"
    return CheckOutcome(
        CHECK_EXPECTATIONS,
        not open_,
        SEVERITY_WARN,
        description,
        {
            "expectations run": len(outcomes),
            "failed, rows quarantined": len(handled),
            "failed, not handled (needs a look)": len(open_),
        },
    )


def field_findings_check(rows: int, findings: pd.DataFrame) -> CheckOutcome:
    """Optional person fields that were invalid and treated as missing: a WARN when one field is
    invalid in more than `FIELD_INVALID_WARN_SHARE` of the accepted rows (a systematic problem:
    a wrong date_format or default_country, a column mapped to the wrong field). A few
    placeholders (`test@test.com`) are ordinary and handled: they no longer fire every night."""
    per_field = findings.groupby("field")["count"].sum().to_dict() if len(findings) else {}
    limit = FIELD_INVALID_WARN_SHARE
    worst = {f: n / max(rows, 1) for f, n in per_field.items()}
    over = sorted((f for f, share in worst.items() if share > limit), key=lambda f: -worst[f])
    described = ", ".join(f"{f} {worst[f]:.1%}" for f in (over or sorted(worst, key=lambda f: -worst[f])[:3]))
    return CheckOutcome(
        CHECK_FIELD_FINDINGS,
        not over,
        SEVERITY_WARN,
        (
            f"invalid in more than {limit:.0%} of {rows:,} rows: {described} (check the source's "
            "date_format, default_country and column mapping)"
            if over
            else f"no field invalid in more than {limit:.0%} of {rows:,} rows"
            + (f" (highest: {described})" if described else "")
        ),
        {
            "invalid_by_field": {f: round(100 * worst[f], 2) for f in sorted(worst)},
            "field_findings_by_rule": {
                f"{r.field}: {r.rule}": int(r.count) for r in findings.itertuples(index=False)
            },
        },
    )


def check_state(check: CheckOutcome) -> dict[str, Any]:
    """A check as JSON, kept with the validation to report again on a night that reuses it."""
    return {
        "check_name": check.name,
        "passed": check.passed,
        "severity": check.severity,
        "description": check.description,
        "metadata": check.metadata,
    }


def check_from_state(state: dict[str, Any]) -> CheckOutcome:
    """A check kept by `check_state`."""
    return CheckOutcome(
        state["check_name"], state["passed"], state["severity"], state["description"], state.get("metadata") or {}
    )
