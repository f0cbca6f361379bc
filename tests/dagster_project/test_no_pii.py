"""No personal data in logs, Dagster event metadata or the run report: counts and hashes only."""

import os
import re

import dagster as dg
import pandas as pd
import pytest

from sources.config import load_config
from sources.readers import read_source

pytestmark = pytest.mark.slow


def demo_identifiers(config) -> set[str]:
    """Every email and phone number (as written, and digits-only) in the demo's person sources."""
    cfg = load_config(config)
    found: set[str] = set()
    for src in cfg.person_sources().values():
        raw = read_source(src)
        for field in ("email", "phone"):
            column = src.columns.get(field)
            if column is None:
                continue
            for value in raw[column].dropna().astype(str):
                value = value.strip()
                if field == "email" and "@" in value and len(value) > 6:
                    found.add(value.lower())
                digits = re.sub(r"\D", "", value)
                if field == "phone" and len(digits) >= 9 and len(set(digits)) > 2:
                    found.add(digits[-9:])  # national significant part, whatever the format
    return found


def test_no_email_or_phone_in_logs_metadata_or_report(demo_run):
    identifiers = demo_identifiers(demo_run)
    assert len(identifiers) > 100
    texts: list[str] = []
    with dg.DagsterInstance.get() as instance:
        for run in instance.get_runs():
            for record in instance.all_logs(run.run_id):
                texts.append(record.user_message or "")
                if record.dagster_event is not None:
                    texts.append(str(record.dagster_event.event_specific_data))
    cfg = load_config(demo_run)
    for report in cfg.reports_dir.glob("*.html"):
        texts.append(report.read_text(encoding="utf-8"))
    for summary in cfg.reports_dir.glob("*.json"):
        texts.append(summary.read_text(encoding="utf-8"))
    assert len(texts) > 100
    haystack = "\n".join(texts).lower()
    digits_only = re.sub(r"\D", "", haystack)
    leaked = [i for i in identifiers if ("@" in i and i in haystack)]
    leaked += [i for i in identifiers if "@" not in i and i in digits_only and i in re.sub(r"[ \-()]", "", haystack)]
    assert not leaked, f"{len(leaked)} identifiers found in logs/metadata/report, e.g. {leaked[:3]}"
