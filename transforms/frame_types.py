"""Declared column types: a pandas frame becomes an Arrow table whose every column has the type
the code declares, never one guessed from the first rows.

DuckDB types a pandas ``object`` column from a sample of its first rows. A list column whose
sampled rows are all empty lists is typed ``"NULL"[]``, and a row further down that holds a value
then fails the write with ``Unimplemented type for cast (VARCHAR -> "NULL")`` (issue 19: a
person file whose only placeholder birth date was on its last row failed the night). Every
frame the project hands to DuckDB goes through `typed_table` first, with the DuckDB types of the
table it is written to (`warehouse.schema.TABLES`, `warehouse.models.STAGE_TABLES`,
`transforms.standardise.PERSON_STD_TYPES`), so a rare value late in a file is typed like every
other.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["TypeDeclarationError", "arrow_type", "declared_types_of", "typed_table"]

_SCALARS: dict[str, pa.DataType] = {
    "VARCHAR": pa.string(),
    "TEXT": pa.string(),
    "BIGINT": pa.int64(),
    "INTEGER": pa.int32(),
    "SMALLINT": pa.int16(),
    "DOUBLE": pa.float64(),
    "FLOAT": pa.float32(),
    "BOOLEAN": pa.bool_(),
    "TIMESTAMP": pa.timestamp("us"),
    "DATE": pa.date32(),
}


class TypeDeclarationError(ValueError):
    """A column with no declared type, or a value that does not fit its column's type; the
    message is one line naming the table, the column, the row and the value."""


def arrow_type(duck_type: str) -> pa.DataType:
    """The Arrow type of a DuckDB type name used in this project (``VARCHAR``, ``BIGINT``,
    ``TIMESTAMP``, ``VARCHAR[]``, ``MAP(VARCHAR, BOOLEAN)`` …)."""
    t = duck_type.strip().upper()
    if t.endswith("[]"):
        return pa.list_(arrow_type(t[:-2]))
    if t.startswith("MAP(") and t.endswith(")"):
        key, value = (p.strip() for p in t[4:-1].split(",", 1))
        return pa.map_(arrow_type(key), arrow_type(value))
    if t.startswith("DECIMAL(") and t.endswith(")"):
        precision, scale = (int(p) for p in t[8:-1].split(","))
        return pa.decimal128(precision, scale)
    try:
        return _SCALARS[t]
    except KeyError:
        raise TypeDeclarationError(f"DuckDB type {duck_type!r} has no Arrow type declared here") from None


def declared_types_of(df: pd.DataFrame, what: str) -> dict[str, str]:
    """DuckDB types of a frame whose every column already has a definite dtype (numbers,
    booleans, timestamps, pandas strings). An ``object`` column has none: its type would be
    guessed, so it raises `TypeDeclarationError` asking for a declaration."""
    out: dict[str, str] = {}
    for name, dtype in df.dtypes.items():
        kind = getattr(dtype, "kind", "O")
        if isinstance(dtype, pd.StringDtype) or str(dtype) in ("str", "string"):
            out[str(name)] = "VARCHAR"
        elif str(dtype) == "boolean" or kind == "b":
            out[str(name)] = "BOOLEAN"
        elif kind in "iu":
            out[str(name)] = "BIGINT"
        elif kind == "f":
            out[str(name)] = "DOUBLE"
        elif kind == "M":
            out[str(name)] = "TIMESTAMP"
        else:
            raise TypeDeclarationError(
                f"{what}: column {name!r} holds Python objects ({dtype}) and has no declared type"
            )
    return out


def _row_label(df: pd.DataFrame, position: int) -> str:
    if "_row_number" in df.columns:
        return f"row {df['_row_number'].iloc[position]}"
    if "row_number" in df.columns:
        return f"row {df['row_number'].iloc[position]}"
    return f"frame row {position + 1}"


def _first_misfit(values: pd.Series, t: pa.DataType) -> tuple[int, Any] | None:
    for i, v in enumerate(values.tolist()):
        try:
            pa.array([v], type=t, from_pandas=True)
        except (pa.ArrowException, TypeError, ValueError, OverflowError):
            return i, v
    return None


def _column(df: pd.DataFrame, name: str, duck: str, what: str, lenient: bool) -> pa.Array:
    values = df[name]
    t = arrow_type(duck)
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        values = values.dt.tz_convert("UTC").dt.tz_localize(None)
    try:
        return pa.array(values, type=t, from_pandas=True)
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        pass
    try:
        # every value is looked at (no sample): Arrow's own type for the whole column
        inferred = pa.array(values, from_pandas=True)
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        inferred = None
    if inferred is not None:
        if pa.types.is_null(inferred.type):
            return pa.nulls(len(values), t)
        if pa.types.is_timestamp(t) and pa.types.is_timestamp(inferred.type):
            return pc.cast(inferred, t, safe=False)  # digits below a microsecond dropped
        try:
            return pc.cast(inferred, t)
        except (pa.ArrowException, TypeError, ValueError):
            if lenient:
                # e.g. ISO text for a TIMESTAMP column: the caller's SQL casts it explicitly
                return inferred
    misfit = _first_misfit(values, t)
    if misfit is None:  # mixed Python types that fit one by one
        return pa.array(values.to_numpy(dtype=object), type=t, from_pandas=True)
    pos, value = misfit
    shown = repr(value) if not isinstance(value, np.ndarray) else repr(value.tolist())
    if len(shown) > 60:
        shown = shown[:59] + "…"
    raise TypeDeclarationError(
        f"{what}: {_row_label(df, pos)}: column {name!r}: value {shown} is not a {duck}"
    )


def typed_table(
    df: pd.DataFrame,
    types: Mapping[str, str],
    *,
    what: str,
    lenient: bool = False,
) -> pa.Table:
    """`df` as an Arrow table with exactly the columns of `types` (name -> DuckDB type), in that
    order, each of its declared type. A missing or undeclared column, or a value that does not
    fit its type, raises `TypeDeclarationError` naming `what`, the row and the column.
    `lenient`: a column whose values do not convert (ISO text for a timestamp) keeps Arrow's type
    for the whole column; the caller then casts it in SQL to the same declared type."""
    missing = [c for c in types if c not in df.columns]
    extra = [c for c in df.columns if c not in types]
    if missing or extra:
        raise TypeDeclarationError(
            f"{what}: frame columns differ from the declared ones (missing {missing}, undeclared {extra})"
        )
    arrays = [_column(df, name, duck, what, lenient) for name, duck in types.items()]
    return pa.Table.from_arrays(arrays, names=list(types))
