"""Audiences on a warehouse file: values checked against the warehouse, `--sql` kept read-only,
and saved audiences exported by the one export routine, atomically, with the tables."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from audience_support import build_tiny_warehouse

from transforms.audience import AudienceError, AudienceSpec
from warehouse.audience import AUDIENCES_DIR, audience_csv, audience_on, build_audience
from warehouse.exports import ExportError
from warehouse.store import Warehouse


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return build_tiny_warehouse(tmp_path_factory.mktemp("tiny") / "warehouse.duckdb")


@pytest.fixture
def store(tiny, tmp_path) -> Warehouse:
    published = tmp_path / "warehouse" / "warehouse.duckdb"
    published.parent.mkdir()
    shutil.copyfile(tiny, published)
    return Warehouse(published, tmp_path / "staging" / "staging.duckdb", tmp_path / "exports")


def on(path: Path, spec: AudienceSpec, strict: bool = True):
    con = duckdb.connect(str(path), read_only=True)
    try:
        return audience_on(con, spec, strict=strict)
    finally:
        con.close()


# --------------------------------------------------------------------- values the warehouse has
@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (AudienceSpec("carrier_pigeon"), ("no consent is recorded for purpose 'carrier_pigeon'; purposes in the "
                                         "warehouse: email_marketing, sms_marketing")),
        (AudienceSpec("email_marketing", channels=("fax",)), ("no customer was seen on channel fax; channels in the "
                                                             "warehouse: email, online, store, web")),
        (AudienceSpec("email_marketing", min_spend=10), "spend bounds need a currency: customers' spend is in EUR, GBP"),
    ],
)  # fmt: skip
def test_strict_refuses_a_value_the_warehouse_does_not_have(tiny, spec, message):
    with pytest.raises(AudienceError, match=message.replace("(", r"\(")):
        on(tiny, spec)


def test_lenient_reports_the_problem_and_the_filter_matches_nobody(tiny):
    result = on(tiny, AudienceSpec("email_marketing", channels=("fax",)), strict=False)
    assert result.problems == ["no customer was seen on channel fax; channels in the warehouse: email, online, store, web"]
    assert (result.matched, result.written) == (0, 0)


def test_spend_in_one_currency_needs_no_currency_named(tiny, tmp_path):
    one = tmp_path / "one.duckdb"
    shutil.copyfile(tiny, one)
    with duckdb.connect(str(one)) as con:
        con.execute("UPDATE scv.customer_profile SET spend_currency = 'GBP' WHERE spend_currency = 'EUR'")
    result = on(one, AudienceSpec("email_marketing", min_spend=400))
    assert result.spec.currency == "GBP"
    assert result.filter_counts == {"spend at least 400 GBP": 1}


def test_counts_say_who_was_left_out_and_why(tiny):
    result = on(tiny, AudienceSpec("email_marketing", stages=("at_risk",), segments=("At Risk",)))
    assert result.counts() == {
        "customers": 8,
        "filters": {"lifecycle stage at_risk": 5, "RFM segment At Risk": 4},
        "matched": 4,
        "no_consent_record": 1,
        "withdrawn": 1,
        "no_identifier": 1,
        "rows": 1,
    }


# --------------------------------------------------------------------------------- --sql
def test_sql_is_one_more_filter(store):
    sql = "SELECT * FROM (VALUES ('A'), ('B'), ('D'), ('nope')) AS t(customer_id)"
    result = build_audience(store, AudienceSpec("email_marketing", min_spend=0, currency="GBP"), sql=sql)
    assert (result.matched, result.withdrawn, result.written, result.unknown_ids) == (3, 1, 2, 1)


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("DELETE FROM scv.customer", "must be a SELECT"),
        ("SELECT customer_id FROM scv.customer; DROP TABLE scv.customer", "one SELECT"),
        ("SELECT email FROM scv.customer", "must return a customer_id column"),
        ("SELECT customer_id FROM read_csv('/etc/hostname')", "--sql failed"),
    ],
)
def test_sql_must_be_one_read_only_select(store, sql, message):
    before = store.published.read_bytes()
    with pytest.raises(AudienceError, match=message):
        build_audience(store, AudienceSpec("email_marketing"), sql=sql)
    assert store.published.read_bytes() == before


def test_no_warehouse_yet_is_one_line(tmp_path):
    store = Warehouse(tmp_path / "w.duckdb", tmp_path / "s.duckdb", tmp_path / "x")
    with pytest.raises(AudienceError, match=r"no published warehouse yet \(run `scv run` first\)"):
        build_audience(store, AudienceSpec("email_marketing"))


# --------------------------------------------------------------------------------- files
def test_csv_neutralises_formulas_but_keeps_e164_phones():
    rows = pd.DataFrame(
        {"customer_id": ["C"], "email": ["-x@example.com"], "phone": ["+447700900001"], "first_name": ["=Cat"],
         "last_name": ["@Test"]}
    )  # fmt: skip
    text = audience_csv(rows)
    assert text.endswith("\r\n")
    assert list(csv.reader(io.StringIO(text)))[1] == ["C", "'-x@example.com", "+447700900001", "'=Cat", "'@Test"]


# ------------------------------------------------------------------------- saved audiences
SAVED = (
    AudienceSpec("email_marketing", stages=("at_risk",), segments=("At Risk",), name="lapsed"),
    AudienceSpec("email_marketing", channels=("store",), format="plain", name="store_list"),
    AudienceSpec("email_marketing", channels=("fax",), name="typo"),
)


def with_audiences(store: Warehouse, specs) -> Warehouse:
    return Warehouse(store.published, store.staging, store.exports, tuple(specs))


def test_saved_audiences_are_exported_with_the_tables(store):
    manifest = with_audiences(store, SAVED).export_parquet("run-1", "2026-11-20")
    root = store.exports / AUDIENCES_DIR
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*")) == [
        "lapsed", "lapsed/data.parquet", "lapsed/lapsed.csv", "store_list", "store_list/data.parquet",
        "store_list/store_list.csv", "typo", "typo/data.parquet", "typo/typo.csv",
    ]  # fmt: skip
    assert (store.exports / "customer" / "data.parquet").exists()
    entry = manifest["audiences"]["lapsed"]
    assert entry["rows"] == 1 and entry["path"] == "audiences/lapsed/data.parquet"
    assert entry["definition"] == {"purpose": "email_marketing", "format": "hashed", "stage": ["at_risk"], "segment": ["At Risk"]}
    assert json.loads((store.exports / "manifest.json").read_text())["audiences"] == manifest["audiences"]
    assert manifest["audiences"]["typo"]["problems"][0].startswith("no customer was seen on channel fax")
    hashed = pd.read_parquet(root / "lapsed" / "data.parquet")
    assert hashed.to_dict("records") == [{"Email": sha("ann@example.com"), "Phone": sha("+447700900001")}]
    plain = list(csv.DictReader((root / "store_list" / "store_list.csv").open(newline="")))
    # C (store, email granted) is written; H has no usable email or phone; G has none either
    assert [r["customer_id"] for r in plain] == ["C"] and plain[0]["first_name"] == "'=Cat"
    # the tables' reader glob still reads one table; no hidden file is left behind
    assert not list(store.exports.rglob(".*.tmp"))


def test_an_audience_no_longer_in_the_config_is_deleted(store):
    with_audiences(store, SAVED).export_parquet("run-1", "2026-11-20")
    manifest = with_audiences(store, SAVED[:1]).export_parquet("run-2", "2026-11-21")
    assert sorted(p.name for p in (store.exports / AUDIENCES_DIR).iterdir()) == ["lapsed"]
    assert list(manifest["audiences"]) == ["lapsed"]
    manifest = store.export_parquet("run-3", "2026-11-22")  # no audiences at all
    assert "audiences" not in manifest
    assert not list((store.exports / AUDIENCES_DIR).iterdir())


def test_an_audience_that_cannot_be_written_publishes_nothing(store):
    with_audiences(store, SAVED[:1]).export_parquet("run-1", "2026-11-20")
    before = (store.exports / "manifest.json").read_text()
    blocker = store.exports / AUDIENCES_DIR / "store_list"
    blocker.write_text("not a folder")
    with pytest.raises(ExportError, match=r"exports/audiences: cannot write the export"):
        with_audiences(store, SAVED[:2]).prepare_exports("run-2", "2026-11-21")
    assert (store.exports / "manifest.json").read_text() == before
    assert not list(store.exports.rglob(".*.tmp"))


def test_a_warehouse_of_an_older_shape_is_one_line(store):
    with duckdb.connect(str(store.published)) as con:
        con.execute("ALTER TABLE scv.customer_profile DROP COLUMN spend_currency")
    with pytest.raises(AudienceError, match=r"spend_currency.*\(a night with this version rebuilds it: scv run\)"):
        build_audience(store, AudienceSpec("email_marketing"))
