"""Text folding shared by every match key, and the per-distinct-value machinery.

Every slow step (a library call, a Python function per value) runs once per *distinct* value
of a column, never once per row: `factorize` the column, work on the uniques, broadcast back
with the codes. Person data repeats a lot (the same city, first name, date of birth, and the
same email in several sources), so this is where most of the speed comes from.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
from anyascii import anyascii

#: Values that mean "no value" in any free-text person field, compared after folding
#: (lower-case ASCII, punctuation removed, spaces collapsed). `na` is deliberately absent:
#: it is Namibia's ISO code in a country column; see `PLACEHOLDER_NAMES` for names.
PLACEHOLDER_TEXT = frozenset(
    {
        "",
        "n a",
        "n k",
        "none",
        "null",
        "nil",
        "nan",
        "unknown",
        "not known",
        "not available",
        "not applicable",
        "not provided",
        "not given",
        "no data",
        "tbc",
        "tba",
        "x",
        "xx",
        "xxx",
        "xxxx",
    }
)

_APOSTROPHES = "['`\u00b4]"  # after transliteration every apostrophe is ASCII ' or `
#: Whitespace spelt out: pandas runs `\s` through Python's re (RE2's differs), which is slow.
WHITESPACE = " \t\n\r\x0b\x0c\xa0"
_NON_ALNUM = r"[^a-z0-9]+"


def fold(value: str) -> str:
    """Lower-case ASCII transliteration: `Zoë` → `zoe`, `Łukasz` → `lukasz`, `王芳` → `wangfang`."""
    if not value.isascii():
        value = anyascii(value)
    return value.lower()


def fold_keys(values: pd.Series) -> pd.Series:
    """Vectorised match key of distinct text values (see `key_text`); empty keys become NaN.

    Apostrophes vanish (O'Brien → obrien); every other run of punctuation or spaces becomes one
    space (Mary-Jane → mary jane, St.John → st john).
    """
    folded = pd.Series(
        [fold(v) if isinstance(v, str) else None for v in values], dtype="str", index=values.index
    )
    keys = (
        folded.str.replace(_APOSTROPHES, "", regex=True)
        .str.replace(_NON_ALNUM, " ", regex=True)
        .str.strip()
    )
    return keys.mask(keys == "")


_APOSTROPHES_RE = re.compile(_APOSTROPHES)
_NON_ALNUM_RE = re.compile(_NON_ALNUM)


def key_text(value: str | None) -> str | None:
    """Scalar form of `fold_keys`: the folded, punctuation-free key of one value, or None."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    key = _NON_ALNUM_RE.sub(" ", _APOSTROPHES_RE.sub("", fold(str(value)))).strip()
    return key or None


def as_text(values: pd.Series) -> pd.Series:
    """The column as nullable text, trimmed, with empty / whitespace-only values as NaN."""
    if values.dtype != "str":
        values = values.astype("str")
    out = values.str.strip()
    return out.mask(out == "")


def null_text(index: pd.Index) -> pd.Series:
    """An all-missing text column (for a field the source does not map)."""
    return pd.Series(np.nan, index=index, dtype="str")


def factorize(values: pd.Series) -> tuple[np.ndarray, pd.Series]:
    """Codes per row (-1 for missing) and the distinct non-missing values as a text Series."""
    codes, uniques = pd.factorize(values)
    return codes, pd.Series(np.asarray(uniques, dtype=object), dtype="str")


def broadcast(codes: np.ndarray, per_unique: np.ndarray | pd.Series, fill=None) -> np.ndarray:
    """Rows' values from per-unique values; rows with code -1 (missing input) get `fill`."""
    arr = np.asarray(per_unique)
    if arr.dtype.kind == "M":
        tail = np.array([np.datetime64("NaT")], dtype=arr.dtype)
    else:
        arr = arr.astype(object)
        tail = np.array([fill], dtype=object)
    return np.concatenate([arr, tail])[codes]


__all__ = [
    "PLACEHOLDER_TEXT",
    "WHITESPACE",
    "as_text",
    "broadcast",
    "factorize",
    "fold",
    "fold_keys",
    "key_text",
    "null_text",
]
