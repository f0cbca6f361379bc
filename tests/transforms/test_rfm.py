"""RFM: the segment map (coverage, validation, config override) and rfm.sql on hand-computed
fixtures, plus an independent pandas recomputation on a random order set."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
import yaml

from sources.config import RfmConfig, SegmentRule
from transforms.rfm import (
    DEFAULT_SEGMENT_MAP,
    SEGMENT_MAP_COLUMNS,
    SegmentMapError,
    default_segment_rules,
    fm_score,
    segment_grid_markdown,
    segment_rules,
    segment_table,
    validate_segment_map,
)
from warehouse.models import (
    STAGE_TABLES,
    parse_model,
    run_model,
    stage_create_statement,
)
from warehouse.schema import TABLES, create_statement

AS_OF = date(2024, 6, 30)
SEGMENT_NAMES = {
    "Champions",
    "Loyal Customers",
    "Potential Loyalist",
    "New Customers",
    "Promising",
    "Need Attention",
    "About To Sleep",
    "At Risk",
    "Can't Lose Them",
    "Hibernating",
    "Lost",
}
REPO = Path(__file__).resolve().parents[2]


# --- the segment map -------------------------------------------------------------------------


def test_default_map_covers_all_125_combinations_once_with_the_11_segments():
    mapping = validate_segment_map(DEFAULT_SEGMENT_MAP)
    assert len(mapping) == 125
    assert set(mapping.values()) == SEGMENT_NAMES
    # The corners of the grid read as the published map says.
    assert mapping[(5, 5, 5)] == "Champions"
    assert mapping[(1, 5, 5)] == "Can't Lose Them"
    assert mapping[(1, 1, 1)] == "Lost"
    assert mapping[(5, 1, 1)] == "New Customers"
    assert mapping[(4, 1, 1)] == "Promising"
    assert mapping[(2, 2, 2)] == "Hibernating"
    assert mapping[(3, 3, 3)] == "Need Attention"


@pytest.mark.parametrize(
    ("f", "m", "fm"),
    [(1, 1, 1), (1, 2, 2), (2, 1, 2), (4, 5, 5), (5, 4, 5), (3, 4, 4), (2, 5, 4)],
)
def test_fm_score_is_the_mean_rounded_half_up(f, m, fm):
    assert fm_score(f, m) == fm


def test_segment_table_has_every_combination_and_matches_the_rules():
    table = segment_table()
    assert list(table.columns) == list(SEGMENT_MAP_COLUMNS)
    assert len(table) == 125
    assert not table.duplicated(["r_score", "f_score", "m_score"]).any()
    row = table[(table.r_score == 3) & (table.f_score == 1) & (table.m_score == 2)]
    assert row.segment.tolist() == ["About To Sleep"]
    assert str(table.r_score.dtype) == "int32"


def test_a_gap_is_reported_with_the_combinations_missing():
    rules = [r for r in DEFAULT_SEGMENT_MAP if r["name"] != "Champions"]
    with pytest.raises(
        SegmentMapError, match=r"3 score combination\(s\) match no rule.*r=5, f=4, m=5"
    ):
        validate_segment_map(rules)


def test_an_overlap_names_both_rules():
    rules = [
        *DEFAULT_SEGMENT_MAP,
        {"name": "VIP", "r": (5, 5), "f": (5, 5), "m": (5, 5)},
    ]
    with pytest.raises(
        SegmentMapError, match=r"match several rules.*#1 'Champions', #15 'VIP'"
    ):
        validate_segment_map(rules)


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (
            {"name": "X", "r": (0, 5)},
            r"rfm.segments\[1\] \('X'\): r must satisfy 1 <= lo <= hi <= 5",
        ),
        ({"name": "X", "r": (4, 2)}, r"r must satisfy"),
        ({"name": "X", "r": (1, 5), "fm": (1, 6)}, r"fm must satisfy"),
        (
            {"name": "X", "r": (1, 5), "m": (1.5, 5)},
            r"m must be \[lo, hi\] with whole-number scores",
        ),
        ({"name": "X", "r": "1-5"}, r"r must be \[lo, hi\]"),
        (
            {"name": "", "r": (1, 5)},
            r"rfm.segments\[1\]: name must be a non-empty text",
        ),
        ({"name": "X"}, r"r \(the recency score range\) is required"),
    ],
)
def test_malformed_rules_are_named(rule, message):
    with pytest.raises(SegmentMapError, match=message):
        validate_segment_map([rule])


def test_an_empty_map_is_refused():
    with pytest.raises(SegmentMapError, match="no rules"):
        validate_segment_map([])


def test_config_rules_override_the_default_and_may_use_f_and_m_ranges():
    config = RfmConfig(
        segments=[
            SegmentRule(name="Recent big spenders", r=(4, 5), m=(4, 5)),
            SegmentRule(name="Recent others", r=(4, 5), m=(1, 3)),
            SegmentRule(name="Older", r=(1, 3)),
        ]
    )
    rules = segment_rules(config)
    table = segment_table(rules)
    assert table.segment.value_counts().to_dict() == {
        "Older": 75,
        "Recent others": 30,
        "Recent big spenders": 20,
    }
    assert segment_rules(RfmConfig()) == [dict(r) for r in DEFAULT_SEGMENT_MAP]
    assert (
        segment_rules(None)
        == default_segment_rules()
        == [dict(r) for r in DEFAULT_SEGMENT_MAP]
    )
    # rules dumped from config, as the pipeline passes them, validate the same
    dumped = [r.model_dump(exclude_none=True) for r in config.segments]
    assert segment_table(dumped).equals(table)


def test_the_grid_in_the_docs_is_the_default_map():
    docs = (REPO / "docs" / "analytics.md").read_text(encoding="utf-8")
    assert segment_grid_markdown() in docs


def test_the_config_example_in_the_docs_is_the_default_map():
    docs = (REPO / "docs" / "analytics.md").read_text(encoding="utf-8")
    block = docs.split("```yaml\nrfm:", 1)[1].split("```", 1)[0]
    config = RfmConfig.model_validate(yaml.safe_load("rfm:" + block)["rfm"])
    assert [r.model_dump(exclude_defaults=True) for r in config.segments] == [
        dict(r) for r in DEFAULT_SEGMENT_MAP
    ]


def test_grid_rendering_refuses_maps_that_depend_on_more_than_r_and_fm():
    rules = [
        {"name": "A", "r": (1, 5), "f": (1, 2)},
        {"name": "B", "r": (1, 5), "f": (3, 5)},
    ]
    with pytest.raises(SegmentMapError, match="not a function of R and FM"):
        segment_grid_markdown(rules)


# --- rfm.sql ---------------------------------------------------------------------------------


def make_warehouse(orders: list[dict], customers: list[str] | None = None, rules=None):
    """An in-memory staging database holding `orders` (dicts with customer, date, status, amount,
    amount_reporting, reporting_currency (default GBP; None: no reporting currency) ...), one
    person record per customer, and the segment map."""
    con = duckdb.connect()
    con.execute("CREATE SCHEMA stage")
    con.execute("CREATE SCHEMA scv")
    con.execute(stage_create_statement("orders"))
    for name in ("customer", "customer_xref"):
        con.execute(create_statement(TABLES[name]))
    ids = sorted(
        set(customers or []) | {o["customer"] for o in orders if o["customer"]}
    )
    xref = pd.DataFrame(
        {"record": [f"p-{c}" for c in ids], "customer": ids}, dtype=object
    )
    con.register("xref_frame", xref)
    con.execute(
        "INSERT INTO scv.customer_xref (source, source_record_id, customer_id)"
        " SELECT 'crm', record, customer FROM xref_frame"
    )
    con.execute(
        "INSERT INTO scv.customer (customer_id) SELECT customer FROM xref_frame"
    )
    con.unregister("xref_frame")
    rows = []
    for i, o in enumerate(orders, start=1):
        amount = o.get("amount", 10.0)
        rows.append(
            [
                o.get("source", "shop"),
                o.get("id", f"o{i}"),
                i,
                "crm",
                o.get("person", f"p-{o['customer']}"),
                o["date"]
                if isinstance(o["date"], datetime)
                else datetime.combine(o["date"], datetime.min.time()),
                amount,
                o.get("currency", "GBP"),
                o.get("amount_reporting", amount),
                o.get("reporting_currency", "GBP"),
                o.get("fx_rate", 1.0),
                o.get("status", "completed"),
                "online",
                "{}",
            ]
        )
    if rows:
        frame = pd.DataFrame(rows, columns=list(STAGE_TABLES["orders"]))
        con.register("orders_frame", frame)
        con.execute("INSERT INTO stage.orders SELECT * FROM orders_frame")
        con.unregister("orders_frame")
    frame = segment_table(rules)
    con.register("segment_map_frame", frame)
    con.execute("CREATE TABLE stage.rfm_segment_map AS SELECT * FROM segment_map_frame")
    con.unregister("segment_map_frame")
    return con


def rfm(con, as_of=AS_OF) -> pd.DataFrame:
    return (
        run_model(con, "rfm", {"as_of": as_of, "new_days": 30})
        .df()
        .set_index("customer_id")
    )


def days_ago(n: int) -> date:
    return AS_OF - timedelta(days=n)


def test_output_columns_and_types_are_the_published_table():
    con = make_warehouse([{"customer": "a", "date": days_ago(3)}])
    rel = run_model(con, "rfm", {"as_of": AS_OF})
    expected = TABLES["rfm"]
    assert rel.columns == expected.column_names
    assert [str(t) for t in rel.types] == [c.type for c in expected.columns]
    assert parse_model("rfm") is not None


def test_a_single_customer_with_a_single_order_scores_top_on_everything():
    con = make_warehouse([{"customer": "a", "date": days_ago(12), "amount": 42.5}])
    out = rfm(con)
    row = out.loc["a"]
    assert (row.recency_days, row.frequency, row.monetary) == (12, 1, 42.5)
    assert (row.r_score, row.f_score, row.m_score) == (5, 5, 5)
    assert row.segment == "Champions"
    assert pd.Timestamp(row.as_of_date).date() == AS_OF


def test_equal_values_always_share_a_score():
    # frequencies 1, 1, 1, 2, 3: c = 3, 3, 3, 4, 5 of n = 5 -> ceil(5c/n) = 3, 3, 3, 4, 5.
    # every last order on the same day -> everyone c = 5 -> recency 5.
    # spends 10, 10, 20, 20, 30 -> c = 2, 2, 4, 4, 5 -> 2, 2, 4, 4, 5.
    orders = [
        {"customer": "a", "date": days_ago(5), "amount": 10.0},
        {"customer": "b", "date": days_ago(5), "amount": 10.0},
        {"customer": "c", "date": days_ago(5), "amount": 20.0},
        {"customer": "d", "date": days_ago(40), "amount": 5.0},
        {"customer": "d", "date": days_ago(5), "amount": 15.0},
        {"customer": "e", "date": days_ago(80), "amount": 10.0},
        {"customer": "e", "date": days_ago(60), "amount": 10.0},
        {"customer": "e", "date": days_ago(5), "amount": 10.0},
    ]
    out = rfm(con=make_warehouse(orders))
    assert out.frequency.to_dict() == {"a": 1, "b": 1, "c": 1, "d": 2, "e": 3}
    assert out.f_score.to_dict() == {"a": 3, "b": 3, "c": 3, "d": 4, "e": 5}
    assert set(out.r_score) == {5}
    assert out.monetary.to_dict() == {
        "a": 10.0,
        "b": 10.0,
        "c": 20.0,
        "d": 20.0,
        "e": 30.0,
    }
    assert out.m_score.to_dict() == {"a": 2, "b": 2, "c": 4, "d": 4, "e": 5}


def test_recency_scores_most_recent_highest_and_ties_share():
    # recency 1, 1, 10, 50, 50, 50, 200, 300, 300, 400 (n = 10). Worse-or-equal counts:
    # 10, 10, 8, 7, 7, 7, 4, 3, 3, 1 -> ceil(c / 2) = 5, 5, 4, 4, 4, 4, 2, 2, 2, 1.
    recency = [1, 1, 10, 50, 50, 50, 200, 300, 300, 400]
    orders = [{"customer": f"c{i}", "date": days_ago(d)} for i, d in enumerate(recency)]
    out = rfm(make_warehouse(orders))
    assert out.recency_days.tolist() == recency
    assert out.r_score.tolist() == [5, 5, 4, 4, 4, 4, 2, 2, 2, 1]


def test_only_completed_orders_up_to_the_as_of_date_count():
    end_of_day = datetime.combine(AS_OF, datetime.min.time()) + timedelta(
        hours=23, minutes=59
    )
    orders = [
        {"customer": "a", "date": days_ago(30), "amount": 100.0},
        {"customer": "a", "date": days_ago(2), "amount": 999.0, "status": "cancelled"},
        {"customer": "a", "date": days_ago(1), "amount": 999.0, "status": "returned"},
        {
            "customer": "a",
            "date": end_of_day,
            "amount": 1.0,
        },  # the as-of day counts, all of it
        {
            "customer": "a",
            "date": AS_OF + timedelta(days=1),
            "amount": 999.0,
        },  # the future does not
        {
            "customer": "b",
            "date": days_ago(3),
            "status": "cancelled",
        },  # nothing completed
        {
            "customer": "c",
            "date": AS_OF + timedelta(days=3),
        },  # only after the as-of date
    ]
    out = rfm(make_warehouse(orders))
    assert list(out.index) == ["a"]
    assert (out.loc["a", "recency_days"], out.loc["a", "frequency"]) == (0, 2)
    assert out.loc["a", "monetary"] == pytest.approx(101.0)


def test_zero_amounts_count_as_orders_with_no_spend():
    orders = [
        {"customer": "a", "date": days_ago(1), "amount": 0.0},
        {"customer": "a", "date": days_ago(2), "amount": 0.0},
        {"customer": "b", "date": days_ago(1), "amount": 25.0},
    ]
    out = rfm(make_warehouse(orders))
    assert out.loc["a", "frequency"] == 2 and out.loc["a", "monetary"] == 0.0
    assert out.loc["a", "m_score"] < out.loc["b", "m_score"]
    assert out.loc["a", "f_score"] > out.loc["b", "f_score"]


def test_monetary_is_the_sum_in_the_reporting_currency():
    orders = [
        {
            "customer": "a",
            "date": days_ago(1),
            "amount": 100.0,
            "currency": "EUR",
            "amount_reporting": 86.0,
        },
        {
            "customer": "a",
            "date": days_ago(9),
            "amount": 100.0,
            "currency": "USD",
            "amount_reporting": 79.0,
        },
        {
            "customer": "a",
            "date": days_ago(20),
            "amount": 10.0,
            "currency": "GBP",
            "amount_reporting": 10.0,
        },
    ]
    out = rfm(make_warehouse(orders))
    assert out.loc["a", "monetary"] == pytest.approx(175.0)


def test_orders_are_counted_once_and_only_for_resolved_customers():
    orders = [
        {"customer": "a", "date": days_ago(5), "id": "o1", "amount": 10.0},
        {
            "customer": "a",
            "date": days_ago(5),
            "id": "o1",
            "amount": 10.0,
        },  # listed twice
        {
            "customer": "a",
            "date": days_ago(5),
            "id": "o1",
            "source": "pos",
            "amount": 5.0,
        },  # other source
        {
            "customer": "a",
            "date": days_ago(5),
            "id": "o9",
            "person": "p-nobody",
            "amount": 7.0,
        },
    ]
    out = rfm(make_warehouse(orders))
    assert (out.loc["a", "frequency"], out.loc["a", "monetary"]) == (2, 15.0)


def test_orders_of_several_person_records_add_up_to_their_customer():
    con = make_warehouse([{"customer": "a", "date": days_ago(5), "amount": 10.0}])
    con.execute(
        "INSERT INTO scv.customer_xref (source, source_record_id, customer_id) VALUES ('crm', 'p-a2', 'a')"
    )
    con.execute(
        "INSERT INTO stage.orders (source, source_record_id, _row_number, person_source, person_record_id,"
        " order_date, amount, currency, amount_reporting, status) VALUES"
        " ('shop', 'o77', 9, 'crm', 'p-a2', TIMESTAMP '2024-06-01 10:00', 5, 'GBP', 5, 'completed')"
    )
    out = rfm(con)
    assert (
        out.loc["a", "frequency"],
        out.loc["a", "monetary"],
        out.loc["a", "recency_days"],
    ) == (2, 15.0, 5)


def test_segment_comes_from_the_registered_map():
    rules = [{"name": "Everyone", "r": (1, 5)}]
    out = rfm(
        make_warehouse(
            [
                {"customer": "a", "date": days_ago(5)},
                {"customer": "b", "date": days_ago(50)},
            ],
            rules=rules,
        )
    )
    assert set(out.segment) == {"Everyone"}


def test_no_orders_no_rows():
    out = rfm(make_warehouse([], customers=["a", "b"]))
    assert out.empty


def pandas_rfm(orders: pd.DataFrame, as_of: date, table: pd.DataFrame) -> pd.DataFrame:
    """RFM written again in pandas, straight from the definitions in docs/analytics.md."""
    counted = orders[
        (orders.status == "completed") & (orders.order_date.dt.date <= as_of)
    ]
    grouped = counted.groupby("customer")
    out = pd.DataFrame(
        {
            "recency_days": grouped.order_date.max().map(
                lambda ts: (as_of - ts.date()).days
            ),
            "frequency": grouped.size(),
            "monetary": grouped.amount_reporting.sum().round(2),
        }
    )
    n = len(out)
    for column, score, worse_is_larger in [
        ("recency_days", "r_score", True),
        ("frequency", "f_score", False),
        ("monetary", "m_score", False),
    ]:
        values = out[column].to_numpy()
        # customers as good as or worse than each one
        if worse_is_larger:
            c = np.array([(values >= v).sum() for v in values])
        else:
            c = np.array([(values <= v).sum() for v in values])
        out[score] = -((-5 * c) // n)  # ceil(5c / n) in whole numbers
    lookup = table.set_index(["r_score", "f_score", "m_score"]).segment
    out["segment"] = [
        lookup[(r, f, m)]
        for r, f, m in zip(out.r_score, out.f_score, out.m_score, strict=True)
    ]
    return out.sort_index()


def test_sql_matches_an_independent_pandas_recomputation_on_random_orders():
    rng = np.random.default_rng(20240630)
    n_orders, n_customers = 4000, 600
    customers = [f"c{i:04d}" for i in range(n_customers)]
    # skewed order counts (many one-time buyers) and whole-pound prices: plenty of ties
    who = rng.choice(
        customers, size=n_orders, p=np.sort(rng.dirichlet(np.ones(n_customers) * 0.3))
    )
    start = datetime(2022, 1, 1)
    when = [
        start + timedelta(days=int(d), hours=int(h))
        for d, h in zip(
            rng.integers(0, 1000, n_orders), rng.integers(0, 24, n_orders), strict=True
        )
    ]
    currency = rng.choice(["GBP", "EUR", "USD"], size=n_orders)
    rate = {"GBP": 1.0, "EUR": 0.86, "USD": 0.79}
    amount = np.where(
        rng.random(n_orders) < 0.05, 0.0, rng.integers(1, 300, n_orders).astype(float)
    )
    status = rng.choice(
        ["completed", "cancelled", "returned"], size=n_orders, p=[0.8, 0.1, 0.1]
    )
    orders = pd.DataFrame(
        {
            "customer": who,
            "order_date": pd.to_datetime(when),
            "amount": amount,
            "currency": currency,
            "amount_reporting": amount * np.array([rate[c] for c in currency]),
            "status": status,
        }
    )
    as_of = date(2024, 3, 31)  # some orders fall after it
    con = make_warehouse(
        [
            {
                "customer": r.customer,
                "date": r.order_date.to_pydatetime(),
                "amount": r.amount,
                "currency": r.currency,
                "amount_reporting": r.amount_reporting,
                "status": r.status,
            }
            for r in orders.itertuples()
        ],
        customers=customers,
    )
    got = rfm(con, as_of)
    want = pandas_rfm(orders, as_of, segment_table())
    assert len(got) > 300
    assert list(got.index) == list(want.index)
    for column in [
        "recency_days",
        "frequency",
        "r_score",
        "f_score",
        "m_score",
        "segment",
    ]:
        assert got[column].tolist() == want[column].tolist(), column
    assert np.allclose(got.monetary, want.monetary, atol=0.005)
    # ties genuinely occurred, and scores spread over the whole scale
    assert want.frequency.duplicated().any() and want.monetary.duplicated().any()
    assert set(got.r_score) == set(got.m_score) == {1, 2, 3, 4, 5}
    assert (got.as_of_date.dt.date == as_of).all()


def test_monetary_is_an_exact_decimal_sum_rounded_to_the_cent():
    """1.005 + 0.1 + 0.2 added up as doubles is 1.30499…; the exact sum, 1.305, rounds to 1.31."""
    orders = [
        {"customer": "a", "date": days_ago(d), "amount": a, "currency": "GBP", "amount_reporting": a}
        for d, a in ((1, 1.005), (2, 0.1), (3, 0.2))
    ]
    assert rfm(make_warehouse(orders)).loc["a", "monetary"] == 1.31


# --- issue 19, item 1: no built-in rates; monetary only in one currency ---------------------


def test_one_currency_without_a_reporting_currency_scores_in_that_currency():
    """A US shop with no currency settings: monetary is the USD sum, named USD."""
    orders = [
        {"customer": "a", "date": days_ago(3), "amount": 100.0, "currency": "USD", "amount_reporting": None, "reporting_currency": None, "fx_rate": None},
        {"customer": "b", "date": days_ago(5), "amount": 40.0, "currency": "USD", "amount_reporting": None, "reporting_currency": None, "fx_rate": None},
    ]  # fmt: skip
    out = rfm(make_warehouse(orders))
    assert out.loc["a", "monetary"] == 100.0 and out.loc["a", "monetary_currency"] == "USD"
    assert out.loc["a", "m_score"] > out.loc["b", "m_score"]


def test_several_currencies_without_a_reporting_currency_leave_monetary_empty():
    """GBP is never added to EUR: monetary and m_score are NULL for everyone, and the segment
    comes from recency and frequency alone (the map looked up with m = f)."""
    own = {"amount_reporting": None, "reporting_currency": None, "fx_rate": None}
    orders = [
        {"customer": "a", "date": days_ago(2), "amount": 100.0, "currency": "GBP", **own},
        {"customer": "a", "date": days_ago(4), "amount": 100.0, "currency": "EUR", **own},
        {"customer": "b", "date": days_ago(300), "amount": 5.0, "currency": "GBP", **own},
    ]
    out = rfm(make_warehouse(orders))
    assert out["monetary"].isna().all() and out["m_score"].isna().all() and out["monetary_currency"].isna().all()
    segments = segment_table().set_index(["r_score", "f_score", "m_score"])["segment"]
    for c in ("a", "b"):
        r, f = int(out.loc[c, "r_score"]), int(out.loc[c, "f_score"])
        assert out.loc[c, "segment"] == segments[(r, f, f)]


def test_an_amount_beyond_the_decimal_range_crashes_the_model_so_the_gate_bounds_it():
    """Issue 19, item 7: one order of 1e308 failed the whole night here. The quality gate now
    quarantines amounts above quality.max_amount (at most 1e15), so this never reaches rfm."""
    with pytest.raises(duckdb.Error, match="(?i)overflow|out of range|could not convert|conversion"):
        rfm(make_warehouse([{"customer": "a", "date": days_ago(1), "amount": 1e308}]))
    assert rfm(make_warehouse([{"customer": "a", "date": days_ago(1), "amount": 1e15}])).loc["a", "monetary"] == 1e15
