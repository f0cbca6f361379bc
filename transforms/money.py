"""Money: which currency an amount is in, and converting it only when the config asks to.

CONTRACT §7: amounts stay in their source currency unless the config sets `currency.reporting`
with rates; no rate is built in. A `Conversion` holds the reporting currency and the rates the
user gave: undated ones (`currency.rates`, valid on every date) and dated ones
(`currency.rates_file`, each valid from its date until the next one for that currency). An
order is converted at the latest rate on or before its order date; the reporting currency
itself converts at 1. An order in a currency with no such rate gets no rate, and the quality
gate quarantines it (`unknown_currency`).

A rate is "reporting-currency units per one unit of the currency": with reporting GBP,
``EUR: 0.86`` turns 100.00 EUR into 86.00 GBP.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from functools import cache

import numpy as np
import pandas as pd

__all__ = [
    "Conversion",
    "RateLookup",
    "is_currency_code",
    "lookup_rates",
]


@cache
def _iso_codes() -> frozenset[str]:
    import pycountry

    return frozenset(c.alpha_3 for c in pycountry.currencies)


def is_currency_code(code: str) -> bool:
    """Whether `code` (upper case) is an ISO 4217 currency code (pycountry's list)."""
    return code in _iso_codes()


@dataclass(frozen=True)
class Conversion:
    """The reporting currency and the rates into it.

    ``undated``: currency -> rate valid on every date. ``dated``: a frame ``currency, valid_from
    (datetime64, midnight), rate``, one row per currency and date. A currency is in one of the
    two, not both (config validation refuses the overlap)."""

    reporting: str
    undated: Mapping[str, float]
    dated: pd.DataFrame | None = None

    @classmethod
    def of(
        cls, reporting: str, undated: Mapping[str, float] | None = None, dated: pd.DataFrame | None = None
    ) -> Conversion:
        rates = {str(k).upper(): float(v) for k, v in (undated or {}).items()}
        for code, rate in rates.items():
            if not (math.isfinite(rate) and rate > 0):
                raise ValueError(f"currency.rates.{code}: {rate!r} is not a positive number")
        if dated is not None:
            dated = dated.assign(
                currency=dated["currency"].astype("str").str.upper(),
                valid_from=pd.to_datetime(dated["valid_from"]).astype("datetime64[us]"),
                rate=dated["rate"].astype("float64"),
            )
        return cls(reporting.upper(), rates, dated)

    @property
    def currencies(self) -> list[str]:
        """Every currency with a rate on some date, the reporting one included, sorted."""
        dated = set(self.dated["currency"]) if self.dated is not None else set()
        return sorted({self.reporting, *self.undated, *dated})

    def first_dated(self, currency: str) -> date | None:
        """The first date a dated rate of `currency` holds from (None: no dated rate)."""
        if self.dated is None:
            return None
        days = self.dated.loc[self.dated["currency"] == currency, "valid_from"]
        return None if days.empty else days.min().date()


@dataclass(frozen=True)
class RateLookup:
    """Per order (aligned with the input): the rate into the reporting currency (NaN: none),
    and the amount converted (NaN where the rate or the amount is missing)."""

    rate: pd.Series
    amount_reporting: pd.Series


def lookup_rates(
    conversion: Conversion,
    currency: pd.Series,
    when: pd.Series,
    amount: pd.Series,
) -> RateLookup:
    """The rate of each order into `conversion.reporting`: the reporting currency at 1, an
    undated rate on every date, a dated rate from its date on (the latest on or before the
    order's date; the day counts, not the time). `currency` upper-case codes (null: none),
    `when` naive timestamps (NaT: no rate), `amount` floats."""
    index = currency.index
    codes = currency.astype("str").to_numpy(dtype=object, na_value=None)
    rate = np.full(len(codes), np.nan)
    undated = {conversion.reporting: 1.0, **{k: v for k, v in conversion.undated.items()}}
    undated[conversion.reporting] = 1.0
    for code, value in undated.items():
        rate[codes == code] = value
    if conversion.dated is not None and len(conversion.dated) and len(codes):
        days = pd.to_datetime(when).dt.floor("D").astype("datetime64[us]")
        todo = np.isnan(rate) & ~days.isna().to_numpy() & pd.notna(codes)
        if todo.any():
            left = pd.DataFrame(
                {"pos": np.flatnonzero(todo), "currency": codes[todo].astype(str), "day": days.to_numpy()[todo]}
            ).sort_values("day", kind="stable")
            right = conversion.dated.rename(columns={"valid_from": "day"}).sort_values("day", kind="stable")
            hit = pd.merge_asof(left, right[["day", "currency", "rate"]], on="day", by="currency", direction="backward")
            rate[hit["pos"].to_numpy()] = hit["rate"].to_numpy(dtype="float64", na_value=np.nan)
    rate_s = pd.Series(rate, index=index, dtype="float64")
    with np.errstate(over="ignore", invalid="ignore"):
        converted = pd.Series(amount.to_numpy(dtype="float64", na_value=np.nan) * rate, index=index)
    return RateLookup(rate_s, converted)
