"""Who a person is in the published warehouse: the customers, source records, emails and phones
behind an email, a phone number or a customer id (`find_subject`), as `scv forget` erases them
and `scv access` shows them; and the quarantined rows about them."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import duckdb
import numpy as np
import pandas as pd

from transforms.standardise import (
    email_key,
    standardise_email,
    standardise_emails,
    standardise_phone,
    standardise_phones,
)
from transforms.standardise.places import country_codes
from warehouse.privacy.erased_rows import (
    hash_identifier,
    raw_dict,
    raw_mentions,
    record_identifier,
)
from warehouse.privacy.suppression import PrivacyError
from warehouse.schema import SCHEMA

__all__ = [
    "Lookup",
    "SourceHints",
    "Subject",
    "column_values",
    "find_subject",
    "quarantine_matches",
    "table_columns",
]


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
            out[hash_identifier(record_identifier(source, rec), key)] = "record"
        for e in self.own_emails:
            out.setdefault(hash_identifier(e, key), "email_std")
        for k in self.own_email_keys:
            out[hash_identifier(k, key)] = "email_key"
        for p in self.own_phones:
            out[hash_identifier(p, key)] = "phone_e164"
        return out


def _ref(catalog: str | None, table: str) -> str:
    return f"{catalog}.{SCHEMA}.{table}" if catalog else f"{SCHEMA}.{table}"


def table_columns(con: duckdb.DuckDBPyConnection, catalog: str | None) -> dict[str, list[str]]:
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


def column_values(con, sql: str, params: list | None = None) -> list:
    return [r[0] for r in con.execute(sql, params or []).fetchall()]


def _email_parts(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(email_std, email_key) per value, as the nightly standardiser computes them."""
    if values.empty:
        return np.array([], dtype=object), np.array([], dtype=object)
    std, keys, _ = standardise_emails(values.astype("str"))
    return std, keys


def _phones_of(records: pd.DataFrame, hints: SourceHints) -> np.ndarray:
    """E.164 of the `phone` column of person_record rows, read in the record's country, else its
    source's default country (as the nightly standardiser reads them)."""
    if records.empty:
        return np.array([], dtype=object)
    country, _ = country_codes(records["country"].astype("str"))
    region = pd.Series(country, index=records.index, dtype="str")
    default = records["source"].map(lambda s: hints.default_country.get(s)).astype("str")
    region = region.fillna(default)
    e164, _ = standardise_phones(records["phone"].astype("str"), region)
    return e164


def _phone_candidates(value: str, hints: SourceHints) -> set[str]:
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
        self.tables = table_columns(con, catalog)
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
                column_values(
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
    people = _People(con, catalog, hints)
    tables = people.tables
    if "customer" not in tables or "customer_xref" not in tables:
        raise PrivacyError("the warehouse has no scv.customer table (run `scv run` first)")
    xref_ids = set(column_values(con, f"SELECT DISTINCT customer_id FROM {_ref(catalog, 'customer_xref')}"))
    customer_ids = set(column_values(con, f"SELECT customer_id FROM {_ref(catalog, 'customer')}"))
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


def quarantine_matches(
    con, catalog: str | None, subject: Subject, hints: SourceHints
) -> list[int]:
    """rowids of scv.quarantine rows about the subject: their own source records, rows whose raw
    JSON holds their email / phone, and activity rows whose person key is one of their records."""
    tables = table_columns(con, catalog)
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
            ref = raw_dict(raw).get(key_col)
            hit = ref is not None and str(ref).strip() in by_source.get(person_source, set())
        if not hit:
            hit = raw_mentions(raw, subject.own_emails | subject.own_email_keys, subject.own_phones)
        if hit:
            hits.append(int(rowid))
    return hits


# ------------------------------------------------------------------------------------- forget
