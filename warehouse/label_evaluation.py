"""What `scv evaluate` reads and writes: the published customer_xref, the standardised person
records the last night linked (kept in the staging file), and its page next to the run report.

Both are read while holding the warehouse's lock (`Warehouse.exclusive`), so no night is
half-way through rewriting staging meanwhile; the lock is let go before any scoring starts.
The staging file is only attached read-only here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pandas as pd

from warehouse.report import write_text_atomically
from warehouse.schema import SCHEMA
from warehouse.store import Warehouse, fetch_frame, relation_names

__all__ = [
    "EVALUATION_PAGE",
    "EvaluationInputs",
    "EvaluationUnavailable",
    "read_evaluation_inputs",
    "write_evaluation_page",
]

#: The latest evaluation page, in the reports folder next to `latest.html`.
EVALUATION_PAGE = "evaluation.html"


class EvaluationUnavailable(RuntimeError):
    """Something `scv evaluate` needs is not there yet; the message is one line."""


@dataclass
class EvaluationInputs:
    """`xref`: `unique_id` (SOURCE:SOURCE_RECORD_ID), `customer_id`, one row per published
    person record. `persons`: the standardised person records of the last night (`unique_id`
    and the requested columns it has), or None when the staging file holds none (the first
    night has not run, or `scv forget` cleared it)."""

    xref: pd.DataFrame
    persons: pd.DataFrame | None


def read_evaluation_inputs(store: Warehouse, columns: Sequence[str]) -> EvaluationInputs:
    """Read the published xref and the staged person records (`columns` of them, where
    present). Raises WarehouseBusy when a night or an erasure holds the warehouse, and
    EvaluationUnavailable before the first publish."""
    with store.exclusive("scv evaluate"):
        with store.read_published() as con:
            if con is None:
                raise EvaluationUnavailable(
                    f"{store.published}: no warehouse yet (run `scv run` first)"
                )
            xref = fetch_frame(
                con,
                f"SELECT source || ':' || source_record_id AS unique_id, customer_id "
                f"FROM {SCHEMA}.customer_xref",
            )
        persons = _staged_persons(store.staging, columns)
    return EvaluationInputs(xref=xref, persons=persons)


def _staged_persons(staging: Path, columns: Sequence[str]) -> pd.DataFrame | None:
    if not staging.exists():
        return None
    con = duckdb.connect()
    try:
        path = str(staging).replace("'", "''")
        con.execute(f"ATTACH '{path}' AS stage (READ_ONLY)")
        if "person_records" not in relation_names(con, "stage"):
            return None
        have = {r[0] for r in con.execute("DESCRIBE stage.person_records").fetchall()}
        wanted = [
            "unique_id",
            *(c for c in dict.fromkeys(columns) if c in have and c != "unique_id"),
        ]
        select = ", ".join(f'"{c}"' for c in wanted)
        return fetch_frame(con, f"SELECT {select} FROM stage.person_records")
    finally:
        con.close()


def write_evaluation_page(reports_dir: Path, page: str, at: datetime | None = None) -> Path:
    """Write `page` as `evaluation.html` in `reports_dir`, and a copy named by the time
    (`evaluation-YYYYMMDDTHHMMSSZ.html`, UTC) that later evaluations leave alone; each
    replaced atomically. Returns the path of `evaluation.html`."""
    at = (at or datetime.now(UTC)).astimezone(UTC)
    reports_dir = Path(reports_dir)
    reports_dir.mkdir(parents=True, exist_ok=True)
    stem = Path(EVALUATION_PAGE).stem
    write_text_atomically(reports_dir / f"{stem}-{at:%Y%m%dT%H%M%SZ}.html", page)
    latest = reports_dir / EVALUATION_PAGE
    write_text_atomically(latest, page)
    return latest
