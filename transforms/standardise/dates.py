"""Dates of birth and record timestamps.

Values are read with the source's `date_format` (a strftime pattern) when it has one, and as
ISO 8601 (`YYYY-MM-DD`, with or without a time, or `YYYYMMDD`), which cannot be misread: a
source that wrote some dates the ISO way loses nothing. (ISO-looking values are read as ISO
first, for speed, unless the `date_format` itself writes year-first dashed dates in another
order such as `%Y-%d-%m`.) Without a `date_format`, ISO 8601 only. Impossible calendar dates
(`31/02/2024`) do not parse (rule `invalid`).

A date of birth is kept as ISO text (`YYYY-MM-DD`) unless it is:
- a placeholder (rule `placeholder`): `PLACEHOLDER_DATES`, i.e. 1900-01-01 (the usual "unknown"
  default of forms and spreadsheets) and 1970-01-01 (the Unix epoch, what a zero timestamp turns
  into). A real person born on 1 January 1970 loses their date of birth: a small loss next to
  thousands of unrelated records agreeing on the epoch and looking like one person to the linker.
- impossible (rule `impossible`): after the as-of date, before `EARLIEST_BIRTH_DATE`
  (1900-01-02), or more than `MAX_AGE_YEARS` (120) years before the as-of date.

`updated_at` values become naive UTC timestamps (offsets converted to UTC, values without one
taken as UTC); a source `date_format` without a time also accepts ` HH:MM[:SS]` after the date.
"""

from __future__ import annotations

import re
from datetime import date

import numpy as np
import pandas as pd

from transforms.standardise._text import as_text, broadcast, factorize

PLACEHOLDER_DATES = frozenset({date(1900, 1, 1), date(1970, 1, 1)})
EARLIEST_BIRTH_DATE = date(1900, 1, 2)
MAX_AGE_YEARS = 120

_ISO_DATE = r"(\d{4}-\d{2}-\d{2})(?:[T ].*)?"
_ISO_BASIC = r"\d{8}"
_TIME_SUFFIXES = (" %H:%M:%S", " %H:%M", "T%H:%M:%S")


def _parse_with(values: pd.Series, fmt: str, *, utc: bool) -> pd.Series:
    try:
        return pd.to_datetime(values, format=fmt, errors="coerce", utc=utc)
    except ValueError as exc:  # a malformed pattern, not a malformed value
        raise ValueError(f"date_format {fmt!r} is not a usable strftime pattern: {exc}") from None


def _iso_dates(values: pd.Series) -> pd.Series:
    """Calendar dates of ISO 8601 values (midnight timestamps), NaT where not ISO."""
    day = values.str.extract(_ISO_DATE, expand=False)
    out = pd.to_datetime(day, format="%Y-%m-%d", errors="coerce")
    basic = values.str.fullmatch(_ISO_BASIC).fillna(False) & out.isna()
    if basic.any():
        out[basic] = pd.to_datetime(values[basic], format="%Y%m%d", errors="coerce")
    return out


def _iso_first(fmt: str | None) -> bool:
    """Whether ISO-looking values can be read as ISO before trying `fmt` (faster, same result).

    True unless `fmt` itself writes year-first dashed dates in another order (`%Y-%d-%m`), where
    an ISO-looking value must be read with `fmt`.
    """
    if not fmt:
        return True
    sample = date(2001, 2, 3).strftime(fmt)
    return not re.match(r"\d{4}-\d{2}-\d{2}", sample) or sample.startswith("2001-02-03")


def _dates_of(values: pd.Series, fmt: str | None) -> pd.Series:
    """Calendar dates (naive midnight timestamps) of distinct values; NaT where unreadable."""
    out = pd.Series(pd.NaT, index=values.index, dtype="datetime64[us]")
    if _iso_first(fmt):
        out = _iso_dates(values).astype("datetime64[us]")
    todo = out.isna()
    if fmt and todo.any():
        parsed = _parse_with(values[todo], fmt, utc=False)
        if getattr(parsed.dt, "tz", None) is not None:
            parsed = parsed.dt.tz_localize(None)
        out[todo] = parsed.dt.normalize().astype("datetime64[us]")
        todo = out.isna()
    if todo.any() and not _iso_first(fmt):
        out[todo] = _iso_dates(values[todo]).astype("datetime64[us]")
    return out


def _as_of(as_of: date | None) -> date:
    if as_of is None:
        return pd.Timestamp.now(tz="UTC").date()
    return as_of


def dob_window(as_of: date | None = None) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The dates of birth that are possible on `as_of`: (earliest, latest), both included."""
    today = pd.Timestamp(_as_of(as_of))
    return max(pd.Timestamp(EARLIEST_BIRTH_DATE), today - pd.DateOffset(years=MAX_AGE_YEARS)), today


def standardise_dobs(
    values: pd.Series, fmt: str | None = None, as_of: date | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Per row: the date of birth as `YYYY-MM-DD` text (or None) and an issue, or None.

    Issues: `invalid` (unreadable), `placeholder`, `impossible` (see the module docstring).
    """
    earliest, today = dob_window(as_of)
    codes, uniques = factorize(as_text(values))
    parsed = _dates_of(uniques, fmt)
    placeholder = parsed.isin([pd.Timestamp(d) for d in PLACEHOLDER_DATES]).to_numpy()
    impossible = ((parsed > today) | (parsed < earliest)).to_numpy() & ~placeholder
    invalid = parsed.isna().to_numpy()
    text = parsed.dt.strftime("%Y-%m-%d").to_numpy(dtype=object, na_value=None)
    text[placeholder | impossible] = None
    issue = np.full(len(uniques), None, dtype=object)
    issue[invalid] = "invalid"
    issue[impossible] = "impossible"
    issue[placeholder] = "placeholder"
    return broadcast(codes, text), broadcast(codes, issue)


def _iso_timestamps(values: pd.Series) -> pd.Series:
    iso = values.str.match(r"\d{4}-\d{2}-\d{2}").fillna(False).astype(bool)
    out = pd.Series(pd.NaT, index=values.index, dtype="datetime64[us, UTC]")
    if iso.any():
        out[iso] = pd.to_datetime(values[iso], format="ISO8601", errors="coerce", utc=True).astype(
            "datetime64[us, UTC]"
        )
    return out


def _timestamps_of(values: pd.Series, fmt: str | None) -> pd.Series:
    out = pd.Series(pd.NaT, index=values.index, dtype="datetime64[us, UTC]")
    iso_first = _iso_first(fmt)
    if iso_first:
        out = _iso_timestamps(values)
    patterns = [fmt, *(fmt + t for t in _TIME_SUFFIXES if "%H" not in fmt)] if fmt else []
    for pattern in patterns:
        todo = out.isna()
        if not todo.any():
            break
        out[todo] = _parse_with(values[todo], pattern, utc=True).astype("datetime64[us, UTC]")
    todo = out.isna()
    if not iso_first and todo.any():
        out[todo] = _iso_timestamps(values[todo])
    return out.dt.tz_convert(None)


def standardise_timestamps(
    values: pd.Series, fmt: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Per row: a naive UTC `datetime64[us]` (NaT when unreadable) and an issue (`invalid`)."""
    codes, uniques = factorize(as_text(values))
    parsed = _timestamps_of(uniques, fmt)
    issue = np.where(parsed.isna().to_numpy(), "invalid", None).astype(object)
    return broadcast(codes, parsed.to_numpy()), broadcast(codes, issue)


def parse_date(value: str | None, fmt: str | None = None) -> date | None:
    """One date as a `datetime.date` read like a source's dates (`fmt`, else ISO 8601), or None.

    Only reads the value: no plausibility rules (see `standardise_dobs` for those).
    """
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    parsed = _dates_of(pd.Series([str(value).strip()], dtype="str"), fmt).iloc[0]
    return None if pd.isna(parsed) else parsed.date()


__all__ = [
    "EARLIEST_BIRTH_DATE",
    "MAX_AGE_YEARS",
    "PLACEHOLDER_DATES",
    "parse_date",
    "standardise_dobs",
    "standardise_timestamps",
]
