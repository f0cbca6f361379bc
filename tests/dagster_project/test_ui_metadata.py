"""What the Dagster catalog shows (issue 20): column schemas from the warehouse COMMENTs, figures
in plain words, percentages, tables; warning checks that fire only when there is something to
do; Splink's messages as one Dagster log line each, with progress on long steps."""

from __future__ import annotations

import json
import logging
import time

import dagster as dg
import pandas as pd
import pytest

from dagster_project import constants as C
from dagster_project.checks import check_result
from dagster_project.definitions import build_definitions
from dagster_project.metadata import LABELS, readable, training_metadata
from dagster_project.splink_log import readable_line, splink_to_dagster
from quality import source_checks
from quality.validate import CheckOutcome
from sources.config import load_config
from warehouse.schema import TABLES


# --------------------------------------------------------------------- catalog
def test_every_scv_table_asset_carries_its_columns_from_the_schema_comments(demo_sources):
    graph = build_definitions(load_config(demo_sources / "scv.yml")).resolve_asset_graph()
    shown = 0
    for name, table in TABLES.items():
        key = dg.AssetKey(name)
        if not graph.has(key):
            continue
        node = graph.get(key)
        schema = node.metadata["dagster/column_schema"]
        assert [(c.name, c.type, c.description) for c in schema.columns] == [
            (c.name, c.type, c.comment) for c in table.columns
        ]
        assert node.metadata["dagster/table_name"] == f"scv.{name}"
        shown += 1
    assert shown >= 12  # every published table is an asset of the graph


def test_readable_relabels_internal_names_shows_percentages_and_tables():
    out = readable(
        {
            "vetoed_edges": 3,
            "isolated_ambiguous": 1,
            "match_rate": 0.5873,
            "cluster_size_distribution": {"1": 85, "2": 91},
            "records_rescored": 7,  # already words: kept (tests and the report read it)
            "fields": ["email", "phone"],
            "scope_vetoed_dob": 2,
            "scope_clusters": 5,
            "dagster/row_count": 10,
            "report": dg.MetadataValue.url("http://127.0.0.1:3001/reports/x.html"),
        }
    )
    assert "vetoed_edges" not in out and out[LABELS["vetoed_edges"]] == 3
    assert out[LABELS["isolated_ambiguous"]] == 1
    assert out["records in a multi-record person (%)"] == 58.73
    sizes = out["people by number of records"]
    assert isinstance(sizes, dg.TableMetadataValue)
    assert [c.name for c in sizes.schema.columns] == ["records per person", "people"]
    assert [r.data for r in sizes.records] == [
        {"records per person": "1", "people": 85},
        {"records per person": "2", "people": 91},
    ]
    assert out["records_rescored"] == 7 and out["fields"] == "email, phone"
    scope = next(v for k, v in out.items() if k.startswith("tonight's relink scope"))
    assert [r.data["figure"] for r in scope.records] == [LABELS["vetoed_dob"], LABELS["clusters"]]
    assert out["dagster/row_count"] == 10 and isinstance(out["report"], dg.UrlMetadataValue)
    # what Dagster accepts as a materialization's metadata
    dg.MaterializeResult(metadata=out)


def test_training_record_as_tables():
    out = training_metadata(
        {
            "records": 763,
            "u_pairs": 290703,
            "u_method": "non-matches",
            "prior": {"method": "deterministic rules", "value": 0.002},
            "m_sessions": [{"method": "em", "block_on": ["dob"], "iterations": 3, "seconds": 0.2}],
            "seconds": {"u": 0.5},
            "levels_adjusted": ["phone: one typo (no data: weight 0)"],
            "parameters": [{"comparison": "dob", "level": "Exact match on dob", "m": 0.96, "u": 0.0001}],
        }
    )
    figures = {r.data["figure"]: r.data["value"] for r in out["training"].records}
    assert figures["prior: two random records match (deterministic rules)"] == "1 in 500"
    assert figures["m session 1 (em on dob)"] == "3 iterations, 0.2 s"
    [param] = next(v for k, v in out.items() if k.startswith("model parameters")).records
    assert param.data["m (%)"] == 96.0 and param.data["u (%)"] == 0.01
    assert param.data["match weight"] == pytest.approx(13.23, abs=0.01)


# --------------------------------------------------------------------- warning checks
def expectations_check(name, outcomes):
    return check_result(source_checks.expectations_check(name, outcomes))


def field_findings_check(rows, findings):
    return check_result(source_checks.field_findings_check(rows, findings))


def _outcome(name, passed, **meta):
    return CheckOutcome(name, passed, "WARN", f"{name} holds", meta)


def test_expectations_check_is_quiet_when_failing_rows_were_quarantined():
    handled = [
        _outcome("ids_unique", False, rows_failing=1, rows_quarantined=1, rule="duplicate_id"),
        _outcome("emails_valid", True),
    ]
    result = expectations_check("crm", handled)
    assert result.passed and result.severity == dg.AssetCheckSeverity.WARN
    assert "ids_unique (1)" in result.description

    needs_a_look = [*handled, _outcome("postcode_format", False, rows_failing=40, reason="40 row(s) failed")]
    result = expectations_check("crm", needs_a_look)
    assert not result.passed and result.description.startswith("postcode_format: 40 row(s)")
    errored = [_outcome("ids_unique", False, rule="duplicate_id", exception="boom")]
    assert not expectations_check("crm", errored).passed


def test_field_findings_check_fires_on_a_field_mostly_invalid_not_on_a_few_placeholders():
    few = pd.DataFrame({"field": ["email", "phone"], "rule": ["placeholder", "invalid"], "count": [4, 1]})
    result = field_findings_check(170, few)
    assert result.passed and "highest: email 2.4%" in result.description
    table = result.metadata[LABELS["invalid_by_field"]]
    assert {r.data["field"]: r.data["records invalid (%)"] for r in table.records} == {"email": 2.35, "phone": 0.59}

    # a night that reuses the validation reports the check again from its JSON: same table
    kept = json.loads(json.dumps(source_checks.check_state(source_checks.field_findings_check(170, few))))
    again = check_result(source_checks.check_from_state(kept)).metadata
    assert again[LABELS["invalid_by_field"]] == table

    wrong_format = pd.DataFrame({"field": ["date_of_birth"], "rule": ["invalid"], "count": [150]})
    result = field_findings_check(170, wrong_format)
    assert not result.passed and "date_of_birth 88.2%" in result.description
    assert C.FIELD_INVALID_WARN_SHARE == 0.10


# --------------------------------------------------------------------- Splink in the log
def test_splink_messages_become_one_readable_line():
    line = readable_line(
        "WARNING:\nLevel initial matches on comparison first_name not observed in dataset, "
        "unable to train m value\n"
    )
    assert "\n" not in line and "first_name" in line and "initial matches" in line
    assert "WARNING" not in line
    em = readable_line(
        "Estimating the m probabilities of the model by blocking on:\n(l.\"dob\" = r.\"dob\")\n\n"
        "Parameter estimates will be made for the following comparison(s):\n    - first_name\n"
        "    - email\n\nParameter estimates cannot be made for the following comparison(s) since "
        "they are used in the blocking rules: \n    - dob"
    )
    assert em == (
        'Splink EM: estimating the m probabilities on pairs blocked by (l."dob" = r."dob"), '
        "for first_name, email (not for dob: used in blocking)"
    )
    assert readable_line("\n----- Starting EM training session -----\n") == ""
    assert readable_line("m probability not trained for phone - one typo (vector 1). This usually means x") == ""
    assert readable_line(
        "Probability two random records match is estimated to be 0.00218. This means that amongst all"
    ) == "Splink: Probability two random records match is estimated to be 0.00218."


class _Log:
    def __init__(self):
        self.lines: list[tuple[str, str]] = []

    def info(self, msg):
        self.lines.append(("info", msg))

    def warning(self, msg):
        self.lines.append(("warning", msg))

    def debug(self, msg):
        self.lines.append(("debug", msg))


def test_splink_to_dagster_routes_dedupes_restores_and_reports_progress():
    splink = logging.getLogger("splink")
    console = logging.StreamHandler()
    splink.addHandler(console)
    before = (list(splink.handlers), splink.level, splink.propagate)
    log = _Log()
    try:
        with splink_to_dagster(log, "training", heartbeat=0.3):
            for _ in range(2):  # Splink warns again in every EM session: logged once
                splink.warning(
                    "WARNING:\nLevel one typo on comparison phone not observed in dataset, unable to train m value\n"
                )
            splink.info("Iteration 1: Largest change in params was 0.2")
            logging.getLogger("splink.internals.em").warning(
                "[EM sampling] %s", "Probe returned zero blocked pairs; skipping sampling"
            )
            time.sleep(1.5)  # a long quiet step
        assert (splink.handlers, splink.level, splink.propagate) == tuple(before)
        levels = [lvl for lvl, _ in log.lines]
        texts = [t for _, t in log.lines]
        assert sum("phone at level 'one typo'" in t for t in texts) == 1
        assert levels[0] == "warning" and levels[1] == "debug"  # iterations at DEBUG
        assert log.lines[2] == ("info", "Splink EM: the sampling probe found no blocked pairs, so EM uses every blocked pair")
        progress = [t for t in texts if t.startswith("training: still running")]
        assert progress and "last: Splink EM" in progress[0]
        n = len(log.lines)
        splink.warning("after the step")
        assert len(log.lines) == n  # nothing routed once the step is over
    finally:
        splink.removeHandler(console)
