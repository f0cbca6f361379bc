"""quality.validate: every bad row quarantined once under the right rule, good rows typed."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from quality.validate import (
    CHECK_COLUMNS_STABLE,
    CHECK_COLUMNS_UNCHANGED,
    CHECK_IDS_UNIQUE,
    CHECK_PERSONS_KNOWN,
    CHECK_ROW_COUNT_STABLE,
    CHECK_ROWS_ACCEPTED,
    CHECK_ROWS_CONSERVED,
    CHECK_ROWS_PRESENT,
    QUARANTINE_COLUMNS,
    RULE_ORDER,
    SEVERITY_ERROR,
    ExpectationConfigError,
    QualityGateError,
    check_names,
    field_findings,
    validate_source,
)
from sources.config import SourceConfig
from sources.readers import read_source, to_canonical
from transforms.money import Conversion

AS_OF = date(2024, 6, 1)
RATES = {"GBP": 1.0, "EUR": 0.86}


def source(tmp_path: Path, name: str, text: str, **kw) -> SourceConfig:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    kw.setdefault("name", path.stem)
    return SourceConfig(path=path, **kw)


def run(src: SourceConfig, **kw):
    raw = read_source(src)
    canon = to_canonical(raw, src)
    kw.setdefault("as_of", AS_OF)
    outcome = validate_source(raw, canon, src, **kw)
    assert outcome.rows_in == len(raw)
    assert outcome.rows_in == outcome.rows_accepted + outcome.rows_quarantined
    assert len(outcome.accepted) == outcome.rows_accepted
    assert len(outcome.quarantine) == outcome.rows_quarantined
    assert outcome.quarantine["row_number"].is_unique  # each row at most once
    assert sum(outcome.quarantine_by_rule.values()) == outcome.rows_quarantined
    assert outcome.check(CHECK_ROWS_CONSERVED).passed
    return raw, outcome


def rules_by_row(outcome) -> dict[int, str]:
    return dict(zip(outcome.quarantine["row_number"], outcome.quarantine["rule"]))


ORDERS = """order_id,cust,created,total,cur,st,coupon
1,C1,2024-01-05,10.50,gbp,C,SPRING
2,C1,2024-01-06,-3,GBP,C,
2,C2,2024-01-06,3,GBP,C,
3,C9,2024-01-07,3,GBP,C,
4,C1,31/02/2024,3,GBP,C,
5,C1,2024-01-07,abc,GBP,C,
6,C1,2024-01-07,1,XYZ,C,
7,C1,2024-01-07,1,GBP,shipped,
8,C1,2030-01-07,1,GBP,C,
,C1,2024-01-07,1,GBP,C,
9,,2024-01-07,"1,234.50",EUR,X,
10,C2,2024-06-02T23:59:00,0,EUR,r,
11,C2,2024-06-03T00:00:00,5,EUR,C,
12,C2,,5,EUR,C,
"""


def order_source(tmp_path, text=ORDERS, **kw) -> SourceConfig:
    kw.setdefault("value_map", {"status": {"C": "completed", "X": "cancelled", "R": "returned"}})
    return source(
        tmp_path,
        "shop_orders.csv",
        text,
        kind="order",
        id="order_id",
        person={"source": "crm", "key": "cust"},
        columns={"order_date": "created", "amount": "total", "currency": "cur", "status": "st"},
        constants={"channel": "online"},
        **kw,
    )


def test_mixed_bad_order_file_each_row_under_its_first_failing_rule(tmp_path):
    src = order_source(tmp_path)
    _, outcome = run(src, known_person_ids={"C1", "C2"}, currency_rates=RATES)
    assert rules_by_row(outcome) == {
        2: "negative_amount",
        3: "duplicate_id",
        4: "unknown_person",
        5: "unparseable_date",
        6: "unparseable_amount",
        7: "unknown_currency",
        8: "invalid_status",
        9: "future_date",
        10: "missing_id",
        11: "unknown_person",
        13: "future_date",
        14: "unparseable_date",
    }
    assert outcome.rows_in == 14 and outcome.rows_accepted == 2
    assert outcome.quarantine_by_rule == {
        "missing_id": 1,
        "duplicate_id": 1,
        "unparseable_date": 2,
        "unparseable_amount": 1,
        "negative_amount": 1,
        "unknown_currency": 1,
        "invalid_status": 1,
        "future_date": 2,
        "unknown_person": 2,
    }
    assert list(outcome.quarantine_by_rule) == [r for r in RULE_ORDER if r in outcome.quarantine_by_rule]
    assert tuple(outcome.quarantine.columns) == QUARANTINE_COLUMNS
    assert set(outcome.quarantine["source"]) == {"shop_orders"}


def test_quarantine_keeps_the_original_row_verbatim_and_says_why(tmp_path):
    src = order_source(tmp_path)
    _, outcome = run(src, known_person_ids={"C1", "C2"}, currency_rates=RATES)
    q = outcome.quarantine.set_index("row_number")
    first_dup = json.loads(q.loc[3, "raw"])
    assert first_dup == {
        "order_id": "2",
        "cust": "C2",
        "created": "2024-01-06",
        "total": "3",
        "cur": "GBP",
        "st": "C",
        "coupon": None,
    }
    assert "first occurrence is kept" in q.loc[3, "detail"] and "row 2" in q.loc[3, "detail"]
    assert "'31/02/2024'" in q.loc[5, "detail"]
    assert "-3" in q.loc[2, "detail"] and "negative" in q.loc[2, "detail"]
    assert "'XYZ'" in q.loc[7, "detail"]
    assert "value_map.status" in q.loc[8, "detail"]
    assert "'C9'" in q.loc[4, "detail"] and "crm" in q.loc[4, "detail"]
    assert q.loc[11, "detail"] == "person_record_id is empty"
    assert q.loc[14, "detail"] == "order_date is empty"
    assert pd.isna(q.loc[10, "source_record_id"])


def test_accepted_orders_are_typed(tmp_path):
    src = order_source(tmp_path)
    _, outcome = run(src, known_person_ids={"C1", "C2"}, currency_rates=RATES)
    acc = outcome.accepted
    assert list(acc.columns) == [
        "source",
        "source_record_id",
        "_row_number",
        "person_record_id",
        "order_date",
        "amount",
        "currency",
        "amount_reporting",
        "reporting_currency",
        "fx_rate",
        "status",
        "channel",
        "attributes",
    ]
    assert acc["source_record_id"].tolist() == ["1", "10"]
    assert acc["order_date"].dtype.kind == "M"
    assert acc["order_date"].tolist() == [pd.Timestamp("2024-01-05"), pd.Timestamp("2024-06-02 23:59")]
    assert acc["amount"].dtype == "float64" and acc["amount"].tolist() == [10.5, 0.0]
    assert acc["currency"].tolist() == ["GBP", "EUR"]
    # RATES: GBP is the currency with rate 1, so both are converted into it
    assert acc["fx_rate"].tolist() == [1.0, 0.86] and acc["reporting_currency"].tolist() == ["GBP", "GBP"]
    assert acc["amount_reporting"].tolist() == [10.5, 0.0]
    assert acc["status"].tolist() == ["completed", "returned"]  # value_map ignores case
    assert acc["channel"].tolist() == ["online", "online"]
    assert json.loads(acc["attributes"].iloc[0]) == {"coupon": "SPRING"}


def test_thousands_separators_and_date_format(tmp_path):
    text = "order_id,cust,created,total\n1,C1,05/01/2024,\"1,234.50\"\n2,C1,2024-01-06,7\n3,C1,01/13/2024,1\n"
    src = source(
        tmp_path,
        "pos.csv",
        text,
        kind="order",
        id="order_id",
        person={"source": "crm", "key": "cust"},
        columns={"order_date": "created", "amount": "total"},
        date_format="%d/%m/%Y",
    )
    _, outcome = run(src)
    assert outcome.accepted["order_date"].tolist() == [pd.Timestamp("2024-01-05"), pd.Timestamp("2024-01-06")]
    assert outcome.accepted["amount"].tolist() == [1234.5, 7.0]
    assert outcome.accepted["status"].tolist() == ["completed", "completed"]  # status not mapped
    assert rules_by_row(outcome) == {3: "unparseable_date"}
    assert "%d/%m/%Y" in outcome.quarantine["detail"].iloc[0]


def test_orders_for_unknown_customers(tmp_path):
    text = "order_id,cust,created,total\n1,C1,2024-01-01,5\n2,C2,2024-01-01,5\n3,,2024-01-01,5\n"
    src = source(
        tmp_path,
        "shop.csv",
        text,
        kind="order",
        id="order_id",
        person={"source": "crm", "key": "cust"},
        columns={"order_date": "created", "amount": "total"},
    )
    _, outcome = run(src, known_person_ids={"C1"})
    assert rules_by_row(outcome) == {2: "unknown_person", 3: "unknown_person"}
    check = outcome.check(CHECK_PERSONS_KNOWN)
    assert not check.passed and check.metadata["rows_quarantined"] == 2
    # Without known ids only the empty reference is rejected.
    _, outcome = run(src)
    assert rules_by_row(outcome) == {3: "unknown_person"}


def test_events_may_be_anonymous(tmp_path):
    text = (
        "event_id,user,ts,type,page,session\n"
        "e1,C1,2024-05-01T10:00:00Z,Page_View,/home,s1\n"
        "e2,,2024-05-01T10:01:00+02:00,click,/buy,s1\n"
        "e3,C404,2024-05-01T10:02:00,click,/buy,\n"
        "e4,C1,yesterday,click,/buy,s2\n"
    )
    src = source(
        tmp_path,
        "web.csv",
        text,
        kind="event",
        id="event_id",
        person={"source": "crm", "key": "user"},
        columns={"event_time": "ts", "event_type": "type", "session_id": "session"},
        constants={"channel": "web"},
    )
    _, outcome = run(src, known_person_ids={"C1"})
    assert rules_by_row(outcome) == {3: "unknown_person", 4: "unparseable_date"}
    acc = outcome.accepted
    assert acc["source_record_id"].tolist() == ["e1", "e2"]
    assert pd.isna(acc["person_record_id"].iloc[1])
    assert acc["event_time"].tolist() == [pd.Timestamp("2024-05-01 10:00"), pd.Timestamp("2024-05-01 08:01")]
    assert acc["event_type"].tolist() == ["page_view", "click"]
    assert acc["session_id"].tolist() == ["s1", "s1"]
    assert json.loads(acc["attributes"].iloc[0]) == {"page": "/home"}


def test_consents_granted_values_and_purpose(tmp_path):
    text = (
        "id,cust,purpose,opt,at\n"
        "1,C1,Email_Marketing,Y,2024-01-01\n"
        "2,C1,sms,Opted Out,2024-01-02\n"
        "3,C1,sms,maybe,2024-01-03\n"
        "4,C1,,yes,2024-01-03\n"
        "5,C1,email_marketing,0,2024-01-04\n"
    )
    src = source(
        tmp_path,
        "consent.csv",
        text,
        kind="consent",
        id="id",
        person={"source": "crm", "key": "cust"},
        columns={"purpose": "purpose", "granted": "opt", "recorded_at": "at"},
        value_map={"granted": {"opted out": False}},
    )
    _, outcome = run(src, known_person_ids={"C1"})
    assert rules_by_row(outcome) == {3: "invalid_granted", 4: "missing_purpose"}
    acc = outcome.accepted
    assert acc["granted"].dtype == bool
    assert acc["granted"].tolist() == [True, False, False]
    assert acc["purpose"].tolist() == ["email_marketing", "sms", "email_marketing"]
    assert acc["recorded_at"].dtype.kind == "M"


def person_source(tmp_path, text, **kw) -> SourceConfig:
    kw.setdefault(
        "columns",
        {
            "first_name": "first",
            "last_name": "last",
            "email": "email",
            "phone": "phone",
            "date_of_birth": "dob",
            "updated_at": "modified",
        },
    )
    return source(tmp_path, "crm.csv", text, kind="person", id="id", **kw)


HOSTILE = [
    '=HYPERLINK("http://evil.example","click")',
    "+cmd|' /C calc'!A0",
    "@SUM(1+1)",
    "Robert'); DROP TABLE students;--",
    "Zoë",
    "Łukasz",
    "王芳",
    "O'Brien",
]


def test_persons_are_never_dropped_for_bad_optional_fields(tmp_path):
    rows = [
        ("C1", "Zoë", "O'Brien", "not-an-email", "12", "31/02/1990", "garbage date"),
        ("C2", "", "", "", "", "", ""),
        ("C3", "Łukasz", "Nowak", "test@test.com", "n/a", "1900-01-01", "2099-01-01"),
        ("", "No", "Id", "", "", "", ""),
        ("C1", "Dup", "Licate", "", "", "", ""),
    ]
    text = "id,first,last,email,phone,dob,modified\n" + "".join(",".join(r) + "\n" for r in rows)
    _, outcome = run(person_source(tmp_path, text), as_of=AS_OF)
    assert rules_by_row(outcome) == {4: "missing_id", 5: "duplicate_id"}
    acc = outcome.accepted
    assert acc["source_record_id"].tolist() == ["C1", "C2", "C3"]
    # The canonical frame, untouched, for transforms.standardise.
    assert acc["email"].iloc[0] == "not-an-email"
    assert acc["date_of_birth"].iloc[0] == "31/02/1990"
    assert acc["first_name"].tolist()[:1] == ["Zoë"]
    assert not outcome.check(CHECK_IDS_UNIQUE).passed
    assert outcome.check(CHECK_ROWS_ACCEPTED).passed


def test_hostile_and_international_names_accepted_verbatim(tmp_path):
    body = "".join(f'P{i},"{v.replace(chr(34), chr(34) * 2)}",Smith,,,,\n' for i, v in enumerate(HOSTILE))
    _, outcome = run(person_source(tmp_path, "id,first,last,email,phone,dob,modified\n" + body))
    assert outcome.rows_quarantined == 0
    assert outcome.accepted["first_name"].tolist() == HOSTILE


def test_hostile_text_in_order_attributes_accepted_verbatim(tmp_path):
    body = "".join(
        f'{i},C1,2024-01-01,5,"{v.replace(chr(34), chr(34) * 2)}"\n' for i, v in enumerate(HOSTILE)
    )
    src = source(
        tmp_path,
        "shop.csv",
        "order_id,cust,created,total,note\n" + body,
        kind="order",
        id="order_id",
        person={"source": "crm", "key": "cust"},
        columns={"order_date": "created", "amount": "total"},
    )
    _, outcome = run(src, known_person_ids={"C1"})
    assert outcome.rows_quarantined == 0
    notes = [json.loads(a)["note"] for a in outcome.accepted["attributes"]]
    assert notes == HOSTILE


def test_zero_rows_is_blocking_and_raisable(tmp_path):
    src = person_source(tmp_path, "id,first,last,email,phone,dob,modified\nC1,a,b,,,,\n")
    raw = read_source(src).iloc[0:0]
    canon = to_canonical(raw, src)
    outcome = validate_source(raw, canon, src, as_of=AS_OF)
    assert outcome.rows_in == 0
    check = outcome.check(CHECK_ROWS_PRESENT)
    assert not check.passed and check.severity == SEVERITY_ERROR
    assert outcome.blocking_failures == [check]
    with pytest.raises(QualityGateError, match="rows_present") as info:
        outcome.raise_for_blocking()
    assert info.value.source == "crm"


def test_row_count_drop_against_previous_run(tmp_path):
    src = person_source(tmp_path, "id,first,last,email,phone,dob,modified\nC1,a,b,,,,\nC2,c,d,,,,\n")
    _, outcome = run(src, previous_rows=5, max_row_drop=0.5)
    check = outcome.check(CHECK_ROW_COUNT_STABLE)
    assert not check.passed and check.blocking
    assert "from 5 to 2" in check.metadata["reason"]
    with pytest.raises(QualityGateError, match="row_count_stable"):
        outcome.raise_for_blocking()
    _, outcome = run(src, previous_rows=4, max_row_drop=0.5)
    assert outcome.check(CHECK_ROW_COUNT_STABLE).passed
    # The source's own max_row_drop wins over the argument.
    strict = src.model_copy(update={"max_row_drop": 0.1})
    _, outcome = run(strict, previous_rows=3, max_row_drop=0.9)
    assert not outcome.check(CHECK_ROW_COUNT_STABLE).passed
    _, outcome = run(src)
    assert outcome.check(CHECK_ROW_COUNT_STABLE).metadata == {"skipped": "no previous run to compare with"}


def test_schema_drift_against_previous_columns(tmp_path):
    src = person_source(tmp_path, "id,first,last,email,phone,dob,modified,new_col\nC1,a,b,,,,,x\n")
    previous = ["id", "first", "last", "email", "phone", "dob", "modified", "fax"]
    _, outcome = run(src, previous_columns=previous)
    stable = outcome.check(CHECK_COLUMNS_STABLE)
    assert not stable.passed and stable.blocking and stable.metadata["columns_missing"] == "fax"
    unchanged = outcome.check(CHECK_COLUMNS_UNCHANGED)
    assert not unchanged.passed and not unchanged.blocking
    _, outcome = run(src, previous_columns=previous[:-1])
    assert outcome.check(CHECK_COLUMNS_STABLE).passed
    assert not outcome.check(CHECK_COLUMNS_UNCHANGED).passed
    assert outcome.check(CHECK_COLUMNS_UNCHANGED).metadata["columns_added"] == "new_col"


def test_all_rows_rejected_blocks(tmp_path):
    src = order_source(tmp_path, "order_id,cust,created,total,cur,st\n1,C1,x,1,GBP,C\n2,C1,y,1,GBP,C\n")
    _, outcome = run(src)
    assert outcome.rows_accepted == 0
    assert [c.name for c in outcome.blocking_failures] == [CHECK_ROWS_ACCEPTED]


def test_declared_expectations_quarantine_orders_and_warn_for_persons(tmp_path):
    regex = {"expectation": "expect_column_values_to_match_regex", "kwargs": {"column": "order_id", "regex": "^ORD-[0-9]+$"}}
    text = "order_id,cust,created,total\nORD-1,C1,2024-01-01,1\n17,C1,2024-01-01,1\n"
    src = source(
        tmp_path,
        "shop.csv",
        text,
        kind="order",
        id="order_id",
        person={"source": "crm", "key": "cust"},
        columns={"order_date": "created", "amount": "total"},
        expectations=[regex],
    )
    _, outcome = run(src)
    assert rules_by_row(outcome) == {2: "expect_column_values_to_match_regex"}
    name = "declared_column_values_to_match_regex_order_id"
    assert name in check_names(src)
    assert not outcome.check(name).passed and outcome.check(name).severity == "WARN"

    postcode = {
        "expectation": "expect_column_values_to_match_regex",
        "kwargs": {"column": "zip", "regex": "^[A-Z0-9 ]+$"},
        "name": "postcode_format",
    }
    psrc = source(
        tmp_path,
        "crm.csv",
        "id,zip\nC1,SW1A 1AA\nC2,??\n",
        kind="person",
        id="id",
        columns={"postcode": "zip"},
        expectations=[postcode],
    )
    _, outcome = run(psrc)
    assert outcome.rows_quarantined == 0  # a bad optional field never drops a person
    assert not outcome.check("postcode_format").passed
    assert outcome.check("postcode_format").metadata["rows_failing"] == 1


def test_declared_expectation_errors_name_the_entry(tmp_path):
    text = "id,zip\nC1,x\n"
    bad_name = source(tmp_path, "crm.csv", text, kind="person", id="id", expectations=[{"expectation": "expect_nonsense", "kwargs": {}}])
    with pytest.raises(ExpectationConfigError, match=r"source crm: expectations\[0\]: unknown"):
        run(bad_name)
    bad_col = bad_name.model_copy(
        update={"expectations": [{"expectation": "expect_column_values_to_not_be_null", "kwargs": {"column": "nope"}}]}
    )
    with pytest.raises(ExpectationConfigError, match="'nope' is not a column"):
        run(bad_col)
    bad_kwargs = bad_name.model_copy(
        update={
            "expectations": [
                {"expectation": "expect_column_values_to_not_be_null", "kwargs": {"column": "id"}},
                {
                    "expectation": "expect_column_values_to_be_between",
                    "kwargs": {"column": "zip", "min_value": "low"},
                },
            ]
        }
    )
    with pytest.raises(ExpectationConfigError, match=r"expectations\[1\]: invalid kwargs"):
        run(bad_kwargs)


def test_great_expectations_does_the_evaluating(tmp_path):
    from great_expectations.core.expectation_validation_result import (
        ExpectationSuiteValidationResult,
    )

    src = order_source(tmp_path)
    _, outcome = run(src, known_person_ids={"C1", "C2"}, currency_rates=RATES)
    assert outcome.gx_results and all(isinstance(r, ExpectationSuiteValidationResult) for r in outcome.gx_results)
    types = {r.expectation_config.type for res in outcome.gx_results for r in res.results}
    assert {
        "expect_column_values_to_not_be_null",
        "expect_column_values_to_be_unique",
        "expect_column_values_to_be_between",
        "expect_column_values_to_be_in_set",
        "expect_table_row_count_to_be_between",
    } <= types
    unique = next(
        r for res in outcome.gx_results for r in res.results if r.expectation_config.type == "expect_column_values_to_be_unique"
    )
    # GX flags both occurrences of id 2 (positions 1 and 2); the gate keeps the first.
    assert unique.result["unexpected_index_list"] == [1, 2]


@pytest.mark.parametrize("kind", ["person", "order", "event", "consent"])
def test_check_names_match_the_checks_reported(tmp_path, kind):
    if kind == "person":
        src = person_source(tmp_path, "id,first,last,email,phone,dob,modified\nC1,a,b,,,,\n")
    else:
        field = {"order": "order_date", "event": "event_time", "consent": "recorded_at"}[kind]
        src = source(tmp_path, f"{kind}.csv", "id,cust,when\n1,C1,2024-01-01\n", kind=kind, id="id",
                     person={"source": "crm", "key": "cust"}, columns={field: "when"})
    _, outcome = run(src)
    assert [c.name for c in outcome.checks] == check_names(src)
    assert all(c.name.replace("_", "").isalnum() for c in outcome.checks)
    for c in outcome.checks:
        assert all(isinstance(v, (int, str)) for v in c.metadata.values())


def test_field_findings_counts_issue_lists():
    std = pd.DataFrame(
        {
            "unique_id": ["a", "b", "c", "d"],
            "field_issues": [
                ["email:placeholder", "phone:invalid"],
                [],
                None,
                np.array(["email:placeholder"]),
            ],
        }
    )
    out = field_findings(std)
    assert out.to_dict("records") == [
        {"field": "email", "rule": "placeholder", "count": 2},
        {"field": "phone", "rule": "invalid", "count": 1},
    ]
    assert field_findings(std.iloc[1:3]).empty
    assert list(field_findings(pd.DataFrame({"x": [1]})).columns) == ["field", "rule", "count"]


# --- issue 19: plausible values (item 7) and money (item 1) ---------------------------------

PLAUSIBILITY = """order_id,cust,created,total,cur,st
1,C1,2024-01-05,10.50,GBP,C
2,C1,2024-01-06,1e308,GBP,C
3,C1,1900-01-01,12,GBP,C
4,C1,2024-01-07,1000000000,GBP,C
5,C1,2024-01-07,1000000000.01,GBP,C
6,C1,1989-12-31,3,GBP,C
7,C1,1990-01-01,3,GBP,C
"""


def test_implausible_amounts_and_placeholder_dates_go_to_their_own_rules(tmp_path):
    """The night used to fail in `rfm` on 1e308 (DECIMAL(38, 6) overflow), and a 1900-01-01
    order set first_order_date: both are now row rules, with every row accounted for."""
    src = order_source(tmp_path, PLAUSIBILITY)
    _, outcome = run(src, known_person_ids={"C1"})
    assert rules_by_row(outcome) == {2: "amount_too_large", 3: "date_too_early", 5: "amount_too_large", 6: "date_too_early"}
    assert outcome.rows_in == 7 and outcome.rows_accepted == 3 and outcome.rows_quarantined == 4
    q = outcome.quarantine.set_index("row_number")["detail"]
    assert q[2] == "amount 1e+308 GBP is above quality.max_amount (1,000,000,000)"
    assert q[3] == "order_date 1900-01-01 is before quality.min_date 1990-01-01 (a placeholder, not a real date)"
    assert list(outcome.quarantine_by_rule) == ["date_too_early", "amount_too_large"]  # RULE_ORDER


def test_the_bounds_come_from_config_and_a_converted_amount_is_bounded_too(tmp_path):
    src = order_source(tmp_path, PLAUSIBILITY)
    _, outcome = run(
        src, known_person_ids={"C1"}, max_amount=20.0, min_date=date(1800, 1, 1),
        conversion=Conversion.of("JPY", {"GBP": 190.0}),
    )  # fmt: skip
    # 10.50 GBP is 1,995 JPY: above 20 once converted; 12 GBP dated 1900 now counts as a date
    assert rules_by_row(outcome) == {r: "amount_too_large" for r in range(1, 8)}
    details = outcome.quarantine.set_index("row_number")["detail"]
    assert details[1] == "amount 10.5 GBP is 1995 JPY, above quality.max_amount (20)"


def test_events_are_floored_but_consents_are_kept(tmp_path):
    events = source(
        tmp_path, "web.csv", "event_id,user,ts,type\ne1,C1,1900-01-01,open\ne2,C1,2024-01-01,open\n",
        kind="event", id="event_id", person={"source": "crm", "key": "user"},
        columns={"event_time": "ts", "event_type": "type"},
    )  # fmt: skip
    _, outcome = run(events, known_person_ids={"C1"})
    assert rules_by_row(outcome) == {1: "date_too_early"}
    consents = source(
        tmp_path, "consents.csv", "id,cust,purpose,opt,at\n1,C1,email,no,1900-01-01\n",
        kind="consent", id="id", person={"source": "crm", "key": "cust"},
        columns={"purpose": "purpose", "granted": "opt", "recorded_at": "at"},
    )  # fmt: skip
    _, outcome = run(consents, known_person_ids={"C1"})
    assert outcome.rows_accepted == 1  # a withdrawal with a placeholder date still counts


US_SHOP = """order_id,cust,created,total,cur,st
1,C1,2024-01-05,100.00,USD,C
2,C1,2024-02-05,50.00,usd,C
3,C1,2024-02-06,5.00,US$,C
4,C1,2024-02-07,5.00,,C
5,C1,2024-03-01,20.00,EUR,C
"""


def test_without_a_reporting_currency_amounts_stay_as_written(tmp_path):
    """Issue 19: a US shop's USD amounts were multiplied by a built-in 0.79."""
    src = order_source(tmp_path, US_SHOP)
    _, outcome = run(src, known_person_ids={"C1"})
    assert rules_by_row(outcome) == {3: "unknown_currency", 4: "unknown_currency"}
    acc = outcome.accepted
    assert acc["amount"].tolist() == [100.0, 50.0, 20.0]
    assert acc["currency"].tolist() == ["USD", "USD", "EUR"]
    assert acc["amount_reporting"].isna().all() and acc["fx_rate"].isna().all()
    assert acc["reporting_currency"].isna().all()
    q = outcome.quarantine.set_index("row_number")["detail"]
    assert q[3] == "currency 'US$' is not an ISO 4217 code (map it in value_map.currency)"
    assert q[4] == "currency is empty"


def test_a_source_that_names_no_currency_is_not_checked_without_conversion(tmp_path):
    src = source(
        tmp_path, "o.csv", "order_id,cust,created,total\n1,C1,2024-01-05,7\n",
        kind="order", id="order_id", person={"source": "crm", "key": "cust"},
        columns={"order_date": "created", "amount": "total"},
    )  # fmt: skip
    _, outcome = run(src, known_person_ids={"C1"})
    assert outcome.rows_accepted == 1 and pd.isna(outcome.accepted["currency"].iloc[0])
    # converting needs to know the currency
    _, outcome = run(src, known_person_ids={"C1"}, conversion=Conversion.of("GBP"))
    assert rules_by_row(outcome) == {1: "unknown_currency"}
    assert "not mapped for this source" in outcome.quarantine["detail"].iloc[0]


def test_reporting_in_the_source_currency_changes_nothing_and_quarantines_the_rest(tmp_path):
    """Issue 19: `currency: {reporting: USD}` still applied the built-in rates."""
    src = order_source(tmp_path, US_SHOP)
    _, outcome = run(src, known_person_ids={"C1"}, conversion=Conversion.of("USD"))
    assert rules_by_row(outcome) == {3: "unknown_currency", 4: "unknown_currency", 5: "unknown_currency"}
    acc = outcome.accepted
    assert acc["amount_reporting"].tolist() == acc["amount"].tolist() == [100.0, 50.0]
    assert acc["fx_rate"].tolist() == [1.0, 1.0] and acc["reporting_currency"].tolist() == ["USD", "USD"]
    details = outcome.quarantine.set_index("row_number")["detail"]
    assert details[5] == "currency 'EUR' has no rate into USD (rates for: USD)"


def test_dated_rates_convert_at_the_latest_rate_on_or_before_the_order_date(tmp_path):
    dated = pd.DataFrame(
        {"currency": ["USD", "USD"], "valid_from": pd.to_datetime(["2024-01-05", "2024-02-06"]), "rate": [0.8, 0.75]}
    )
    src = order_source(tmp_path, US_SHOP.replace("2024-01-05", "2024-01-04", 1) + "6,C1,2024-01-05,10,USD,C\n")
    _, outcome = run(src, known_person_ids={"C1"}, conversion=Conversion.of("GBP", {"EUR": 0.86}, dated))
    rules = rules_by_row(outcome)
    assert rules == {1: "unknown_currency", 3: "unknown_currency", 4: "unknown_currency"}
    acc = outcome.accepted.set_index("source_record_id")
    assert acc.loc["2", "fx_rate"] == 0.8  # 2024-02-05: the rate of 2024-01-05 still holds
    assert acc.loc["6", "fx_rate"] == 0.8  # on the rate's own date
    assert acc.loc["5", "amount_reporting"] == pytest.approx(17.2)  # EUR at the undated rate
    details = outcome.quarantine.set_index("row_number")["detail"]
    assert details[1] == (
        "currency 'USD' has no rate into GBP on or before 2024-01-04 (its first dated rate is for 2024-01-05)"
    )
