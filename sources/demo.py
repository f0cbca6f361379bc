"""The demo company: a retailer's scattered customer data, generated for `scv demo`.

`generate_demo(out_dir)` writes ten source-system files in their own conventions (a CRM export,
web-shop Parquet, a POS system with `;`, latin-1 and day-first dates, JSON-lines click-stream,
an e-mail tool, a support desk and consent records), `scv.yml` (a config for exactly those
files), and the answers a test or a benchmark needs:

- `truth.csv` — `source, source_record_id, person_id`: the real person behind every person
  record that has an id;
- `hard_negatives.csv` — `person_id_a, person_id_b, kind`: distinct people a careless matcher
  merges (twins, parent and child with one name, couples sharing contact details, very common
  names, people whose records carry the same junk value);
- `demo_stats.json` — counts: rows per file, noise injected per kind and source, and every
  deliberately defective row (source, file, row number, kind) the quality gates must catch.

The same seed and arguments give byte-identical files. Dates are relative to `end_date`, never
today. The work is vectorised (numpy / pandas / Arrow): one million people take a few minutes.
"""

from __future__ import annotations

import io
import json
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import yaml
from anyascii import anyascii

from sources import demo_activity as A
from sources import demo_names as N
from sources.demo_people import (
    CRM,
    EMAIL,
    HARD_NEGATIVE_KINDS,
    PERSON_SOURCES,
    POS,
    SHOP,
    SUPPORT,
    People,
    Records,
    build_pools,
    format_phones,
    make_people,
    make_records,
)

__all__ = ["DEFECT_KINDS", "FILES", "DemoSummary", "NoiseRates", "generate_demo"]

DEFAULT_END_DATE = date(2026, 11, 20)
MIN_PEOPLE = 100

#: Source-system files, by the scv.yml source name that reads them.
FILES: dict[str, str] = {
    "crm": "crm_contacts.csv",
    "shop_customers": "shop_customers.parquet",
    "shop_orders": "shop_orders.parquet",
    "pos_loyalty": "pos_loyalty_members.csv",
    "pos_receipts": "pos_receipts.csv",
    "web_events": "web_events.jsonl",
    "email_subscribers": "email_subscribers.csv",
    "email_events": "email_events.csv",
    "support_contacts": "support_tickets.csv",
    "support_tickets": "support_tickets.csv",
    "consent_records": "consent_records.csv",
}

DEFECT_KINDS: tuple[str, ...] = (
    "missing_id",
    "duplicate_id",
    "unparseable_date",
    "negative_amount",
    "orphan_reference",
    "unknown_currency",
)


@dataclass(frozen=True)
class NoiseRates:
    """How dirty the demo data is. Record-level rates are the share of person records hit;
    person-level ones the share of people; hard negatives are counted per person.

    Defaults give a realistic but linkable customer base; set a rate to 0 to switch a kind off
    (hard negatives and defects keep at least one case each so every check has something to
    find).
    """

    # names (per person record)
    name_typo: float = 0.03  # one character edited in the first or last name
    nickname: float = 0.08  # of records whose first name has a nickname: Robert -> Bob
    swapped_names: float = 0.01  # first and last name exchanged
    name_case: float = 0.04  # SHOUTED or all lower case
    name_spacing: float = 0.03  # stray leading / trailing spaces
    accent_stripped: float = 0.25  # of accented names: Zoë -> Zoe
    name_incomplete: float = 0.05  # support desk: first name only
    # contact details (per person record)
    phone_format: float = 0.3  # phone printed in another style than the source's usual one
    email_case: float = 0.05  # John.Smith@Gmail.com
    gmail_variant: float = 0.15  # of gmail addresses: dots moved / +tag added
    missing_field: float = 0.05  # each optional field blank (birth dates twice as often)
    address_variant: float = 0.10  # abbreviated street type (Rd, St) or upper case
    dob_swap: float = 0.01  # day and month exchanged
    dob_typo: float = 0.01  # one digit of the year wrong
    within_source_duplicate: float = 0.03  # a second record of the person in the same source
    # life events (per person)
    moved: float = 0.08  # older records show the previous address
    married: float = 0.03  # older records show the maiden name
    # hard negatives (per person)
    twins: float = 0.004
    parent_child: float = 0.003
    couples: float = 0.01
    common_name: float = 0.01  # people in namesake groups (one per name and city, <= 148)
    junk: float = 0.004  # share of people whose records carry a junk value
    junk_max_per_value: int = 300  # caps the pairs listed for one junk value (k*(k-1)/2)
    # defective rows (per file and kind, at least one each)
    defect_rate: float = 0.002


@dataclass(frozen=True)
class DemoSummary:
    """What `generate_demo` wrote: paths and counts (the same counts as demo_stats.json)."""

    out_dir: Path
    config: Path
    truth: Path
    hard_negatives_file: Path
    stats: Path
    files: dict[str, Path]  # every source-system file by file name
    rows: dict[str, int]  # data rows per source-system file
    people: int
    person_records: dict[str, int]  # records with an id per person source
    defects: dict[str, dict[str, int]]  # per file: defect kind -> rows
    noise: dict[str, int]  # per noise kind: person records affected
    hard_negatives: dict[str, int] = field(default_factory=dict)  # per kind: pairs

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())


def generate_demo(
    out_dir: Path,
    people: int = 5000,
    seed: int = 42,
    end_date: date = DEFAULT_END_DATE,
    noise: NoiseRates | None = None,
) -> DemoSummary:
    """Write the demo company's source files, scv.yml, truth.csv, hard_negatives.csv and
    demo_stats.json into `out_dir` (created if needed) and return what was written."""
    if people < MIN_PEOPLE:
        raise ValueError(f"people: need at least {MIN_PEOPLE}, got {people}")
    rates = noise or NoiseRates()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(10)]
    end = np.datetime64(end_date, "s")

    pools = build_pools(seed)
    ppl = make_people(streams[0], pools, people, end_date, rates)
    recs = make_records(streams[1], pools, ppl, end_date, rates)
    noise_by_kind: dict[str, np.ndarray] = dict(recs.noise)
    persons = _person_tables(streams[2], recs, ppl, rates, end, noise_by_kind)
    del recs  # the formatted tables are all that is needed from here on

    # Build, damage, write and drop one file at a time to keep memory bounded.
    consent_counts: dict[str, int] = {}
    defect_rows: list[dict] = []
    files: dict[str, Path] = {}
    rows: dict[str, int] = {}
    tables: list[_Table] = []
    for build in _table_builders(persons, streams, end, consent_counts):
        t = build()
        defect_rows.extend(_inject_defects(streams[8], t, rates.defect_rate))
        path = out_dir / t.file
        _write(t, path)
        files[t.file] = path
        rows[t.file] = len(t.df)
        t.df = t.df[[t.id_col, "_pidx"]] if t.person else t.df.iloc[:0]
        tables.append(t)

    truth = _truth(tables, ppl)
    truth_path = out_dir / "truth.csv"
    _write_plain_csv(truth, truth_path)
    hn = ppl.hard_negatives
    hn_path = out_dir / "hard_negatives.csv"
    _write_plain_csv(hn, hn_path)
    config_path = out_dir / "scv.yml"
    config_path.write_text(_config_text(seed, people, end_date), encoding="utf-8")

    stats = _stats(
        seed,
        people,
        end_date,
        rates,
        rows,
        truth,
        tables,
        ppl,
        noise_by_kind,
        defect_rows,
        consent_counts,
    )
    stats_path = out_dir / "demo_stats.json"
    stats_path.write_text(_stats_json(stats), encoding="utf-8")
    return DemoSummary(
        out_dir=out_dir,
        config=config_path,
        truth=truth_path,
        hard_negatives_file=hn_path,
        stats=stats_path,
        files=files,
        rows=rows,
        people=people,
        person_records=stats["person_records"],
        defects=stats["defects_by_file"],
        noise={k: v["total"] for k, v in stats["noise"].items()},
        hard_negatives=stats["hard_negatives"],
    )


# --------------------------------------------------------------------------------------------
# Person sources in their own conventions
# --------------------------------------------------------------------------------------------


def _styles(rng, n: int, main: str, alternatives: tuple[str, ...], variation: float):
    style = np.full(n, main, dtype=object)
    other = rng.random(n) < min(variation, 1.0)
    style[other] = np.array(alternatives, dtype=object)[
        rng.integers(0, len(alternatives), other.sum())
    ]
    return style, other


def _ranked(time: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Order records by time; return (order, rank) so ids grow with time, as systems mint them."""
    order = np.argsort(time, kind="stable")
    return order, np.arange(len(order))


def _zfill(nums: np.ndarray, width: int) -> np.ndarray:
    return pd.Series(nums, dtype="int64").astype(str).str.zfill(width).to_numpy(dtype=object)


def _full_name(first: np.ndarray, last: np.ndarray) -> np.ndarray:
    out = first.copy()
    has_last = pd.notna(last)
    out[has_last] = first[has_last] + " " + last[has_last]
    return out


def _latin1_safe(values: np.ndarray) -> tuple[np.ndarray, int]:
    """Values the POS system can store (latin-1 without the C1 range, so cp1252-identical);
    anything else is transliterated, as the till does."""

    def ok(s: str) -> bool:
        return all(ord(ch) < 0x80 or 0xA0 <= ord(ch) <= 0xFF for ch in s)

    s = pd.Series(values, dtype=object)
    uniq = s.dropna().unique()
    mapping = {u: (u if ok(u) else anyascii(u)) for u in uniq}
    changed = s.map(lambda v: pd.notna(v) and mapping[v] != v)
    return s.map(mapping).to_numpy(dtype=object), int(changed.sum())


def _count(extra: dict[str, np.ndarray], kind: str, source: int, n: int) -> None:
    counts = extra.setdefault(kind, np.zeros(len(PERSON_SOURCES), np.int64))
    counts[source] += int(n)


def _person_tables(
    rng, recs: Records, ppl: People, rates, end, extra: dict[str, np.ndarray]
) -> dict[str, pd.DataFrame]:
    c = recs.cols
    out: dict[str, pd.DataFrame] = {}

    # CRM: separate name fields, international phone formats mixed, ISO dates, country as a
    # code or a name.
    ix = recs.of(CRM)
    order, rank = _ranked(recs.time[ix])
    ix = ix[order]
    style, other = _styles(
        rng,
        len(ix),
        "intl_spaced",
        ("e164", "intl_00", "intl_trunk", "national", "national_dashed"),
        2 * rates.phone_format,
    )
    _count(extra, "phone_format", CRM, (other & pd.notna(c["phone"][ix])).sum())
    country = c["country"][ix].copy()
    pick = rng.random(len(ix))
    named = pd.notna(country) & (pick < 0.3)
    country[named] = (
        pd.Series(country[named], dtype=object).map(N.COUNTRY_NAMES).to_numpy(dtype=object)
    )
    lower = pd.notna(country) & (pick >= 0.3) & (pick < 0.4)
    country[lower] = pd.Series(country[lower], dtype=object).str.lower().to_numpy(dtype=object)
    out["crm"] = pd.DataFrame(
        {
            "ContactId": "CT" + _zfill(100_001 + rank, 7),
            "FirstName": c["first"][ix],
            "LastName": c["last"][ix],
            "Email": c["email"][ix],
            "Phone": format_phones(c["phone"][ix], c["phone_country"][ix], style),
            "DOB": A.fmt_time(c["dob"][ix], "%Y-%m-%d"),
            "Street": c["street"][ix],
            "Zip": c["postcode"][ix],
            "City": c["city"][ix],
            "Country": country,
            "ModifiedAt": A.fmt_time(recs.time[ix], "%Y-%m-%d %H:%M:%S"),
            "_pidx": recs.pidx[ix],
        }
    )

    # Web shop: typed Parquet, E.164 phones mostly, account ids minted at sign-up.
    ix = recs.of(SHOP)
    updated = recs.time[ix]
    since = np.minimum(ppl.first_seen[recs.pidx[ix]], updated)
    created = since + (rng.random(len(ix)) * (updated - since).astype("int64")).astype(
        "int64"
    ).astype("timedelta64[s]")
    order, rank = _ranked(created)
    ix, updated, created = ix[order], updated[order], created[order]
    style, other = _styles(
        rng, len(ix), "e164", ("intl_spaced", "national", "national_compact"), rates.phone_format
    )
    _count(extra, "phone_format", SHOP, (other & pd.notna(c["phone"][ix])).sum())
    out["shop_customers"] = pd.DataFrame(
        {
            "customer_id": (100_001 + rank).astype(np.int64),
            "first_name": c["first"][ix],
            "last_name": c["last"][ix],
            "email": c["email"][ix],
            "phone": format_phones(c["phone"][ix], c["phone_country"][ix], style),
            "birth_date": c["dob"][ix],
            "address": c["street"][ix],
            "postcode": c["postcode"][ix],
            "city": c["city"][ix],
            "country_code": c["country"][ix],
            "created_at": created,
            "updated_at": updated,
            "_pidx": recs.pidx[ix],
            "_country": ppl.country[recs.pidx[ix]],
        }
    )

    # POS loyalty: one full-name column, national phone numbers, day-first dates, latin-1.
    ix = recs.of(POS)
    order, rank = _ranked(recs.time[ix])
    ix = ix[order]
    n = len(ix)
    home = ppl.country[recs.pidx[ix]]
    style, other = _styles(
        rng, n, "national", ("national_compact", "national_dashed"), rates.phone_format / 2
    )
    abroad = home != "GB"  # the till assumes UK numbers: others are given with +CC
    style[abroad] = np.where(rng.random(abroad.sum()) < 0.5, "intl_spaced", "e164")
    _count(extra, "phone_format", POS, (other & ~abroad & pd.notna(c["phone"][ix])).sum())
    first, last = c["first"][ix], c["last"][ix]
    name = _full_name(first, last)
    form = rng.random(n)
    surname_first = (form < 0.2) & pd.notna(last)
    name[surname_first] = (
        pd.Series(last[surname_first], dtype=object).str.upper()
        + ", "
        + pd.Series(first[surname_first], dtype=object)
    ).to_numpy(dtype=object)
    titled = (form >= 0.2) & (form < 0.3)
    female = ppl.female[recs.pidx[ix]]
    name[titled] = np.where(female[titled], "Mrs ", "Mr ").astype(object) + name[titled]
    _count(extra, "pos_surname_first", POS, surname_first.sum())
    _count(extra, "pos_title", POS, titled.sum())
    store = np.array(N.GB_STORES)[rng.integers(0, len(N.GB_STORES), n)]
    irish = home == "IE"
    store[irish] = np.array(N.IE_STORES)[rng.integers(0, len(N.IE_STORES), irish.sum())]
    name, n_name = _latin1_safe(name)
    street, n_street = _latin1_safe(c["street"][ix])
    town, n_town = _latin1_safe(c["city"][ix])
    _count(extra, "pos_transliterated", POS, n_name + n_street + n_town)
    out["pos_loyalty"] = pd.DataFrame(
        {
            "CardNo": "6338" + _zfill(10_000_001 + rank * 7, 9),
            "FullName": name,
            "Email": c["email"][ix],
            "Phone": format_phones(c["phone"][ix], c["phone_country"][ix], style),
            "DOB": A.fmt_time(c["dob"][ix], "%d/%m/%Y"),
            "Address": street,
            "Postcode": c["postcode"][ix],
            "Town": town,
            "JoinedOn": A.fmt_time(recs.time[ix].astype("datetime64[D]"), "%d/%m/%Y"),
            "HomeStore": store.astype(np.int64),
            "_pidx": recs.pidx[ix],
            "_time": recs.time[ix],
            "_store": store.astype(np.int64),
        }
    )

    # E-mail tool: subscribers known by their address only.
    ix = recs.of(EMAIL)
    order, rank = _ranked(recs.time[ix])
    ix = ix[order]
    out["email_subscribers"] = pd.DataFrame(
        {
            "subscriber_id": "SUB" + _zfill(1 + rank, 8),
            "email": c["email"][ix],
            "subscribed_at": A.fmt_time(recs.time[ix], "%Y-%m-%dT%H:%M:%SZ"),
            "signup_source": np.array(N.SIGNUP_SOURCES, dtype=object)[
                rng.integers(0, len(N.SIGNUP_SOURCES), len(ix))
            ],
            "_pidx": recs.pidx[ix],
            "_time": recs.time[ix],
        }
    )

    # Support desk: one row per ticket, the customer's name as typed by the agent.
    ix = recs.of(SUPPORT)
    order, rank = _ranked(recs.time[ix])
    ix = ix[order]
    n = len(ix)
    opened = recs.time[ix]
    recent = (end - opened) < np.timedelta64(10 * 86_400, "s")
    is_open = np.where(recent, rng.random(n) < 0.7, rng.random(n) < 0.03)
    closed = opened + rng.integers(3_600, 10 * 86_400, n).astype("timedelta64[s]")
    closed = np.where(is_open | (closed >= end), np.datetime64("NaT"), closed)
    out["support_contacts"] = pd.DataFrame(
        {
            "ticket_id": "TCK-" + _zfill(1 + rank, 7),
            "customer_name": _full_name(c["first"][ix], c["last"][ix]),
            "email": c["email"][ix],
            "opened_at": A.fmt_time(opened, "%Y-%m-%d %H:%M:%S"),
            "status": np.where(is_open, "open", "closed").astype(object),
            "subject": np.array(N.SUPPORT_SUBJECTS, dtype=object)[
                rng.integers(0, len(N.SUPPORT_SUBJECTS), n)
            ],
            "via": np.array(N.SUPPORT_CHANNELS, dtype=object)[
                rng.integers(0, len(N.SUPPORT_CHANNELS), n)
            ],
            "closed_at": A.fmt_time(closed.astype("datetime64[s]"), "%Y-%m-%d %H:%M:%S"),
            "_pidx": recs.pidx[ix],
        }
    )
    return out


# --------------------------------------------------------------------------------------------
# Files, defects and their bookkeeping
# --------------------------------------------------------------------------------------------


@dataclass
class _Table:
    """One file to write, and where its deliberate defects may go."""

    file: str
    sources: tuple[str, ...]  # scv.yml sources reading the file
    df: pd.DataFrame
    id_col: str
    fmt: str  # csv | parquet | jsonl
    kinds: tuple[str, ...]
    person: bool = False
    date_cols: tuple[tuple[str, str], ...] = ()  # (column, iso | dayfirst | dayfirst_time)
    amount_col: str | None = None
    currency_col: str | None = None
    ref_col: str | None = None
    ref_orphans: np.ndarray | None = None  # values that reference no person record
    delimiter: str = ","
    encoding: str = "utf-8"


def _table_builders(persons: dict, streams, end, consent_counts: dict) -> list:
    """One zero-argument builder per file, in FILES order. Activity tables are drawn from the
    person tables before any defect touches those (defects never break a real reference)."""
    shop = persons["shop_customers"]
    shop_ids = shop["customer_id"].to_numpy(dtype=np.int64)
    shop_created = shop["created_at"].to_numpy(dtype="datetime64[s]")
    shop_country = shop["_country"].to_numpy()
    pos = persons["pos_loyalty"]
    cards = pos["CardNo"].to_numpy(dtype=object)
    card_joined = pos["_time"].to_numpy(dtype="datetime64[s]")
    card_store = pos["_store"].to_numpy(dtype=np.int64)
    subs = persons["email_subscribers"]
    sub_ids = subs["subscriber_id"].to_numpy(dtype=object)
    sub_time = subs["_time"].to_numpy(dtype="datetime64[s]")
    card_top = int(pd.Series(cards).str.slice(4).astype("int64").max())
    sub_top = int(pd.Series(sub_ids).str.slice(3).astype("int64").max())
    shop_orphans = np.arange(shop_ids.max() + 1_000_000, shop_ids.max() + 1_100_000, dtype=np.int64)
    person_kinds = ("missing_id", "duplicate_id", "unparseable_date")

    def consents() -> _Table:
        table, counts = A.consent_records(streams[7], shop_ids, shop_created, end)
        consent_counts.update(counts)
        return _Table(
            "consent_records.csv",
            ("consent_records",),
            table,
            "consent_id",
            "csv",
            ("missing_id", "duplicate_id", "unparseable_date", "orphan_reference"),
            date_cols=(("recorded_at", "iso"),),
            ref_col="customer_id",
            ref_orphans=shop_orphans,
        )

    return [
        lambda: _Table(
            "crm_contacts.csv",
            ("crm",),
            persons.pop("crm"),
            "ContactId",
            "csv",
            person_kinds,
            person=True,
            date_cols=(("DOB", "iso"), ("ModifiedAt", "iso")),
        ),
        lambda: _Table(
            "shop_customers.parquet",
            ("shop_customers",),
            persons.pop("shop_customers"),
            "customer_id",
            "parquet",
            ("missing_id", "duplicate_id"),
            person=True,
        ),
        lambda: _Table(
            "shop_orders.parquet",
            ("shop_orders",),
            A.shop_orders(streams[3], shop_ids, shop_created, shop_country, end),
            "order_id",
            "parquet",
            (
                "missing_id",
                "duplicate_id",
                "negative_amount",
                "orphan_reference",
                "unknown_currency",
            ),
            amount_col="total",
            currency_col="currency",
            ref_col="customer_id",
            ref_orphans=shop_orphans,
        ),
        lambda: _Table(
            "pos_loyalty_members.csv",
            ("pos_loyalty",),
            persons.pop("pos_loyalty"),
            "CardNo",
            "csv",
            person_kinds,
            person=True,
            date_cols=(("DOB", "dayfirst"), ("JoinedOn", "dayfirst")),
            delimiter=";",
            encoding="latin-1",
        ),
        lambda: _Table(
            "pos_receipts.csv",
            ("pos_receipts",),
            A.pos_receipts(streams[4], cards, card_joined, card_store, end),
            "ReceiptNo",
            "csv",
            (
                "missing_id",
                "duplicate_id",
                "unparseable_date",
                "negative_amount",
                "orphan_reference",
            ),
            date_cols=(("PurchaseDate", "dayfirst_time"),),
            amount_col="Amount",
            ref_col="CardNo",
            ref_orphans="6338" + _zfill(np.arange(card_top + 10**6, card_top + 10**6 + 100_000), 9),
            delimiter=";",
            encoding="latin-1",
        ),
        lambda: _Table(
            "web_events.jsonl",
            ("web_events",),
            A.web_events(streams[5], shop_ids, shop_created, end),
            "event_id",
            "jsonl",
            ("missing_id", "duplicate_id", "unparseable_date", "orphan_reference"),
            date_cols=(("ts", "iso"),),
            ref_col="customer_key",
            ref_orphans=shop_orphans,
        ),
        lambda: _Table(
            "email_subscribers.csv",
            ("email_subscribers",),
            persons.pop("email_subscribers"),
            "subscriber_id",
            "csv",
            person_kinds,
            person=True,
            date_cols=(("subscribed_at", "iso"),),
        ),
        lambda: _Table(
            "email_events.csv",
            ("email_events",),
            A.email_events(streams[6], sub_ids, sub_time, end),
            "event_id",
            "csv",
            ("missing_id", "duplicate_id", "unparseable_date", "orphan_reference"),
            date_cols=(("timestamp", "iso"),),
            ref_col="subscriber_id",
            ref_orphans="SUB" + _zfill(np.arange(sub_top + 10**6, sub_top + 10**6 + 100_000), 8),
        ),
        lambda: _Table(
            "support_tickets.csv",
            ("support_contacts", "support_tickets"),
            persons.pop("support_contacts"),
            "ticket_id",
            "csv",
            person_kinds,
            person=True,
            date_cols=(("opened_at", "iso"),),
        ),
        consents,
    ]


_BAD_DATES = {
    "iso": ("2024-02-31", "yesterday", "2023-13-01"),
    "dayfirst": ("31/02/2024", "yesterday", "45/13/2023"),
    "dayfirst_time": ("31/02/2024 10:15", "yesterday", "45/13/2023 09:00"),
}


def _inject_defects(rng, t: _Table, rate: float) -> list[dict]:
    """Plant `rate` (at least one) defective rows of each kind in `t`, on distinct rows, and
    return one entry per defective row with its final 1-based row number."""
    df = t.df.reset_index(drop=True)
    n = len(df)
    per_kind = max(1, round(rate * n))
    if df[t.id_col].dtype.kind in "iu":
        df[t.id_col] = df[t.id_col].astype("Int64")
    if t.ref_col and df[t.ref_col].dtype.kind in "iu":
        df[t.ref_col] = df[t.ref_col].astype("Int64")
    df["_defect"] = pd.Series([None] * n, dtype=object)
    df["_field"] = pd.Series([None] * n, dtype=object)
    free = np.ones(n, bool)
    inserted: list[pd.DataFrame] = []
    orphan_next = 0

    def take(k: int, where: np.ndarray | None = None) -> np.ndarray:
        cand = np.flatnonzero(free if where is None else free & where)
        if len(cand) < k:
            raise ValueError(f"{t.file}: too few rows ({n}) to plant {k} defects; use more people")
        rows = np.sort(rng.choice(cand, size=k, replace=False))
        free[rows] = False
        return rows

    for kind in t.kinds:
        if t.person and kind in ("missing_id", "duplicate_id"):
            # A person record exported twice, or once without its key: extra rows.
            src = take(per_kind)
            free[src] = True  # the original row stays a normal row
            copy = df.iloc[src].copy()
            if kind == "missing_id":
                blank = [pd.NA] * len(copy) if df[t.id_col].dtype == "Int64" else [None] * len(copy)
                copy[t.id_col] = pd.array(blank, dtype=df[t.id_col].dtype)
            copy["_defect"], copy["_field"] = kind, t.id_col
            copy["_key"] = 2 * rng.integers(0, n, len(src)) + 1
            inserted.append(copy)
            continue
        if kind == "orphan_reference":
            rows = take(per_kind, df[t.ref_col].notna().to_numpy())
        else:
            rows = take(per_kind)
        col = t.id_col
        if kind == "missing_id":
            df.loc[rows, col] = None
        elif kind == "duplicate_id":
            donors = rng.choice(np.flatnonzero(free), size=len(rows), replace=True)
            df.loc[rows, col] = df[col].to_numpy()[donors]
        elif kind == "unparseable_date":
            choice = rng.integers(0, len(t.date_cols), len(rows))
            for j, (dcol, style) in enumerate(t.date_cols):
                sel = rows[choice == j]
                bad = np.array(_BAD_DATES[style], dtype=object)
                df.loc[sel, dcol] = bad[rng.integers(0, len(bad), len(sel))]
                df.loc[sel, "_field"] = dcol
            col = None
        elif kind == "negative_amount":
            df.loc[rows, t.amount_col] = -np.abs(df[t.amount_col].to_numpy()[rows]) - 0.01
            col = t.amount_col
        elif kind == "orphan_reference":
            df.loc[rows, t.ref_col] = t.ref_orphans[orphan_next : orphan_next + len(rows)]
            orphan_next += len(rows)
            col = t.ref_col
        elif kind == "unknown_currency":
            df.loc[rows, t.currency_col] = "XYZ"
            col = t.currency_col
        df.loc[rows, "_defect"] = kind
        if col is not None:
            df.loc[rows, "_field"] = col

    if inserted:
        df["_key"] = 2 * np.arange(n, dtype=np.int64)
        df = pd.concat([df, *inserted], ignore_index=True)
        df = df.iloc[np.argsort(df["_key"].to_numpy(), kind="stable")].drop(columns="_key")
        df = df.reset_index(drop=True)

    hit = np.flatnonzero(df["_defect"].notna().to_numpy())
    ids = df[t.id_col]
    entries = [
        {
            "file": t.file,
            "sources": list(t.sources),
            "row_number": int(r) + 1,
            "record_id": None if pd.isna(ids.iat[r]) else str(ids.iat[r]),
            "kind": df["_defect"].iat[r],
            "field": df["_field"].iat[r],
        }
        for r in hit
    ]
    t.df = df.drop(columns=["_defect", "_field"])
    return entries


def _visible(df: pd.DataFrame) -> pd.DataFrame:
    return df[[c for c in df.columns if not c.startswith("_")]]


def _arrow(df: pd.DataFrame, fmt: str) -> pa.Table:
    cols = {}
    for name in df.columns:
        s = df[name]
        if s.dtype == object or str(s.dtype) in ("str", "string"):
            cols[name] = pa.array(s, type=pa.string(), from_pandas=True)
        elif s.dtype.kind == "M":
            if fmt == "parquet" and name == "birth_date":
                cols[name] = pa.array(s.to_numpy(dtype="datetime64[D]"), pa.date32())
            else:
                cols[name] = pa.array(s.to_numpy(dtype="datetime64[s]"), pa.timestamp("s"))
        else:
            cols[name] = pa.Array.from_pandas(s)
    return pa.table(cols)


def _write(t: _Table, path: Path) -> None:
    table = _arrow(_visible(t.df), t.fmt)
    if t.fmt == "parquet":
        pq.write_table(table, path, compression="zstd")
    elif t.fmt == "jsonl":
        con = duckdb.connect()
        try:
            con.execute("SET threads = 1")  # one writer: row order is the export order
            con.execute("SET enable_progress_bar = false")
            con.register("events", table)
            target = path.as_posix().replace("'", "''")
            con.execute(f"COPY events TO '{target}' (FORMAT json)")
        finally:
            con.close()
    else:
        _write_csv_table(table, path, t.delimiter, t.encoding)


def _write_csv_table(table: pa.Table, path: Path, delimiter: str = ",", encoding: str = "utf-8"):
    opts = pacsv.WriteOptions(delimiter=delimiter, quoting_header="none")
    if encoding == "utf-8":
        pacsv.write_csv(table, path, opts)
        return
    buf = io.BytesIO()
    pacsv.write_csv(table, buf, opts)
    # Strict: a character the POS encoding cannot hold is a generator bug, not data.
    path.write_bytes(buf.getvalue().decode("utf-8").encode(encoding))


def _write_plain_csv(df: pd.DataFrame, path: Path) -> None:
    _write_csv_table(_arrow(df, "csv"), path)


def _truth(tables: list[_Table], ppl: People) -> pd.DataFrame:
    parts = []
    for t in tables:
        if not t.person:
            continue
        df = t.df[t.df[t.id_col].notna()]
        part = pd.DataFrame(
            {
                "source": t.sources[0],
                "source_record_id": df[t.id_col].astype(str).to_numpy(dtype=object),
                "person_id": ppl.person_id[df["_pidx"].to_numpy(dtype=np.int64)],
            }
        )
        parts.append(part.drop_duplicates(["source", "source_record_id"]))
    return pd.concat(parts, ignore_index=True)


def _stats(
    seed, people, end_date, rates, rows, truth, tables, ppl, noise, defect_rows, consent_counts
) -> dict:
    source_names = list(PERSON_SOURCES)
    person_records = {s: int(v) for s, v in truth["source"].value_counts(sort=False).items()}
    person_records = {s: person_records.get(s, 0) for s in source_names}
    without_id = {s: 0 for s in source_names}
    for d in defect_rows:
        if d["kind"] == "missing_id" and d["sources"][0] in without_id:
            without_id[d["sources"][0]] += 1
    k = ppl.member.sum(axis=1)
    defects_by_file: dict[str, dict[str, int]] = {}
    defects_by_source: dict[str, dict[str, int]] = {}
    for t in tables:
        defects_by_file[t.file] = {kind: 0 for kind in t.kinds}
        for s in t.sources:
            defects_by_source[s] = {kind: 0 for kind in t.kinds}
    for d in defect_rows:
        defects_by_file[d["file"]][d["kind"]] += 1
        for s in d["sources"]:
            defects_by_source[s][d["kind"]] += 1
    hn = ppl.hard_negatives["kind"].value_counts()
    only_one = ppl.member[k == 1].sum(axis=0)
    return {
        "generator": "sources.demo",
        "seed": seed,
        "people": people,
        "end_date": end_date.isoformat(),
        "noise_rates": asdict(rates),
        "files": rows,
        "person_records": person_records,
        "person_records_without_id": without_id,
        "people_by_country": {c: int((ppl.country == c).sum()) for c in N.COUNTRIES},
        "people_by_number_of_sources": {str(i): int((k == i).sum()) for i in range(1, 5)},
        "people_only_in": {s: int(only_one[i]) for i, s in enumerate(source_names)},
        "people_moved": int(ppl.moved.sum()),
        "people_married": int(ppl.married.sum()),
        "hard_negatives": {kind: int(hn.get(kind, 0)) for kind in HARD_NEGATIVE_KINDS},
        "noise": {
            kind: {
                "total": int(v.sum()),
                **{s: int(v[i]) for i, s in enumerate(source_names) if v[i]},
            }
            for kind, v in noise.items()
        },
        "consent": consent_counts,
        "defects_by_file": defects_by_file,
        "defects_by_source": defects_by_source,
        "defect_rows": _rows_by_file_and_kind(defect_rows),
    }


def _rows_by_file_and_kind(defect_rows: list[dict]) -> dict[str, dict]:
    """{file: {"sources": [...], "id_column_values": ..., kind: {"rows": [...], "field": [...]}}}:
    1-based data-row numbers of every planted defect, with the field it is in and the row's id."""
    out: dict[str, dict] = {}
    for d in defect_rows:
        f = out.setdefault(d["file"], {"sources": d["sources"], "kinds": {}})
        k = f["kinds"].setdefault(d["kind"], {"rows": [], "fields": [], "record_ids": []})
        k["rows"].append(d["row_number"])
        k["fields"].append(d["field"])
        k["record_ids"].append(d["record_id"])
    for f in out.values():
        for k in f["kinds"].values():
            order = np.argsort(k["rows"], kind="stable")
            for key in ("rows", "fields", "record_ids"):
                k[key] = [k[key][i] for i in order]
    return out


def _stats_json(stats: dict) -> str:
    """Indented JSON whose long lists (row numbers, ids) stay on one line each."""
    lists: dict[str, str] = {}

    def compact(node):
        if isinstance(node, dict):
            return {k: compact(v) for k, v in node.items()}
        if isinstance(node, list) and node and not isinstance(node[0], (dict, list)):
            token = f"@@list{len(lists)}@@"
            lists[token] = json.dumps(node, ensure_ascii=False, separators=(",", ":"))
            return token
        return node

    text = json.dumps(compact(stats), indent=2, ensure_ascii=False)
    for token, value in lists.items():
        text = text.replace(f'"{token}"', value, 1)
    return text + "\n"


# --------------------------------------------------------------------------------------------
# scv.yml
# --------------------------------------------------------------------------------------------


#: The demo's exchange rates into its reporting currency, GBP (written into its scv.yml).
DEMO_RATES = {"EUR": 0.86, "PLN": 0.20, "USD": 0.79}


def _config(end_date: date) -> dict:
    """The config for exactly the files written (CONTRACT §3; keys of sources.config)."""
    pos_csv = {"delimiter": ";", "encoding": "latin-1", "default_country": "GB"}
    return {
        "data_dir": "..",
        "warehouse": "../warehouse/warehouse.duckdb",
        "exports": "../exports",
        "sources": {
            "crm": {
                "kind": "person",
                "path": FILES["crm"],
                "id": "ContactId",
                "trust": 80,
                "default_country": "GB",
                "columns": {
                    "first_name": "FirstName",
                    "last_name": "LastName",
                    "email": "Email",
                    "phone": "Phone",
                    "date_of_birth": "DOB",
                    "address_line": "Street",
                    "postcode": "Zip",
                    "city": "City",
                    "country": "Country",
                    "updated_at": "ModifiedAt",
                },
            },
            "shop_customers": {
                "kind": "person",
                "path": FILES["shop_customers"],
                "id": "customer_id",
                "trust": 70,
                "default_country": "GB",
                "columns": {
                    "first_name": "first_name",
                    "last_name": "last_name",
                    "email": "email",
                    "phone": "phone",
                    "date_of_birth": "birth_date",
                    "address_line": "address",
                    "postcode": "postcode",
                    "city": "city",
                    "country": "country_code",
                    "updated_at": "updated_at",
                },
            },
            "shop_orders": {
                "kind": "order",
                "path": FILES["shop_orders"],
                "id": "order_id",
                "person": {"source": "shop_customers", "key": "customer_id"},
                "columns": {
                    "order_date": "created_at",
                    "amount": "total",
                    "currency": "currency",
                    "status": "status",
                },
                "constants": {"channel": "online"},
            },
            "pos_loyalty": {
                "kind": "person",
                "path": FILES["pos_loyalty"],
                "id": "CardNo",
                "trust": 50,
                **pos_csv,
                "date_format": "%d/%m/%Y",
                "columns": {
                    "full_name": "FullName",
                    "email": "Email",
                    "phone": "Phone",
                    "date_of_birth": "DOB",
                    "address_line": "Address",
                    "postcode": "Postcode",
                    "city": "Town",
                    "updated_at": "JoinedOn",
                },
            },
            "pos_receipts": {
                "kind": "order",
                "path": FILES["pos_receipts"],
                "id": "ReceiptNo",
                "person": {"source": "pos_loyalty", "key": "CardNo"},
                **pos_csv,
                "date_format": "%d/%m/%Y %H:%M",
                "columns": {
                    "order_date": "PurchaseDate",
                    "amount": "Amount",
                    "currency": "Currency",
                    "status": "Status",
                },
                "constants": {"channel": "store"},
                "value_map": {
                    "status": {"SALE": "completed", "VOID": "cancelled", "RETURN": "returned"}
                },
            },
            "web_events": {
                "kind": "event",
                "path": FILES["web_events"],
                "id": "event_id",
                "person": {"source": "shop_customers", "key": "customer_key"},
                "columns": {"event_time": "ts", "event_type": "type", "session_id": "session_id"},
                "constants": {"channel": "web"},
            },
            "email_subscribers": {
                "kind": "person",
                "path": FILES["email_subscribers"],
                "id": "subscriber_id",
                "trust": 30,
                "columns": {"email": "email", "updated_at": "subscribed_at"},
            },
            "email_events": {
                "kind": "event",
                "path": FILES["email_events"],
                "id": "event_id",
                "person": {"source": "email_subscribers", "key": "subscriber_id"},
                "columns": {"event_time": "timestamp", "event_type": "type"},
                "constants": {"channel": "email"},
                "value_map": {
                    "event_type": {
                        "sent": "email_sent",
                        "open": "email_open",
                        "click": "email_click",
                    }
                },
            },
            "support_contacts": {
                "kind": "person",
                "path": FILES["support_contacts"],
                "id": "ticket_id",
                "trust": 40,
                "columns": {
                    "full_name": "customer_name",
                    "email": "email",
                    "updated_at": "opened_at",
                },
            },
            "support_tickets": {
                "kind": "event",
                "path": FILES["support_tickets"],
                "id": "ticket_id",
                "person": {"source": "support_contacts", "key": "ticket_id"},
                "columns": {"event_time": "opened_at"},
                "constants": {"event_type": "ticket_opened", "channel": "support"},
            },
            "consent_records": {
                "kind": "consent",
                "path": FILES["consent_records"],
                "id": "consent_id",
                "person": {"source": "shop_customers", "key": "customer_id"},
                "columns": {
                    "purpose": "purpose",
                    "granted": "granted",
                    "recorded_at": "recorded_at",
                },
                "value_map": {
                    "granted": {"opt-in": True, "opt-out": False, "yes": True, "no": False}
                },
            },
        },
        # The demo shops sell in GBP, EUR, PLN and USD: figures are reported in GBP at these
        # rates (GBP per unit). No rate is built into the warehouse; this is the demo's choice.
        "currency": {"reporting": "GBP", "rates": dict(DEMO_RATES)},
    }


def _config_text(seed: int, people: int, end_date: date) -> str:
    header = (
        "# SCV config for the demo company, written by `scv demo` "
        f"(seed {seed}, {people} people, data up to {end_date.isoformat()}).\n"
        "# Paths are relative to this file: the source files sit next to it, the warehouse and\n"
        "# the exports one level up. Use it with `scv run --config <this file>`.\n"
        "# truth.csv (next to it) names the real person behind every person record.\n"
    )
    body = yaml.safe_dump(_config(end_date), sort_keys=False, allow_unicode=True, width=100)
    return header + body
