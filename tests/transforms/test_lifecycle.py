"""Lifecycle: stages and stage_since from order history (checked against a day-by-day reference),
and the history kept across nights: transitions, idempotent reruns, backfills."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import cache
from itertools import pairwise

import duckdb
import numpy as np
import pandas as pd
import pytest

from sources.config import LifecycleConfig
from transforms.lifecycle import STAGES, LifecycleConfigError, lifecycle_params
from warehouse.models import STAGE_TABLES, run_model, stage_create_statement
from warehouse.schema import TABLES, create_statement

DAY = timedelta(days=1)
DEFAULTS = lifecycle_params()


# --- thresholds ------------------------------------------------------------------------------


def test_params_come_from_config_with_the_documented_defaults():
    assert DEFAULTS == {
        "new_days": 30,
        "active_days": 90,
        "at_risk_days": 180,
        "lost_days": 365,
    }
    assert lifecycle_params(LifecycleConfig(), as_of=date(2024, 1, 1)) == {
        **DEFAULTS,
        "as_of": date(2024, 1, 1),
    }
    assert lifecycle_params({"active_days": 60})["active_days"] == 60


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            {"new_days": 100},
            r"lifecycle.new_days \(100\) must not exceed lifecycle.active_days \(90\)",
        ),
        (
            {"at_risk_days": 400},
            r"lifecycle.at_risk_days \(400\) must not exceed lifecycle.lost_days",
        ),
        (
            {"lost_days": -1},
            r"lifecycle.lost_days: must be a whole number of days >= 0",
        ),
        ({"active_days": 9.5}, r"lifecycle.active_days: must be a whole number"),
    ],
)
def test_incoherent_thresholds_are_refused_naming_the_field(config, message):
    with pytest.raises(LifecycleConfigError, match=message):
        lifecycle_params(config)


# --- a staging database ----------------------------------------------------------------------


def make_warehouse(orders: dict[str, list], first_seen: dict[str, date] | None = None):
    """In-memory staging database: one person record per customer; `orders` maps a customer to
    its orders (a date, or (date, status)). prev.* start empty, as on the first night."""
    con = duckdb.connect()
    for schema in ("stage", "scv", "prev"):
        con.execute(f"CREATE SCHEMA {schema}")
    con.execute(stage_create_statement("orders"))
    for name in ("customer", "customer_xref"):
        con.execute(create_statement(TABLES[name]))
    for name in ("lifecycle", "lifecycle_history"):
        con.execute(create_statement(TABLES[name], schema="prev"))
    first_seen = first_seen or {}
    ids = sorted(set(orders) | set(first_seen))
    customers = pd.DataFrame(
        {
            "customer_id": ids,
            "first_seen_at": [
                datetime.combine(first_seen[c], datetime.min.time())
                if c in first_seen
                else None
                for c in ids
            ],
        }
    )
    con.register("customers_frame", customers)
    con.execute(
        "INSERT INTO scv.customer (customer_id, first_seen_at) "
        "SELECT customer_id, CAST(first_seen_at AS TIMESTAMP) FROM customers_frame"
    )
    con.execute(
        "INSERT INTO scv.customer_xref (source, source_record_id, customer_id) "
        "SELECT 'crm', 'p-' || customer_id, customer_id FROM customers_frame"
    )
    con.unregister("customers_frame")
    add_orders(con, orders)
    return con


def add_orders(con, orders: dict[str, list]) -> None:
    start = con.execute("SELECT count(*) FROM stage.orders").fetchall()[0][0]
    rows = []
    for customer, items in orders.items():
        for item in items:
            day, status = item if isinstance(item, tuple) else (item, "completed")
            n = start + len(rows) + 1
            when = datetime.combine(day, datetime.min.time()) + timedelta(hours=n % 24)
            rows.append(
                [
                    "shop",
                    f"o{n}",
                    n,
                    "crm",
                    f"p-{customer}",
                    when,
                    10.0,
                    "GBP",
                    10.0,
                    "GBP",
                    1.0,
                    status,
                    "online",
                    "{}",
                ]
            )
    if rows:
        con.register(
            "orders_frame", pd.DataFrame(rows, columns=list(STAGE_TABLES["orders"]))
        )
        con.execute("INSERT INTO stage.orders SELECT * FROM orders_frame")
        con.unregister("orders_frame")


def night(con, as_of: date, **thresholds) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One night as the pipeline runs it: both models into scv.*, then publish (scv -> prev)."""
    params = lifecycle_params({**DEFAULTS, **thresholds}, as_of=as_of)
    run_model(con, "lifecycle", params, into="scv.lifecycle")
    run_model(con, "lifecycle_history", params, into="scv.lifecycle_history")
    con.execute("CREATE OR REPLACE TABLE prev.lifecycle AS SELECT * FROM scv.lifecycle")
    con.execute(
        "CREATE OR REPLACE TABLE prev.lifecycle_history AS SELECT * FROM scv.lifecycle_history"
    )
    return stages(con), history(con)


def stages(con) -> pd.DataFrame:
    frame = con.execute("SELECT * FROM scv.lifecycle ORDER BY customer_id").df()
    frame["stage_since"] = frame.stage_since.dt.date
    frame["as_of_date"] = frame.as_of_date.dt.date
    return frame.set_index("customer_id")


def history(con, customer: str | None = None) -> list[tuple]:
    rows = con.execute(
        "SELECT customer_id, as_of_date, from_stage, to_stage FROM scv.lifecycle_history "
        "ORDER BY customer_id, as_of_date"
    ).fetchall()
    return [
        r[1:] if customer else r for r in rows if customer is None or r[0] == customer
    ]


def test_output_columns_and_types_are_the_published_tables():
    con = make_warehouse({"a": [date(2024, 1, 1)]})
    params = lifecycle_params(as_of=date(2024, 2, 1))
    run_model(con, "lifecycle", params, into="scv.lifecycle")
    for name in ("lifecycle", "lifecycle_history"):
        rel = run_model(con, name, params)
        assert rel.columns == TABLES[name].column_names
        assert [str(t) for t in rel.types] == [c.type for c in TABLES[name].columns]


# --- one customer through every stage, night by night ----------------------------------------

JOURNEY = [date(2023, 1, 1), date(2023, 1, 20), date(2024, 3, 1), date(2024, 3, 20)]
# as-of date -> (stage, stage_since) with the default thresholds
EXPECTED_NIGHTS = [
    (date(2023, 1, 5), "new", date(2023, 1, 1)),
    (date(2023, 1, 31), "new", date(2023, 1, 1)),  # first order 30 days ago: still new
    (date(2023, 2, 15), "active", date(2023, 2, 1)),  # new ended after 30 days
    (
        date(2023, 4, 20),
        "active",
        date(2023, 2, 1),
    ),  # last order 90 days ago: still active
    (date(2023, 5, 1), "at_risk", date(2023, 4, 21)),  # 91 days after the last order
    (
        date(2024, 1, 20),
        "at_risk",
        date(2023, 4, 21),
    ),  # 365 days: a repeat buyer is not lost yet
    (date(2024, 2, 1), "lost", date(2024, 1, 21)),
    (date(2024, 3, 5), "reactivated", date(2024, 3, 1)),  # back after being lost
    (
        date(2024, 3, 25),
        "active",
        date(2024, 3, 20),
    ),  # the next order makes them active
    (date(2024, 7, 1), "at_risk", date(2024, 6, 19)),
]
EXPECTED_HISTORY = [
    (date(2023, 1, 5), None, "new"),
    (date(2023, 2, 15), "new", "active"),
    (date(2023, 5, 1), "active", "at_risk"),
    (date(2024, 2, 1), "at_risk", "lost"),
    (date(2024, 3, 5), "lost", "reactivated"),
    (date(2024, 3, 25), "reactivated", "active"),
    (date(2024, 7, 1), "active", "at_risk"),
]


def run_journey():
    # every order is loaded up front: orders after a night's as-of date must not count that night
    con = make_warehouse(
        {"a": JOURNEY + [(date(2023, 3, 1), "cancelled")], "p": []},
        first_seen={"p": date(2022, 12, 1)},
    )
    seen = []
    for as_of, _, _ in EXPECTED_NIGHTS:
        lifecycle, _ = night(con, as_of)
        seen.append(
            (as_of, lifecycle.loc["a", "stage"], lifecycle.loc["a", "stage_since"])
        )
        assert lifecycle.loc["p", "stage"] == "prospect"
        assert lifecycle.loc["p", "stage_since"] == date(2022, 12, 1)
        assert (lifecycle.as_of_date == as_of).all()
    return con, seen


def test_a_customer_moves_new_active_at_risk_lost_reactivated_active():
    con, seen = run_journey()
    assert seen == EXPECTED_NIGHTS
    assert history(con, "a") == EXPECTED_HISTORY
    assert history(con, "p") == [(date(2023, 1, 5), None, "prospect")]


def test_rerunning_a_night_gives_the_same_tables():
    con, _ = run_journey()
    before_lifecycle, before_history = stages(con), history(con)
    for _ in range(2):
        after_lifecycle, after_history = night(con, date(2024, 7, 1))
        pd.testing.assert_frame_equal(after_lifecycle, before_lifecycle)
        assert after_history == before_history


def test_a_rerun_after_new_data_replaces_that_nights_rows():
    con, _ = run_journey()
    add_orders(
        con, {"a": [date(2024, 6, 30)]}
    )  # a late order: no longer at risk on 2024-07-01
    lifecycle, _ = night(con, date(2024, 7, 1))
    # at risk from 2024-06-19 (no night saw it), active again with the order of 2024-06-30
    assert (lifecycle.loc["a", "stage"], lifecycle.loc["a", "stage_since"]) == (
        "active",
        date(2024, 6, 30),
    )
    assert history(con, "a") == EXPECTED_HISTORY[:-1]


def assert_unbroken(rows: list[tuple]) -> None:
    """Each change starts from the stage the previous one ended in."""
    assert rows[0][1] is None
    for earlier, later in pairwise(rows):
        assert later[1] == earlier[2] and later[1] != later[2] and later[0] > earlier[0]


def test_a_backfill_of_an_unchanged_night_changes_nothing():
    con, _ = run_journey()
    night(con, date(2023, 5, 1))
    assert history(con, "a") == EXPECTED_HISTORY
    night(con, date(2024, 7, 2))  # the next ordinary night after the backfill
    assert history(con, "a") == EXPECTED_HISTORY


def test_a_backfill_with_corrected_data_keeps_the_history_a_chain():
    con, _ = run_journey()
    add_orders(
        con, {"a": [date(2023, 4, 15)]}
    )  # arrived late: active, not at risk, on 2023-05-01
    lifecycle, _ = night(con, date(2023, 5, 1))
    assert lifecycle.loc["a", "stage"] == "active"
    rows = history(con, "a")
    assert_unbroken(rows)
    assert rows == [
        (date(2023, 1, 5), None, "new"),
        (date(2023, 2, 15), "new", "active"),
        # the 2023-05-01 change is gone; the next observed change now starts from active
        (date(2024, 2, 1), "active", "lost"),
        *EXPECTED_HISTORY[4:],
    ]
    lifecycle, _ = night(con, date(2024, 7, 2))
    assert lifecycle.loc["a", "stage"] == "at_risk"
    assert history(con, "a") == rows  # still at risk: nothing new


def test_a_backfill_before_the_first_night_records_the_earlier_stage():
    con, _ = run_journey()
    night(con, date(2022, 12, 25))
    rows = history(con, "a")
    assert rows[:2] == [
        (date(2022, 12, 25), None, "prospect"),
        (date(2023, 1, 5), "prospect", "new"),
    ]
    assert rows[2:] == EXPECTED_HISTORY[1:]
    assert_unbroken(rows)


def test_a_backfill_keeps_the_last_published_stage_as_an_observation():
    # On 2024-07-01 the customer was at risk with no change recorded since 2024-03-25 active.
    # Backfilling 2024-05-01 (the stage then is active too) must not lose the at_risk state of the
    # published night, nor invent one.
    con, _ = run_journey()
    night(con, date(2024, 5, 1))
    assert history(con, "a") == EXPECTED_HISTORY


# --- thresholds at work ----------------------------------------------------------------------


def test_prospects_have_no_completed_order_on_or_before_the_as_of_date():
    as_of = date(2024, 6, 30)
    con = make_warehouse(
        {
            "none": [],
            "cancelled": [
                (date(2024, 6, 1), "cancelled"),
                (date(2024, 6, 2), "returned"),
            ],
            "future": [as_of + DAY],
            "buyer": [as_of],
        },
        first_seen={"none": date(2024, 1, 1), "future": date(2025, 1, 1)},
    )
    lifecycle, rows = night(con, as_of)
    assert lifecycle.stage.to_dict() == {
        "buyer": "new",
        "cancelled": "prospect",
        "future": "prospect",
        "none": "prospect",
    }
    assert (
        lifecycle.stage_since.to_dict()
        == {
            "buyer": as_of,
            "cancelled": as_of,  # first seen unknown: the night it was first seen as a prospect
            "future": as_of,  # first seen after the as-of date
            "none": date(2024, 1, 1),
        }
    )
    assert sorted(r[3] for r in rows) == ["new", "prospect", "prospect", "prospect"]
    # a prospect keeps its stage_since on later nights
    lifecycle, _ = night(con, as_of + 10 * DAY)
    assert lifecycle.loc["cancelled", "stage_since"] == as_of


def test_one_day_buyers_are_lost_after_at_risk_days_repeat_buyers_after_lost_days():
    as_of = date(2024, 12, 31)
    last = as_of - 200 * DAY
    con = make_warehouse(
        {"once": [last], "twice": [last - 10 * DAY, last], "same_day": [last, last]}
    )
    lifecycle, _ = night(con, as_of)
    assert lifecycle.stage.to_dict() == {
        "once": "lost",
        "twice": "at_risk",
        "same_day": "lost",
    }
    assert lifecycle.loc["once", "stage_since"] == last + 181 * DAY
    assert lifecycle.loc["twice", "stage_since"] == last + 91 * DAY


@pytest.mark.parametrize(
    ("gap_days", "stage"),
    [
        (366, "active"),
        (367, "reactivated"),
    ],  # lost only once 365 whole days have passed
)
def test_reactivated_means_lost_on_the_eve_of_the_comeback(gap_days, stage):
    first = date(2022, 1, 1)
    back = first + 5 * DAY + gap_days * DAY
    con = make_warehouse({"a": [first, first + 5 * DAY, back]})
    lifecycle, _ = night(con, back + 2 * DAY)
    assert lifecycle.loc["a", "stage"] == stage


def test_thresholds_are_parameters():
    as_of = date(2024, 6, 30)
    con = make_warehouse({"a": [as_of - 20 * DAY, as_of - 15 * DAY]})
    assert night(con, as_of)[0].loc["a", "stage"] == "new"
    assert night(con, as_of, new_days=10)[0].loc["a", "stage"] == "active"
    assert (
        night(con, as_of, new_days=5, active_days=10)[0].loc["a", "stage"] == "at_risk"
    )
    assert (
        night(con, as_of, new_days=5, active_days=10, at_risk_days=12, lost_days=14)[
            0
        ].loc["a", "stage"]
        == "lost"
    )


# --- an independent day-by-day reference on random histories ---------------------------------


def reference(order_days: tuple[date, ...], p: dict):
    """Stage on a date straight from the definitions, and stage_since by walking back day by day
    until the stage differs."""

    @cache
    def stage(t: date) -> str:
        past = [d for d in order_days if d <= t]
        if not past:
            return "prospect"
        d = (t - past[-1]).days
        if d > (p["at_risk_days"] if len(past) == 1 else p["lost_days"]):
            return "lost"
        if d > p["active_days"]:
            return "at_risk"
        if (t - past[0]).days <= p["new_days"]:
            return "new"
        if len(past) > 1 and stage(past[-1] - DAY) == "lost":
            return "reactivated"
        return "active"

    def since(t: date) -> date:
        s, u = stage(t), t
        while stage(u - DAY) == s and u > order_days[0]:
            u -= DAY
        return u

    return stage, since


@pytest.mark.parametrize(
    ("thresholds", "stages_seen"),
    [
        (DEFAULTS, set(STAGES)),
        (
            {"new_days": 3, "active_days": 10, "at_risk_days": 20, "lost_days": 40},
            set(STAGES),
        ),
        # equal thresholds leave no room for at_risk
        (
            {"new_days": 10, "active_days": 10, "at_risk_days": 10, "lost_days": 10},
            set(STAGES) - {"at_risk"},
        ),
    ],
    ids=["defaults", "short", "equal"],
)
def test_stages_match_a_day_by_day_reference_on_random_histories(
    thresholds, stages_seen
):
    rng = np.random.default_rng(7)
    scale = thresholds["lost_days"] / 365
    histories = {}
    for i in range(40):
        day = date(2021, 1, 1) + int(rng.integers(0, 100)) * DAY
        days = []
        for _ in range(int(rng.integers(1, 7))):
            days.append(day)
            # short, medium and long gaps so every transition happens
            gap = rng.choice(
                [rng.integers(0, 40), rng.integers(40, 250), rng.integers(250, 500)]
            )
            day += max(int(gap * scale), 0) * DAY
        histories[f"c{i:02d}"] = sorted(set(days))
    con = make_warehouse(histories)
    references = {
        c: reference(tuple(days), thresholds) for c, days in histories.items()
    }
    seen_stages = set()
    # dates jitter, so some nights come before the previous one: backfills
    for k in range(12):
        as_of = date(2021, 2, 1) + int(k * 120 * scale + rng.integers(0, 30)) * DAY
        lifecycle = night(con, as_of, **thresholds)[0]
        for customer, (stage, since) in references.items():
            expected = stage(as_of)
            seen_stages.add(expected)
            assert lifecycle.loc[customer, "stage"] == expected, (customer, as_of)
            if expected != "prospect":
                assert lifecycle.loc[customer, "stage_since"] == since(as_of), (
                    customer,
                    as_of,
                    expected,
                )
        assert_history_consistent(con, as_of)
    assert seen_stages == stages_seen


def assert_history_consistent(con, as_of: date) -> None:
    """Per customer: an unbroken chain that says the customer is, on `as_of`, in the stage just
    computed (also after a backfill, when later changes follow)."""
    rows = history(con)
    current = stages(con).stage.to_dict()
    by_customer: dict[str, list] = {}
    for customer, *rest in rows:
        by_customer.setdefault(customer, []).append(tuple(rest))
    assert set(by_customer) == set(current)
    for customer, chain in by_customer.items():
        assert_unbroken(chain)
        assert [to for day, _, to in chain if day <= as_of][-1] == current[customer]
