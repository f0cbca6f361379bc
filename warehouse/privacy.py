"""Privacy operations on the warehouse files: erase a person (`scv forget`), show everything held
about them (`scv access`), and build consent-aware audience files (`scv audience`).

Erasure (GDPR art. 17) touches, in this order, so that a crash at any point leaves either the
old warehouse whole (and a rerun of the same command finishes the job) or the new one:

1. the suppression list `<data_dir>/privacy/suppression.csv` gains the keyed hashes of the
   person's identifiers (replaced atomically), so later nights keep them out even if the rest
   fails (transforms/privacy.py explains what is hashed);
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

import csv
import io
import json
import math
import os
import shutil
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import duckdb
import numpy as np
import pandas as pd

from transforms import privacy as P
from warehouse.audience import (
    AudienceResult,
    available_segments,
    build_audience,
    write_audience_csv,
)
from warehouse.exports import ExportError, clear_journal, fsync_dir
from warehouse.schema import SCHEMA, TABLES
from warehouse.store import Warehouse, WarehouseBusy

__all__ = [
    "ERASURE_LOG",
    "LIFECYCLE_STAGES",
    "PRIVACY_DIR",
    "SUPPRESSION_FILE",
    "AudienceResult",
    "ErasureResult",
    "Lookup",
    "PrivacyError",
    "SourceHints",
    "Subject",
    "access_document",
    "add_to_suppression",
    "available_segments",
    "build_audience",
    "check_privacy_key",
    "find_subject",
    "forget",
    "load_suppression",
    "read_erasure_log",
    "suppression_key_verifier",
    "write_audience_csv",
]

PRIVACY_DIR = "privacy"
SUPPRESSION_FILE = "suppression.csv"
ERASURE_LOG = "erasure_log.jsonl"
SUPPRESSION_COLUMNS = ("hash", "kind", "subject", "added_at")
#: Lifecycle stages (CONTRACT §4).
LIFECYCLE_STAGES = ("prospect", "new", "active", "at_risk", "lost", "reactivated")


class PrivacyError(Exception):
    """A privacy operation that cannot be done; the message is one line without personal data."""


# ------------------------------------------------------------------------------ suppression list
def _privacy_dir(data_dir: Path) -> Path:
    return Path(data_dir) / PRIVACY_DIR


def _suppression_rows(data_dir: Path) -> list[dict[str, str]]:
    path = _privacy_dir(data_dir) / SUPPRESSION_FILE
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def load_suppression(data_dir: Path) -> set[str]:
    """Every keyed hash of an identifier in `<data_dir>/privacy/suppression.csv` (empty before
    the first erasure); the key verifier is not one."""
    return {
        row["hash"]
        for row in _suppression_rows(data_dir)
        if row.get("hash") and row.get("kind") != P.KEY_VERIFIER_KIND
    }


def suppression_key_verifier(data_dir: Path) -> str | None:
    """The verifier of the key the suppression list was written with, or None (no list yet, or
    one written before lists recorded it)."""
    for row in _suppression_rows(data_dir):
        if row.get("kind") == P.KEY_VERIFIER_KIND and row.get("hash"):
            return row["hash"]
    return None


def check_privacy_key(data_dir: Path, key: str | None, key_env: str = "SCV_PRIVACY_KEY") -> None:
    """Raise PrivacyError (one line: the reason and the fix) when the suppression list of erased
    people cannot be matched with `key`: it is not empty and there is no key, or it records
    the verifier of another key. Hashes under another key match nobody, so a night going on
    would let every erased person back. A list without a verifier (written before lists recorded
    one) cannot be checked and passes; the next `scv forget` adds the verifier."""
    rows = _suppression_rows(data_dir)
    if not rows:
        return
    path = _privacy_dir(data_dir) / SUPPRESSION_FILE
    if not key:
        raise PrivacyError(
            f"{path} lists erased people but no privacy key is set: set ${key_env} (or "
            "privacy.key) to the key `scv forget` used, or erased people would come back"
        )
    recorded = next(
        (r["hash"] for r in rows if r.get("kind") == P.KEY_VERIFIER_KIND and r.get("hash")), None
    )
    if recorded is not None and recorded != P.key_verifier(key):
        raise PrivacyError(
            f"${key_env} is not the privacy key {path} was written with: set ${key_env} (or "
            "privacy.key) back to the key `scv forget` used; with another key erased people "
            "would come back, so nothing was read or published"
        )


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def add_to_suppression(
    data_dir: Path,
    hashes: Mapping[str, str],
    subject: str,
    when: datetime,
    verifier: str | None = None,
) -> int:
    """Add `hash -> kind` entries (kind: record, email_key, email_std, phone_e164) for one
    subject, and the key's `verifier` (`transforms.privacy.key_verifier`) when the list has
    none yet; the file is rewritten whole and renamed into place. Returns how many identifier
    hashes were new."""
    path = _privacy_dir(data_dir) / SUPPRESSION_FILE
    rows = _suppression_rows(data_dir)
    if verifier and not any(r.get("kind") == P.KEY_VERIFIER_KIND for r in rows):
        rows.insert(0, {"hash": verifier, "kind": P.KEY_VERIFIER_KIND, "subject": "", "added_at": _iso(when)})
    known = {r["hash"] for r in rows}
    added = 0
    for h, kind in sorted(hashes.items(), key=lambda kv: (kv[1], kv[0])):
        if h in known:
            continue
        rows.append({"hash": h, "kind": kind, "subject": subject, "added_at": _iso(when)})
        known.add(h)
        added += 1
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(SUPPRESSION_COLUMNS), lineterminator="\n")
    writer.writeheader()
    writer.writerows({c: r.get(c, "") for c in SUPPRESSION_COLUMNS} for r in rows)
    _write_atomically(path, buf.getvalue())
    return added


def _append_erasure_log(data_dir: Path, entry: Mapping[str, Any]) -> None:
    path = _privacy_dir(data_dir) / ERASURE_LOG
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(entry, sort_keys=False, ensure_ascii=True) + "\n"
    # One write of one line to a file opened for appending: concurrent appenders never
    # interleave inside a line, and a crash loses at most this line.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)


def read_erasure_log(data_dir: Path) -> list[dict[str, Any]]:
    """The erasure log, oldest first (an empty list before the first erasure)."""
    path = _privacy_dir(data_dir) / ERASURE_LOG
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


# --------------------------------------------------------------------------------- the subject
@dataclass(frozen=True)
class SourceHints:
    """What the config says that the warehouse alone does not: each person source's default
    country (to read national phone numbers) and which person source and key column each
    order / event / consent source refers to (to find a person's rejected activity rows)."""

    default_country: Mapping[str, str | None] = field(default_factory=dict)
    person_refs: Mapping[str, tuple[str, str]] = field(default_factory=dict)

    @classmethod
    def from_config(cls, cfg) -> SourceHints:
        return cls(
            default_country={
                n: s.default_country for n, s in cfg.sources.items() if s.kind == "person"
            },
            person_refs={
                n: (s.person.source, s.person.key)
                for n, s in cfg.sources.items()
                if s.person is not None
            },
        )


@dataclass(frozen=True)
class Lookup:
    """How the person was named on the command line: exactly one of email, phone, customer id."""

    kind: Literal["email", "phone", "customer_id"]
    value: str

    @classmethod
    def of(
        cls, email: str | None = None, phone: str | None = None, customer_id: str | None = None
    ) -> Lookup:
        given = [(k, v) for k, v in (("email", email), ("phone", phone), ("customer_id", customer_id)) if v]
        if len(given) != 1:
            raise PrivacyError("name the person by exactly one of --email, --phone, --customer-id")
        kind, value = given[0]
        return cls(kind, value.strip())  # type: ignore[arg-type]

    @property
    def label(self) -> str:
        return {"email": "email", "phone": "phone number", "customer_id": "customer id"}[self.kind]


@dataclass
class Subject:
    """Everything that identifies one person in the warehouse (kept in memory only).

    `shared` holds the emails / phones (email keys and E.164) that other customers hold too: a
    couple's common address, a family landline. They are not suppressed and not used to match
    quarantined rows, or the other person would be erased as well; the subject's own records
    are still suppressed by their ids."""

    customer_ids: list[str]
    current_ids: list[str]
    records: list[tuple[str, str]]
    emails: set[str]
    email_keys: set[str]
    phones: set[str]
    lookup_identifier: str
    shared: set[str] = field(default_factory=set)
    quarantine_rowids: list[int] = field(default_factory=list)

    @property
    def own_emails(self) -> set[str]:
        from transforms.standardise import email_key

        return {e for e in self.emails if email_key(e) not in self.shared}

    @property
    def own_email_keys(self) -> set[str]:
        return self.email_keys - self.shared

    @property
    def own_phones(self) -> set[str]:
        return self.phones - self.shared

    def identifier_hashes(self, key: str) -> dict[str, str]:
        """hash -> kind of every identifier to suppress (shared ones left out)."""
        out: dict[str, str] = {}
        for source, rec in self.records:
            out[P.hash_identifier(P.record_identifier(source, rec), key)] = "record"
        for e in self.own_emails:
            out.setdefault(P.hash_identifier(e, key), "email_std")
        for k in self.own_email_keys:
            out[P.hash_identifier(k, key)] = "email_key"
        for p in self.own_phones:
            out[P.hash_identifier(p, key)] = "phone_e164"
        return out


def _ref(catalog: str | None, table: str) -> str:
    return f"{catalog}.{SCHEMA}.{table}" if catalog else f"{SCHEMA}.{table}"


def _tables(con: duckdb.DuckDBPyConnection, catalog: str | None) -> dict[str, list[str]]:
    """name -> columns of every table in schema scv of `catalog` (default: the main database)."""
    db = catalog or con.execute("SELECT current_database()").fetchall()[0][0]
    rows = con.execute(
        "SELECT table_name, column_name FROM duckdb_columns() "
        "WHERE database_name = ? AND schema_name = ? ORDER BY table_name, column_index",
        [db, SCHEMA],
    ).fetchall()
    out: dict[str, list[str]] = {}
    for t, c in rows:
        out.setdefault(t, []).append(c)
    return out


def _values(con, sql: str, params: list | None = None) -> list:
    return [r[0] for r in con.execute(sql, params or []).fetchall()]


def _email_parts(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(email_std, email_key) per value, as the nightly standardiser computes them."""
    from transforms.standardise import standardise_emails

    if values.empty:
        return np.array([], dtype=object), np.array([], dtype=object)
    std, keys, _ = standardise_emails(values.astype("str"))
    return std, keys


def _phones_of(records: pd.DataFrame, hints: SourceHints) -> np.ndarray:
    """E.164 of the `phone` column of person_record rows, read in the record's country, else its
    source's default country (as the nightly standardiser reads them)."""
    from transforms.standardise import standardise_phones
    from transforms.standardise.places import country_codes

    if records.empty:
        return np.array([], dtype=object)
    country, _ = country_codes(records["country"].astype("str"))
    region = pd.Series(country, index=records.index, dtype="str")
    default = records["source"].map(lambda s: hints.default_country.get(s)).astype("str")
    region = region.fillna(default)
    e164, _ = standardise_phones(records["phone"].astype("str"), region)
    return e164


def _phone_candidates(value: str, hints: SourceHints) -> set[str]:
    from transforms.standardise import standardise_phone

    text = value.strip()
    if text.startswith(("+", "00")):
        found = standardise_phone(text, None)
        return {found} if found else set()
    regions = sorted({r for r in hints.default_country.values() if r})
    return {p for p in (standardise_phone(text, r) for r in regions) if p}


def _national_digits(e164: str) -> str:
    import phonenumbers

    try:
        return phonenumbers.national_significant_number(phonenumbers.parse(e164, None))
    except phonenumbers.NumberParseException:
        return e164.lstrip("+")


class _People:
    """Who holds an identifier, on golden records or on source records (scv.person_record).

    Every search narrows the rows in SQL first (a substring of the email's local part, the
    phone's national digits at the end) and standardises only those: the warehouse may hold
    millions of records, and phonenumbers costs ~45 µs a number."""

    def __init__(self, con, catalog: str | None, hints: SourceHints) -> None:
        self.con, self.catalog, self.hints = con, catalog, hints
        self.tables = _tables(con, catalog)
        self.has_records = "person_record" in self.tables

    def _df(self, sql: str, params: list) -> pd.DataFrame:
        return self.con.execute(sql, params).df()

    def email_key_holders(self, keys: Iterable[str]) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for k in keys:
            needle = k.split("@", 1)[0].split("+", 1)[0].replace(".", "")
            holders: set[str] = set()
            sources = [("customer", "customer_id, email")]
            if self.has_records:
                sources.append(("person_record", "customer_id, email"))
            for table, cols in sources:
                df = self._df(
                    f"SELECT {cols} FROM {_ref(self.catalog, table)} WHERE email IS NOT NULL "
                    "AND customer_id IS NOT NULL "
                    "AND strpos(replace(lower(email), '.', ''), ?) > 0",
                    [needle],
                )
                if len(df):
                    _, found = _email_parts(df["email"])
                    holders |= set(df["customer_id"][pd.Series(found, index=df.index) == k])
            out[k] = holders
        return out

    def phone_holders(self, phones: Iterable[str]) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for p in phones:
            holders = set(
                _values(
                    self.con,
                    f"SELECT customer_id FROM {_ref(self.catalog, 'customer')} WHERE phone = ?",
                    [p],
                )
            )
            if self.has_records:
                df = self._df(
                    f"SELECT source, customer_id, phone, country "
                    f"FROM {_ref(self.catalog, 'person_record')} WHERE phone IS NOT NULL "
                    "AND customer_id IS NOT NULL "
                    "AND regexp_replace(phone, '[^0-9]', '', 'g') LIKE '%' || ?",
                    [_national_digits(p)],
                )
                if len(df):
                    e164 = pd.Series(_phones_of(df, self.hints), index=df.index, dtype=object)
                    holders |= set(df["customer_id"][e164 == p])
            out[p] = holders
        return out


def find_subject(
    con: duckdb.DuckDBPyConnection,
    lookup: Lookup,
    hints: SourceHints = SourceHints(),
    catalog: str | None = None,
) -> Subject | None:
    """The customers (and their records and identifiers) named by `lookup`, or None.

    An email or phone names every customer holding it on their golden record or on any of
    their source records (compared by email match key / E.164, as the nightly run compares
    them). Ids a customer had before merges (scv.customer_id_history) count as theirs.
    Raises PrivacyError for an identifier that is not a valid email / phone number.
    """
    from transforms.standardise import email_key, standardise_email

    people = _People(con, catalog, hints)
    tables = people.tables
    if "customer" not in tables or "customer_xref" not in tables:
        raise PrivacyError("the warehouse has no scv.customer table (run `scv run` first)")
    xref_ids = set(_values(con, f"SELECT DISTINCT customer_id FROM {_ref(catalog, 'customer_xref')}"))
    customer_ids = set(_values(con, f"SELECT customer_id FROM {_ref(catalog, 'customer')}"))
    current = xref_ids | customer_ids

    ids: set[str] = set()
    lookup_identifier = lookup.value
    if lookup.kind == "customer_id":
        ids = {lookup.value} & current
        lookup_identifier = f"customer:{lookup.value}"
    elif lookup.kind == "email":
        target = email_key(lookup.value)
        if not standardise_email(lookup.value) or not target:
            raise PrivacyError(
                "that is not a valid email address (invalid, or a placeholder such as test@…)"
            )
        lookup_identifier = target
        ids = people.email_key_holders([target])[target]
    else:
        candidates = _phone_candidates(lookup.value, hints)
        if not candidates:
            raise PrivacyError(
                "that is not a valid phone number (write it with its country code, e.g. +44…)"
            )
        held = {p: h for p, h in people.phone_holders(sorted(candidates)).items() if h}
        ids = set().union(*held.values()) if held else set()
        # A national number may read validly in several default countries: name the one held.
        lookup_identifier = min(held or candidates)
    ids = {i for i in ids if isinstance(i, str)}
    if not ids:
        return None
    all_ids = ids | _retired_ids(con, catalog, tables, ids, current)

    recs = set(
        con.execute(
            f"SELECT source, source_record_id FROM {_ref(catalog, 'customer_xref')} "
            "WHERE list_contains(?, customer_id)",
            [sorted(all_ids)],
        ).fetchall()
    )
    golden = con.execute(
        f"SELECT email, phone FROM {_ref(catalog, 'customer')} WHERE list_contains(?, customer_id)",
        [sorted(all_ids)],
    ).df()
    emails = set(golden["email"].dropna())
    phones = set(golden["phone"].dropna())
    if people.has_records:
        own = con.execute(
            f"SELECT source, source_record_id, email, phone, country "
            f"FROM {_ref(catalog, 'person_record')} WHERE list_contains(?, customer_id)",
            [sorted(all_ids)],
        ).df()
        recs |= set(zip(own["source"], own["source_record_id"], strict=True))
        std, _ = _email_parts(own["email"])
        emails |= {e for e in std if e}
        phones |= {p for p in _phones_of(own, hints) if p}
    if lookup.kind == "email":
        emails.add(standardise_email(lookup.value))
    if lookup.kind == "phone":
        phones.add(lookup_identifier)
    _, keys = _email_parts(pd.Series(sorted(emails), dtype="str"))
    email_keys = {k for k in keys if k}

    shared: set[str] = set()
    for ident, holders in {
        **people.email_key_holders(sorted(email_keys)),
        **people.phone_holders(sorted(phones)),
    }.items():
        if holders - all_ids:
            shared.add(ident)
    return Subject(
        customer_ids=sorted(all_ids),
        current_ids=sorted(ids & current),
        records=sorted(recs),
        emails=emails,
        email_keys=email_keys,
        phones=phones,
        lookup_identifier=lookup_identifier,
        shared=shared,
    )


def _retired_ids(con, catalog, tables, ids: set[str], current: set[str]) -> set[str]:
    """Ids merged into one of `ids` on an earlier night and no longer in use: still theirs."""
    if "customer_id_history" not in tables:
        return set()
    hist = con.execute(
        f"SELECT old_customer_id, new_customer_id, change FROM {_ref(catalog, 'customer_id_history')}"
    ).fetchall()
    found: set[str] = set()
    frontier = set(ids)
    while frontier:
        new = {
            old
            for old, new_id, change in hist
            if new_id in frontier and change == "merge" and old not in current
        } - ids - found
        found |= new
        frontier = new
    return found


def _quarantine_matches(
    con, catalog: str | None, subject: Subject, hints: SourceHints
) -> list[int]:
    """rowids of scv.quarantine rows about the subject: their own source records, rows whose raw
    JSON holds their email / phone, and activity rows whose person key is one of their records."""
    tables = _tables(con, catalog)
    if "quarantine" not in tables:
        return []
    # Narrow in SQL to rows that could match (a record id, an email's local part, a phone's
    # national digits somewhere in the row); the exact checks below then run on few rows.
    texts = {e.split("@", 1)[0].split("+", 1)[0].replace(".", "") for e in subject.own_emails}
    texts |= {k.split("@", 1)[0].replace(".", "") for k in subject.own_email_keys}
    digits = {_national_digits(p) for p in subject.own_phones}
    ids = {r for _, r in subject.records}
    conds = ["list_contains(?, source || ':' || source_record_id)"]
    params: list[Any] = [[f"{s}:{r}" for s, r in subject.records]]
    for t in sorted(x for x in texts if x):
        conds.append("strpos(replace(lower(raw), '.', ''), ?) > 0")
        params.append(t.lower())
    for d in sorted(x for x in digits if len(x) >= 6):
        conds.append("strpos(regexp_replace(raw, '[^0-9]', '', 'g'), ?) > 0")
        params.append(d)
    for r in sorted(ids):
        conds.append("strpos(raw, ?) > 0")
        params.append(r)
    q = con.execute(
        f"SELECT rowid AS _rowid, source, source_record_id, raw FROM {_ref(catalog, 'quarantine')} "
        f"WHERE {' OR '.join(conds)}",
        params,
    ).df()
    if q.empty:
        return []
    own = set(subject.records)
    by_source: dict[str, set[str]] = {}
    for s, r in subject.records:
        by_source.setdefault(s, set()).add(r)
    hits: list[int] = []
    for rowid, source, rec, raw in zip(
        q["_rowid"], q["source"], q["source_record_id"].astype(object), q["raw"].astype(object),
        strict=True,
    ):
        rec = None if rec is None or (isinstance(rec, float) and math.isnan(rec)) else str(rec)
        hit = (source, rec) in own
        if not hit and source in hints.person_refs:
            person_source, key_col = hints.person_refs[source]
            ref = P._raw_dict(raw).get(key_col)
            hit = ref is not None and str(ref).strip() in by_source.get(person_source, set())
        if not hit:
            hit = P.raw_mentions(raw, subject.own_emails | subject.own_email_keys, subject.own_phones)
        if hit:
            hits.append(int(rowid))
    return hits


# ------------------------------------------------------------------------------------- forget
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


def _quote(text: str) -> str:
    return "'" + str(text).replace("'", "''") + "'"


def _sql_path(p: Path) -> str:
    return str(p).replace("'", "''")


def _copy_comments(con, table: str) -> None:
    meta = con.execute(
        "SELECT comment FROM duckdb_tables() WHERE database_name = 'pub' AND schema_name = ? "
        "AND table_name = ?",
        [SCHEMA, table],
    ).fetchall()
    if meta and meta[0][0]:
        con.execute(f"COMMENT ON TABLE {SCHEMA}.{table} IS {_quote(meta[0][0])}")
    for col, comment in con.execute(
        "SELECT column_name, comment FROM duckdb_columns() WHERE database_name = 'pub' "
        "AND schema_name = ? AND table_name = ? AND comment IS NOT NULL",
        [SCHEMA, table],
    ).fetchall():
        con.execute(f'COMMENT ON COLUMN {SCHEMA}.{table}."{col}" IS {_quote(comment)}')


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
    con = duckdb.connect(str(tmp))
    try:
        con.execute(f"ATTACH '{_sql_path(published)}' AS pub (READ_ONLY)")
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
        subject.quarantine_rowids = _quarantine_matches(con, "pub", subject, hints)
        subject_hash = P.hash_identifier(subject.lookup_identifier, key)
        hashes = subject.identifier_hashes(key)
        added = add_to_suppression(
            data_dir, hashes, subject_hash[: P.HASH_PREFIX], now, verifier=P.key_verifier(key)
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
        tables = _tables(con, "pub")
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
        subject=subject_hash[: P.HASH_PREFIX],
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
    _append_erasure_log(
        data_dir,
        {
            "erased_at": _iso(now),
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


# ------------------------------------------------------------------------------------- access
def _iso(value: datetime | date) -> str:
    return value.isoformat()


def _jsonable(value: Any) -> Any:
    """A DuckDB value as JSON: ISO dates, null for NULL / NaN, lists and maps kept."""
    if value is None:
        return None
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, (np.floating,)):
        return _jsonable(float(value))
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_jsonable(v) for v in value]
    if isinstance(value, bytes):
        return value.hex()
    return value


def _records(con, sql: str, params: list | None = None) -> list[dict[str, Any]]:
    cur = con.execute(sql, params or [])
    names = [d[0] for d in cur.description]
    return [{n: _jsonable(v) for n, v in zip(names, row, strict=True)} for row in cur.fetchall()]


def _json_text(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _as_of(con, store: Warehouse, tables: Mapping[str, list[str]]) -> tuple[str | None, str | None]:
    manifest = store.exports / "manifest.json"
    if manifest.exists():
        try:
            m = json.loads(manifest.read_text(encoding="utf-8"))
            return m.get("as_of_date"), m.get("run_id")
        except ValueError:
            pass
    for t in ("lifecycle", "customer_profile", "rfm"):
        if t in tables and "as_of_date" in tables[t]:
            v = con.execute(f"SELECT max(as_of_date) FROM {SCHEMA}.{t}").fetchall()[0][0]
            if v is not None:
                return _jsonable(v), None
    return None, None


def access_document(
    store: Warehouse,
    lookup: Lookup,
    hints: SourceHints = SourceHints(),
    *,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Everything the published warehouse holds about the person named by `lookup`, as one
    JSON-ready document (GDPR art. 15): golden record with provenance, every source record (the
    xref rows, with the values the source holds when scv.person_record exists), touchpoints,
    latest consent and consent history, RFM, lifecycle and its history, customer-id history,
    and the quarantined rows about them. Keys in a fixed order; dates ISO; nulls for missing.
    Raises PrivacyError when nobody matches."""
    if not store.published.exists():
        raise PrivacyError(f"{store.published}: no published warehouse yet (run `scv run` first)")
    now = now or datetime.now(timezone.utc).replace(microsecond=0)
    con = duckdb.connect(str(store.published), read_only=True)
    try:
        subject = find_subject(con, lookup, hints)
        if subject is None:
            raise PrivacyError(f"no customer found for that {lookup.label}")
        tables = _tables(con, None)
        as_of, run_id = _as_of(con, store, tables)
        omitted: list[str] = []
        if "person_record" not in tables:
            omitted.append(
                "source record values: this warehouse has no scv.person_record table"
            )

        def rows(table: str, where: str, params: list, order: str) -> list[dict[str, Any]]:
            if table not in tables:
                omitted.append(f"{table}: not in this warehouse")
                return []
            return _records(
                con, f"SELECT * FROM {SCHEMA}.{table} WHERE {where} ORDER BY {order}", params
            )

        def one(table: str, cid: str) -> dict[str, Any] | None:
            found = rows(table, "customer_id = ?", [cid], "customer_id")
            return found[0] if found else None

        # Ids retired by a merge are listed too (current = false): history may still name them.
        current = set(_values(con, f"SELECT DISTINCT customer_id FROM {SCHEMA}.customer_xref"))
        customers = []
        for cid in sorted(subject.customer_ids, key=lambda c: (c not in current, c)):
            values = {}
            if "person_record" in tables:
                for r in _records(
                    con,
                    f"SELECT * FROM {SCHEMA}.person_record WHERE customer_id = ? "
                    "ORDER BY source, source_record_id",
                    [cid],
                ):
                    values[(r["source"], r["source_record_id"])] = {
                        k: v
                        for k, v in r.items()
                        if k not in ("source", "source_record_id", "customer_id")
                    }
            source_records = []
            for x in rows("customer_xref", "customer_id = ?", [cid], "source, source_record_id"):
                entry = {k: v for k, v in x.items() if k != "customer_id"}
                if "person_record" in tables:
                    entry["values"] = values.get((x["source"], x["source_record_id"]))
                source_records.append(entry)
            touch = rows("touchpoint", "customer_id = ?", [cid], "occurred_at, touchpoint_id")
            for t in touch:
                if "attributes" in t:
                    t["attributes"] = _json_text(t["attributes"])
            customers.append(
                {
                    "customer_id": cid,
                    "current": cid in current,
                    "golden_record": one("customer", cid),
                    "field_provenance": rows(
                        "customer_field_provenance", "customer_id = ?", [cid], "field"
                    ),
                    "profile": one("customer_profile", cid),
                    "source_records": source_records,
                    "customer_id_history": rows(
                        "customer_id_history",
                        "old_customer_id = ? OR new_customer_id = ?",
                        [cid, cid],
                        "run_at, old_customer_id, new_customer_id",
                    ),
                    "consent": rows("consent", "customer_id = ?", [cid], "purpose"),
                    "consent_history": [t for t in touch if t.get("kind") == "consent"],
                    "touchpoints": [t for t in touch if t.get("kind") != "consent"],
                    "rfm": one("rfm", cid),
                    "lifecycle": one("lifecycle", cid),
                    "lifecycle_history": rows(
                        "lifecycle_history", "customer_id = ?", [cid], "as_of_date, to_stage"
                    ),
                }
            )
        quarantined: list[dict[str, Any]] = []
        rowids = _quarantine_matches(con, None, subject, hints)
        if rowids:
            con.register("_rows", pd.DataFrame({"id": pd.Series(rowids, dtype="int64")}))
            quarantined = _records(
                con,
                f"SELECT * FROM {SCHEMA}.quarantine WHERE rowid IN (SELECT id FROM _rows) "
                "ORDER BY source, row_number, run_at",
            )
            con.unregister("_rows")
            for q in quarantined:
                q["raw"] = _json_text(q.get("raw"))
    finally:
        con.close()
    return {
        "header": {
            "document": "Everything the single-customer-view warehouse holds about one person",
            "generated_at": _iso(now),
            "warehouse": str(store.published),
            "as_of_date": as_of,
            "run_id": run_id,
            "identified_by": lookup.kind,
            "customers_found": len(subject.customer_ids),
            "source_records_found": len(subject.records),
            "omitted": sorted(set(omitted)),
        },
        "customers": customers,
        "quarantined_rows": quarantined,
    }


# ----------------------------------------------------------------------------------- audience
# `scv audience` and saved audiences live in warehouse/audience.py (the filters and their SQL
# in transforms/audience.py); AudienceResult, available_segments, build_audience and
# write_audience_csv stay importable from here.
