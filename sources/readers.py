"""Reading source systems: one reader per format (CSV, JSON lines, Parquet, database table).

`read_source(src)` returns the *raw frame*: every original column as nullable text (pandas
``"string"`` dtype, ``<NA>`` for an empty field), in file order, plus ``_row_number`` (int64,
1 = first data row). Nothing is type-inferred, so ids such as ``007`` and phone numbers arrive
exactly as written. Only an empty field becomes null: ``NA``, ``null`` or a person called ``Nan``
stay text.

`to_canonical(raw, src)` renames mapped columns to canonical fields (docs/architecture.md §2).

Every file-level problem raises `SourceReadError`, whose one-line message names the source, the
file, and the row / column where known, never the row's content.

Format notes:

- CSV: ``delimiter``, ``quotechar`` and ``encoding`` come from the source config. A UTF-8 byte
  order mark is dropped whichever UTF-8 spelling is configured; other encodings (``latin-1``,
  ``cp1252``, ``utf-16`` …) are decoded by Python first. CRLF line ends and newlines inside
  quoted fields are fine; fields of any size are read. A row with the wrong number of fields or a
  quote never closed fails the whole file, naming the row.
- JSON lines: one object per line; nested objects / arrays are kept as JSON text, numbers as
  their text, ``true`` / ``false`` as ``"true"`` / ``"false"``. Blank lines are skipped.
- Parquet: every column cast to text; nested columns as JSON text.
- ``format: duckdb | sqlite`` with ``table:`` (optionally ``schema.table``): the database file is
  attached read-only. SQLite goes through DuckDB's sqlite extension when it is installed, else
  through Python's ``sqlite3`` (the extension is not downloaded at run time).
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
import sqlite3
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from sources.config import CANONICAL_FIELDS, KINDS_WITH_ATTRIBUTES, SourceConfig
from sources.encoding import find_mojibake

__all__ = [
    "ROW_NUMBER",
    "TEXT",
    "SourceReadError",
    "file_fingerprint",
    "read_source",
    "required_columns",
    "to_canonical",
]

#: Name of the row-number column added to every raw and canonical frame.
ROW_NUMBER = "_row_number"
#: The dtype of every text column of the raw and canonical frames.
TEXT = pd.StringDtype()

_COMMON_DELIMITERS = (",", ";", "\t", "|")
_DELIMITER_NAMES = {",": "','", ";": "';'", "\t": "TAB", "|": "'|'"}
_UTF8_BOM = codecs.BOM_UTF8
# Large enough that a normal file is one pyarrow block; fields larger than this are retried with
# the whole file as one block.
_BLOCK_SIZE = 64 << 20
_MAX_NAMES_IN_MESSAGE = 12


class SourceReadError(Exception):
    """A source that cannot be read at all (a file-level failure).

    Attributes: ``source`` (name), ``path`` (file read), ``problem`` (what is wrong), ``row``
    (1-based data row, when known), ``line`` (physical line, when it differs or the row is
    unknown) and ``column`` (source column, when known). ``str()`` is one line, e.g.
    ``source pos_loyalty: data/sources/pos.csv: row 1042: unterminated quoted field``.
    """

    def __init__(
        self,
        source: str,
        path: str | Path,
        problem: str,
        *,
        row: int | None = None,
        column: str | None = None,
        line: int | None = None,
    ) -> None:
        self.source = source
        self.path = str(path)
        self.problem = problem
        self.row = row
        self.column = column
        self.line = line
        super().__init__(self._message())

    def _message(self) -> str:
        parts = [f"source {self.source}", self.path]
        if self.row is not None:
            where = f"row {self.row}"
            if self.line is not None and self.line != self.row:
                where += f" (line {self.line})"
            parts.append(where)
        elif self.line is not None:
            parts.append(f"line {self.line}")
        if self.column is not None:
            parts.append(f"column {self.column}")
        parts.append(" ".join(self.problem.split()))
        return ": ".join(parts)


# --------------------------------------------------------------------------------------------
# Public entry points
# --------------------------------------------------------------------------------------------


def read_source(src: SourceConfig) -> pd.DataFrame:
    """Read one source as text: original columns (``"string"`` dtype) + ``_row_number``.

    Raises `SourceReadError` for a missing or unreadable file, undecodable bytes, a ragged or
    truncated CSV, a wrong delimiter, a missing id / mapped column, or zero data rows.
    """
    fmt = _format(src)
    readers = {
        "csv": _read_csv,
        "jsonl": _read_jsonl,
        "parquet": _read_parquet,
        "duckdb": _read_duckdb,
        "sqlite": _read_sqlite,
    }
    path = Path(src.path)
    if not path.exists():
        raise SourceReadError(src.name, path, "file not found")
    if not path.is_file():
        raise SourceReadError(src.name, path, "not a file")
    frame = readers[fmt](src, path)
    if ROW_NUMBER in frame.columns:
        raise SourceReadError(
            src.name, path, f"the file has a column named {ROW_NUMBER!r}, which is reserved"
        )
    _check_columns(src, list(frame.columns), path)
    if len(frame) == 0:
        raise SourceReadError(src.name, path, "no data rows (the file has a header only)")
    frame.insert(len(frame.columns), ROW_NUMBER, np.arange(1, len(frame) + 1, dtype="int64"))
    return frame


def required_columns(src: SourceConfig) -> dict[str, str]:
    """Source columns the config relies on: ``{source column: what it is used for}``."""
    needed = {src.id: "the id column (`id:`)"}
    if src.person is not None:
        needed.setdefault(src.person.key, "the person key (`person.key:`)")
    for field, column in src.columns.items():
        needed.setdefault(column, f"canonical field {field}")
    return needed


def to_canonical(raw: pd.DataFrame, src: SourceConfig) -> pd.DataFrame:
    """The canonical frame of docs/architecture.md §2, values still as raw text.

    Columns: ``source``, ``_row_number``, ``source_record_id`` (the id column, surrounding
    whitespace removed, empty → null), one column per mapped canonical field (a column of the
    source, or a ``constants:`` value; when both are given the constant fills the empty cells),
    and for order / event / consent kinds ``person_record_id`` (from ``person.key``, trimmed like
    the id; may be null). Order and event kinds also get ``attributes``: a JSON object of the
    unmapped columns of the row, null values left out.
    """
    _check_columns(src, [c for c in raw.columns if c != ROW_NUMBER], src.path)
    n = len(raw)
    if ROW_NUMBER in raw.columns:
        row_numbers = raw[ROW_NUMBER].to_numpy(dtype="int64")
    else:
        row_numbers = np.arange(1, n + 1, dtype="int64")
    out: dict[str, Any] = {
        "source": pd.array([src.name] * n, dtype=TEXT),
        ROW_NUMBER: row_numbers,
        "source_record_id": _id_text(raw[src.id]).array,
    }
    if src.person is not None:
        out["person_record_id"] = _id_text(raw[src.person.key]).array
    for field in CANONICAL_FIELDS[src.kind]:
        column = src.columns.get(field)
        if column is not None:
            values = _as_text(raw[column])
            if field in src.constants:
                values = values.fillna(_constant_text(src.constants[field]))
            out[field] = values.array
        elif field in src.constants:
            out[field] = pd.array([_constant_text(src.constants[field])] * n, dtype=TEXT)
    if src.kind in KINDS_WITH_ATTRIBUTES:
        used = set(required_columns(src)) | {ROW_NUMBER}
        extra = [c for c in raw.columns if c not in used]
        out["attributes"] = pd.array(_attributes_json(raw, extra), dtype=TEXT)  # type: ignore[arg-type]
    return pd.DataFrame(out, index=pd.RangeIndex(n))


def file_fingerprint(path: str | Path, *, chunk_size: int = 1 << 20) -> str:
    """SHA-256 hex digest of a file's bytes, read in chunks (for change detection)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


# --------------------------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------------------------


def _format(src: SourceConfig) -> str:
    try:
        return src.resolved_format
    except ValueError as exc:
        raise SourceReadError(src.name, src.path, str(exc)) from None


def _names(columns: list[str]) -> str:
    shown = ", ".join(repr(c) for c in columns[:_MAX_NAMES_IN_MESSAGE])
    if len(columns) > _MAX_NAMES_IN_MESSAGE:
        shown += f", … ({len(columns)} columns)"
    return shown


def _check_columns(src: SourceConfig, columns: list[str], path: str | Path) -> None:
    """Raise naming the first column the config needs that the file does not have."""
    present = set(columns)
    for column, use in required_columns(src).items():
        if column not in present:
            raise SourceReadError(
                src.name,
                path,
                f"{use} expects a column {column!r}, which is not in the file "
                f"(columns found: {_names(columns)})",
                column=column,
            )


def _as_text(series: pd.Series) -> pd.Series:
    return series if series.dtype == TEXT else series.astype(TEXT)


def _id_text(series: pd.Series) -> pd.Series:
    text = _as_text(series).str.strip()
    return text.mask(text == "")


def _constant_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _attributes_json(raw: pd.DataFrame, columns: list[str]) -> pa.Array:
    """One JSON object per row of the `columns` that are not null (vectorised per column)."""
    import pyarrow.compute as pc

    n = len(raw)
    if not columns:
        return pa.array(["{}"] * n, pa.string())
    fragments = []
    for column in columns:
        key = json.dumps(column, ensure_ascii=False) + ":"
        # Encode each distinct value once: attribute columns repeat values a lot.
        codes, uniques = pd.factorize(raw[column], use_na_sentinel=True)
        encoded = np.array(
            [key + json.dumps(str(u), ensure_ascii=False) + "," for u in uniques] or [""],
            dtype=object,
        )
        values = np.full(n, None, dtype=object)
        present = codes >= 0
        values[present] = encoded[codes[present]]
        fragments.append(pa.array(values, pa.string()))
    # Each fragment ends in "," (after a closing quote, so trimming commas cannot eat data).
    # null_handling="skip" is avoided: pyarrow 26 drops rows whose inputs are all null.
    body = pc.binary_join_element_wise(*fragments, "", null_handling="replace", null_replacement="")
    body = pc.utf8_rtrim(body, characters=",")
    return pc.binary_join_element_wise("{", body, "}", "")


def _text_frame(table: pa.Table) -> pd.DataFrame:
    """Arrow table -> pandas frame of ``"string"`` columns (nested values as JSON text)."""
    arrays = {}
    for name, column in zip(table.column_names, table.columns):
        arrays[name] = _arrow_text(column)
    text_table = pa.table(arrays)
    mapper = {pa.string(): TEXT, pa.large_string(): TEXT}.get
    frame = text_table.to_pandas(types_mapper=mapper)
    for col in frame.columns:
        if frame[col].dtype != TEXT:  # e.g. an all-null column arrives as object
            frame[col] = frame[col].astype(TEXT)
    return frame


def _arrow_text(column: pa.ChunkedArray) -> pa.ChunkedArray | pa.Array:
    typ = column.type
    if pa.types.is_string(typ) or pa.types.is_large_string(typ):
        return column
    if pa.types.is_null(typ):
        return pa.array([None] * len(column), pa.string())
    nested = (
        pa.types.is_struct(typ)
        or pa.types.is_list(typ)
        or pa.types.is_large_list(typ)
        or pa.types.is_fixed_size_list(typ)
        or pa.types.is_map(typ)
        or pa.types.is_union(typ)
    )
    if not nested:
        try:
            return column.cast(pa.string())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
    return pa.array([_json_text(v) for v in column.to_pylist()], pa.string())


def _json_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return json.dumps(value, ensure_ascii=False, default=_json_default, separators=(",", ":"))


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def _read_bytes(src: SourceConfig, path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise SourceReadError(src.name, path, f"cannot read the file: {exc.strerror}") from None


def _is_utf8(encoding: str) -> bool:
    try:
        return codecs.lookup(encoding).name in ("utf-8", "utf-8-sig")
    except LookupError:
        return False


def _decode_error(src: SourceConfig, path: Path, data: bytes, exc: UnicodeDecodeError) -> None:
    line = data.count(b"\n", 0, exc.start) + 1
    bad = data[exc.start : exc.start + 1].hex()
    hint = (
        "; if the file comes from Excel or Windows set `encoding: cp1252` (or latin-1)"
        if _is_utf8(src.encoding)
        else "; the file is likely utf-8: set `encoding: utf-8`"
        if _valid_utf8(data)
        else ""
    )
    raise SourceReadError(
        src.name,
        path,
        f"byte 0x{bad} cannot be decoded as {src.encoding}{hint}",
        line=line,
    ) from None


def _decode(src: SourceConfig, path: Path, data: bytes) -> str:
    """The whole file as text in the configured encoding, a UTF-8 BOM removed."""
    try:
        codecs.lookup(src.encoding)
    except LookupError:
        raise SourceReadError(src.name, path, f"unknown encoding {src.encoding!r}") from None
    if _is_utf8(src.encoding):
        data = data.removeprefix(_UTF8_BOM)
        encoding = "utf-8"
    else:
        encoding = src.encoding
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        _decode_error(src, path, data, exc)
        raise  # unreachable: _decode_error always raises
    # Decoded without error is not decoded right: UTF-8 read as latin-1 gives "ZoÃ«".
    found = find_mojibake(data, encoding)
    if found is not None:
        raise SourceReadError(src.name, path, found.message(src.encoding), line=found.first_line)
    return text


def _valid_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# --------------------------------------------------------------------------------------------
# CSV
# --------------------------------------------------------------------------------------------


def _csv_dialect(src: SourceConfig) -> dict[str, Any]:
    return {"delimiter": src.delimiter, "quotechar": src.quotechar, "doublequote": True}


def _csv_header(src: SourceConfig, path: Path, data: bytes) -> list[str]:
    """Parse the header row in Python (pyarrow needs the names to read every column as text)."""
    size = 1 << 16
    while True:
        chunk = data[:size]
        complete = size >= len(data)
        if not complete:
            # Cut at a line end so no multi-byte character is split.
            cut = chunk.rfind(b"\n")
            if cut < 0:
                size *= 4
                continue
            chunk = chunk[: cut + 1]
        try:
            text = chunk.decode("utf-8")
        except UnicodeDecodeError as exc:
            _decode_error(src, path, data, exc)
        _raise_field_limit()
        reader = csv.reader(io.StringIO(text, newline=""), strict=False, **_csv_dialect(src))
        try:
            header = next(reader, None)
        except csv.Error:
            header = None
        try:
            # A second record proves the header was not cut off by the chunk boundary.
            header_complete = complete or next(reader, None) is not None
        except csv.Error:  # a later row's problem is for the full parse to report
            header_complete = True
        if complete or (header is not None and header_complete):
            break
        size *= 4
    if not header:
        raise SourceReadError(src.name, path, "no header row")
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise SourceReadError(
                src.name, path, f"the header names column {name!r} twice", column=name, line=1
            )
        seen.add(name)
    _check_delimiter(src, path, header)
    return header


def _check_delimiter(src: SourceConfig, path: Path, header: list[str]) -> None:
    """Spot a file written with another delimiter than the configured one."""
    needed = set(required_columns(src))
    if needed <= set(header):
        return  # even a one-column header with a ';' in its name is right if it is configured
    others = [d for d in _COMMON_DELIMITERS if d != src.delimiter]
    configured = _DELIMITER_NAMES.get(src.delimiter, repr(src.delimiter))
    if len(header) == 1:
        found = [d for d in others if d in header[0]]
        if found:
            raise SourceReadError(
                src.name,
                path,
                f"the header is a single column containing {_DELIMITER_NAMES[found[0]]}: the "
                f"file looks {_DELIMITER_NAMES[found[0]]}-delimited, not {configured}-delimited "
                "(set `delimiter:`)",
                line=1,
            )
    joined = src.delimiter.join(header)
    for d in others:
        if d in joined and needed <= {part.strip('"') for part in joined.split(d)}:
            raise SourceReadError(
                src.name,
                path,
                f"the configured columns appear when the header is split on "
                f"{_DELIMITER_NAMES[d]}: the file looks {_DELIMITER_NAMES[d]}-delimited, not "
                f"{configured}-delimited (set `delimiter:`)",
                line=1,
            )


def _raise_field_limit() -> None:
    # The csv module refuses fields over 128 KiB by default; source fields may be megabytes.
    if csv.field_size_limit() < (1 << 30):
        csv.field_size_limit(min(sys.maxsize, (1 << 31) - 1))


def _read_csv(src: SourceConfig, path: Path) -> pd.DataFrame:
    import pyarrow.csv as pacsv

    data = _read_bytes(src, path)
    if not data:
        raise SourceReadError(src.name, path, "empty file (0 bytes): no header row")
    if _is_utf8(src.encoding):
        data = data.removeprefix(_UTF8_BOM)
    else:
        data = _decode(src, path, data).encode("utf-8")
    if not data.strip():
        raise SourceReadError(src.name, path, "empty file: no header row")
    header = _csv_header(src, path, data)
    parse = pacsv.ParseOptions(
        delimiter=src.delimiter,
        quote_char=src.quotechar,
        double_quote=True,
        newlines_in_values=True,
        ignore_empty_lines=True,
    )
    convert = pacsv.ConvertOptions(
        column_types={name: pa.string() for name in header},
        strings_can_be_null=True,
        quoted_strings_can_be_null=True,
        null_values=[""],
    )
    block = _BLOCK_SIZE
    while True:
        read = pacsv.ReadOptions(block_size=min(block, max(len(data), 1 << 20) + 1))
        try:
            table = pacsv.read_csv(
                io.BytesIO(data), read_options=read, parse_options=parse, convert_options=convert
            )
            break
        except pa.ArrowInvalid as exc:
            if "straddl" in str(exc) and block < len(data) + 1:
                block = len(data) + 1
                continue
            if "UTF8" in str(exc) or "utf8" in str(exc).lower():
                try:
                    data.decode("utf-8")
                except UnicodeDecodeError as uexc:
                    _decode_error(src, path, data, uexc)
            _diagnose_csv(src, path, data, header)
            # pyarrow's message quotes the row's content: keep only its first clause.
            reason = str(exc).split(":")[0]
            raise SourceReadError(src.name, path, f"cannot parse the CSV ({reason})") from None
    if data.count(src.quotechar.encode("utf-8")) % 2:
        # pyarrow accepts a quote left open at end of file (a truncated file) as one long last
        # field; an odd number of quote characters is the cheap tell, the csv module the judge.
        _diagnose_csv(src, path, data, header, malformed_ok=True)
    return _text_frame(table)


def _diagnose_csv(
    src: SourceConfig, path: Path, data: bytes, header: list[str], *, malformed_ok: bool = False
) -> None:
    """Re-read a CSV with the csv module to name the row at fault; return if none is found.

    `malformed_ok` tolerates the csv module's stricter complaints (text after a closing quote)
    that pyarrow reads without error, so only ragged rows and unclosed quotes raise.
    """
    _raise_field_limit()
    text = data.decode("utf-8")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True, **_csv_dialect(src))
    expected = len(header)
    row = 0  # data rows seen
    start_line = 1
    try:
        for i, fields in enumerate(reader):
            if i == 0:
                start_line = reader.line_num + 1
                continue
            if not fields:  # blank line: pyarrow skips it too
                start_line = reader.line_num + 1
                continue
            row += 1
            if len(fields) != expected:
                raise SourceReadError(
                    src.name,
                    path,
                    f"expected {expected} fields (as in the header), found {len(fields)}: "
                    "the row is ragged or truncated, or a field holds an unquoted delimiter",
                    row=row,
                    line=start_line,
                )
            start_line = reader.line_num + 1
    except csv.Error as exc:
        message = str(exc)
        if "unexpected end of data" in message or "EOF" in message:
            raise SourceReadError(
                src.name,
                path,
                f"unterminated quoted field (a {src.quotechar} opened on line {start_line} is "
                "never closed: the file may be truncated)",
                row=row + 1,
                line=start_line,
            ) from None
        if malformed_ok:
            return
        raise SourceReadError(
            src.name, path, f"malformed CSV: {message}", row=row + 1, line=start_line
        ) from None


# --------------------------------------------------------------------------------------------
# JSON lines
# --------------------------------------------------------------------------------------------


def _scalar_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, Decimal)):
        return str(value)
    return json.dumps(value, ensure_ascii=False, default=_json_default, separators=(",", ":"))


def _read_jsonl(src: SourceConfig, path: Path) -> pd.DataFrame:
    data = _read_bytes(src, path)
    if not data.strip():
        raise SourceReadError(src.name, path, "empty file: no JSON lines")
    text = _decode(src, path, data)
    records: list[dict[str, Any]] = []
    keys: dict[str, None] = {}
    decoder = json.JSONDecoder(parse_float=Decimal)
    for line_no, line in enumerate(text.split("\n"), start=1):
        line = line.strip()
        if not line:
            continue
        try:
            obj = decoder.decode(line)
        except json.JSONDecodeError as exc:
            raise SourceReadError(
                src.name,
                path,
                f"not valid JSON ({exc.msg} at character {exc.colno})",
                row=len(records) + 1,
                line=line_no,
            ) from None
        if not isinstance(obj, dict):
            raise SourceReadError(
                src.name,
                path,
                f"expected a JSON object per line, found {type(obj).__name__}",
                row=len(records) + 1,
                line=line_no,
            )
        for key in obj:
            if key not in keys:
                keys[key] = None
        records.append(obj)
    columns = {
        key: pd.array([_scalar_text(r.get(key)) for r in records], dtype=TEXT) for key in keys
    }
    return pd.DataFrame(columns, index=pd.RangeIndex(len(records)))


# --------------------------------------------------------------------------------------------
# Parquet
# --------------------------------------------------------------------------------------------


def _read_parquet(src: SourceConfig, path: Path) -> pd.DataFrame:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        reason = str(exc).split("\n")[0]
        raise SourceReadError(
            src.name, path, f"cannot open as Parquet (not a Parquet file, or corrupt): {reason}"
        ) from None
    return _text_frame(table)


# --------------------------------------------------------------------------------------------
# Database tables (DuckDB, SQLite)
# --------------------------------------------------------------------------------------------


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _quote_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _split_table(table: str) -> tuple[str | None, str]:
    if "." in table:
        schema, name = table.split(".", 1)
        return schema, name
    return None, table


def _duckdb_sqlite_available(con: Any) -> bool:
    """Whether DuckDB's sqlite extension can be loaded without downloading it."""
    import duckdb

    try:
        con.execute("SET autoinstall_known_extensions = false")
        con.execute("LOAD sqlite")
        return True
    except duckdb.Error:
        return False


def _read_duckdb(src: SourceConfig, path: Path) -> pd.DataFrame:
    return _read_attached(src, path, attach_type=None)


def _read_sqlite(src: SourceConfig, path: Path) -> pd.DataFrame:
    import duckdb

    con = duckdb.connect()
    try:
        if _duckdb_sqlite_available(con):
            return _read_attached(src, path, attach_type="sqlite", con=con)
    finally:
        con.close()
    return _read_sqlite3(src, path)


def _read_attached(
    src: SourceConfig, path: Path, *, attach_type: str | None, con: Any = None
) -> pd.DataFrame:
    import duckdb

    own = con is None
    con = con or duckdb.connect()
    options = "READ_ONLY" if attach_type is None else f"TYPE {attach_type}, READ_ONLY"
    try:
        try:
            con.execute(f"ATTACH {_quote_literal(str(path))} AS src_db ({options})")
        except duckdb.Error as exc:
            reason = str(exc).split("\n")[0]
            raise SourceReadError(
                src.name,
                path,
                f"cannot open as a {src.resolved_format} database (wrong `format:`, or a "
                f"corrupt or locked file): {reason}",
            ) from None
        schema, name = _split_table(src.table or "")
        schema = schema or "main"
        found = con.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_catalog = 'src_db' AND table_schema = ? ORDER BY table_name",
            [schema],
        ).fetchall()
        names = [r[0] for r in found]
        if name not in names:
            raise SourceReadError(
                src.name,
                path,
                f"table {src.table!r} not found (tables: {_names(names) or 'none'})",
            )
        qualified = f"src_db.{_quote_ident(schema)}.{_quote_ident(name)}"
        described = con.execute(f"DESCRIBE SELECT * FROM {qualified}").fetchall()
        select = []
        for col_name, col_type, *_ in described:
            ident = _quote_ident(col_name)
            upper = str(col_type).upper()
            nested = any(t in upper for t in ("STRUCT", "MAP(", "[]", "UNION", "JSON")) or (
                upper.endswith("]")
            )
            expr = f"to_json({ident})::VARCHAR" if nested else f"CAST({ident} AS VARCHAR)"
            select.append(f"{expr} AS {ident}")
        sql = f"SELECT {', '.join(select) or '*'} FROM {qualified}"
        try:
            table = con.sql(sql + " ORDER BY rowid").to_arrow_table()
        except duckdb.Error:  # views have no rowid: their own order is the order
            table = con.sql(sql).to_arrow_table()
        return _text_frame(table)
    finally:
        if own:
            con.close()


def _read_sqlite3(src: SourceConfig, path: Path) -> pd.DataFrame:
    uri = path.resolve().as_uri() + "?mode=ro"
    try:
        con = sqlite3.connect(uri, uri=True)
    except sqlite3.Error as exc:
        raise SourceReadError(src.name, path, f"cannot open as SQLite: {exc}") from None
    con.text_factory = bytes  # decode ourselves so a bad byte names its row
    try:
        schema, name = _split_table(src.table or "")
        prefix = f"{_quote_ident(schema)}." if schema else ""
        try:
            names = [
                r[0].decode("utf-8", "replace")
                for r in con.execute(
                    f"SELECT name FROM {prefix}sqlite_master WHERE type IN ('table', 'view') "
                    "ORDER BY name"
                )
            ]
        except sqlite3.Error as exc:
            raise SourceReadError(src.name, path, f"cannot open as SQLite: {exc}") from None
        if name not in names:
            raise SourceReadError(
                src.name,
                path,
                f"table {src.table!r} not found (tables: {_names(names) or 'none'})",
            )
        qualified = f"{prefix}{_quote_ident(name)}"
        try:
            cursor = con.execute(f"SELECT * FROM {qualified} ORDER BY rowid")
        except sqlite3.OperationalError:  # WITHOUT ROWID tables and views
            cursor = con.execute(f"SELECT * FROM {qualified}")
        columns = [d[0] for d in cursor.description]
        values: list[list[str | None]] = [[] for _ in columns]
        row = 0
        while batch := cursor.fetchmany(10_000):
            for record in batch:
                row += 1
                for i, value in enumerate(record):
                    values[i].append(_sqlite_text(src, path, value, row, columns[i]))
        return pd.DataFrame(
            {c: pd.array(v, dtype=TEXT) for c, v in zip(columns, values)},
            index=pd.RangeIndex(row),
        )
    finally:
        con.close()


def _sqlite_text(src: SourceConfig, path: Path, value: Any, row: int, column: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise SourceReadError(
                src.name, path, "value is not valid UTF-8", row=row, column=column
            ) from None
    if isinstance(value, float):
        return repr(value)
    return str(value)
