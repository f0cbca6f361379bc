"""Reading the exchange rates the user configured (`currency` section; no rate is built in).

`conversion_for(currency_config)` returns the `transforms.money.Conversion` the night converts
order amounts with, or None when no reporting currency is set (amounts then stay in their own
currency). A rates file is a UTF-8 CSV with a header and three columns::

    date,currency,rate
    2024-01-01,EUR,0.8612
    2024-02-01,EUR,0.8550
    2024-01-01,USD,0.7901

``rate`` is reporting-currency units per one unit of ``currency``, valid from ``date`` (ISO
8601) until the next date of that currency. Any problem raises `RatesError`, one line naming the
file, the row (1 = first data row) and the field.
"""

from __future__ import annotations

import csv
import hashlib
import math
from datetime import date
from pathlib import Path

import pandas as pd

from sources.config import CurrencyConfig
from transforms.money import Conversion, is_currency_code

__all__ = ["RATES_COLUMNS", "RatesError", "conversion_for", "rates_fingerprint", "read_rates_file"]

RATES_COLUMNS = ("date", "currency", "rate")


class RatesError(ValueError):
    """A rates file that cannot be used; ``str()`` is one line naming file, row and field."""


def read_rates_file(path: Path, reporting: str) -> pd.DataFrame:
    """The dated rates of `path` as a frame ``currency, valid_from, rate`` (see module doc)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise RatesError(f"currency.rates_file: {path}: file not found") from None
    except UnicodeDecodeError as exc:
        raise RatesError(f"currency.rates_file: {path}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise RatesError(f"currency.rates_file: {path}: cannot be read ({exc.strerror})") from None
    reader = csv.reader(text.splitlines())
    header = [h.strip().lower() for h in next(reader, [])]
    if header[:3] != list(RATES_COLUMNS) or len(header) != 3:
        raise RatesError(
            f"currency.rates_file: {path}: header must be {','.join(RATES_COLUMNS)}, found {','.join(header) or 'nothing'}"
        )
    rows: list[tuple[str, pd.Timestamp, float]] = []
    seen: dict[tuple[str, date], int] = {}
    for number, fields in enumerate(reader, start=1):
        if not any(f.strip() for f in fields):
            continue
        where = f"currency.rates_file: {path}: row {number}"
        if len(fields) != 3:
            raise RatesError(f"{where}: expected 3 fields (date, currency, rate), found {len(fields)}")
        day_text, code, rate_text = (f.strip() for f in fields)
        try:
            day = date.fromisoformat(day_text)
        except ValueError:
            raise RatesError(f"{where}: date {day_text!r} is not an ISO 8601 date (YYYY-MM-DD)") from None
        code = code.upper()
        if not is_currency_code(code):
            raise RatesError(f"{where}: currency {code!r} is not an ISO 4217 code")
        try:
            rate = float(rate_text)
        except ValueError:
            rate = math.nan
        if not (math.isfinite(rate) and rate > 0):
            raise RatesError(f"{where}: rate {rate_text!r} is not a positive number")
        if code == reporting and rate != 1:
            raise RatesError(f"{where}: rate of the reporting currency {reporting} must be 1, found {rate_text}")
        if (code, day) in seen:
            raise RatesError(f"{where}: {code} on {day} is already on row {seen[(code, day)]}")
        seen[(code, day)] = number
        rows.append((code, pd.Timestamp(day), rate))
    frame = pd.DataFrame(rows, columns=["currency", "valid_from", "rate"])
    return frame.astype({"currency": "str", "valid_from": "datetime64[us]", "rate": "float64"})


def conversion_for(currency: CurrencyConfig, base: Path | None = None) -> Conversion | None:
    """The configured conversion, or None when `currency.reporting` is not set. `base`: the
    folder a relative `rates_file` is resolved against (the config file's folder)."""
    if not currency.reporting:
        return None
    dated = None
    if currency.rates_file is not None:
        path = currency.rates_file if base is None else base / currency.rates_file
        dated = read_rates_file(path, currency.reporting)
        both = sorted(set(dated["currency"]) & set(currency.rates) - {currency.reporting})
        if both:
            raise RatesError(
                f"currency: {', '.join(both)} has rates both in currency.rates and in {path}: keep one"
            )
    return Conversion.of(currency.reporting, currency.rates, dated)


def rates_fingerprint(currency: CurrencyConfig, base: Path | None = None) -> str:
    """What the conversion depends on, as a digest: the settings and the rates file's bytes."""
    h = hashlib.sha256(repr((currency.reporting, sorted(currency.rates.items()))).encode())
    if currency.rates_file is not None:
        path = currency.rates_file if base is None else base / currency.rates_file
        try:
            h.update(path.read_bytes())
        except OSError:
            h.update(b"<unreadable>")
    return h.hexdigest()
