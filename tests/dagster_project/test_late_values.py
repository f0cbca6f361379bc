"""Tier 2, issue 19 item 6: a rare value on the last row of a file cannot fail the night.

Each source kind (person, order, event, consent) gets a file whose only unusual value sits on
its last row, after the rows DuckDB would have typed the column from. The night runs, every row
is accepted or quarantined, and the late values arrive typed like the others.
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
PEOPLE = 2000
ACTIVITY = 1500


def write_project(root: Path) -> Path:
    """Four sources of 2,000 / 1,500 rows: JSON lines for people and events, CSV for orders and
    consents. Each file's unusual value is on its last row only."""
    people = [
        {"id": f"P{i:05d}", "first": f"Name{i % 97}", "last": f"Surname{i % 89}",
         "email": f"person{i}@mailbox.org", "dob": f"19{50 + i % 40}-0{1 + i % 9}-1{i % 9}"}
        for i in range(PEOPLE)
    ]  # fmt: skip
    people[-1]["dob"] = "1900-01-01"  # the only placeholder birth date: field_issues typed late
    people[-1]["phone"] = "+44 20 7946 0958"  # the only phone: a column absent from every other row
    (root / "people.jsonl").write_text("".join(json.dumps(p) + "\n" for p in people), encoding="utf-8")

    orders = pd.DataFrame(
        {
            "order_id": [f"O{i}" for i in range(ACTIVITY)],
            "customer": [f"P{i % PEOPLE:05d}" for i in range(ACTIVITY)],
            "created": "2026-01-05",
            "total": [str(10 + i % 50) for i in range(ACTIVITY)],
            "currency": "GBP",
            "channel": "",
            "coupon": "",
        }
    )
    last = ACTIVITY - 1
    orders.loc[last, ["total", "channel", "coupon"]] = ["12.345", "store", "WINTER"]
    orders.to_csv(root / "orders.csv", index=False)

    events = [
        {"event_id": f"E{i}", "customer": f"P{i % PEOPLE:05d}", "ts": "2026-02-01T10:00:00", "type": "page_view"}
        for i in range(ACTIVITY)
    ]
    events[-1].update(session="S1", utm={"source": "mail", "tags": [1, 2]}, ts="2026-02-01T10:00:00+02:00")
    (root / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")

    consents = pd.DataFrame(
        {
            "consent_id": [f"K{i}" for i in range(ACTIVITY)],
            "customer": [f"P{i % PEOPLE:05d}" for i in range(ACTIVITY)],
            "purpose": "email_marketing",
            "granted": "yes",
            "at": "2026-03-01 09:00",
        }
    )
    consents.loc[ACTIVITY - 1, ["granted", "at"]] = ["no", "2026-03-01T09:00:00-05:00"]
    consents.to_csv(root / "consents.csv", index=False)

    config = root / "scv.yml"
    config.write_text(
        """
warehouse: wh/warehouse.duckdb
exports: exports
data_dir: data
sources:
  people:
    kind: person
    path: people.jsonl
    id: id
    columns: {first_name: first, last_name: last, email: email, date_of_birth: dob, phone: phone}
  orders:
    kind: order
    path: orders.csv
    id: order_id
    person: {source: people, key: customer}
    columns: {order_date: created, amount: total, currency: currency, channel: channel}
  events:
    kind: event
    path: events.jsonl
    id: event_id
    person: {source: people, key: customer}
    columns: {event_time: ts, event_type: type, session_id: session}
  consents:
    kind: consent
    path: consents.csv
    id: consent_id
    person: {source: people, key: customer}
    columns: {purpose: purpose, granted: granted, recorded_at: at}
""",
        encoding="utf-8",
    )
    return config


def test_each_kind_with_its_only_unusual_value_on_the_last_row_runs_the_night(tmp_path):
    config = write_project(tmp_path)
    assert run_scv("run", "--config", config, "--as-of", AS_OF) == 0
    cfg = load_config(config)
    con = duckdb.connect(str(cfg.warehouse), read_only=True)
    try:
        runs = con.execute("SELECT source, rows_in, rows_accepted, rows_quarantined FROM scv.source_run").fetchall()
        assert {r[0]: r[1:] for r in runs} == {
            "people": (PEOPLE, PEOPLE, 0),
            "orders": (ACTIVITY, ACTIVITY, 0),
            "events": (ACTIVITY, ACTIVITY, 0),
            "consents": (ACTIVITY, ACTIVITY, 0),
        }
        last_person = con.execute(
            "SELECT field_issues, phone FROM scv.person_record WHERE source_record_id = ?", [f"P{PEOPLE - 1:05d}"]
        ).fetchall()
        assert last_person == [(["date_of_birth:placeholder"], "+44 20 7946 0958")]
        assert con.execute(
            "SELECT amount, channel, json_extract_string(attributes, '$.coupon') FROM scv.touchpoint "
            "WHERE touchpoint_id = ?",
            [f"orders:O{ACTIVITY - 1}"],
        ).fetchall() == [(12.345, "store", "WINTER")]
        event = con.execute(
            "SELECT session_id, occurred_at, json_extract_string(attributes, '$.utm') FROM scv.touchpoint "
            "WHERE touchpoint_id = ?",
            [f"events:E{ACTIVITY - 1}"],
        ).fetchall()
        assert event[0][0] == "S1" and str(event[0][1]) == "2026-02-01 08:00:00"  # +02:00 to UTC
        assert json.loads(event[0][2]) == {"source": "mail", "tags": [1, 2]}  # nested: kept as JSON text
        assert con.execute(
            "SELECT granted FROM scv.consent WHERE source_record_id = ?", [f"K{ACTIVITY - 1}"]
        ).fetchall() == [(False,)]
    finally:
        con.close()

    # The next night changes the person file: the reused rows and the new ones are staged
    # together with the declared types (the path that failed in `write_reusing`).
    with (tmp_path / "people.jsonl").open("a", encoding="utf-8") as f:
        f.write(json.dumps({"id": "P99999", "first": "Late", "last": "Comer", "dob": "1901-01-01"}) + "\n")
    assert run_scv("run", "--config", config, "--as-of", "2026-11-21") == 0
    con = duckdb.connect(str(cfg.warehouse), read_only=True)
    try:
        assert con.execute(
            "SELECT rows_in, rows_accepted FROM scv.source_run WHERE source = 'people' ORDER BY run_at DESC LIMIT 1"
        ).fetchall() == [(PEOPLE + 1, PEOPLE + 1)]
    finally:
        con.close()
