"""Privacy operations on a tiny published warehouse: forget, access, audience (and their CLI)."""

from __future__ import annotations

import csv
import hashlib
import hmac
import json
import re
import shutil
from datetime import date, datetime
from pathlib import Path

import duckdb
import pandas as pd
import pytest

import warehouse.privacy as wp
import warehouse.privacy.erasure as wp_erasure
from scv_cli.main import main
from sources.config import load_config
from transforms.audience import AudienceError, AudienceSpec
from warehouse.audience import build_audience
from warehouse.privacy import Lookup, PrivacyError, SourceHints
from warehouse.schema import TABLES
from warehouse.store import Warehouse, empty_frame, write_frame

KEY = "unit-test-key-not-secret"
ALICE_EMAIL = "alice.smith@gmail.com"
ALICE_PHONE = "+447911123456"
ALICE_IDS = {"C1", "C9"}  # C9 was merged into C1 on an earlier night
OTHERS = {"C2", "C3", "C4", "C5"}
HINTS = SourceHints(
    default_country={"crm": "GB", "shop": "GB"},
    person_refs={"shop_orders": ("shop", "customer_id")},
)
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
    columns: {email: Email, phone: Phone, first_name: First}
  shop:
    kind: person
    path: shop.csv
    id: customer_id
    default_country: GB
    columns: {email: mail, phone: tel}
  shop_orders:
    kind: order
    path: orders.csv
    id: order_id
    person: {source: shop, key: customer_id}
    columns: {order_date: created, amount: total}
"""

T0 = datetime(2026, 11, 1, 9, 0)


def _frame(name: str, rows: list[dict]) -> pd.DataFrame:
    cols = TABLES[name].column_names
    if not rows:
        return empty_frame(name)
    return pd.DataFrame([{c: r.get(c) for c in cols} for r in rows], columns=cols)


def _customer(cid, first, last, email, phone, n=1):
    return dict(
        customer_id=cid, first_name=first, last_name=last, email=email, phone=phone,
        date_of_birth=date(1990, 5, 17), address_line="1 High Street", postcode="SW1A1AA",
        city="London", country="GB", first_seen_at=T0, last_seen_at=T0, record_count=n,
        sources=["crm"],
    )  # fmt: skip


def tables() -> dict[str, pd.DataFrame]:
    people = [
        ("C1", "Alice", "Smith", ALICE_EMAIL, ALICE_PHONE),
        ("C2", "Bob", "Jones", "bob@bobmail.co.uk", "+447911223344"),
        ("C3", "Carol", "King", "carol@kingmail.co.uk", None),
        ("C4", "Dan", "Brown", " Dan.Brown@Brownmail.CO.UK", "+447400123987"),
        ("C5", "Eve", "Nobody", None, None),
    ]
    customer = [_customer(*p, n=2 if p[0] == "C1" else 1) for p in people]
    xref = [
        dict(source="crm", source_record_id="1", customer_id="C1", match_probability=0.99, cluster_key="k1"),
        dict(source="shop", source_record_id="a1", customer_id="C1", match_probability=0.99, cluster_key="k1"),
    ] + [
        dict(source="crm", source_record_id=str(i), customer_id=cid, match_probability=1.0, cluster_key=cid)
        for i, cid in [(2, "C2"), (3, "C3"), (4, "C4"), (5, "C5")]
    ]  # fmt: skip
    person_record = []
    if "person_record" in TABLES:
        person_record = [
            dict(source="crm", source_record_id="1", customer_id="C1", first_name="Alice",
                 last_name="Smith", email="Alice.Smith@gmail.com", phone="07911 123456",
                 date_of_birth="17/05/1990", country="UK", updated_at=T0, field_issues=[]),
            dict(source="shop", source_record_id="a1", customer_id="C1", first_name="Alice",
                 last_name="Smith", email="alicesmith+shop@gmail.com", phone="07911 123457",
                 updated_at=T0, field_issues=[]),
            dict(source="crm", source_record_id="2", customer_id="C2", first_name="Bob",
                 email="bob@bobmail.co.uk", phone="07911 223344", updated_at=T0, field_issues=[]),
        ]  # fmt: skip
    touch = []
    for cid, n in [("C1", 3), ("C2", 2), ("C4", 1)]:
        for i in range(n):
            touch.append(
                dict(touchpoint_id=f"shop_orders:{cid}-{i}", customer_id=cid, occurred_at=T0,
                     source="shop_orders", source_record_id=f"{cid}-{i}", kind="order",
                     event_type="completed", channel="online", amount=10.0 + i,
                     attributes=json.dumps({"note": "gift"}), stitched=False)
            )  # fmt: skip
    touch.append(
        dict(touchpoint_id="consents:x1", customer_id="C1", occurred_at=T0, source="consents",
             source_record_id="x1", kind="consent", event_type="email_marketing", channel="web",
             attributes="{}", stitched=False)
    )  # fmt: skip
    touch.append(dict(touchpoint_id="web:anon", customer_id=None, occurred_at=T0, source="web",
                      source_record_id="anon", kind="event", event_type="page_view"))  # fmt: skip

    def consent(cid, granted, when):
        return dict(customer_id=cid, purpose="email_marketing", granted=granted,
                    recorded_at=when, source="consents", source_record_id=f"{cid}-{when:%d}")  # fmt: skip

    consents = [
        consent("C1", True, datetime(2026, 10, 1)),
        consent("C2", True, datetime(2026, 10, 1)),
        consent("C2", False, datetime(2026, 10, 31)),  # withdrew yesterday: the latest wins
        consent("C4", True, datetime(2026, 10, 1)),
        consent("C5", True, datetime(2026, 10, 1)),
        dict(customer_id="C3", purpose="sms_marketing", granted=True, recorded_at=T0, source="consents"),
    ]
    rfm = [
        dict(customer_id=c, as_of_date=date(2026, 11, 1), recency_days=3, frequency=2,
             monetary=20.0, r_score=5, f_score=5, m_score=5, segment="Champions")
        for c in ["C1", "C2", "C3", "C4", "C5"]
    ]  # fmt: skip
    lifecycle = [
        dict(customer_id=c, as_of_date=date(2026, 11, 1), stage="active", stage_since=date(2026, 1, 1))
        for c in ["C1", "C2", "C3", "C4", "C5"]
    ]  # fmt: skip
    lifecycle_history = [
        dict(customer_id="C9", as_of_date=date(2026, 1, 1), from_stage=None, to_stage="new"),
        dict(customer_id="C1", as_of_date=date(2026, 2, 1), from_stage="new", to_stage="active"),
        dict(customer_id="C2", as_of_date=date(2026, 2, 1), from_stage="new", to_stage="active"),
    ]
    history = [
        dict(run_at=T0, old_customer_id="C9", new_customer_id="C1", change="merge", records_moved=1),
        dict(run_at=T0, old_customer_id="C7", new_customer_id="C2", change="split", records_moved=1),
    ]
    provenance = [
        dict(customer_id=c, field="email", value=e, source="crm", source_record_id="1", rule="only", candidates=1)
        for c, _, _, e, _ in people
    ]  # fmt: skip
    profile = [
        dict(customer_id=c, first_name=f, last_name=lname, email=e, phone=p, orders_count=2,
             total_spend=20.0, channels=["online"], consent={"email_marketing": True},
             rfm_segment="Champions", lifecycle_stage="active", as_of_date=date(2026, 11, 1))
        for c, f, lname, e, p in people
    ]  # fmt: skip
    quarantine = [
        # Alice's: by record id, by email in raw text, by phone written nationally, by order key
        dict(source="crm", row_number=7, source_record_id="1", rule="duplicate_id",
             detail="duplicate Id", raw=json.dumps({"Id": "1", "Email": "x@y.z"}), run_at=T0),
        dict(source="crm", row_number=8, source_record_id=None, rule="missing_id",
             detail="Id is empty", raw=json.dumps({"Id": None, "Email": "ALICE.SMITH@GMAIL.COM"}), run_at=T0),
        dict(source="shop", row_number=9, source_record_id="zz", rule="bad_date",
             detail="bad", raw=json.dumps({"tel": "07911 123456"}), run_at=T0),
        dict(source="shop_orders", row_number=3, source_record_id="o9", rule="bad_amount",
             detail="total", raw=json.dumps({"customer_id": "a1", "total": "x"}), run_at=T0),
        # someone else's
        dict(source="crm", row_number=11, source_record_id="77", rule="missing_id",
             detail="Id is empty", raw=json.dumps({"Email": "bob@bobmail.co.uk"}), run_at=T0),
        dict(source="shop_orders", row_number=4, source_record_id="o10", rule="bad_amount",
             detail="total", raw=json.dumps({"customer_id": "b2", "total": "x"}), run_at=T0),
    ]  # fmt: skip
    source_run = [
        dict(run_at=T0, run_id="run-1", source="crm", path="crm.csv", fingerprint="f",
             rows_in=10, rows_accepted=8, rows_quarantined=2, field_findings=0)
    ]  # fmt: skip
    frames = {
        "customer": customer, "customer_field_provenance": provenance, "customer_xref": xref,
        "person_record": person_record, "customer_id_history": history, "touchpoint": touch,
        "consent": consents, "customer_profile": profile, "rfm": rfm, "lifecycle": lifecycle,
        "lifecycle_history": lifecycle_history, "quarantine": quarantine, "source_run": source_run,
    }  # fmt: skip
    return {name: _frame(name, frames.get(name, [])) for name in TABLES}


@pytest.fixture(scope="module")
def _template(tmp_path_factory) -> Path:
    """Built once: a config file and a published warehouse (with exports, staging, landing)."""
    root = tmp_path_factory.mktemp("privacy_project")
    config = root / "scv.yml"
    config.write_text(CONFIG)
    cfg = load_config(config)
    store = Warehouse(cfg.warehouse, cfg.staging_warehouse, cfg.exports)
    with store.stage() as con:
        for name, df in tables().items():
            write_frame(con, name, df, schema="scv")
    store.publish()
    store.export_parquet("run-1", "2026-11-01")
    for src in ("crm", "shop"):
        d = cfg.landing_dir / src
        d.mkdir(parents=True)
        (d / "landing.json").write_text('{"fingerprint": "abc"}')
        (d / "accepted.json").write_text('{"key": "abc"}')
        pd.DataFrame({"Email": [ALICE_EMAIL]}).to_parquet(d / f"{src}.parquet")
    return root


@pytest.fixture
def project(_template: Path, tmp_path: Path):
    """A private copy of the template project: (config, warehouse store)."""
    root = tmp_path / "project"
    shutil.copytree(_template, root)
    cfg = load_config(root / "scv.yml")
    return cfg, Warehouse(cfg.warehouse, cfg.staging_warehouse, cfg.exports)


def counts(path: Path) -> dict[str, int]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return {t: con.execute(f"SELECT count(*) FROM scv.{t}").fetchall()[0][0] for t in TABLES}
    finally:
        con.close()


def ids_in(path: Path) -> dict[str, set]:
    """customer ids found in every customer-id column of every table."""
    con = duckdb.connect(str(path), read_only=True)
    out: dict[str, set] = {}
    try:
        for t, table in TABLES.items():
            for c in table.column_names:
                if c.endswith("customer_id"):
                    out.setdefault(t, set()).update(
                        v for (v,) in con.execute(f"SELECT {c} FROM scv.{t}").fetchall()
                    )
    finally:
        con.close()
    return out


def all_text(path: Path, table: str, source: str = "scv") -> str:
    con = duckdb.connect(str(path), read_only=True) if source == "scv" else duckdb.connect()
    try:
        ref = f"scv.{table}" if source == "scv" else f"read_parquet('{path}')"
        return "\n".join(str(r) for r in con.execute(f"SELECT * FROM {ref}").fetchall()).lower()
    finally:
        con.close()


ALICE_STRINGS = ["alice", "smith", "7911123456", "911 123456", "c1'", "c9'", "a1'"]


# --------------------------------------------------------------------------------------- forget
def test_forget_removes_the_person_from_every_table_and_export(project, capsys):
    cfg, store = project
    before = counts(store.published)
    staging_before = store.staging.exists()
    assert main(["forget", "--config", str(cfg.config_path), "--email", " ALICE.Smith@gmail.com "]) == 0
    out = capsys.readouterr().out
    # C1 and its id of before a merge, C9
    assert "1 customer (and 1 former customer id(s)), 2 source record(s)" in out
    assert "alice" not in out.lower() and "@" not in out

    after = counts(store.published)
    expected_removed = {
        "customer": 1, "customer_field_provenance": 1, "customer_xref": 2,
        "customer_id_history": 1, "touchpoint": 4, "consent": 1, "customer_profile": 1,
        "rfm": 1, "lifecycle": 1, "lifecycle_history": 2, "quarantine": 4,
        "source_run": 0,
    }  # fmt: skip
    if "person_record" in TABLES:
        expected_removed["person_record"] = 2
    assert {t: before[t] - after[t] for t in expected_removed} == expected_removed

    found = ids_in(store.published)
    for t, ids in found.items():
        assert not ids & ALICE_IDS, t
    # everyone else untouched
    assert found["customer"] == OTHERS
    assert found["touchpoint"] == {"C2", "C4", None}  # the anonymous event stays
    for t in TABLES:
        text = all_text(store.published, t)
        for s in ALICE_STRINGS:
            assert s not in text, (t, s)
    assert "bob@bobmail.co.uk" in all_text(store.published, "quarantine")
    # nor anywhere in the file's bytes (a DELETE in place would leave them in free blocks)
    assert b"alice" not in store.published.read_bytes().lower()
    # comments survive the rewrite
    con = duckdb.connect(str(store.published), read_only=True)
    comment = con.execute(
        "SELECT comment FROM duckdb_tables() WHERE table_name = 'customer'"
    ).fetchall()[0][0]
    con.close()
    assert comment == TABLES["customer"].comment

    # every export rewritten to match, manifest row counts too
    manifest = json.loads((store.exports / "manifest.json").read_text())
    for t in TABLES:
        parquet = store.exports / t / "data.parquet"
        assert duckdb.sql(f"SELECT count(*) FROM read_parquet('{parquet}')").fetchall()[0][0] == after[t]
        assert manifest["tables"][t]["rows"] == after[t]
        text = all_text(parquet, t, source="parquet")
        for s in ALICE_STRINGS:
            assert s not in text, (t, s)
    assert manifest["run_id"] == "run-1" and manifest["as_of_date"] == "2026-11-01"
    assert not list(store.exports.rglob("*.tmp"))

    # staging and landing gone, so the next night re-reads every source
    assert staging_before and not store.staging.exists()
    assert not [p for p in cfg.landing_dir.rglob("*") if p.is_file()]
    assert not store.published.with_name(store.published.name + ".forgetting").exists()


def test_suppression_and_log_hold_keyed_hashes_only(project, monkeypatch):
    cfg, _ = project
    monkeypatch.setenv("SCV_PRIVACY_KEY", KEY)
    assert main(["forget", "--config", str(cfg.config_path), "--email", ALICE_EMAIL]) == 0
    privacy = cfg.data_dir / "privacy"
    files = sorted(p.name for p in privacy.iterdir())
    assert files == ["erasure_log.jsonl", "suppression.csv"]
    for f in privacy.iterdir():
        text = f.read_text().lower()
        # (only strings that cannot occur inside a hex digest)
        for s in ["alice", "smith", "gmail", "@", "+44", "07911", "crm:1", "shop:a1"]:
            assert s not in text, (f.name, s)
        words = set(re.split(r"[^a-z0-9]+", text))
        assert not words & {"c1", "c9", "a1"}, f.name

    def keyed(v):
        return hmac.new(KEY.encode(), v.encode(), hashlib.sha256).hexdigest()

    suppressed = wp.load_suppression(cfg.data_dir)
    for identifier in [
        "crm:1", "shop:a1",  # every source record
        "alicesmith@gmail.com", ALICE_EMAIL, "alicesmith+shop@gmail.com",  # email keys and emails
        ALICE_PHONE, "+447911123457",  # phones of the golden record and of the source records
    ]:  # fmt: skip
        assert keyed(identifier) in suppressed, identifier
    assert keyed("crm:2") not in suppressed and keyed("bob@bobmail.co.uk") not in suppressed
    with (privacy / "suppression.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert {r["kind"] for r in rows} == {"record", "email_key", "email_std", "phone_e164", "key_verifier"}
    # the key itself is never stored, only the keyed hash of a fixed string (issue 19 item 3)
    assert [r["hash"] for r in rows if r["kind"] == "key_verifier"] == [wp.key_verifier(KEY)]
    assert KEY not in (privacy / "suppression.csv").read_text()

    log = wp.read_erasure_log(cfg.data_dir)
    assert len(log) == 1
    entry = log[0]
    assert entry["subject"] == keyed("alicesmith@gmail.com")
    assert entry["identified_by"] == "email"
    assert (entry["customers"], entry["former_customer_ids"], entry["source_records"]) == (1, 1, 2)
    assert entry["rows_removed"]["touchpoint"] == 4
    assert datetime.fromisoformat(entry["erased_at"])


def test_forget_refuses_while_a_night_is_built(project, capsys, monkeypatch):
    cfg, store = project
    monkeypatch.setenv("SCV_PRIVACY_KEY", KEY)
    before = store.published.read_bytes()
    with store.exclusive("Dagster run r-42"):
        code = main(["forget", "--config", str(cfg.config_path), "--email", ALICE_EMAIL])
    err = capsys.readouterr().err
    assert code == 1
    assert "the warehouse is busy (Dagster run r-42, pid" in err and "night.lock" in err
    assert store.published.read_bytes() == before
    assert store.staging.exists()
    assert not (cfg.data_dir / "privacy" / "suppression.csv").exists()


def test_forget_unknown_person_changes_nothing(project, capsys):
    cfg, store = project
    before = store.published.read_bytes()
    code = main(["forget", "--config", str(cfg.config_path), "--email", "someone.else@nowhere-mail.com"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.strip() == "scv forget: no customer found for that email"
    assert store.published.read_bytes() == before
    assert not (cfg.data_dir / "privacy" / "suppression.csv").exists()
    assert store.staging.exists()


def test_forget_refuses_without_a_key(project, monkeypatch, capsys):
    cfg, store = project
    monkeypatch.delenv("SCV_PRIVACY_KEY", raising=False)
    before = store.published.read_bytes()
    assert main(["forget", "--config", str(cfg.config_path), "--email", ALICE_EMAIL]) == 1
    err = capsys.readouterr().err
    assert "no privacy key configured" in err and "SCV_PRIVACY_KEY" in err
    assert len(err.strip().splitlines()) == 1
    assert store.published.read_bytes() == before


def test_forget_needs_exactly_one_identifier(project):
    cfg, _ = project
    with pytest.raises(SystemExit):
        main(["forget", "--config", str(cfg.config_path)])
    with pytest.raises(SystemExit):
        main(["forget", "--config", str(cfg.config_path), "--email", "a@b.cc", "--phone", "1"])


@pytest.mark.parametrize(
    "lookup",
    [Lookup("phone", "07911 123456"), Lookup("phone", "+44 7911 123457"), Lookup("customer_id", "C1")],
)
def test_forget_by_phone_or_customer_id(project, lookup):
    cfg, store = project
    result = wp.forget(store, cfg.data_dir, KEY, lookup, HINTS)
    assert (result.customers, result.former_ids) == (1, 1)
    assert not any(ids & ALICE_IDS for ids in ids_in(store.published).values())


def test_invalid_identifiers_are_refused_without_echo(project):
    cfg, store = project
    with pytest.raises(PrivacyError, match="not a valid email") as err:
        wp.forget(store, cfg.data_dir, KEY, Lookup("email", "not-an-email"), HINTS)
    assert "not-an-email" not in str(err.value)
    with pytest.raises(PrivacyError, match="not a valid phone"):
        wp.forget(store, cfg.data_dir, KEY, Lookup("phone", "12"), HINTS)


def test_crash_while_copying_leaves_the_published_warehouse_whole(project, monkeypatch):
    cfg, store = project
    before = counts(store.published)
    real = wp_erasure._copy_table_without
    calls = []

    def dies_on_the_fourth_table(*args, **kwargs):
        calls.append(1)
        if len(calls) == 4:
            raise OSError("disk full")
        return real(*args, **kwargs)

    monkeypatch.setattr(wp_erasure, "_copy_table_without", dies_on_the_fourth_table)
    with pytest.raises(OSError, match="disk full"):
        wp.forget(store, cfg.data_dir, KEY, Lookup("email", ALICE_EMAIL), HINTS)
    assert counts(store.published) == before  # old file opens, whole, person still there
    assert "C1" in ids_in(store.published)["customer"]
    assert not store.published.with_name(store.published.name + ".forgetting").exists()
    # the suppression list was written first, so later nights already keep the person out
    assert wp.load_suppression(cfg.data_dir)
    assert wp.read_erasure_log(cfg.data_dir) == []
    # a rerun finishes the job
    monkeypatch.setattr(wp_erasure, "_copy_table_without", real)
    result = wp.forget(store, cfg.data_dir, KEY, Lookup("email", ALICE_EMAIL), HINTS)
    assert result.customers == 1 and result.suppression_added == 0
    assert "C1" not in ids_in(store.published)["customer"]


def test_crash_while_exporting_leaves_the_published_warehouse_whole(project, monkeypatch):
    cfg, store = project
    before = store.published.read_bytes()

    exports = {p: p.read_bytes() for p in store.exports.rglob("*") if p.is_file()}

    def boom(*args, **kwargs):
        raise RuntimeError("killed")

    monkeypatch.setattr(Warehouse, "prepare_exports", boom)
    with pytest.raises(RuntimeError):
        wp.forget(store, cfg.data_dir, KEY, Lookup("email", ALICE_EMAIL), HINTS)
    assert store.published.read_bytes() == before
    assert {p: p.read_bytes() for p in store.exports.rglob("*") if p.is_file()} == exports


# --------------------------------------------------------------------------------------- access
def test_access_document_is_complete_and_json_clean(project, capsys):
    cfg, store = project
    assert main(["access", "--config", str(cfg.config_path), "--email", "AliceSmith+x@googlemail.com"]) == 0
    text = capsys.readouterr().out
    doc = json.loads(text)
    assert "NaN" not in text
    assert list(doc) == ["header", "customers", "quarantined_rows"]
    header = doc["header"]
    assert header["as_of_date"] == "2026-11-01" and header["run_id"] == "run-1"
    assert header["customers_found"] == 2 and header["source_records_found"] == 2
    assert [c["customer_id"] for c in doc["customers"]] == ["C1", "C9"]
    c1 = doc["customers"][0]
    assert list(c1) == [
        "customer_id", "current", "golden_record", "field_provenance", "profile",
        "source_records", "customer_id_history", "consent", "consent_history", "touchpoints",
        "rfm", "lifecycle", "lifecycle_history",
    ]  # fmt: skip
    assert c1["current"] is True and doc["customers"][1]["current"] is False
    g = c1["golden_record"]
    assert g["email"] == ALICE_EMAIL and g["date_of_birth"] == "1990-05-17"
    assert g["first_seen_at"] == "2026-11-01T09:00:00" and g["sources"] == ["crm"]
    assert g["address_line"] == "1 High Street"
    assert [(r["source"], r["source_record_id"]) for r in c1["source_records"]] == [
        ("crm", "1"),
        ("shop", "a1"),
    ]
    if "person_record" in TABLES:
        assert c1["source_records"][1]["values"]["email"] == "alicesmith+shop@gmail.com"
    assert len(c1["touchpoints"]) == 3 and c1["touchpoints"][0]["attributes"] == {"note": "gift"}
    assert [t["event_type"] for t in c1["consent_history"]] == ["email_marketing"]
    assert c1["consent"][0]["granted"] is True
    assert c1["profile"]["consent"] == {"email_marketing": True}
    assert c1["profile"]["online_orders"] is None  # a NULL number is null, not NaN
    assert c1["rfm"]["segment"] == "Champions" and c1["lifecycle"]["stage"] == "active"
    assert c1["customer_id_history"][0]["old_customer_id"] == "C9"
    assert [h["to_stage"] for h in doc["customers"][1]["lifecycle_history"]] == ["new"]
    assert len(doc["quarantined_rows"]) == 4
    assert {q["source"] for q in doc["quarantined_rows"]} == {"crm", "shop", "shop_orders"}
    # stable: the same person twice gives the same document but for the time it was made
    doc2 = wp.access_document(store, Lookup("customer_id", "C1"), HINTS)
    for d in (doc, doc2):
        d["header"].pop("generated_at")
        d["header"].pop("identified_by")
    assert json.dumps(doc2) == json.dumps(doc)


def test_access_unknown_person(project, capsys):
    cfg, _ = project
    assert main(["access", "--config", str(cfg.config_path), "--phone", "+14155552671"]) == 1
    assert capsys.readouterr().err.strip() == "scv access: no customer found for that phone number"


# ------------------------------------------------------------------------------------- audience
def read_csv_rows(path: Path) -> list[list[str]]:
    with path.open(newline="") as fh:
        return list(csv.reader(fh))


def sha(v: str) -> str:
    return hashlib.sha256(v.encode()).hexdigest()


def test_audience_keeps_only_latest_granted_consent(project, tmp_path, capsys):
    cfg, _ = project
    out = tmp_path / "aud" / "champions.csv"
    args = ["audience", "--config", str(cfg.config_path), "--segment", "champions"]
    assert main([*args, "--purpose", "email_marketing", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "audience: RFM segment Champions; consent to 'email_marketing' (hashed)" in printed
    for line in (
        r"5  RFM segment Champions",
        r"-1  no consent decision for 'email_marketing'",
        r"-1  consent to 'email_marketing' withdrawn or refused",
        r"-1  consenting but without a usable email or phone",
        r"2  written to .*champions.csv \(hashed",
    ):
        assert re.search(line, printed), line
    rows = read_csv_rows(out)
    assert rows[0] == ["Email", "Phone"]
    body = sorted(rows[1:])
    # Alice and Dan consented; Bob withdrew yesterday, Carol never answered, Eve has no contact
    assert body == sorted(
        [
            [sha(ALICE_EMAIL), sha(ALICE_PHONE)],
            [sha("dan.brown@brownmail.co.uk"), sha("+447400123987")],
        ]
    )
    assert all(len(v) == 64 for r in body for v in r)


def test_audience_from_sql(project):
    _, store = project
    result = build_audience(
        store,
        AudienceSpec("email_marketing"),
        sql="SELECT * FROM (VALUES ('C2'), ('C4'), ('nope')) AS t(customer_id)",
    )
    assert (result.matched, result.withdrawn, result.written, result.unknown_ids) == (2, 1, 1, 1)
    assert result.rows["Email"].tolist() == [sha("dan.brown@brownmail.co.uk")]


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("DELETE FROM scv.customer", "must be a SELECT"),
        ("SELECT customer_id FROM scv.customer; DROP TABLE scv.customer", "one SELECT"),
        ("SELECT email FROM scv.customer", "must return a customer_id column"),
        ("SELECT customer_id FROM read_csv('/etc/hostname')", "--sql failed"),
        ("SELEC customer_id", "--sql"),
    ],
)
def test_audience_sql_must_be_one_read_only_select(project, sql, message):
    _, store = project
    with pytest.raises(AudienceError, match=message):
        build_audience(store, AudienceSpec("email_marketing"), sql=sql)
    assert counts(store.published)["customer"] == 5


def test_audience_unknown_segment_or_purpose_lists_the_known_ones(project, tmp_path, capsys):
    cfg, _ = project
    out = tmp_path / "x.csv"
    base = ["audience", "--config", str(cfg.config_path), "--out", str(out)]
    assert main([*base, "--segment", "Whales", "--purpose", "email_marketing"]) == 1
    err = capsys.readouterr().err
    assert "unknown RFM segment" in err and "Champions" in err
    # a lifecycle stage is not an RFM segment: the dimension is named, never guessed
    assert main([*base, "--segment", "active", "--purpose", "email_marketing"]) == 1
    assert "'active' is a lifecycle stage, not an RFM segment: write --stage active" in capsys.readouterr().err
    assert main([*base, "--stage", "active", "--purpose", "carrier_pigeon"]) == 1
    err = capsys.readouterr().err
    assert "email_marketing, sms_marketing" in err
    assert not out.exists()


def test_audience_by_lifecycle_stage(project):
    _, store = project
    result = build_audience(store, AudienceSpec("sms_marketing", stages=("active",)))
    assert (result.matched, result.no_consent_record, result.written) == (5, 4, 1)
    assert result.rows["Phone"].tolist() == [""]  # Carol has an email but no phone


def _add_person_record(store: Warehouse, **values) -> None:
    con = duckdb.connect(str(store.published))
    try:
        cols = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        con.execute(f"INSERT INTO scv.person_record ({cols}) VALUES ({marks})", list(values.values()))
    finally:
        con.close()


def test_an_email_held_by_two_customers_is_not_erased_blindly(project):
    cfg, store = project
    _add_person_record(store, source="crm", source_record_id="4b", customer_id="C4",
                       email="Alice.Smith@gmail.com", phone=None)  # fmt: skip
    before = store.published.read_bytes()
    with pytest.raises(PrivacyError, match=r"held by 2 customers \(C1, C4\).*--customer-id"):
        wp.forget(store, cfg.data_dir, KEY, Lookup("email", ALICE_EMAIL), HINTS)
    assert store.published.read_bytes() == before
    assert not wp.load_suppression(cfg.data_dir)
    doc = wp.access_document(store, Lookup("email", ALICE_EMAIL), HINTS)
    assert [c["customer_id"] for c in doc["customers"]] == ["C1", "C4", "C9"]


def test_identifiers_shared_with_someone_else_are_not_suppressed(project):
    cfg, store = project
    # Bob's record carries the phone of Alice's shop record (a shared landline, say)
    _add_person_record(store, source="crm", source_record_id="2b", customer_id="C2",
                       email=None, phone="07911 123457", country="GB")  # fmt: skip
    result = wp.forget(store, cfg.data_dir, KEY, Lookup("customer_id", "C1"), HINTS)
    assert result.identifiers_shared == 1
    suppressed = wp.load_suppression(cfg.data_dir)
    assert wp.hash_identifier("+447911123457", KEY) not in suppressed
    assert wp.hash_identifier(ALICE_PHONE, KEY) in suppressed
    assert wp.hash_identifier("shop:a1", KEY) in suppressed  # her record still is, by id
    assert ids_in(store.published)["person_record"] == {"C2"}
    assert wp.read_erasure_log(cfg.data_dir)[0]["identifiers_shared_not_suppressed"] == 1


def test_a_night_published_meanwhile_is_not_overwritten(project, monkeypatch):
    cfg, store = project
    real = wp_erasure._copy_table_without

    def publish_during_forget(*args, **kwargs):
        done = real(*args, **kwargs)
        if args[1] == "quarantine":
            store.publish()  # the nightly run swaps in a new warehouse at this moment
        return done

    monkeypatch.setattr(wp_erasure, "_copy_table_without", publish_during_forget)
    with pytest.raises(PrivacyError, match="published again while forgetting"):
        wp.forget(store, cfg.data_dir, KEY, Lookup("email", ALICE_EMAIL), HINTS)
    assert not store.published.with_name(store.published.name + ".forgetting").exists()


# ------------------------------------------------------------------ issue 19 item 3: key changes
def test_check_privacy_key(tmp_path):
    when = datetime(2026, 11, 2, 3, 0)
    wp.check_privacy_key(tmp_path, None)  # no list: nothing to check
    wp.add_to_suppression(tmp_path, {"ab" * 32: "record"}, "s1", when)  # written before verifiers
    assert wp.suppression_key_verifier(tmp_path) is None
    wp.check_privacy_key(tmp_path, "any key")  # cannot be checked: passes
    with pytest.raises(PrivacyError, match=r"no privacy key is set: set \$MY_KEY"):
        wp.check_privacy_key(tmp_path, "", "MY_KEY")
    wp.add_to_suppression(tmp_path, {"cd" * 32: "record"}, "s2", when, verifier=wp.key_verifier(KEY))
    assert wp.suppression_key_verifier(tmp_path) == wp.key_verifier(KEY)
    assert wp.load_suppression(tmp_path) == {"ab" * 32, "cd" * 32}  # the verifier is no identifier
    wp.check_privacy_key(tmp_path, KEY)
    with pytest.raises(PrivacyError) as info:
        wp.check_privacy_key(tmp_path, "s3cr3t-other", "MY_KEY")
    message = str(info.value)
    assert "\n" not in message and "s3cr3t-other" not in message
    assert "$MY_KEY is not the privacy key" in message and "set $MY_KEY" in message
    # a later erasure does not add a second verifier
    wp.add_to_suppression(tmp_path, {"ef" * 32: "record"}, "s3", when, verifier=wp.key_verifier(KEY))
    rows = (tmp_path / "privacy" / "suppression.csv").read_text().splitlines()
    assert sum("key_verifier" in r for r in rows) == 1


def test_forget_with_another_key_than_the_list_is_refused(project, monkeypatch, capsys):
    cfg, store = project
    monkeypatch.setenv("SCV_PRIVACY_KEY", KEY)
    assert main(["forget", "--config", str(cfg.config_path), "--customer-id", "C3"]) == 0
    suppression = (cfg.data_dir / "privacy" / "suppression.csv").read_bytes()
    before = store.published.read_bytes()
    capsys.readouterr()
    monkeypatch.setenv("SCV_PRIVACY_KEY", "a-different-key")
    assert main(["forget", "--config", str(cfg.config_path), "--email", ALICE_EMAIL]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "is not the privacy key" in err and "a-different-key" not in err
    assert (cfg.data_dir / "privacy" / "suppression.csv").read_bytes() == suppression
    assert store.published.read_bytes() == before
