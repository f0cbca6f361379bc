"""A tiny warehouse for the audience tests: eight customers chosen so that each filter, each
consent outcome and each currency case has someone on both sides of it."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import duckdb

from warehouse.schema import TABLES, create_statement

AS_OF = date(2026, 11, 20)

#: customer_id: (stage, segment or None (no RFM row), recency_days, channels,
#:               total_spend, spend_currency, email, phone, first_name)
PEOPLE = {
    "A": ("at_risk", "At Risk", 120, ["online"], 150.0, "GBP", "ann@example.com", "+447700900001", "Ann"),
    "B": ("at_risk", "At Risk", 130, ["online"], 300.0, "GBP", "bob@example.com", "+447700900002", "Bob"),
    "C": ("at_risk", "Can't Lose Them", 200, ["store"], 500.0, "EUR", "cat@example.com", None, "=Cat"),
    "D": ("active", "Champions", 5, ["online", "email"], 50.0, "GBP", None, "+447700900004", "Dan"),
    "E": ("prospect", None, None, ["web"], 0.0, None, "eve@example.com", None, "Eve"),
    "F": ("at_risk", "At Risk", 140, ["online"], 120.0, "GBP", "fay@example.com", None, "Fay"),
    "G": ("lost", "Lost", 400, ["store"], None, None, None, None, "Gus"),
    "H": ("at_risk", "At Risk", 150, ["store"], 200.0, "GBP", "not an email", "07700 900008", "Hal"),
}

#: (customer_id, purpose, granted, recorded_at): B granted then withdrew (the latest wins); F
#: has no email_marketing decision; G granted; C granted email but refused sms.
CONSENTS = [
    ("A", "email_marketing", True, datetime(2026, 1, 1)),
    ("B", "email_marketing", True, datetime(2026, 1, 1)),
    ("B", "email_marketing", False, datetime(2026, 10, 1)),
    ("C", "email_marketing", True, datetime(2026, 2, 1)),
    ("C", "sms_marketing", False, datetime(2026, 2, 1)),
    ("D", "email_marketing", True, datetime(2026, 3, 1)),
    ("D", "sms_marketing", True, datetime(2026, 3, 1)),
    ("E", "email_marketing", True, datetime(2026, 4, 1)),
    ("F", "sms_marketing", True, datetime(2026, 4, 1)),
    ("G", "email_marketing", True, datetime(2026, 5, 1)),
    ("H", "email_marketing", True, datetime(2026, 5, 1)),
]


def _insert(con: duckdb.DuckDBPyConnection, table: str, rows: list[dict]) -> None:
    for row in rows:
        cols = ", ".join(f'"{c}"' for c in row)
        marks = ", ".join("?" for _ in row)
        con.execute(f"INSERT INTO scv.{table} ({cols}) VALUES ({marks})", list(row.values()))


def build_tiny_warehouse(path: Path) -> Path:
    """Write the tiny warehouse (every documented `scv` table, the audience's ones filled)."""
    con = duckdb.connect(str(path))
    try:
        con.execute("CREATE SCHEMA scv")
        for table in TABLES.values():
            con.execute(create_statement(table))
        for cid, (stage, segment, recency, channels, spend, currency, email, phone, first) in PEOPLE.items():
            _insert(con, "customer", [{"customer_id": cid, "email": email, "phone": phone, "first_name": first, "last_name": "Test"}])
            _insert(con, "lifecycle", [{"customer_id": cid, "as_of_date": AS_OF, "stage": stage}])
            if segment is not None:
                _insert(con, "rfm", [{"customer_id": cid, "as_of_date": AS_OF, "recency_days": recency, "segment": segment}])
            _insert(con, "customer_profile", [{"customer_id": cid, "total_spend": spend, "spend_currency": currency}])
            _insert(
                con,
                "touchpoint",
                [{"touchpoint_id": f"t:{cid}{i}", "customer_id": cid, "channel": ch.upper() if i else ch, "kind": "event"}
                 for i, ch in enumerate(channels)],
            )  # fmt: skip
        _insert(
            con,
            "consent",
            [{"customer_id": c, "purpose": p, "granted": g, "recorded_at": t, "source": "consents"} for c, p, g, t in CONSENTS],
        )
    finally:
        con.close()
    return path
