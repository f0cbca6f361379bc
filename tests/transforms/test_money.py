"""transforms.money: rates the user gave, looked up per order date; the reporting currency at 1."""

import math

import numpy as np
import pandas as pd
import pytest

from transforms.money import Conversion, is_currency_code, lookup_rates


def lookup(conversion, rows):
    currency = pd.Series([r[0] for r in rows], dtype="str")
    when = pd.Series(pd.to_datetime([r[1] for r in rows], format="ISO8601"))
    amount = pd.Series([r[2] for r in rows], dtype="float64")
    return lookup_rates(conversion, currency, when, amount)


DATED = pd.DataFrame(
    {
        "currency": ["USD", "USD", "USD"],
        "valid_from": pd.to_datetime(["2024-01-01", "2024-02-01", "2024-03-01"]),
        "rate": [0.80, 0.78, 0.76],
    }
)


def test_the_reporting_currency_converts_at_one_and_nothing_else_without_a_rate():
    got = lookup(Conversion.of("usd"), [("USD", "2024-01-01", 12.5), ("EUR", "2024-01-01", 10.0), (None, "2024-01-01", 1.0)])
    assert got.rate.iloc[0] == 1.0 and got.amount_reporting.iloc[0] == 12.5
    assert got.rate.iloc[1:].isna().all() and got.amount_reporting.iloc[1:].isna().all()


def test_a_dated_rate_holds_from_its_day_until_the_next():
    conv = Conversion.of("GBP", {"EUR": 0.86}, DATED)
    got = lookup(
        conv,
        [
            ("USD", "2023-12-31 23:59", 10.0),  # before the first rate: none
            ("USD", "2024-01-01 00:00", 10.0),
            ("USD", "2024-01-31 23:59", 10.0),
            ("USD", "2024-02-01 08:00", 10.0),  # the day counts, not the time
            ("USD", "2030-06-01", 10.0),  # the latest rate holds on
            ("EUR", "1999-01-01", 10.0),  # undated: every date
            ("GBP", "2024-01-01", 10.0),
            ("USD", None, 10.0),  # no date, no rate
        ],
    )
    rates = got.rate.tolist()
    assert math.isnan(rates[0]) and math.isnan(rates[-1])
    assert rates[1:-1] == [0.80, 0.80, 0.78, 0.76, 0.86, 1.0]
    assert got.amount_reporting.iloc[3] == pytest.approx(7.8)
    assert conv.first_dated("USD").isoformat() == "2024-01-01" and conv.first_dated("EUR") is None
    assert conv.currencies == ["EUR", "GBP", "USD"]


def test_an_overflowing_conversion_is_infinite_not_an_error():
    got = lookup(Conversion.of("IDR", {"GBP": 1e300}), [("GBP", "2024-01-01", 1e10)])
    assert np.isinf(got.amount_reporting.iloc[0])  # the quality gate's bound then quarantines it


def test_rates_must_be_positive_numbers():
    with pytest.raises(ValueError, match="currency.rates.EUR: 0.0 is not a positive number"):
        Conversion.of("GBP", {"EUR": 0.0})


def test_iso_codes():
    assert is_currency_code("GBP") and is_currency_code("PLN")
    assert not is_currency_code("XYZ") and not is_currency_code("US$")
