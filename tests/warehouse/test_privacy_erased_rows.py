"""Pure privacy functions (warehouse.privacy.erased_rows): keyed hashing, suppression splitting;
and the audience file's identifier normalisation and --sql check (transforms.audience)."""

from __future__ import annotations

import hashlib
import hmac
import json

import pandas as pd
import pytest

from sources.config import SourceConfig
from transforms import audience as A
from transforms.standardise import standardise_persons
from warehouse.privacy import erased_rows as P

KEY = "pure-test-key"

CRM = SourceConfig(
    name="crm",
    kind="person",
    path="crm.csv",
    id="Id",
    default_country="GB",
    columns={"first_name": "First", "email": "Email", "phone": "Phone", "country": "Country"},
)
ORDERS = SourceConfig(
    name="orders",
    kind="order",
    path="orders.csv",
    id="OrderId",
    person={"source": "crm", "key": "CustomerRef"},
    columns={"order_date": "Date", "amount": "Total"},
)


def reference(value: str, key: str = KEY) -> str:
    return hmac.new(key.encode(), value.encode(), hashlib.sha256).hexdigest()


def persons() -> pd.DataFrame:
    canon = pd.DataFrame(
        {
            "_row_number": [1, 2, 3, 4, 5],
            "source_record_id": ["1", "2", "3", "4", "5"],
            "first_name": ["Alice", "Ally", "Bob", "Al", "Zoë"],
            "email": [
                "alice.smith@gmail.com",
                "Alice.Smith+promo@googlemail.com",  # same email key as row 1
                "bob@bobmail.co.uk",
                None,
                "zoe@zoemail.de",
            ],
            "phone": [None, None, "07911 223344", "07911 123456", "+49 30 901820"],
            "country": ["GB", "UK", "United Kingdom", None, "Deutschland"],
        },
        dtype="str",
    ).astype({"_row_number": "int64"})
    return standardise_persons(canon, CRM)


def test_hash_identifier_is_hmac_sha256_hex():
    assert P.hash_identifier("crm:1", KEY) == reference("crm:1")
    assert P.hash_identifier("zoë@zoemail.de", KEY) == reference("zoë@zoemail.de")
    assert P.hash_identifier("crm:1", "other-key") != P.hash_identifier("crm:1", KEY)
    assert len(P.hash_identifier("x", KEY)) == 64


@pytest.mark.parametrize("key", [None, ""])
def test_hashing_without_a_key_is_refused(key):
    with pytest.raises(ValueError, match="privacy key missing"):
        P.hash_identifier("crm:1", key)


def test_subject_hashes_per_record():
    df = persons()
    h = P.subject_hashes(df, KEY)
    assert list(h.columns) == ["unique_id", "record", "email_key", "email_std", "phone_e164"]
    assert h["unique_id"].tolist() == ["crm:1", "crm:2", "crm:3", "crm:4", "crm:5"]
    assert h.loc[0, "record"] == reference("crm:1")
    assert h.loc[1, "email_key"] == reference("alicesmith@gmail.com") == h.loc[0, "email_key"]
    assert h.loc[1, "email_std"] == reference("alice.smith+promo@googlemail.com")
    assert h.loc[3, "phone_e164"] == reference("+447911123456")
    assert h.loc[4, "phone_e164"] == reference("+4930901820")
    assert h.loc[3, "email_key"] is None and h.loc[0, "phone_e164"] is None


def test_split_erased_by_record_email_key_and_phone():
    df = persons()
    suppressed = {
        reference("alicesmith@gmail.com"),  # rows 1 and 2
        reference("+447911123456"),  # row 4, written nationally in the source
        reference("crm:5"),  # row 5 by its record id
        reference("someone@else.com"),
    }
    kept, quarantine = P.split_erased(df, suppressed, KEY)
    assert kept["source_record_id"].tolist() == ["3"]
    assert list(quarantine.columns) == list(P.QUARANTINE_COLUMNS)
    assert quarantine["row_number"].tolist() == [1, 2, 4, 5]
    assert quarantine["source_record_id"].tolist() == ["1", "2", "4", "5"]
    assert set(quarantine["rule"]) == {"erased"} and set(quarantine["source"]) == {"crm"}
    assert quarantine["raw"].isna().all()
    assert quarantine["detail"].tolist()[0] == (
        f"erased on request (subject {reference('alicesmith@gmail.com')[:12]})"
    )
    # the record hash names the subject when it matches
    assert quarantine["detail"].tolist()[3].endswith(f"{reference('crm:5')[:12]})")
    text = quarantine.to_csv().lower()
    for personal in ["alice", "gmail", "7911", "zoe", "49 30"]:
        assert personal not in text


def test_split_erased_without_suppression_needs_no_key():
    df = persons()
    kept, quarantine = P.split_erased(df, set(), None)
    assert kept is df and quarantine.empty
    assert list(quarantine.columns) == list(P.QUARANTINE_COLUMNS)
    with pytest.raises(ValueError, match="privacy key missing"):
        P.split_erased(df, {reference("crm:1")}, None)


def test_split_erased_with_a_different_key_matches_nothing():
    kept, quarantine = P.split_erased(persons(), {reference("crm:1")}, "another-key")
    assert len(kept) == 5 and quarantine.empty


def test_split_erased_activity():
    orders = pd.DataFrame(
        {
            "_row_number": [1, 2, 3, 4],
            "source_record_id": ["o1", "o2", "o3", "o4"],
            "person_record_id": ["1", "3", None, "1"],
            "amount": [1.0, 2.0, 3.0, 4.0],
        }
    )
    kept, quarantine = P.split_erased_activity(orders, {"1"}, "orders")
    assert kept["source_record_id"].tolist() == ["o2", "o3"]
    assert quarantine[["source", "row_number", "source_record_id", "rule"]].values.tolist() == [
        ["orders", 1, "o1", "erased"],
        ["orders", 4, "o4", "erased"],
    ]
    assert quarantine["raw"].isna().all()
    same, none = P.split_erased_activity(orders, set(), "orders")
    assert same is orders and none.empty


def test_redact_erased_quarantine_of_person_and_activity_sources():
    q = pd.DataFrame(
        {
            "source": ["crm"] * 4,
            "row_number": [7, 8, 9, 10],
            "source_record_id": ["1", None, None, "9"],
            "rule": ["duplicate_id", "missing_id", "missing_id", "missing_id"],
            "detail": ["d"] * 4,
            "raw": [
                json.dumps({"Id": "1", "Email": "x"}),
                json.dumps({"Email": " ALICE.SMITH@gmail.com"}),
                json.dumps({"Phone": "07911 123456", "Country": "UK"}),
                json.dumps({"Email": "bob@bobmail.co.uk"}),
            ],
        }
    )
    suppressed = {reference("crm:1"), reference("alicesmith@gmail.com"), reference("+447911123456")}
    out = P.redact_erased_quarantine(q, CRM, suppressed, KEY)
    assert out["rule"].tolist() == ["erased", "erased", "erased", "missing_id"]
    assert out["raw"].isna().tolist() == [True, True, True, False]
    assert q["rule"].tolist()[0] == "duplicate_id"  # input left alone

    oq = q.assign(
        source="orders",
        raw=[json.dumps({"CustomerRef": r}) for r in ["1", "2", " 1", "3"]],
        source_record_id=["o1", "o2", "o3", "o4"],
    )
    out = P.redact_erased_quarantine(oq, ORDERS, set(), None, erased_person_ids={"1"})
    assert out["rule"].tolist() == ["erased", "missing_id", "erased", "missing_id"]
    assert P.redact_erased_quarantine(oq, ORDERS, set(), None) is oq


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('{"Email": "Alice.Smith@Gmail.com"}', True),
        ('{"note": "ring alice.smith@gmail.com please"}', True),
        ('{"Email": "alicesmith+x@googlemail.com"}', True),  # same match key
        ('{"Phone": "07911 123456"}', True),
        ('{"Phone": "+44 (0)7911 123456"}', False),  # digits 4407911123456: not a usual form
        ('{"Phone": "0044 7911 123456"}', True),
        ('{"Phone": "7911123456"}', True),
        ('{"Phone": "07911 123457"}', False),
        ('{"Email": "bob@bobmail.co.uk"}', False),
        (None, False),
        ("not json", False),
    ],
)
def test_raw_mentions(raw, expected):
    assert P.raw_mentions(raw, ["alice.smith@gmail.com"], ["+447911123456"]) is expected


def test_audience_normalisation_and_plain_sha256():
    assert A.audience_email("  Dan.Brown@Brownmail.CO.UK ") == "dan.brown@brownmail.co.uk"
    assert A.audience_email(None) is None and A.audience_email("nope") is None
    assert A.audience_phone("+44 7400 123987") == "+447400123987"
    assert A.audience_phone("07400123987") is None  # not E.164: no country code
    assert A.audience_phone(float("nan")) is None
    assert A.sha256_hex("dan.brown@brownmail.co.uk") == hashlib.sha256(
        b"dan.brown@brownmail.co.uk"
    ).hexdigest()


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT customer_id FROM scv.customer",
        "with a as (select customer_id from scv.rfm) select customer_id from a",
        "SELECT customer_id FROM scv.rfm UNION SELECT customer_id FROM scv.lifecycle",
        "FROM scv.customer SELECT customer_id",
    ],
)
def test_single_select_accepted(sql):
    A.check_single_select(sql)


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("DELETE FROM scv.customer", "must be a SELECT statement, got DELETE"),
        ("SELECT 1; SELECT 2", "got 2 statements"),
        ("SELECT * INTO t FROM scv.customer", "contains INTO"),
        ("ATTACH 'x.duckdb' AS x", "must be a SELECT"),
        ("COPY scv.customer TO 'x.csv'", "must be a SELECT"),
        ("", "got 0 statements"),
    ],
)
def test_anything_but_one_select_refused(sql, message):
    with pytest.raises(ValueError, match=message):
        A.check_single_select(sql)


# ------------------------------------------------------------------ issue 19 item 3: at the door
def test_key_verifier_is_a_keyed_hash_of_a_fixed_string_not_the_key():
    v = P.key_verifier(KEY)
    assert v == P.key_verifier(KEY) != P.key_verifier("another key")
    assert KEY not in v and len(v) == 64


def _canon(rows: list[dict], src: SourceConfig) -> pd.DataFrame:
    from sources.readers import to_canonical

    raw = pd.DataFrame(rows, dtype="string")
    raw["_row_number"] = range(1, len(raw) + 1)
    return to_canonical(raw, src)


def test_erased_source_rows_finds_a_person_by_record_email_key_or_phone():
    suppressed = {
        reference("crm:7"),
        reference("zoesmith@gmail.com"),  # email key: gmail dots and +tags go
        reference("+447911123456"),
    }
    rows = [
        {"Id": "1", "First": "Ann", "Email": "ann@x.io", "Phone": "", "Country": ""},
        {"Id": "7", "First": "Zoë", "Email": "", "Phone": "", "Country": ""},  # by record
        {"Id": "8", "First": "Zoë", "Email": "Zoe.Smith+shop@GMAIL.com", "Phone": "", "Country": ""},
        {"Id": "9", "First": "Zoë", "Email": "", "Phone": "07911 123456", "Country": ""},  # GB default
        {"Id": "10", "First": "Zoë", "Email": "", "Phone": "07911 123456", "Country": "France"},
    ]
    found = P.erased_source_rows(_canon(rows, CRM), "crm", suppressed, KEY, default_country="GB")
    assert found["_row_number"].tolist() == [2, 3, 4]
    assert found["source_record_id"].tolist() == ["7", "8", "9"]
    assert all(d.startswith("erased on request (subject ") for d in found["detail"])
    assert "Zoë" not in found.to_string()
    with pytest.raises(ValueError, match="privacy key missing"):
        P.erased_source_rows(_canon(rows, CRM), "crm", suppressed, None)


def test_erased_source_rows_finds_activity_of_an_erased_person_record():
    rows = [
        {"OrderId": "O1", "CustomerRef": "7", "Date": "2024-01-01", "Total": "5"},  # suppressed record
        {"OrderId": "O2", "CustomerRef": " 12 ", "Date": "2024-01-01", "Total": "5"},  # erased tonight
        {"OrderId": "O3", "CustomerRef": "1", "Date": "2024-01-01", "Total": "5"},
        {"OrderId": "O4", "CustomerRef": "", "Date": "2024-01-01", "Total": "5"},
    ]
    found = P.erased_source_rows(
        _canon(rows, ORDERS), "orders", {reference("crm:7")}, KEY,
        person_source="crm", erased_person_ids={"12"},
    )
    assert found["source_record_id"].tolist() == ["O1", "O2"]
    assert set(found["detail"]) == {P.ERASED_ACTIVITY_DETAIL}
    nothing = P.erased_source_rows(_canon(rows, ORDERS), "orders", set(), None, person_source="crm")
    assert nothing.empty and list(nothing.columns) == ["_row_number", "source_record_id", "detail"]
