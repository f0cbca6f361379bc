"""Erase a person from the warehouse files for good (`scv forget`, GDPR art. 17).

Erasure (GDPR art. 17) touches, in this order, so that a crash at any point leaves either the
old warehouse whole (and a rerun of the same command finishes the job) or the new one:

1. the suppression list `<data_dir>/privacy/suppression.csv` gains the keyed hashes of the
   person's identifiers (replaced atomically), so later nights keep them out even if the rest
   fails (erased_rows.py explains what is hashed);
2. the staging warehouse (the night being built, with personal data) and everything under
   `landing/<source>/` (the landed copies and the state that lets a night skip an unchanged file)
   are deleted, so the next night re-reads and re-validates every source;
3. a new warehouse file is written beside the published one, table by table, from the published
   tables minus the person's rows; every export is written from it to a hidden file;
4. the new file is renamed over the published one (`os.replace`), then every export into place
   (warehouse/exports.py: a crash between the two is finished by whoever takes the lock next);
5. one line is appended to `<data_dir>/privacy/erasure_log.jsonl`: when, the hashed subject,
   rows removed per table. No personal data.

Why a new file rather than `DELETE` in a copy: DuckDB leaves deleted values in the file's free
blocks after a checkpoint, so a copy-and-delete would still hold the erased strings on disk.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pandas as pd

from transforms.sql_text import quote_literal
from warehouse.exports import ExportError, clear_journal, fsync_dir
from warehouse.privacy.erased_rows import HASH_PREFIX, hash_identifier, key_verifier
from warehouse.privacy.subject import (
    Lookup,
    SourceHints,
    find_subject,
    quarantine_matches,
    table_columns,
)
from warehouse.privacy.suppression import (
    PrivacyError,
    add_to_suppression,
    append_erasure_log,
    check_privacy_key,
)
from warehouse.schema import SCHEMA, TABLES
from warehouse.store import Warehouse, WarehouseBusy, connect

__all__ = ["ErasureResult", "forget"]


@dataclass
class ErasureResult:
    """What `forget` did, in counts: safe to print and log."""

    subject: str
    customers: int
    former_ids: int
    source_records: int
    rows_removed: dict[str, int]
    exports_rewritten: list[str]
    identifiers_suppressed: int
    identifiers_shared: int
    suppression_added: int
    staging_deleted: bool
    landing_files_deleted: int

    @property
    def rows_removed_total(self) -> int:
        return sum(self.rows_removed.values())


def _id_columns(columns: Iterable[str]) -> list[str]:
    return [c for c in columns if c == "customer_id" or c.endswith("_customer_id")]


def _ordered(names: Iterable[str]) -> list[str]:
    names = list(names)
    return [t for t in TABLES if t in names] + sorted(t for t in names if t not in TABLES)


def _copy_comments(con, table: str) -> None:
    meta = con.execute(
        "SELECT comment FROM duckdb_tables() WHERE database_name = 'pub' AND schema_name = ? "
        "AND table_name = ?",
        [SCHEMA, table],
    ).fetchall()
    if meta and meta[0][0]:
        con.execute(f"COMMENT ON TABLE {SCHEMA}.{table} IS {quote_literal(meta[0][0])}")
    for col, comment in con.execute(
        "SELECT column_name, comment FROM duckdb_columns() WHERE database_name = 'pub' "
        "AND schema_name = ? AND table_name = ? AND comment IS NOT NULL",
        [SCHEMA, table],
    ).fetchall():
        con.execute(f'COMMENT ON COLUMN {SCHEMA}.{table}."{col}" IS {quote_literal(comment)}')


def _copy_table_without(con, table: str, columns: list[str], erase_quarantine: bool) -> int:
    """scv.<table> of the new file = pub.scv.<table> minus the subject's rows; rows removed."""
    conds = [
        f'coalesce("{c}" IN (SELECT id FROM _erase_ids), false)' for c in _id_columns(columns)
    ]
    if erase_quarantine:
        conds.append("rowid IN (SELECT id FROM _erase_rows)")
    where = f" WHERE NOT ({' OR '.join(conds)})" if conds else ""
    con.execute(f"CREATE TABLE {SCHEMA}.{table} AS SELECT * FROM pub.{SCHEMA}.{table}{where}")
    _copy_comments(con, table)
    before = con.execute(f"SELECT count(*) FROM pub.{SCHEMA}.{table}").fetchall()[0][0]
    after = con.execute(f"SELECT count(*) FROM {SCHEMA}.{table}").fetchall()[0][0]
    return int(before) - int(after)


def _swap_in(store: Warehouse, new_file: Path) -> list[str]:
    """Rename `new_file` over the published warehouse with every export rewritten from it, as a
    night publishes (warehouse/exports.py: all exports written first, the warehouse renamed,
    then the exports; a crash in between is finished by whoever takes the lock next). The
    manifest keeps the night's run id and as-of date. Returns the tables exported."""
    manifest_path = store.exports / "manifest.json"
    prepared = None
    if manifest_path.exists():
        night = json.loads(manifest_path.read_text(encoding="utf-8"))
        try:
            prepared = store.prepare_swap(
                new_file, str(night.get("run_id") or "erasure"), night.get("as_of_date")
            )
        except ExportError as exc:
            raise PrivacyError(str(exc)) from None
    os.replace(new_file, store.published)
    fsync_dir(store.published.parent)
    if prepared is None:
        return []
    prepared.commit()
    clear_journal(store.exports)
    return [t for t in _ordered(prepared.manifest["tables"])]


def _delete_landing(landing_dir: Path) -> int:
    """Delete everything under `landing/<source>/`: the landed copy of each source (it holds the
    person's rows) and the state that lets a night skip an unchanged file or reuse last night's
    validation (landing.json, accepted.json). The next night re-reads and re-validates every
    source, through the suppression list. Returns the number of files deleted."""
    if not landing_dir.exists():
        return 0
    n = 0
    for folder in landing_dir.iterdir():
        if not folder.is_dir():
            continue
        for f in folder.rglob("*"):
            if f.is_file() or f.is_symlink():
                f.unlink()
                n += 1
    return n


def _identity(path: Path) -> tuple[int, int, int]:
    st = path.stat()
    return st.st_ino, st.st_mtime_ns, st.st_size


def forget(
    store: Warehouse,
    data_dir: Path,
    key: str,
    lookup: Lookup,
    hints: SourceHints = SourceHints(),
    *,
    landing_dir: Path | None = None,
    now: datetime | None = None,
) -> ErasureResult:
    """Erase the person named by `lookup` from the published warehouse, the exports, staging and
    landing, and suppress their identifiers for later nights (see the module docstring).

    Raises PrivacyError (one line, no personal data) when there is no key, no warehouse, no
    customer for the identifier, or a night is being built (it holds the warehouse's lock).
    """
    try:
        with store.exclusive("scv forget"):
            return _forget(store, data_dir, key, lookup, hints, landing_dir=landing_dir, now=now)
    except WarehouseBusy as exc:
        raise PrivacyError(str(exc)) from None


def _forget(
    store: Warehouse,
    data_dir: Path,
    key: str,
    lookup: Lookup,
    hints: SourceHints,
    *,
    landing_dir: Path | None,
    now: datetime | None,
) -> ErasureResult:
    if not key:
        raise PrivacyError("no privacy key configured")
    # Hashes under another key than the list's match nobody: refuse before adding any.
    check_privacy_key(data_dir, key)
    if not store.published.exists():
        raise PrivacyError(f"{store.published}: no published warehouse yet (run `scv run` first)")
    now = now or datetime.now(timezone.utc).replace(microsecond=0)
    landing_dir = landing_dir if landing_dir is not None else Path(data_dir) / "landing"
    published = store.published
    tmp = published.with_name(published.name + ".forgetting")
    for leftover in (tmp, Path(str(tmp) + ".wal")):
        leftover.unlink(missing_ok=True)

    seen = _identity(published)
    con = connect(tmp)
    try:
        con.execute(f"ATTACH {quote_literal(published)} AS pub (READ_ONLY)")
        subject = find_subject(con, lookup, hints, catalog="pub")
        if subject is None:
            raise PrivacyError(f"no customer found for that {lookup.label}")
        if lookup.kind != "customer_id" and len(subject.current_ids) > 1:
            # Two customers behind one email: one person linkage kept apart, or two people
            # sharing it. Only a human can tell; erasing both could erase the wrong person.
            flag = "--" + lookup.kind.replace("_", "-")
            raise PrivacyError(
                f"that {lookup.label} is held by {len(subject.current_ids)} customers "
                f"({', '.join(subject.current_ids)}): check them with `scv access {flag} …` "
                "and forget each one that is this person by --customer-id"
            )
        subject.quarantine_rowids = quarantine_matches(con, "pub", subject, hints)
        subject_hash = hash_identifier(subject.lookup_identifier, key)
        hashes = subject.identifier_hashes(key)
        added = add_to_suppression(
            data_dir, hashes, subject_hash[: HASH_PREFIX], now, verifier=key_verifier(key)
        )

        staging_existed = store.staging.exists()
        store.reset_staging()
        landing_deleted = _delete_landing(landing_dir)
        # Derived HTML views that may quote record values; the next night writes them again.
        for derived in (Path(data_dir) / "reports" / "linkage", Path(data_dir) / "quality" / "docs"):
            shutil.rmtree(derived, ignore_errors=True)

        con.register("_erase_ids", pd.DataFrame({"id": pd.Series(subject.customer_ids, dtype="str")}))
        con.register(
            "_erase_rows", pd.DataFrame({"id": pd.Series(subject.quarantine_rowids, dtype="int64")})
        )
        con.execute(f"CREATE SCHEMA {SCHEMA}")
        tables = table_columns(con, "pub")
        removed: dict[str, int] = {}
        for table in _ordered(tables):
            removed[table] = _copy_table_without(
                con, table, tables[table], erase_quarantine=(table == "quarantine")
            )
        con.unregister("_erase_ids")
        con.unregister("_erase_rows")
        con.execute("CHECKPOINT")
        con.execute("DETACH pub")
        con.close()
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        if _identity(published) != seen:
            # A night was published meanwhile: swapping ours in would throw that night away.
            raise PrivacyError(
                "the warehouse was published again while forgetting; nothing replaced: run "
                "the same `scv forget` again"
            )
        exported = _swap_in(store, tmp)
    except BaseException:
        try:
            con.close()
        except duckdb.Error:
            pass
        for leftover in (tmp, Path(str(tmp) + ".wal")):
            leftover.unlink(missing_ok=True)
        raise

    result = ErasureResult(
        subject=subject_hash[: HASH_PREFIX],
        customers=len(subject.current_ids),
        former_ids=len(subject.customer_ids) - len(subject.current_ids),
        source_records=len(subject.records),
        rows_removed={t: n for t, n in removed.items() if n},
        exports_rewritten=exported,
        identifiers_suppressed=len(hashes),
        identifiers_shared=len(subject.shared),
        suppression_added=added,
        staging_deleted=staging_existed,
        landing_files_deleted=landing_deleted,
    )
    append_erasure_log(
        data_dir,
        {
            "erased_at": now.isoformat(),
            "subject": subject_hash,
            "identified_by": lookup.kind,
            "customers": result.customers,
            "former_customer_ids": result.former_ids,
            "source_records": result.source_records,
            "rows_removed": removed,
            "rows_removed_total": result.rows_removed_total,
            "exports_rewritten": exported,
            "identifiers_suppressed": result.identifiers_suppressed,
            "identifiers_shared_not_suppressed": result.identifiers_shared,
            "staging_deleted": staging_existed,
            "landing_files_deleted": landing_deleted,
        },
    )
    return result
