"""SQL models: every model parses and qualifies against the documented schemas, and the
single-customer-view models give hand-computed answers on a tiny warehouse."""

from __future__ import annotations

import json
import re
from datetime import date, datetime

import duckdb
import pytest
from sqlglot.errors import OptimizeError

from warehouse import models
from warehouse.models import (
    STAGE_TABLES,
    ModelError,
    available_models,
    load_sql,
    load_sql_unordered,
    model_parameters,
    models_in_order,
    parse_model,
    qualify_sql,
    run_model,
    stage_create_statement,
)
from warehouse.schema import TABLES, create_statement

AS_OF = date(2024, 3, 31)
OURS = ["touchpoint", "consent", "customer_profile"]


# ------------------------------------------------------------------------ static checks


def test_our_models_are_discovered_from_files():
    assert set(OURS) <= set(available_models())
    order = models_in_order()
    assert order.index("touchpoint") < order.index("customer_profile")
    assert order.index("consent") < order.index("customer_profile")


@pytest.mark.parametrize("name", available_models())
def test_model_parses_and_every_column_qualifies(name):
    tree = qualify_sql(parse_model(name))
    if name in TABLES:
        assert tree.named_selects == TABLES[name].column_names


@pytest.mark.parametrize("name", available_models())
def test_model_has_no_template_placeholders(name):
    # Values are bound as $parameters; {name} or {{ name }} would mean string formatting.
    assert not re.search(r"\{\{?\s*\w+\s*\}", load_sql(name))


@pytest.mark.parametrize("name", OURS)
def test_our_models_take_only_as_of(name):
    assert model_parameters(name) <= {"as_of"}


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT o.amount_reportin FROM stage.orders AS o",
        "WITH a AS (SELECT amount FROM stage.orders) SELECT amount, nope FROM a",
        "SELECT customer_id FROM scv.customer_profiles",
        (
            "SELECT x.customer_id, e.event_tim FROM stage.events AS e "
            "JOIN scv.customer_xref AS x ON x.source = e.person_source"
        ),
    ],
)
def test_a_misspelt_column_or_table_fails_qualification(sql):
    with pytest.raises(OptimizeError):
        qualify_sql(sql)


def test_unknown_model_and_missing_parameter_are_clear_errors():
    with pytest.raises(ModelError, match="no file warehouse/sql/nope.sql"):
        load_sql("nope")
    with pytest.raises(ModelError, match="expected"):
        load_sql("../schema")
    con = duckdb.connect()
    with pytest.raises(ModelError, match=r"parameter\(s\) \['as_of'\]"):
        run_model(con, "consent", {})


def test_a_new_model_is_just_a_file(tmp_path, monkeypatch):
    (tmp_path / "b_model.sql").write_text(
        "SELECT n + 1 AS m, $as_of AS d FROM scv.a_model;\n"
    )
    (tmp_path / "a_model.sql").write_text("SELECT 41 AS n\n")
    monkeypatch.setattr(models, "SQL_DIR", tmp_path)
    assert available_models() == ["a_model", "b_model"]
    assert models_in_order(["b_model", "a_model"]) == ["a_model", "b_model"]
    con = duckdb.connect()
    con.execute("CREATE SCHEMA scv")
    assert (
        run_model(con, "a_model", {"as_of": AS_OF, "unused": 1}, into="scv.a_model")
        == 1
    )
    assert run_model(con, "b_model", {"as_of": AS_OF}).fetchall() == [(42, AS_OF)]


# ------------------------------------------------------------------------ behaviour

XREF = [
    ("crm", "1", "C1"),
    ("shop", "10", "C1"),
    ("email_subs", "1", "C1"),
    ("support_contacts", "T3", "C1"),
    ("shop", "20", "C2"),
    ("support_contacts", "T1", "C2"),
    ("support_contacts", "T2", "C2"),
    ("crm", "3", "C3"),
]


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text)


def order(rid, person, when, status, channel, amount, source="shop_orders"):
    return {
        "source": source,
        "source_record_id": rid,
        "person_source": "shop",
        "person_record_id": person,
        "order_date": ts(when),
        "amount": amount,
        "currency": "GBP",
        "amount_reporting": amount,
        "reporting_currency": "GBP",
        "fx_rate": 1.0,
        "status": status,
        "channel": channel,
        "attributes": "{}",
    }


def event(
    source, rid, person_source, person, when, etype, channel, session=None, attrs=None
):
    return {
        "source": source,
        "source_record_id": rid,
        "person_source": person_source,
        "person_record_id": person,
        "session_id": session,
        "event_time": ts(when),
        "event_type": etype,
        "channel": channel,
        "attributes": json.dumps(attrs or {}),
    }


def web(rid, person, when, etype="page_view", session=None):
    return event("web_events", rid, "shop", person, when, etype, "web", session)


def mail(rid, when, etype):
    return event("email_events", rid, "email_subs", "1", when, etype, "email")


def consent(
    rid, person, purpose, granted, when, source="consent_records", person_source="shop"
):
    return {
        "source": source,
        "source_record_id": rid,
        "person_source": person_source,
        "person_record_id": person,
        "purpose": purpose,
        "granted": granted,
        "recorded_at": ts(when),
    }


ORDERS = [
    order("o1", "10", "2024-01-10 12:00", "completed", "online", 100.0),
    order("o2", "10", "2024-03-01 12:00", "completed", "store", 50.0, source="pos"),
    order("o3", "10", "2024-03-05 12:00", "cancelled", "online", 70.0),
    order("o4", "10", "2024-05-01 12:00", "completed", "online", 30.0),  # after as_of
    order("o5", "20", "2024-02-01 12:00", "completed", "store", 20.0, source="pos"),
    order("o6", "ghost", "2024-02-02 12:00", "completed", "online", 9.0),  # nobody
]
EVENTS = [
    # Session s1: anonymous, login as C1, anonymous again: all C1.
    web("e1", None, "2024-03-10 09:00", session="s1"),
    web("e2", None, "2024-03-10 09:05", session="s1"),
    web("e3", "10", "2024-03-10 09:10", "login", session="s1"),
    web("e4", None, "2024-03-10 09:15", session="s1"),
    # Session s2, a shared device: C2 logs in first, then C1.
    web("e5", "20", "2024-03-12 10:00", "login", session="s2"),
    web("e6", None, "2024-03-12 10:01", session="s2"),
    web("e7", "10", "2024-03-12 10:02", "login", session="s2"),
    web("e8", None, "2024-03-12 10:03", session="s2"),
    # Never logs in; and an unknown person id without a session.
    web("e9", None, "2024-03-13 10:00", session="s3"),
    web("e10", None, "2024-03-13 10:01", session="s3"),
    web("e11", "ghost", "2024-03-14 10:00"),
    # E-mail, as_of 2024-03-31: the 90 days are 2024-01-02 .. 2024-03-31.
    mail("m1", "2024-03-01 09:00", "email_sent"),
    mail("m2", "2024-03-02 09:00", "email_open"),
    mail("m3", "2024-03-02 09:01", "click"),
    mail("m4", "2024-01-02 00:00", "sent"),
    mail("m5", "2024-01-01 23:59", "sent"),  # day 91: outside
    mail("m6", "2024-04-02 09:00", "sent"),  # after as_of
    # Support: a ticket export with current status, and a helpdesk with open/close events.
    event(
        "support_tickets",
        "T1",
        "support_contacts",
        "T1",
        "2024-03-20 08:00",
        "ticket_opened",
        "support",
        attrs={"status": "open"},
    ),
    event(
        "support_tickets",
        "T2",
        "support_contacts",
        "T2",
        "2024-03-01 08:00",
        "ticket_opened",
        "support",
        attrs={"status": "closed", "closed_at": "2024-03-02"},
    ),
    event(
        "support_tickets",
        "T3",
        "support_contacts",
        "T3",
        "2024-03-25 08:00",
        "ticket_opened",
        "support",
    ),
    event(
        "helpdesk",
        "h1",
        "support_contacts",
        "T1",
        "2024-02-01 08:00",
        "opened",
        "support",
        attrs={"ticket_id": "X"},
    ),
    event(
        "helpdesk",
        "h2",
        "support_contacts",
        "T1",
        "2024-02-03 08:00",
        "closed",
        "support",
        attrs={"ticket_id": "X"},
    ),
]
CONSENTS = [
    consent("c1", "10", "email_marketing", True, "2024-01-01 10:00"),
    consent(
        "k2", "1", "email_marketing", False, "2024-02-01 10:00", "crm_consents", "crm"
    ),
    consent(
        "c3", "10", "email_marketing", True, "2024-02-01 10:00"
    ),  # same second: loses
    consent("c4", "10", "sms_marketing", True, "2024-01-05 10:00"),
    consent("c5", "20", "email_marketing", True, "2024-04-15 10:00"),  # after as_of
    consent("c6", "20", "email_marketing", False, "2024-01-01 10:00"),
    consent("c7", "ghost", "email_marketing", True, "2024-01-01 10:00"),
]


def _insert(con, table: str, rows: list[dict]) -> None:
    cols = list(dict.fromkeys(c for r in rows for c in r))
    placeholders = ", ".join("?" for _ in cols)
    quoted = ", ".join(f'"{c}"' for c in cols)
    con.executemany(
        f"INSERT INTO {table} ({quoted}) VALUES ({placeholders})",
        [[r.get(c) for c in cols] for r in rows],
    )


@pytest.fixture
def warehouse_con(tmp_path):
    con = duckdb.connect(str(tmp_path / "staging.duckdb"))
    con.execute("CREATE SCHEMA scv")
    con.execute("CREATE SCHEMA stage")
    for table in TABLES.values():
        con.execute(create_statement(table))
    for table in STAGE_TABLES:
        con.execute(stage_create_statement(table))
    _insert(
        con,
        "scv.customer_xref",
        [
            {
                "source": s,
                "source_record_id": r,
                "customer_id": c,
                "match_probability": 1.0,
            }
            for s, r, c in XREF
        ],
    )
    _insert(
        con,
        "scv.customer",
        [
            {
                "customer_id": "C1",
                "first_name": "José",
                "email": "jose@example.com",
                "record_count": 4,
            },
            {
                "customer_id": "C2",
                "first_name": "Ann",
                "city": "York",
                "record_count": 3,
            },
            {
                "customer_id": "C3",
                "first_name": "Bo",
                "country": "GB",
                "record_count": 1,
            },
        ],
    )
    _insert(con, "stage.orders", ORDERS)
    _insert(con, "stage.events", EVENTS)
    _insert(con, "stage.consents", CONSENTS)
    _insert(
        con,
        "scv.rfm",
        [{"customer_id": "C1", "as_of_date": AS_OF, "segment": "Champions"}],
    )
    _insert(
        con,
        "scv.lifecycle",
        [{"customer_id": "C1", "as_of_date": AS_OF, "stage": "active"}],
    )
    for name in models_in_order(OURS):
        run_model(con, name, {"as_of": AS_OF}, into=f"scv.{name}")
    yield con
    con.close()


def rows(con, sql: str) -> list[dict]:
    cur = con.execute(sql)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def test_touchpoint_covers_every_accepted_row_once(warehouse_con):
    got = rows(
        warehouse_con, "SELECT kind, count(*) AS n FROM scv.touchpoint GROUP BY kind"
    )
    assert {r["kind"]: r["n"] for r in got} == {
        "order": len(ORDERS),
        "event": len(EVENTS),
        "consent": len(CONSENTS),
    }
    ids = warehouse_con.execute("SELECT touchpoint_id FROM scv.touchpoint").fetchall()
    assert len(set(ids)) == len(ids)
    o1 = rows(
        warehouse_con,
        "SELECT * FROM scv.touchpoint WHERE touchpoint_id = 'shop_orders:o1'",
    )
    assert o1[0]["customer_id"] == "C1" and o1[0]["amount"] == 100.0
    assert (o1[0]["event_type"], o1[0]["channel"]) == ("completed", "online")
    c1 = rows(
        warehouse_con,
        "SELECT * FROM scv.touchpoint WHERE touchpoint_id = 'crm_consents:k2'",
    )
    assert c1[0]["event_type"] == "email_marketing"
    assert json.loads(c1[0]["attributes"]) == {"granted": False}


def test_session_stitching(warehouse_con):
    got = {
        r["source_record_id"]: (r["customer_id"], r["stitched"])
        for r in rows(
            warehouse_con,
            "SELECT source_record_id, customer_id, stitched FROM scv.touchpoint "
            "WHERE source = 'web_events'",
        )
    }
    # Events before the login are stitched too.
    assert got["e1"] == got["e2"] == got["e4"] == ("C1", True)
    assert got["e3"] == ("C1", False)
    # Shared device: anonymous events go to the first login's customer; logins keep their own.
    assert got["e5"] == ("C2", False) and got["e7"] == ("C1", False)
    assert got["e6"] == got["e8"] == ("C2", True)


def test_unresolved_rows_are_kept_with_null_customer(warehouse_con):
    got = rows(
        warehouse_con,
        "SELECT touchpoint_id, stitched FROM scv.touchpoint WHERE customer_id IS NULL "
        "ORDER BY touchpoint_id",
    )
    assert [r["touchpoint_id"] for r in got] == [
        "consent_records:c7",
        "shop_orders:o6",
        "web_events:e10",
        "web_events:e11",
        "web_events:e9",
    ]
    assert not any(r["stitched"] for r in got)


def test_consent_latest_decision_and_withdrawal_wins_a_tie(warehouse_con):
    got = rows(warehouse_con, "SELECT * FROM scv.consent ORDER BY customer_id, purpose")
    assert [
        (r["customer_id"], r["purpose"], r["granted"], r["source_record_id"])
        for r in got
    ] == [
        ("C1", "email_marketing", False, "k2"),
        ("C1", "sms_marketing", True, "c4"),
        ("C2", "email_marketing", False, "c6"),
    ]
    assert got[0]["recorded_at"] == ts("2024-02-01 10:00")
    assert got[0]["source"] == "crm_consents"


def test_consent_tie_is_order_independent(warehouse_con):
    # The same two decisions inserted the other way round give the same answer.
    con = warehouse_con
    con.execute("DELETE FROM stage.consents")
    _insert(con, "stage.consents", CONSENTS[::-1])
    run_model(con, "consent", {"as_of": AS_OF}, into="scv.consent")
    got = con.execute(
        "SELECT source_record_id, granted FROM scv.consent "
        "WHERE customer_id = 'C1' AND purpose = 'email_marketing'"
    ).fetchall()
    assert got == [("k2", False)]


def test_customer_profile_hand_computed(warehouse_con):
    got = {
        r["customer_id"]: r
        for r in rows(
            warehouse_con, "SELECT * FROM scv.customer_profile ORDER BY customer_id"
        )
    }
    assert list(got) == ["C1", "C2", "C3"]
    c1 = got["C1"]
    assert c1["first_name"] == "José" and c1["email"] == "jose@example.com"
    assert (c1["orders_count"], c1["total_spend"]) == (2, 150.0)
    assert (c1["online_orders"], c1["online_spend"]) == (1, 100.0)
    assert (c1["store_orders"], c1["store_spend"]) == (1, 50.0)
    assert (c1["first_order_date"], c1["last_order_date"]) == (
        date(2024, 1, 10),
        date(2024, 3, 1),
    )
    assert c1["channels"] == ["email", "online", "store", "support", "web"]
    assert c1["last_seen_online"] == ts("2024-03-12 10:02")
    assert c1["last_seen_store"] == ts("2024-03-01 12:00")
    assert (
        c1["emails_sent_90d"],
        c1["emails_opened_90d"],
        c1["emails_clicked_90d"],
    ) == (2, 1, 1)
    assert c1["open_tickets"] == 1
    assert c1["consent"] == {"email_marketing": False, "sms_marketing": True}
    assert (c1["rfm_segment"], c1["lifecycle_stage"]) == ("Champions", "active")
    assert c1["as_of_date"] == AS_OF

    c2 = got["C2"]
    assert (c2["orders_count"], c2["total_spend"], c2["store_orders"]) == (1, 20.0, 1)
    assert c2["channels"] == ["store", "support", "web"]
    assert c2["last_seen_online"] == ts("2024-03-12 10:03")  # stitched events count
    assert c2["open_tickets"] == 1  # T1 open; T2 closed; helpdesk X opened then closed
    assert c2["consent"] == {"email_marketing": False}
    assert c2["rfm_segment"] is None

    c3 = got["C3"]
    assert (c3["orders_count"], c3["total_spend"], c3["open_tickets"]) == (0, 0.0, 0)
    assert c3["first_order_date"] is None and c3["last_seen_online"] is None
    assert c3["channels"] == [] and c3["consent"] == {}
    assert (c3["emails_sent_90d"], c3["country"]) == (0, "GB")


def test_profile_consent_map_is_queryable_by_purpose(warehouse_con):
    got = warehouse_con.execute(
        "SELECT customer_id, consent['email_marketing'] FROM scv.customer_profile "
        "ORDER BY customer_id"
    ).fetchall()
    assert got == [("C1", False), ("C2", False), ("C3", None)]


def test_models_are_idempotent(warehouse_con):
    before = warehouse_con.execute("SELECT * FROM scv.customer_profile").fetchall()
    tp = warehouse_con.execute("SELECT * FROM scv.touchpoint").fetchall()
    for name in models_in_order(OURS):
        run_model(warehouse_con, name, {"as_of": AS_OF}, into=f"scv.{name}")
    assert (
        warehouse_con.execute("SELECT * FROM scv.customer_profile").fetchall() == before
    )
    assert warehouse_con.execute("SELECT * FROM scv.touchpoint").fetchall() == tp


@pytest.mark.parametrize("name", OURS)
def test_a_model_without_its_order_by_gives_the_same_rows(warehouse_con, name):
    """load_sql_unordered (the touchpoint's in-place path) drops only the final sort."""
    unordered = load_sql_unordered(name)
    assert "ORDER BY" not in unordered.upper().rsplit(")", 1)[-1]
    params = {"as_of": AS_OF} if "as_of" in model_parameters(name) else {}
    ordered = warehouse_con.execute(load_sql(name), params).fetchall()
    got = warehouse_con.execute(unordered, params).fetchall()
    assert len(ordered) > 0 and sorted(got, key=repr) == sorted(ordered, key=repr)


def test_spend_is_summed_in_exact_decimals_and_rounded_to_the_cent(warehouse_con):
    """As doubles 1.005 + 0.1 + 0.2 is 1.30499…, rounded to 1.30, and the figure could flip
    with the order DuckDB's threads add the amounts up in; in exact decimals it is 1.305."""
    con = warehouse_con
    orders = [
        {**order(f"x{i}", "3", f"2024-03-0{i + 1} 10:00", "completed", "online", amount), "person_source": "crm"}
        for i, amount in enumerate([1.005, 0.1, 0.2])
    ]
    _insert(con, "stage.orders", orders)
    for name in ("touchpoint", "customer_profile"):
        run_model(con, name, {"as_of": AS_OF}, into=f"scv.{name}")
    got = rows(con, "SELECT total_spend, online_spend FROM scv.customer_profile WHERE customer_id = 'C3'")
    assert got == [{"total_spend": 1.31, "online_spend": 1.31}]


def _own_currency(o: dict, currency: str, amount: float) -> dict:
    """An order as staged without a reporting currency: its own amount and currency only."""
    return {**o, "amount": amount, "currency": currency, "amount_reporting": None, "reporting_currency": None, "fx_rate": None}


def test_without_a_reporting_currency_spend_stays_per_currency(warehouse_con):
    """Issue 19, item 1: GBP is never added to EUR. C1's orders are in two currencies, so its
    totals are empty and spend_by_currency holds both sums; C2's are in one, so they count."""
    con = warehouse_con
    con.execute("DELETE FROM stage.orders")
    _insert(
        con,
        "stage.orders",
        [
            _own_currency(ORDERS[0], "GBP", 100.0),
            _own_currency(ORDERS[1], "EUR", 50.0),
            _own_currency(ORDERS[4], "USD", 20.0),
        ],
    )
    for name in ("touchpoint", "customer_profile"):
        run_model(con, name, {"as_of": AS_OF}, into=f"scv.{name}")
    got = {
        r["customer_id"]: r
        for r in rows(
            con,
            "SELECT customer_id, orders_count, total_spend, online_spend, store_spend, spend_currency, "
            "spend_by_currency FROM scv.customer_profile",
        )
    }
    c1, c2, c3 = got["C1"], got["C2"], got["C3"]
    assert c1["orders_count"] == 2
    assert (c1["total_spend"], c1["online_spend"], c1["store_spend"], c1["spend_currency"]) == (None, None, None, None)
    assert json.loads(c1["spend_by_currency"]) == {"EUR": 50.0, "GBP": 100.0}
    assert (c2["total_spend"], c2["store_spend"], c2["spend_currency"]) == (20.0, 20.0, "USD")
    assert json.loads(c2["spend_by_currency"]) == {"USD": 20.0}
    assert (c3["total_spend"], c3["spend_currency"], c3["spend_by_currency"]) == (0.0, None, "{}")
    tp = rows(con, "SELECT amount, currency, source_amount, source_currency FROM scv.touchpoint WHERE touchpoint_id = 'pos:o2'")
    assert tp == [{"amount": 50.0, "currency": "EUR", "source_amount": 50.0, "source_currency": "EUR"}]


def test_with_a_reporting_currency_the_converted_amounts_add_up(warehouse_con):
    con = warehouse_con
    con.execute("DELETE FROM stage.orders")
    eur = {**ORDERS[1], "amount": 50.0, "currency": "EUR", "amount_reporting": 43.0, "fx_rate": 0.86}
    _insert(con, "stage.orders", [ORDERS[0], eur])
    for name in ("touchpoint", "customer_profile"):
        run_model(con, name, {"as_of": AS_OF}, into=f"scv.{name}")
    c1 = rows(con, "SELECT total_spend, spend_currency, spend_by_currency FROM scv.customer_profile WHERE customer_id = 'C1'")
    assert c1 == [{"total_spend": 143.0, "spend_currency": "GBP", "spend_by_currency": '{"EUR":50.0,"GBP":100.0}'}]
    tp = rows(con, "SELECT amount, currency, source_amount, source_currency FROM scv.touchpoint WHERE touchpoint_id = 'pos:o2'")
    assert tp == [{"amount": 43.0, "currency": "GBP", "source_amount": 50.0, "source_currency": "EUR"}]
