"""The analytics tables for the night's as-of date, from the SQL models of warehouse/sql:
`scv.rfm` (with the segment map of the config), `scv.lifecycle` and `scv.lifecycle_history`
(stage changes kept across nights) and `scv.customer_profile` (the 360 view)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sources.config import Config
from transforms.lifecycle import lifecycle_params
from transforms.rfm import segment_rules, segment_table
from warehouse.store import Warehouse, write_frame, write_model

__all__ = ["Lifecycle", "Rfm", "write_customer_profile", "write_lifecycle", "write_rfm"]

#: The currencies of the orders RFM counts (completed, up to the as-of date).
ORDER_CURRENCIES_SQL = (
    "SELECT DISTINCT coalesce(reporting_currency, currency) FROM stage.orders "
    "WHERE status = 'completed' AND CAST(order_date AS DATE) <= $as_of ORDER BY 1"
)


@dataclass(frozen=True)
class Rfm:
    """What `write_rfm` wrote: rows, customers per segment, the currencies of the orders
    counted, and how many customers have no monetary value (orders in several currencies)."""

    rows: int
    segments: dict[str, int]
    currencies: list[str]
    without_monetary: int


def write_rfm(cfg: Config, store: Warehouse, as_of: date) -> Rfm:
    """Write the segment map (`stage.rfm_segment_map`) and scv.rfm for `as_of`."""
    with store.stage() as con:
        write_frame(con, "rfm_segment_map", segment_table(segment_rules(cfg.rfm)))
        rows = write_model(con, "rfm", {"as_of": as_of})
        segments = dict(
            con.execute("SELECT segment, count(*) FROM scv.rfm GROUP BY ALL ORDER BY 2 DESC").fetchall()
        )
        currencies = [r[0] or "unnamed" for r in con.execute(ORDER_CURRENCIES_SQL, {"as_of": as_of}).fetchall()]
        monetary_null = con.execute("SELECT count(*) FROM scv.rfm WHERE monetary IS NULL").fetchall()[0][0]
    return Rfm(rows, segments, currencies, int(monetary_null))


@dataclass(frozen=True)
class Lifecycle:
    """What `write_lifecycle` wrote: rows of each table, customers per stage, tonight's moves."""

    rows: int
    history_rows: int
    stages: dict[str, int]
    moves: dict[str, int]


def write_lifecycle(cfg: Config, store: Warehouse, as_of: date) -> Lifecycle:
    """Write scv.lifecycle and scv.lifecycle_history for `as_of`, from the published ones."""
    params = {"as_of": as_of, **lifecycle_params(cfg.lifecycle)}
    with store.stage() as con:
        store.stage_previous(con, ["lifecycle", "lifecycle_history"])
        rows = write_model(con, "lifecycle", params)
        hist = write_model(con, "lifecycle_history", params)
        stages = dict(
            con.execute("SELECT stage, count(*) FROM scv.lifecycle GROUP BY ALL ORDER BY 2 DESC").fetchall()
        )
        moves = dict(
            con.execute(
                "SELECT coalesce(from_stage, '(new)') || ' -> ' || to_stage, count(*) "
                "FROM scv.lifecycle_history WHERE as_of_date = $as_of GROUP BY ALL",
                {"as_of": as_of},
            ).fetchall()
        )
    return Lifecycle(rows, hist, stages, moves)


def write_customer_profile(store: Warehouse, as_of: date) -> tuple[int, int]:
    """Write scv.customer_profile for `as_of`: (rows, customers with at least one order)."""
    with store.stage() as con:
        rows = write_model(con, "customer_profile", {"as_of": as_of})
        buyers = con.execute("SELECT count(*) FROM scv.customer_profile WHERE orders_count > 0").fetchall()[0][0]
    return rows, int(buyers)
