"""A source landed and accepted, called directly (no Dagster): an unchanged file is not read
again, a validation is reused only while its inputs and the as-of date allow, checks kept as JSON
come back the same, and the SQL the stages build parses."""

import json
import logging
from datetime import date, datetime

import pandas as pd
import pytest
import sqlglot

from quality import source_checks
from sources.config import load_config
from warehouse.accepted import accept_source
from warehouse.customer import golden_records_sql
from warehouse.customer_xref import xref_touched_sqls
from warehouse.landing import land_source, landing_path
from warehouse.nightly.sources import known_ids_digest_sql, landing_state, standardise_key
from warehouse.store import Warehouse

CONFIG = """
data_dir: data
warehouse: data/warehouse/warehouse.duckdb
exports: data/exports
sources:
  crm:
    kind: person
    path: crm.csv
    id: Id
    default_country: GB
    columns: {email: Email, first_name: First, last_name: Last}
  orders:
    kind: order
    path: orders.csv
    id: order_id
    person: {source: crm, key: customer}
    columns: {order_date: created, amount: total, currency: currency, status: status}
"""

LOG = logging.getLogger("test")
RUN_AT = datetime(2026, 11, 2, 1, 0)


@pytest.fixture
def project(tmp_path):
    (tmp_path / "scv.yml").write_text(CONFIG)
    (tmp_path / "crm.csv").write_text(
        "Id,Email,First,Last\n1,ann@example.com,Ann,Lee\n2,bob@example.com,Bob,Ray\n,x@example.com,No,Id\n"
    )
    (tmp_path / "orders.csv").write_text(
        "order_id,customer,created,total,currency,status\n"
        "o1,1,2026-10-01,10.5,GBP,completed\no2,2,2026-10-02,4,GBP,completed\no3,9,2026-10-03,1,GBP,completed\n"
    )
    cfg = load_config(tmp_path / "scv.yml")
    return cfg, Warehouse(cfg.warehouse, cfg.staging_warehouse, cfg.exports)


def _night(cfg, store, as_of=date(2026, 11, 1)):
    done = {}
    for name in ("crm", "orders"):
        src = cfg.sources[name]
        land_source(cfg, src, set(), None, LOG)
        done[name] = accept_source(cfg, src, store, as_of, "run", RUN_AT, set(), None, LOG)
    return done


def test_an_unchanged_file_is_not_read_again_and_a_changed_one_is(project):
    cfg, _ = project
    src = cfg.sources["crm"]
    first = land_source(cfg, src, set(), None, LOG)
    assert not first.unchanged and first.rows == 3 and first.path == landing_path(cfg, "crm")
    again = land_source(cfg, src, set(), None, LOG)
    assert again.unchanged and again.metadata == first.metadata
    src.path.write_text(src.path.read_text() + "4,dan@example.com,Dan,Fox\n")
    changed = land_source(cfg, src, set(), None, LOG)
    assert not changed.unchanged and changed.rows == 4
    assert landing_state(cfg, "crm").previous_columns == ["Id", "Email", "First", "Last"]


def test_a_validation_is_reused_while_its_inputs_hold_and_reports_the_same_checks(project):
    cfg, store = project
    first = _night(cfg, store)
    assert all(a.revalidated for a in first.values())
    assert first["crm"].summary["rows_quarantined"] == 1  # the row without an id
    assert first["orders"].summary["quarantined_by_rule"] == {"unknown_person": 1}
    again = _night(cfg, store)
    assert not any(a.revalidated for a in again.values())
    for name in ("crm", "orders"):
        assert again[name].summary == json.loads(json.dumps(first[name].summary, default=str))
        assert again[name].checks == first[name].checks
    # an as-of date before the validation's: a date in the future then may not be now
    assert _night(cfg, store, date(2026, 10, 1))["crm"].revalidated


def test_a_person_file_change_outside_the_ids_leaves_the_activity_validation_alone(project):
    cfg, store = project
    _night(cfg, store)
    crm = cfg.sources["crm"].path
    crm.write_text(crm.read_text().replace("Ray", "Wray"))
    done = _night(cfg, store)
    assert done["crm"].revalidated and not done["orders"].revalidated
    assert done["crm"].summary["rows_standardisation_reused"] == 1  # Ann's row, unchanged


def test_the_standardise_key_follows_the_settings_not_the_path(project):
    cfg, _ = project
    src = cfg.sources["crm"]
    assert standardise_key(src) == standardise_key(src.model_copy(update={"path": src.path.with_name("x.csv")}))
    assert standardise_key(src) != standardise_key(src.model_copy(update={"default_country": "FR"}))


def test_a_check_kept_as_json_comes_back_the_same():
    findings = pd.DataFrame({"field": ["email"], "rule": ["placeholder"], "count": [3]})
    for check in (
        source_checks.field_findings_check(10, findings),
        source_checks.quarantine_share_check(100, 7, {"missing_id": 7}),
        source_checks.conservation_check(10, 8, 2),
    ):
        kept = json.loads(json.dumps(source_checks.check_state(check)))
        assert source_checks.check_from_state(kept) == check


@pytest.mark.parametrize(
    "sql",
    [*xref_touched_sqls(), known_ids_digest_sql("crm"), golden_records_sql()],
)
def test_the_stages_sql_parses(sql):
    assert sqlglot.parse_one(sql, read="duckdb") is not None
