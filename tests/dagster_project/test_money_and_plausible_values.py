"""Tier 2, issue 19 items 1 and 7 on a small US shop, through the real nightly job:

- no currency settings: USD amounts stay USD (they used to be multiplied by a built-in 0.79);
- `currency: {reporting: USD}`: still unchanged;
- reporting GBP with a dated rates file: each order converted at its date's rate, an order in a
  currency without a rate quarantined with the reason;
- an order of 1e308 and orders / events dated 1900-01-01 are quarantined under their own rules
  instead of failing the night in `rfm` or setting first_order_date; rows are conserved.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from tests_support import run_scv

from sources.config import load_config

pytestmark = pytest.mark.slow

AS_OF = "2026-11-20"
PEOPLE = 60

CONFIG = """
warehouse: wh/warehouse.duckdb
exports: exports
data_dir: data
sources:
  customers:
    kind: person
    path: customers.csv
    id: id
    columns: {first_name: first, last_name: last, email: email}
  orders:
    kind: order
    path: orders.csv
    id: order_id
    person: {source: customers, key: customer}
    columns: {order_date: created, amount: total, currency: currency}
  events:
    kind: event
    path: events.csv
    id: event_id
    person: {source: customers, key: customer}
    columns: {event_time: ts, event_type: type}
"""


def write_shop(root: Path) -> Path:
    pd.DataFrame(
        {
            "id": [f"C{i}" for i in range(PEOPLE)],
            "first": [f"First{i}" for i in range(PEOPLE)],
            "last": [f"Last{i % 7}" for i in range(PEOPLE)],
            "email": [f"c{i}@shop.test" for i in range(PEOPLE)],
        }
    ).to_csv(root / "customers.csv", index=False)
    orders = [
        {"order_id": f"O{i}", "customer": f"C{i % PEOPLE}", "created": f"2026-0{1 + i % 9}-15", "total": f"{20 + i}.00", "currency": "USD"}
        for i in range(120)
    ]  # fmt: skip
    orders += [
        {"order_id": "HUGE", "customer": "C1", "created": "2026-05-01", "total": "1e308", "currency": "USD"},
        {"order_id": "OLD", "customer": "C2", "created": "1900-01-01", "total": "15.00", "currency": "USD"},
    ]
    pd.DataFrame(orders).to_csv(root / "orders.csv", index=False)
    events = [{"event_id": f"E{i}", "customer": f"C{i % PEOPLE}", "ts": "2026-03-01T10:00:00", "type": "page_view"} for i in range(80)]
    events.append({"event_id": "EOLD", "customer": "C3", "ts": "1900-01-01T00:00:00", "type": "page_view"})
    pd.DataFrame(events).to_csv(root / "events.csv", index=False)
    config = root / "scv.yml"
    config.write_text(CONFIG, encoding="utf-8")
    return config


def query(config: Path, sql: str, params=None) -> list[tuple]:
    con = duckdb.connect(str(load_config(config).warehouse), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def assert_rows_conserved(config: Path) -> None:
    runs = query(
        config,
        "SELECT source, rows_in, rows_accepted, rows_quarantined FROM scv.source_run "
        "QUALIFY run_at = max(run_at) OVER ()",
    )
    assert {r[0] for r in runs} == {"customers", "orders", "events"}
    for source, n_in, n_ok, n_q in runs:
        assert n_in == n_ok + n_q, source
        assert query(config, "SELECT count(*) FROM scv.quarantine WHERE source = ?", [source])[0][0] == n_q


def test_a_us_shop_keeps_its_dollars_and_implausible_rows_are_quarantined(tmp_path):
    config = write_shop(tmp_path)
    assert run_scv("run", "--config", config, "--as-of", AS_OF) == 0
    assert_rows_conserved(config)
    rules = dict(query(config, "SELECT source_record_id, rule FROM scv.quarantine"))
    assert rules == {"HUGE": "amount_too_large", "OLD": "date_too_early", "EOLD": "date_too_early"}
    # no rate nobody asked for: every amount as written, in USD
    assert query(
        config,
        "SELECT count(*), count(*) FILTER (amount = source_amount AND currency = 'USD' AND source_currency = 'USD') "
        "FROM scv.touchpoint WHERE kind = 'order'",
    ) == [(120, 120)]
    c0 = query(
        config,
        "SELECT p.total_spend, p.spend_currency, r.monetary, r.monetary_currency FROM scv.customer_profile p "
        "JOIN scv.customer_xref x USING (customer_id) JOIN scv.rfm r USING (customer_id) "
        "WHERE x.source_record_id = 'C0'",
    )
    assert c0 == [(20.0 + 80.0, "USD", 100.0, "USD")]  # orders O0 and O60
    # the 1900 order set nothing: C2's first order is its real one
    first = query(
        config,
        "SELECT p.first_order_date FROM scv.customer_profile p JOIN scv.customer_xref x USING (customer_id) "
        "WHERE x.source_record_id = 'C2'",
    )
    assert str(first[0][0]) == "2026-03-15"
    manifest = json.loads((load_config(config).exports / "manifest.json").read_text())
    assert manifest["money"]["rfm.monetary"] == {"currency_column": "monetary_currency", "currencies": ["USD"]}
    assert manifest["money"]["touchpoint.amount"]["currencies"] == ["USD"]

    # Reporting in the shop's own currency changes no amount.
    config.write_text(CONFIG + "currency: {reporting: USD}\n", encoding="utf-8")
    assert run_scv("run", "--config", config, "--as-of", AS_OF) == 0
    assert query(
        config,
        "SELECT count(*) FILTER (amount = source_amount AND currency = 'USD') FROM scv.touchpoint WHERE kind = 'order'",
    ) == [(120,)]

    # Reporting in GBP from a dated rates file; a euro order has no rate and is quarantined.
    (tmp_path / "fx.csv").write_text(
        "date,currency,rate\n2026-01-01,USD,0.80\n2026-05-01,USD,0.75\n", encoding="utf-8"
    )
    with (tmp_path / "orders.csv").open("a", encoding="utf-8") as f:
        f.write("EURO,C4,2026-06-01,30.00,EUR\n")
    config.write_text(CONFIG + "currency: {reporting: GBP, rates_file: fx.csv}\n", encoding="utf-8")
    assert run_scv("run", "--config", config, "--as-of", AS_OF) == 0
    assert_rows_conserved(config)
    euro = query(config, "SELECT rule, detail FROM scv.quarantine WHERE source_record_id = 'EURO'")
    assert euro == [("unknown_currency", "currency 'EUR' has no rate into GBP (rates for: GBP, USD)")]
    converted = dict(
        query(config, "SELECT source_record_id, amount FROM scv.touchpoint WHERE source_record_id IN ('O0', 'O4')")
    )
    assert converted == {"O0": pytest.approx(20.0 * 0.80), "O4": pytest.approx(24.0 * 0.75)}  # January, May
    assert query(config, "SELECT DISTINCT currency FROM scv.touchpoint WHERE kind = 'order'") == [("GBP",)]
    assert query(config, "SELECT DISTINCT monetary_currency FROM scv.rfm") == [("GBP",)]
