"""Everything the published warehouse holds about one person, as one JSON document
(`scv access`, GDPR art. 15)."""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Mapping
from datetime import date, datetime, time, timezone
from decimal import Decimal
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from warehouse.privacy.subject import (
    Lookup,
    SourceHints,
    column_values,
    find_subject,
    quarantine_matches,
    table_columns,
)
from warehouse.privacy.suppression import PrivacyError
from warehouse.schema import SCHEMA
from warehouse.store import Warehouse

__all__ = ["access_document"]


def _iso(value: datetime | date) -> str:
    return value.isoformat()


def _jsonable(value: Any) -> Any:
    """A DuckDB value as JSON: ISO dates, null for NULL / NaN, lists and maps kept."""
    if value is None:
        return None
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, (np.floating,)):
        return _jsonable(float(value))
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_jsonable(v) for v in value]
    if isinstance(value, bytes):
        return value.hex()
    return value


def _records(con, sql: str, params: list | None = None) -> list[dict[str, Any]]:
    cur = con.execute(sql, params or [])
    names = [d[0] for d in cur.description]
    return [{n: _jsonable(v) for n, v in zip(names, row, strict=True)} for row in cur.fetchall()]


def _json_text(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _as_of(con, store: Warehouse, tables: Mapping[str, list[str]]) -> tuple[str | None, str | None]:
    manifest = store.exports / "manifest.json"
    if manifest.exists():
        try:
            m = json.loads(manifest.read_text(encoding="utf-8"))
            return m.get("as_of_date"), m.get("run_id")
        except ValueError:
            pass
    for t in ("lifecycle", "customer_profile", "rfm"):
        if t in tables and "as_of_date" in tables[t]:
            v = con.execute(f"SELECT max(as_of_date) FROM {SCHEMA}.{t}").fetchall()[0][0]
            if v is not None:
                return _jsonable(v), None
    return None, None


def access_document(
    store: Warehouse,
    lookup: Lookup,
    hints: SourceHints = SourceHints(),
    *,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Everything the published warehouse holds about the person named by `lookup`, as one
    JSON-ready document (GDPR art. 15): golden record with provenance, every source record (the
    xref rows, with the values the source holds when scv.person_record exists), touchpoints,
    latest consent and consent history, RFM, lifecycle and its history, customer-id history,
    and the quarantined rows about them. Keys in a fixed order; dates ISO; nulls for missing.
    Raises PrivacyError when nobody matches."""
    if not store.published.exists():
        raise PrivacyError(f"{store.published}: no published warehouse yet (run `scv run` first)")
    now = now or datetime.now(timezone.utc).replace(microsecond=0)
    con = store.open_published()
    try:
        subject = find_subject(con, lookup, hints)
        if subject is None:
            raise PrivacyError(f"no customer found for that {lookup.label}")
        tables = table_columns(con, None)
        as_of, run_id = _as_of(con, store, tables)
        omitted: list[str] = []
        if "person_record" not in tables:
            omitted.append(
                "source record values: this warehouse has no scv.person_record table"
            )

        def rows(table: str, where: str, params: list, order: str) -> list[dict[str, Any]]:
            if table not in tables:
                omitted.append(f"{table}: not in this warehouse")
                return []
            return _records(
                con, f"SELECT * FROM {SCHEMA}.{table} WHERE {where} ORDER BY {order}", params
            )

        def one(table: str, cid: str) -> dict[str, Any] | None:
            found = rows(table, "customer_id = ?", [cid], "customer_id")
            return found[0] if found else None

        # Ids retired by a merge are listed too (current = false): history may still name them.
        current = set(column_values(con, f"SELECT DISTINCT customer_id FROM {SCHEMA}.customer_xref"))
        customers = []
        for cid in sorted(subject.customer_ids, key=lambda c: (c not in current, c)):
            values = {}
            if "person_record" in tables:
                for r in _records(
                    con,
                    f"SELECT * FROM {SCHEMA}.person_record WHERE customer_id = ? "
                    "ORDER BY source, source_record_id",
                    [cid],
                ):
                    values[(r["source"], r["source_record_id"])] = {
                        k: v
                        for k, v in r.items()
                        if k not in ("source", "source_record_id", "customer_id")
                    }
            source_records = []
            for x in rows("customer_xref", "customer_id = ?", [cid], "source, source_record_id"):
                entry = {k: v for k, v in x.items() if k != "customer_id"}
                if "person_record" in tables:
                    entry["values"] = values.get((x["source"], x["source_record_id"]))
                source_records.append(entry)
            touch = rows("touchpoint", "customer_id = ?", [cid], "occurred_at, touchpoint_id")
            for t in touch:
                if "attributes" in t:
                    t["attributes"] = _json_text(t["attributes"])
            customers.append(
                {
                    "customer_id": cid,
                    "current": cid in current,
                    "golden_record": one("customer", cid),
                    "field_provenance": rows(
                        "customer_field_provenance", "customer_id = ?", [cid], "field"
                    ),
                    "profile": one("customer_profile", cid),
                    "source_records": source_records,
                    "customer_id_history": rows(
                        "customer_id_history",
                        "old_customer_id = ? OR new_customer_id = ?",
                        [cid, cid],
                        "run_at, old_customer_id, new_customer_id",
                    ),
                    "consent": rows("consent", "customer_id = ?", [cid], "purpose"),
                    "consent_history": [t for t in touch if t.get("kind") == "consent"],
                    "touchpoints": [t for t in touch if t.get("kind") != "consent"],
                    "rfm": one("rfm", cid),
                    "lifecycle": one("lifecycle", cid),
                    "lifecycle_history": rows(
                        "lifecycle_history", "customer_id = ?", [cid], "as_of_date, to_stage"
                    ),
                }
            )
        quarantined: list[dict[str, Any]] = []
        rowids = quarantine_matches(con, None, subject, hints)
        if rowids:
            con.register("_rows", pd.DataFrame({"id": pd.Series(rowids, dtype="int64")}))
            quarantined = _records(
                con,
                f"SELECT * FROM {SCHEMA}.quarantine WHERE rowid IN (SELECT id FROM _rows) "
                "ORDER BY source, row_number, run_at",
            )
            con.unregister("_rows")
            for q in quarantined:
                q["raw"] = _json_text(q.get("raw"))
    finally:
        con.close()
    return {
        "header": {
            "document": "Everything the single-customer-view warehouse holds about one person",
            "generated_at": _iso(now),
            "warehouse": str(store.published),
            "as_of_date": as_of,
            "run_id": run_id,
            "identified_by": lookup.kind,
            "customers_found": len(subject.customer_ids),
            "source_records_found": len(subject.records),
            "omitted": sorted(set(omitted)),
        },
        "customers": customers,
        "quarantined_rows": quarantined,
    }
