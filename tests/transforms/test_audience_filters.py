"""Audience filters, pure: names refused in the wrong dimension, the SQL (parsed and qualified by
sqlglot, values only as parameters), and what it selects on a tiny DuckDB warehouse."""

from __future__ import annotations

import hashlib
import re
from dataclasses import replace

import duckdb
import pytest
import sqlglot
from audience_support import PEOPLE, build_tiny_warehouse
from sqlglot import exp

from transforms.audience import (
    CONFIG_NAMES,
    HASHED_COLUMNS,
    PLAIN_COLUMNS,
    AudienceError,
    AudienceSpec,
    audience_rows,
    audience_sql,
    check_spec,
    filter_counts_sql,
    resolve_segment,
    resolve_stage,
    saved_audience,
    specs_from_json,
    specs_to_json,
)
from transforms.rfm import SEGMENT_NAMES
from warehouse.models import qualify_sql


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# ----------------------------------------------------------------------- naming the dimension
@pytest.mark.parametrize(
    ("value", "expected"), [("at_risk", "at_risk"), ("AT_RISK", "at_risk"), (" lost ", "lost"), ("Prospect", "prospect")]
)
def test_a_stage_is_looked_up_among_stages_only(value, expected):
    assert resolve_stage(value, SEGMENT_NAMES) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("At Risk", "At Risk"), ("at risk", "At Risk"), ("champions", "Champions"), ("Lost", "Lost"), ("lost", "Lost")],
)
def test_a_segment_is_looked_up_among_segments_only(value, expected):
    assert resolve_segment(value, SEGMENT_NAMES) == expected


@pytest.mark.parametrize(
    ("dimension", "value", "message"),
    [
        # "at risk" must never silently mean one of the two: both spellings are named
        ("stage", "at risk", ("--stage 'at risk' is ambiguous: write --stage at_risk for the lifecycle stage, "
                             "or --segment 'At Risk' for the RFM segment")),
        ("stage", "At Risk", "--stage 'At Risk' is ambiguous"),
        ("segment", "at_risk", "--segment at_risk is ambiguous: write --stage at_risk"),
        ("segment", "At-Risk", "is ambiguous"),
        ("segment", "active", "--segment active: 'active' is a lifecycle stage, not an RFM segment: write --stage active"),
        ("stage", "Champions", "'Champions' is an RFM segment, not a lifecycle stage: write --segment Champions"),
        ("stage", "cant lose them", None),
        ("stage", "dormant", "--stage dormant: unknown lifecycle stage; stages: prospect, new, active"),
        ("segment", "Whales", "--segment Whales: unknown RFM segment; segments: Champions, Loyal Customers"),
    ],
)  # fmt: skip
def test_a_value_of_the_other_dimension_or_an_ambiguous_one_is_refused_in_one_line(dimension, value, message):
    resolve = resolve_stage if dimension == "stage" else resolve_segment
    with pytest.raises(AudienceError) as err:
        resolve(value, SEGMENT_NAMES)
    text = str(err.value)
    assert "\n" not in text
    if message:
        assert message in text


def test_config_spelling_names_the_keys():
    with pytest.raises(AudienceError, match="segment: at_risk is ambiguous: write stage: at_risk"):
        resolve_segment("at_risk", SEGMENT_NAMES, CONFIG_NAMES)


def test_segment_names_come_from_the_map_in_force():
    assert resolve_segment("whales", ["Whales", "Minnows"]) == "Whales"
    with pytest.raises(AudienceError, match="segments: Whales, Minnows"):
        resolve_segment("Champions", ["Whales", "Minnows"])


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"purpose": " "}, "a consent purpose is needed"),
        ({"format": "csv"}, "format 'csv'"),
        ({"min_spend": 100, "max_spend": 10}, "minimum spend 100 is above the maximum 10"),
        ({"min_recency_days": -1}, "must be 0 or more"),
        ({"min_spend": float("nan")}, "must be 0 or more"),
        ({"min_spend": 1, "currency": "pounds"}, "ISO 4217"),
    ],
)
def test_check_spec_refuses_what_cannot_be_built(changes, message):
    with pytest.raises(AudienceError, match=message):
        check_spec(replace(AudienceSpec("email_marketing"), **changes), SEGMENT_NAMES)


def test_check_spec_normalises_names_and_keeps_each_once():
    spec = check_spec(
        AudienceSpec("email_marketing", stages=("AT_RISK", "at_risk", "lost"), segments=("at risk",),
                     channels=(" Online ", "online"), min_spend=10, currency="gbp"),
        SEGMENT_NAMES,
    )  # fmt: skip
    assert (spec.stages, spec.segments, spec.channels, spec.currency) == (
        ("at_risk", "lost"), ("At Risk",), ("online",), "GBP"
    )


def test_reporting_currency_is_the_spend_currency():
    spec = check_spec(AudienceSpec("p", min_spend=10), SEGMENT_NAMES, reporting_currency="GBP")
    assert spec.currency == "GBP"
    with pytest.raises(AudienceError, match=r"converted into GBP \(currency.reporting\)"):
        check_spec(AudienceSpec("p", min_spend=10, currency="EUR"), SEGMENT_NAMES, reporting_currency="GBP")


def test_a_saved_audience_is_checked_and_names_itself():
    spec = saved_audience(
        "lapsed_vips", {"segment": "Champions", "stage": "at_risk", "purpose": "email_marketing"}, SEGMENT_NAMES
    )
    assert (spec.name, spec.stages, spec.segments, spec.format) == ("lapsed_vips", ("at_risk",), ("Champions",), "hashed")
    with pytest.raises(AudienceError, match=r"^audiences.x: segment: at_risk is ambiguous"):
        saved_audience("x", {"segment": "at_risk", "purpose": "p"}, SEGMENT_NAMES)
    # the config must not depend on which currencies tonight's orders are in
    with pytest.raises(AudienceError, match="audiences.big: spend bounds need currency:"):
        saved_audience("big", {"min_spend": 100, "purpose": "p"}, SEGMENT_NAMES)


def test_specs_round_trip_as_json():
    specs = (
        saved_audience("a", {"stage": ["new", "active"], "channel": "web", "purpose": "p", "format": "plain"}, SEGMENT_NAMES),
        saved_audience("b", {"min_spend": 5.5, "currency": "EUR", "max_recency_days": 30, "purpose": "q"}, SEGMENT_NAMES),
    )
    assert specs_from_json(specs_to_json(specs)) == specs


# ------------------------------------------------------------------------------------- SQL
SPECS = [
    AudienceSpec("email_marketing"),
    AudienceSpec("email_marketing", stages=("at_risk",), segments=("At Risk",)),
    AudienceSpec("email_marketing", channels=("online", "store"), min_spend=100, max_spend=400, currency="GBP"),
    AudienceSpec("email_marketing", min_recency_days=100, max_recency_days=365, format="plain"),
    AudienceSpec("sms_marketing", segments=("Champions", "Lost"), customer_ids=("A", "D")),
]


@pytest.mark.parametrize("spec", SPECS)
def test_the_sql_parses_and_every_column_exists_in_the_documented_schema(spec):
    for sql, params in (audience_sql(spec), filter_counts_sql(spec)[:2]):
        tree = sqlglot.parse_one(sql, dialect="duckdb")
        qualify_sql(tree)  # a misspelt column or table fails here
        placeholders = {p.name for p in tree.find_all(exp.Placeholder)}
        assert placeholders == set(params)


def test_values_are_bound_never_written_into_the_sql():
    hostile = "x'); DROP TABLE scv.customer; --"
    spec = AudienceSpec(hostile, stages=("at_risk",), segments=(hostile,), channels=(hostile,), min_spend=123.25,
                        currency="ZZZ", min_recency_days=77, customer_ids=(hostile,))  # fmt: skip
    for sql, params in (audience_sql(spec), filter_counts_sql(spec)[:2]):
        assert not re.search(r"DROP|at_risk|123|ZZZ|77", sql)
        assert len(sqlglot.parse(sql, dialect="duckdb")) == 1
        assert hostile in str(params.values())


# ------------------------------------------------------------------------- on a tiny warehouse
@pytest.fixture(scope="module")
def con(tmp_path_factory):
    path = build_tiny_warehouse(tmp_path_factory.mktemp("tiny") / "w.duckdb")
    c = duckdb.connect(str(path), read_only=True)
    yield c
    c.close()


def select(con, spec: AudienceSpec) -> list[str]:
    sql, params = audience_sql(spec)
    return con.execute(sql, params).df()["customer_id"].tolist()


def counts(con, spec: AudienceSpec) -> dict[str, int]:
    sql, params, columns = filter_counts_sql(spec)
    return dict(zip(columns, con.execute(sql, params).fetchall()[0], strict=True))


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (AudienceSpec("email_marketing"), list("ABCDEFGH")),
        (AudienceSpec("email_marketing", stages=("at_risk",)), list("ABCFH")),
        (AudienceSpec("email_marketing", segments=("At Risk",)), list("ABFH")),
        # filters combine: stage AND segment; values within one dimension: any of them
        (AudienceSpec("email_marketing", stages=("at_risk",), segments=("Can't Lose Them", "Lost")), ["C"]),
        (AudienceSpec("email_marketing", stages=("at_risk", "lost"), segments=("Can't Lose Them", "Lost")), ["C", "G"]),
        # channel: any touchpoint on it, whatever its case in the source
        (AudienceSpec("email_marketing", channels=("email",)), ["D"]),
        (AudienceSpec("email_marketing", channels=("store",), stages=("at_risk",)), ["C", "H"]),
        # spend: in the currency named; zero is zero in any currency; several currencies (G) match no bound
        (AudienceSpec("email_marketing", min_spend=100, currency="GBP"), list("ABFH")),
        (AudienceSpec("email_marketing", min_spend=100, currency="EUR"), ["C"]),
        (AudienceSpec("email_marketing", max_spend=100, currency="GBP"), ["D", "E"]),
        (AudienceSpec("email_marketing", min_spend=150, max_spend=200, currency="GBP"), ["A", "H"]),
        # recency: days since the last order; customers who never ordered (E) match no bound
        (AudienceSpec("email_marketing", min_recency_days=150), ["C", "G", "H"]),
        (AudienceSpec("email_marketing", max_recency_days=120), ["A", "D"]),
        (AudienceSpec("email_marketing", customer_ids=("B", "E", "nobody")), ["B", "E"]),
        (AudienceSpec("email_marketing", customer_ids=()), []),
    ],
)
def test_filters_select_and_combine(con, spec, expected):
    assert select(con, spec) == expected
    found = counts(con, spec)
    assert found["customers"] == len(PEOPLE)
    assert found["matched"] == len(expected)


def test_each_filter_is_counted_alone(con):
    spec = AudienceSpec("email_marketing", stages=("at_risk",), channels=("store",), max_recency_days=160)
    assert counts(con, spec) == {"customers": 8, "stage": 5, "channel": 3, "recency": 5, "matched": 1}


def test_only_the_latest_granted_consent_is_written(con):
    spec = AudienceSpec("email_marketing", stages=("at_risk",), segments=("At Risk",))
    sql, params = audience_sql(spec)
    rows, left_out = audience_rows(con.execute(sql, params).df(), "hashed")
    # A granted; B withdrew after granting; F never decided for email; H granted, but has
    # neither a usable email nor an E.164 phone
    assert left_out == {"no_consent_record": 1, "withdrawn": 1, "no_identifier": 1}
    assert rows.to_dict("records") == [{"Email": sha("ann@example.com"), "Phone": sha("+447700900001")}]


@pytest.mark.parametrize("spec", [*SPECS, AudienceSpec("email_marketing", stages=("at_risk",), format="plain")])
@pytest.mark.parametrize("fmt", ["plain", "hashed"])
def test_a_withdrawn_or_refused_consent_is_never_in_any_output(con, spec, fmt):
    sql, params = audience_sql(replace(spec, format=fmt))
    rows, _ = audience_rows(con.execute(sql, params).df(), fmt)
    text = rows.to_csv(index=False)
    # B withdrew email_marketing; C refused sms_marketing
    forbidden = ["bob@example.com", "+447700900002"] if spec.purpose == "email_marketing" else ["cat@example.com"]
    for value in forbidden:
        assert value not in text and sha(value) not in text


def test_plain_and_hashed_are_the_same_customers(con):
    sql, params = audience_sql(AudienceSpec("email_marketing"))
    candidates = con.execute(sql, params).df()
    plain, _ = audience_rows(candidates, "plain")
    hashed, _ = audience_rows(candidates, "hashed")
    assert list(plain.columns) == list(PLAIN_COLUMNS) and list(hashed.columns) == list(HASHED_COLUMNS)
    assert plain["customer_id"].tolist() == ["A", "C", "D", "E"]
    assert sorted(hashed["Email"]) == sorted(sha(e) if e else "" for e in plain["email"])
    assert plain.loc[plain.customer_id == "D", "email"].item() == ""  # phone only
