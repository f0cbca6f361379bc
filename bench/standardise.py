"""Benchmark of `transforms.standardise.standardise_persons` on synthetic person rows.

    .venv/bin/python bench/standardise.py [--rows 100000] [--seed 1]

Builds a synthetic source of `--rows` person records (about 1.6 records per person, names,
streets, cities and postcodes from Faker pools, with the formatting noise real exports have:
case, spaces, national vs international phones, abbreviated streets, country names, titles and
"SURNAME, First" names, a few percent junk values) in two shapes: a CRM-like source
(first/last name, day-first dates, default country GB) and a shop-like one (full name, ISO
dates, no default country). Prints one table row per shape, then
the time per field group on the CRM-like frame.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from anyascii import anyascii

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sources.config import SourceConfig
from transforms.standardise import (
    dates,
    emails,
    names,
    phones,
    places,
    standardise_persons,
)


def _words(text: str) -> list[str]:
    return text.split()


FIRST = _words(
    "James John Robert Bob Rob Michael Mike William Bill David Dave Richard Thomas Tom Joseph "
    "Charles Christopher Daniel Matthew Anthony Mark Paul Steven George Kenneth Andrew Joshua "
    "Mary Patricia Jennifer Linda Elizabeth Liz Barbara Susan Jessica Sarah Karen Nancy Lisa "
    "Margaret Peggy Betty Sandra Ashley Emily Kimberly Donna Michelle Carol Amanda Melissa "
    "Zoë Chloë Renée Seán Siobhán Niamh Aoife Łukasz Paweł Małgorzata Jürgen Käthe François "
    "Hélène Mohammed Aisha Priya Arjun Fatima Wei Fang Li Ying"
)
LAST = _words(
    "Smith Jones Williams Taylor Brown Davies Evans Wilson Thomas Johnson Roberts Robinson "
    "Thompson Wright Walker White Edwards Hughes Green Hall Lewis Harris Clarke Patel Jackson "
    "Wood Turner Martin Cooper Hill Ward Morris Moore Clark Lee King Baker Harrison Morgan "
    "O'Brien O'Neill McDonald Murphy Kelly Nowak Kowalski Wiśniewski Müller Schmidt Schäfer "
    "Lefèvre Dubois Khan Ahmed Hussain Singh Shah Begum Wang Zhang Chen Liu"
)
STREETS = _words("High Church Station Mill Park Victoria King's Queen's Manor School Green London")
SUFFIXES = ["Road", "Rd", "Street", "St", "St.", "Lane", "Ln", "Avenue", "Ave", "Close", "Drive"]
CITIES = ["London", "LONDON", "Manchester", "Leeds", "St. Albans", "Saint Albans", "Köln", "Paris"]
COUNTRIES = ["GB", "UK", "United Kingdom", "England", "gb", "Deutschland", "France", "US", None]
DOMAINS = ["gmail.com", "googlemail.com", "hotmail.co.uk", "yahoo.co.uk", "outlook.com", "web.de"]
JUNK_EMAILS = ["test@test.com", "noemail@example.com", "n/a", "not an email"]
JUNK_PHONES = ["0000000000", "1234567890", "n/a", "12"]


def _pools(seed: int) -> dict[str, list[str]]:
    """Realistic value pools (thousands of distinct names and streets) from Faker."""
    from faker import Faker

    fake = Faker(["en_GB", "en_IE", "de_DE", "fr_FR", "pl_PL", "en_US"])
    fake.seed_instance(seed)
    return {
        "first": FIRST + [fake.first_name() for _ in range(3000)],
        "last": LAST + [fake.last_name() for _ in range(8000)],
        "street": STREETS + [fake.street_name() for _ in range(5000)],
        "city": CITIES + [fake.city() for _ in range(2000)],
        "postcode": [fake.postcode() for _ in range(20000)],
    }


def _pick(rng: np.random.Generator, pool, n: int) -> np.ndarray:
    return np.asarray(pool, dtype=object)[rng.integers(0, len(pool), n)]


def synthetic_people(rows: int, seed: int = 1) -> pd.DataFrame:
    """`rows` canonical person rows (all text) drawn from ~rows/1.6 synthetic people."""
    rng = np.random.default_rng(seed)
    pools = _pools(seed)
    people = max(1, int(rows / 1.6))
    first = pd.Series(_pick(rng, pools["first"], people), dtype="str")
    last = pd.Series(_pick(rng, pools["last"], people), dtype="str")
    serial = pd.Series(np.arange(people).astype(str), dtype="str")
    domain = pd.Series(_pick(rng, DOMAINS, people), dtype="str")
    ascii_first = pd.Series([anyascii(v).lower() for v in first], dtype="str")
    ascii_last = pd.Series([anyascii(v).lower().replace("'", "") for v in last], dtype="str")
    email = ascii_first + "." + ascii_last + serial + "@" + domain
    mobile = pd.Series(rng.integers(10**8, 10**9 - 1, people).astype(str), dtype="str")
    dob = pd.Series(
        pd.to_datetime("1940-01-01") + pd.to_timedelta(rng.integers(0, 65 * 365, people), "D")
    )
    street = (
        pd.Series(rng.integers(1, 300, people).astype(str), dtype="str")
        + " "
        + pd.Series(_pick(rng, pools["street"], people), dtype="str")
        + " "
        + pd.Series(_pick(rng, SUFFIXES, people), dtype="str")
    )

    who = rng.integers(0, people, rows)
    noise = rng.random(rows)
    e = email.iloc[who].reset_index(drop=True)
    e = e.where(noise > 0.15, " " + e.str.upper() + " ")
    e = e.where(noise < 0.97, pd.Series(_pick(rng, JUNK_EMAILS, rows), dtype="str"))
    m = mobile.iloc[who].reset_index(drop=True)
    p = ("07" + m.str.slice(0, 3) + " " + m.str.slice(3)).where(noise < 0.5, "+44 7" + m)
    p = p.where(noise < 0.97, pd.Series(_pick(rng, JUNK_PHONES, rows), dtype="str"))
    updated = pd.to_datetime("2023-01-01") + pd.to_timedelta(
        rng.integers(0, 3 * 365 * 86400, rows), "s"
    )
    return pd.DataFrame(
        {
            "_row_number": np.arange(1, rows + 1, dtype="int64"),
            "source_record_id": pd.Series(np.arange(rows).astype(str), dtype="str"),
            "first_name": first.iloc[who].reset_index(drop=True),
            "last_name": last.iloc[who].reset_index(drop=True),
            "email": e,
            "phone": p,
            "date_of_birth": dob.iloc[who].dt.strftime("%d/%m/%Y").reset_index(drop=True),
            "address_line": street.iloc[who].reset_index(drop=True),
            "postcode": pd.Series(_pick(rng, pools["postcode"], rows)),
            "city": pd.Series(_pick(rng, pools["city"], rows), dtype="str"),
            "country": pd.Series(_pick(rng, COUNTRIES, rows), dtype="str"),
            "updated_at": pd.Series(updated.strftime("%Y-%m-%dT%H:%M:%S"), dtype="str"),
        }
    ).astype({c: "str" for c in ("postcode", "date_of_birth")})


def _timed(func, *args) -> float:
    start = time.perf_counter()
    func(*args)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)

    crm = synthetic_people(args.rows, args.seed)
    rng = np.random.default_rng(args.seed)
    title = pd.Series(_pick(rng, ["", "", "", "", "", "", "", "", "Dr. ", "Mr "], len(crm)))
    suffix = pd.Series(_pick(rng, [""] * 19 + [" Jr."], len(crm)))
    comma = rng.random(len(crm)) < 0.05
    plain = title + crm["first_name"] + " " + crm["last_name"] + suffix
    shop = crm.drop(columns=["first_name", "last_name"]).assign(
        full_name=plain.where(~comma, crm["last_name"].str.upper() + ", " + crm["first_name"]),
        date_of_birth=pd.to_datetime(crm["date_of_birth"], format="%d/%m/%Y").dt.strftime(
            "%Y-%m-%d"
        ),
    )
    crm_src = SourceConfig(
        name="crm", kind="person", path=Path("crm.csv"), id="id",
        date_format="%d/%m/%Y", default_country="GB",
    )  # fmt: skip
    shop_src = SourceConfig(name="shop", kind="person", path=Path("shop.csv"), id="id")

    # Warm the lazily built tables (nicknames, countries) so they are not charged to a shape.
    standardise_persons(crm.head(10), crm_src, as_of=pd.Timestamp("2026-01-01").date())

    print(f"{'shape':<40}{'rows':>10}{'seconds':>10}{'rows/s':>12}")
    for label, frame, src in (
        ("crm: first/last, %d/%m/%Y, GB default", crm, crm_src),
        ("shop: full_name, ISO dates, no default", shop, shop_src),
    ):
        seconds = _timed(standardise_persons, frame, src)
        print(f"{label:<40}{len(frame):>10}{seconds:>10.2f}{len(frame) / seconds:>12,.0f}")

    print(f"\n{'field group (crm frame)':<40}{'distinct':>10}{'seconds':>10}")
    first, last, full = crm["first_name"], crm["last_name"], shop["full_name"]
    dob, updated = crm["date_of_birth"], crm["updated_at"]
    groups = [
        ("names (2 keys)", lambda: (names.name_keys(first), names.name_keys(last)), last),
        ("full-name split (shop)", lambda: names.split_full_names(full), full),
        ("email", lambda: emails.standardise_emails(crm["email"]), crm["email"]),
        ("phone", lambda: phones.standardise_phones(crm["phone"], "GB"), crm["phone"]),
        ("date_of_birth", lambda: dates.standardise_dobs(dob, "%d/%m/%Y"), dob),
        ("updated_at", lambda: dates.standardise_timestamps(updated, "%d/%m/%Y"), updated),
        ("address_line", lambda: places.address_keys(crm["address_line"]), crm["address_line"]),
        ("country", lambda: places.country_codes(crm["country"]), crm["country"]),
    ]
    for label, func, column in groups:
        print(f"{label:<40}{column.nunique():>10}{_timed(func):>10.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
