"""Formula-injection protection for every CSV the project writes.

A cell starting with ``=``, ``+``, ``-``, ``@``, TAB or CR is run as a formula by spreadsheet
programs when the CSV is opened (``=HYPERLINK(…)``, ``+cmd|…``, ``@SUM(…)``). Exports prefix such
text cells with a single quote so they display as text. Only what is *written to CSV* is
changed: the warehouse keeps the data verbatim, and numeric columns are left alone (a negative
amount stays a number).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

__all__ = ["FORMULA_PREFIXES", "neutralise_formula", "safe_csv_frame", "write_safe_csv"]

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralise_formula(value: Any) -> Any:
    """`value` with a leading ``'`` if it is text a spreadsheet would run as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def _is_text(series: pd.Series) -> bool:
    return pd.api.types.is_string_dtype(series.dtype) or series.dtype == object


def safe_csv_frame(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of `df` whose text cells (and column names) are safe to write as CSV.

    Write it with ``lineterminator="\r\n"`` (as `write_safe_csv` does) so cells holding line
    breaks are quoted.
    """
    out = df.copy()
    for column in out.columns:
        series = out[column]
        if not _is_text(series):
            continue
        text = series.astype("string")
        risky = text.str.startswith(FORMULA_PREFIXES).fillna(False).astype(bool)
        if series.dtype == object:
            # Object columns may mix text and other values: only str cells are touched.
            out[column] = series.map(neutralise_formula)
        elif risky.any():
            out[column] = text.where(~risky, "'" + text)
    out.columns = [neutralise_formula(c) for c in out.columns]
    return out


def write_safe_csv(df: pd.DataFrame, path: str | Path, **to_csv_kwargs: Any) -> Path:
    """Write `df` as UTF-8 CSV with formula-looking cells neutralised; returns the path.

    Lines end in CRLF (RFC 4180). This also matters for safety: the csv writer quotes only
    fields containing characters of the line terminator, so with pandas' default ``\n`` a cell
    holding a bare CR is written unquoted, and ``abc\r=1+1`` would reach a spreadsheet as a
    new row starting with a formula.
    """
    path = Path(path)
    to_csv_kwargs.setdefault("index", False)
    to_csv_kwargs.setdefault("encoding", "utf-8")
    to_csv_kwargs.setdefault("lineterminator", "\r\n")
    safe_csv_frame(df).to_csv(path, **to_csv_kwargs)
    return path
