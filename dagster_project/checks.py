"""Checks made below the Dagster layer (`quality.validate.CheckOutcome`: name, passed, severity,
description, metadata) reported as Dagster asset check results, their metadata made readable."""

from __future__ import annotations

import dagster as dg

from dagster_project.metadata import readable
from quality.validate import CheckOutcome

__all__ = ["check_result"]


def check_result(check: CheckOutcome) -> dg.AssetCheckResult:
    """`check` as the result of the asset check of the same name (severity ERROR or WARN)."""
    return dg.AssetCheckResult(
        check_name=check.name,
        passed=bool(check.passed),
        severity=dg.AssetCheckSeverity[check.severity],
        description=check.description,
        metadata=readable(check.metadata or {}),
    )
