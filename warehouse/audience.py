"""Audiences on the warehouse: `scv audience` (one, now) and saved audiences (every night).

The filters and their SQL are pure (transforms/audience.py); this module runs that SQL on a
warehouse file and writes audience files:

- `build_audience(store, spec, sql=...)`: the command's audience, on a read-only connection to
  the published warehouse with file access off (the `--sql` query can read no other file);
  a purpose or channel the warehouse has never seen is refused, naming the ones it has.
- `audience_on(con, spec)`: the same on an open connection; with `strict=False` (saved
  audiences) unknown values are reported in `problems` instead, and match nobody.
- `prepare_audience_exports(...)`: called by `Warehouse.prepare_exports` (warehouse/store.py)
  inside its one export routine, so saved audiences are written from the very file about to be
  published, put in place with the tables (warehouse/exports.py) and rewritten by `scv forget`:
  `exports/audiences/<name>/data.parquet` and `exports/audiences/<name>/<name>.csv`.

Consent is always enforced: a customer is written only when their latest decision for the
purpose is a grant. Counts say who was left out and why; no personal data is ever printed.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from quality.csv_safety import safe_csv_frame
from transforms.audience import (
    HASHED_COLUMNS,
    AudienceError,
    AudienceSpec,
    audience_rows,
    audience_sql,
    check_single_select,
    filter_counts_sql,
    filters,
)
from warehouse.schema import SCHEMA


class Published(Protocol):
    """The published warehouse (`warehouse.store.Warehouse` is one): where it is, and its
    opener. A protocol, not the store's class: the store imports this module to export saved
    audiences."""

    published: Path

    def open_published(self, config: dict | None = None) -> duckdb.DuckDBPyConnection: ...


__all__ = [
    "AUDIENCES_DIR",
    "AudienceError",
    "AudienceResult",
    "audience_csv",
    "audience_export_problems",
    "audience_on",
    "available_segments",
    "build_audience",
    "exported_audience",
    "prepare_audience_exports",
    "warehouse_values",
    "write_audience_csv",
]

#: Saved audiences are exported under exports/<AUDIENCES_DIR>/<name>/ (one folder each).
AUDIENCES_DIR = "audiences"


@dataclass
class AudienceResult:
    """An audience's rows and how they were chosen (counts only)."""

    spec: AudienceSpec
    rows: pd.DataFrame
    customers: int
    #: customers matching each filter alone, by `Filter.label`
    filter_counts: dict[str, int]
    matched: int
    no_consent_record: int
    withdrawn: int
    no_identifier: int
    unknown_ids: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def excluded_for_consent(self) -> int:
        return self.no_consent_record + self.withdrawn

    @property
    def written(self) -> int:
        return len(self.rows)

    def counts(self) -> dict[str, Any]:
        """Every count, for metadata and the exports manifest."""
        return {
            "customers": self.customers,
            "filters": dict(self.filter_counts),
            "matched": self.matched,
            "no_consent_record": self.no_consent_record,
            "withdrawn": self.withdrawn,
            "no_identifier": self.no_identifier,
            "rows": self.written,
        }


def _values(con: duckdb.DuckDBPyConnection, sql: str) -> list:
    return [r[0] for r in con.execute(sql).fetchall()]


def warehouse_values(con: duckdb.DuckDBPyConnection) -> dict[str, list]:
    """What audiences can name in this warehouse: consent purposes, channels (lower case), and
    the currencies customers' spend is in (`customer_profile.spend_currency` of a non-zero spend)."""
    return {
        "purposes": _values(con, f"SELECT DISTINCT purpose FROM {SCHEMA}.consent WHERE purpose IS NOT NULL ORDER BY 1"),
        "channels": _values(
            con,
            f"SELECT DISTINCT lower(channel) FROM {SCHEMA}.touchpoint WHERE channel IS NOT NULL "
            "AND customer_id IS NOT NULL ORDER BY 1",
        ),
        "currencies": _values(
            con,
            f"SELECT DISTINCT spend_currency FROM {SCHEMA}.customer_profile "
            "WHERE spend_currency IS NOT NULL AND total_spend <> 0 ORDER BY 1",
        ),
    }


def available_segments(con: duckdb.DuckDBPyConnection) -> dict[str, list[str]]:
    """RFM segments found in the warehouse tonight and the lifecycle stages."""
    from transforms.lifecycle import STAGES

    rfm = _values(con, f"SELECT DISTINCT segment FROM {SCHEMA}.rfm WHERE segment IS NOT NULL ORDER BY 1")
    return {"rfm": rfm, "lifecycle": list(STAGES)}


def _check_values(spec: AudienceSpec, known: dict[str, list], strict: bool) -> tuple[AudienceSpec, list[str]]:
    """`spec` against the warehouse: its purpose, channels and spend currency. Strict: the first
    problem is raised (AudienceError); otherwise every problem is returned and the unknown
    value simply matches nobody."""
    problems: list[str] = []
    if spec.purpose not in known["purposes"]:
        problems.append(
            f"no consent is recorded for purpose {spec.purpose!r}; purposes in the warehouse: "
            + (", ".join(known["purposes"]) or "(none)")
        )
    unknown = [c for c in spec.channels if c not in known["channels"]]
    if unknown:
        problems.append(
            f"no customer was seen on channel {', '.join(unknown)}; channels in the warehouse: "
            + (", ".join(known["channels"]) or "(none)")
        )
    if spec.has_spend_bound and spec.currency is None:
        if len(known["currencies"]) == 1:
            spec = replace(spec, currency=known["currencies"][0])
        elif known["currencies"]:
            problems.append(
                "spend bounds need a currency: customers' spend is in "
                + ", ".join(known["currencies"])
                + " and no currency.reporting converts it; name one (--currency / currency:)"
            )
    if problems and strict:
        raise AudienceError(problems[0])
    return spec, problems


def audience_on(con: duckdb.DuckDBPyConnection, spec: AudienceSpec, *, strict: bool = True) -> AudienceResult:
    """The audience `spec` (checked with `transforms.audience.check_spec`) on the warehouse
    open as `con`."""
    tables = set(
        _values(con, f"SELECT table_name FROM duckdb_tables() WHERE schema_name = '{SCHEMA}' AND database_name = current_database()")
    )
    missing = [t for t in ("customer", "consent", "rfm", "lifecycle", "customer_profile", "touchpoint") if t not in tables]
    if missing:
        raise AudienceError(f"the warehouse has no {', '.join(f'{SCHEMA}.{t}' for t in missing)} table")
    spec, problems = _check_values(spec, warehouse_values(con), strict)
    sql, params, columns = filter_counts_sql(spec)
    counted = dict(zip(columns, con.execute(sql, params).fetchall()[0], strict=True))
    labels = {f.key: f.label for f in filters(spec)}
    sql, params = audience_sql(spec)
    candidates = con.execute(sql, params).df()
    rows, left_out = audience_rows(candidates, spec.format)
    return AudienceResult(
        spec=spec,
        rows=rows,
        customers=int(counted["customers"]),
        filter_counts={labels[k]: int(counted[k]) for k in labels},
        matched=int(counted["matched"]),
        problems=problems,
        **left_out,
    )


def _sql_ids(con: duckdb.DuckDBPyConnection, sql: str) -> list[str]:
    try:
        check_single_select(sql)
    except ValueError as exc:
        raise AudienceError(str(exc)) from None
    try:
        cur = con.execute(sql)
        names = [d[0] for d in cur.description]
        if "customer_id" not in names:
            raise AudienceError(f"--sql must return a customer_id column (it returned: {', '.join(names)})")
        i = names.index("customer_id")
        return sorted({str(r[i]) for r in cur.fetchall() if r[i] is not None})
    except duckdb.Error as exc:
        raise AudienceError(f"--sql failed: {str(exc).splitlines()[0]}") from None


def build_audience(store: Published, spec: AudienceSpec, *, sql: str | None = None) -> AudienceResult:
    """`scv audience`: the audience `spec` (checked) on the published warehouse; `sql`, a
    read-only `SELECT … customer_id …`, is one more filter. Raises AudienceError (one line)
    for a warehouse not built yet, an unknown purpose or channel, or an unusable `sql`."""
    if not store.published.exists():
        raise AudienceError(f"{store.published}: no published warehouse yet (run `scv run` first)")
    # No file or network access beyond the warehouse: --sql can read or write no other file.
    con = store.open_published(config={"enable_external_access": False})
    try:
        unknown = 0
        if sql is not None:
            returned = _sql_ids(con, sql)
            customers = set(_values(con, f"SELECT customer_id FROM {SCHEMA}.customer"))
            unknown = sum(1 for i in returned if i not in customers)
            spec = replace(spec, customer_ids=tuple(i for i in returned if i in customers))
        result = audience_on(con, spec, strict=True)
    except duckdb.Error as exc:  # e.g. a warehouse published by an older version
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AudienceError(f"{store.published}: {first} (a night with this version rebuilds it: scv run)") from None
    finally:
        con.close()
    result.unknown_ids = unknown
    return result


# ------------------------------------------------------------------------------ files
def audience_csv(rows: pd.DataFrame) -> str:
    """The audience rows as CSV text (UTF-8, CRLF, header first). Cells a spreadsheet would
    run as formulas are neutralised with a leading `'`, except E.164 phone numbers (`+` and
    digits only, checked by `transforms.audience.audience_phone`), which an email or SMS tool
    must get as written."""
    safe = safe_csv_frame(rows)
    if "phone" in rows.columns:
        safe["phone"] = rows["phone"]
    return safe.to_csv(index=False, lineterminator="\r\n")


def write_audience_csv(rows: pd.DataFrame, path: Path) -> None:
    """Write the audience rows to `path` as CSV (`audience_csv`), replacing it atomically."""
    from warehouse.report import write_text_atomically

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomically(path, audience_csv(rows))


def _fsync(path: Path) -> None:
    import os

    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def prepare_audience_exports(
    con: duckdb.DuckDBPyConnection,
    specs: tuple[AudienceSpec, ...],
    exports: Path,
    run_id: str,
    moves: list[tuple[Path, Path]],
) -> dict[str, dict[str, Any]]:
    """Write each saved audience of the warehouse open as `con` to hidden files beside its final
    names, appending (hidden file, final name) to `moves` as `Warehouse.prepare_exports` does for
    the tables; returns the exports manifest's `audiences` entries. An unknown purpose, channel
    or spend currency is a `problem` (that filter matches nobody), not a failure: one audience
    never stops a night. Folders of audiences no longer in the config are deleted (they may
    hold people who have since withdrawn consent or been erased)."""
    root = exports / AUDIENCES_DIR
    wanted = {s.name for s in specs}
    if root.exists():
        for folder in root.iterdir():
            if folder.is_dir() and folder.name not in wanted:
                shutil.rmtree(folder)
            elif folder.is_dir():
                for stale in folder.glob(".*.tmp"):
                    stale.unlink()  # left by a night that died before its journal
    entries: dict[str, dict[str, Any]] = {}
    for spec in specs:
        result = audience_on(con, spec, strict=False)
        folder = root / str(spec.name)
        folder.mkdir(parents=True, exist_ok=True)
        # dot-names without the final suffix: never matched by a reader's *.parquet / *.csv glob
        data_tmp, csv_tmp = folder / f".data.{run_id}.tmp", folder / f".csv.{run_id}.tmp"
        moves.append((data_tmp, folder / "data.parquet"))
        pq.write_table(pa.Table.from_pandas(result.rows, preserve_index=False), data_tmp, compression="zstd")
        _fsync(data_tmp)
        moves.append((csv_tmp, folder / f"{spec.name}.csv"))
        with open(csv_tmp, "w", encoding="utf-8", newline="") as fh:
            fh.write(audience_csv(result.rows))
        _fsync(csv_tmp)
        entries[str(spec.name)] = {
            "path": f"{AUDIENCES_DIR}/{spec.name}/data.parquet",
            "csv": f"{AUDIENCES_DIR}/{spec.name}/{spec.name}.csv",
            "description": result.spec.describe(),
            "definition": result.spec.as_dict(),
            "columns": list(result.rows.columns),
            "hashing": "SHA-256 hex" if list(result.rows.columns) == list(HASHED_COLUMNS) else None,
            "problems": result.problems,
            **result.counts(),
        }
    return entries


# ----------------------------------------------------------------------------- tonight's files
def audience_export_problems(manifest: dict, exports: Path, run_id: str, name: str) -> list[str]:
    """One line per way the export of audience `name` does not hold tonight's night: the
    manifest names another run or lacks the audience, a file is missing, or the Parquet file
    holds another number of rows than the manifest says."""
    problems = []
    if manifest.get("run_id") != run_id:
        problems.append(f"{exports / 'manifest.json'} is of run {manifest.get('run_id')}")
    entry = manifest.get("audiences", {}).get(name)
    if entry is None:
        return [*problems, f"{exports / 'manifest.json'} has no audience {name!r}"]
    data, csv = exports / entry["path"], exports / entry["csv"]
    for path in (data, csv):
        if not path.exists():
            problems.append(f"{path} is missing")
    if data.exists() and pq.read_metadata(data).num_rows != entry["rows"]:
        problems.append(f"{data} holds {pq.read_metadata(data).num_rows} rows, the manifest {entry['rows']}")
    return problems


def exported_audience(exports: Path, run_id: str, name: str) -> dict[str, Any]:
    """The exports manifest's entry of audience `name` (counts, definition, problems), its
    files as absolute paths (`csv`, `path`), once they are known to hold run `run_id`'s
    night; AudienceError naming every problem otherwise."""
    manifest = json.loads((exports / "manifest.json").read_text(encoding="utf-8"))
    problems = audience_export_problems(manifest, exports, run_id, name)
    if problems:
        raise AudienceError("; ".join(problems))
    entry = manifest["audiences"][name]
    return {**entry, "csv": exports / entry["csv"], "path": exports / entry["path"]}
