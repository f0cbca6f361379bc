"""Standardising a changed person file without standardising its unchanged rows again.

A record's standardised row depends only on its own canonical values, the source's config and,
for the date of birth, the as-of date. So a row whose canonical values hash as last night's
(`input_hashes`) takes last night's standardised row, unless its date of birth is judged
differently tonight: an "impossible" birth date is always recomputed, and a kept birth date
must still lie in tonight's window (`dates.dob_window`). The caller keeps the rows together
with the source's config and code version, and passes them only when those are unchanged.

The matching and the copying run in SQL on the staging tables (`reuse_plan`, `write_reusing`):
at a million rows, fetching last night's rows into pandas and reshuffling them cost more than
standardising the changed ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

import duckdb
import numpy as np
import pandas as pd

from transforms.frame_types import typed_table

from . import PERSON_STD_COLUMNS, PERSON_STD_TYPES
from .dates import dob_window

__all__ = ["DOB_IMPOSSIBLE", "input_hashes", "reuse_plan", "write_reusing"]

#: The field issue whose verdict depends on the as-of date.
DOB_IMPOSSIBLE = "date_of_birth:impossible"


def input_hashes(canon: pd.DataFrame) -> np.ndarray:
    """Per row, a 64-bit hash (DuckDB's `hash`, which tells NULL from '' and never runs two
    values together) of every canonical column standardisation reads, all but the row's
    position in its file; the column names are hashed too, so a new mapping changes it."""
    cols = sorted(c for c in canon.columns if c != "_row_number")
    if not len(canon):
        return np.zeros(0, dtype=np.int64)
    con = duckdb.connect()
    try:
        con.register("canon", canon[cols])
        names = "\x1f".join(cols).replace("'", "''")
        values = ", ".join(f'"{c}"::VARCHAR' for c in (c.replace('"', '""') for c in cols))
        out = con.execute(f"SELECT hash('{names}', {values}) AS h FROM canon").fetchnumpy()
    finally:
        con.close()
    return np.asarray(out["h"], dtype=np.uint64).view(np.int64)  # stored as BIGINT


def reuse_plan(con, canon: pd.DataFrame, accepted: str, inputs: str, as_of: date | None) -> tuple[np.ndarray, pd.DataFrame]:
    """(the input hash of each row of `canon`, the rows that can take last night's standardised
    row: `_row_number` tonight and `prev_row_number`, the row of table `accepted` to take).

    `accepted` and `inputs` are last night's standardised rows and their input hashes
    (`_row_number, input_hash`) on connection `con`, made under the same source config and code;
    pass None for both when there are none. Work is done in SQL: the rows are never fetched.
    """
    hashes = input_hashes(canon)
    none = pd.DataFrame({"_row_number": pd.Series(dtype="int64"), "prev_row_number": pd.Series(dtype="int64")})
    if accepted is None or not len(canon):
        return hashes, none
    have = [r[0] for r in con.execute(f"SELECT column_name FROM (DESCRIBE {accepted})").fetchall()]
    if have != list(PERSON_STD_COLUMNS):  # made by other code: nothing to take
        return hashes, none
    earliest, latest = dob_window(as_of)
    cur = pd.DataFrame({"_row_number": canon["_row_number"].to_numpy(dtype="int64"), "input_hash": hashes})
    con.register("_reuse_current", cur)
    try:
        reused = con.execute(
            f"""
            WITH prev AS (
                SELECT h.input_hash, min(a._row_number) AS prev_row_number
                FROM {inputs} h JOIN {accepted} a USING (_row_number)
                WHERE NOT coalesce(list_contains(a.field_issues, '{DOB_IMPOSSIBLE}'), FALSE)
                  AND (try_strptime(a.dob, '%Y-%m-%d') IS NULL
                       OR try_strptime(a.dob, '%Y-%m-%d')::DATE BETWEEN ?::DATE AND ?::DATE)
                GROUP BY h.input_hash
            )
            SELECT c._row_number, p.prev_row_number
            FROM _reuse_current c JOIN prev p USING (input_hash)
            ORDER BY c._row_number
            """,
            [earliest.date(), latest.date()],
        ).df()
    finally:
        con.unregister("_reuse_current")
    return hashes, reused.astype("int64")


def write_reusing(
    con,
    fresh: pd.DataFrame,
    reused: pd.DataFrame,
    hashes: pd.DataFrame,
    accepted: str,
    inputs: str,
    types: Mapping[str, str] = PERSON_STD_TYPES,
) -> int:
    """Replace table `accepted` with tonight's standardised rows: `fresh` (standardised tonight)
    plus, for each row of `reused`, last night's row `prev_row_number` of `accepted` under
    tonight's `_row_number`, in row-number order; and table `inputs` with the input hashes
    (`hashes`: `_row_number, input_hash`) of the rows kept. Returns the row count. Runs inside
    the caller's transaction; with nothing reused it is a plain write of `fresh`.

    When every reused row comes from a different row of last night, the table is changed in
    place: rows not reused are deleted, reused rows that moved get tonight's row number, and
    the fresh rows are inserted. At 600k rows that is about 1 s against 7 s for writing the
    table again (DuckDB compresses every column of a rewritten table). The table's physical
    order then no longer follows `_row_number`; readers that need an order ask for it.

    `fresh` is written with the declared `types` (default: the standardised person columns),
    never with types DuckDB would guess from its first rows."""
    con.register("_fresh", typed_table(fresh, types, what=accepted))
    con.register("_reused", reused)
    con.register("_hashes", hashes)
    try:
        if len(reused):
            kept = con.execute(f"SELECT column_name, column_type FROM (DESCRIBE {accepted})").fetchall()
            if [t[0] for t in kept] != list(types):
                raise ValueError(f"{accepted}: columns differ from tonight's standardised rows")
            cast = ", ".join(f'CAST("{c}" AS {t}) AS "{c}"' for c, t in kept)
            if reused["prev_row_number"].is_unique:
                con.execute(f"DELETE FROM {accepted} WHERE _row_number NOT IN (SELECT prev_row_number FROM _reused)")
                con.execute(
                    f"UPDATE {accepted} AS a SET _row_number = r._row_number FROM _reused r "
                    "WHERE a._row_number = r.prev_row_number AND r._row_number <> r.prev_row_number"
                )
                con.execute(f"INSERT INTO {accepted} SELECT {cast} FROM _fresh")
            else:  # one row of last night stands for several tonight: copy it
                con.execute(
                    f"""
                    CREATE OR REPLACE TABLE {accepted} AS
                    SELECT * FROM (
                        SELECT {cast} FROM _fresh
                        UNION ALL
                        SELECT a.* REPLACE (r._row_number AS _row_number)
                        FROM {accepted} a JOIN _reused r ON a._row_number = r.prev_row_number
                    ) ORDER BY _row_number
                    """
                )
        else:
            con.execute(f"CREATE OR REPLACE TABLE {accepted} AS SELECT * FROM _fresh")
        con.execute(
            f"CREATE OR REPLACE TABLE {inputs} AS SELECT _row_number, input_hash FROM _hashes "
            f"WHERE _row_number IN (SELECT _row_number FROM {accepted}) ORDER BY _row_number"
        )
        return int(con.execute(f"SELECT count(*) FROM {accepted}").fetchall()[0][0])
    finally:
        for view in ("_fresh", "_reused", "_hashes"):
            con.unregister(view)
