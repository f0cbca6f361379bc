"""The people of the demo company and their person records in each source system.

Three steps, all vectorised with numpy / pandas (only small noisy subsets are edited row by row):

1. `make_people` draws the real persons (names, birth dates, addresses, phones, e-mails, life
   events such as a move or a marriage) and plants the hard negatives: twins, parent and child
   with one name, couples sharing contact details, very common names, shared junk values.
2. `make_records` decides which person sources hold each person (1-4 of them, some more than
   once), when each record was last updated and which state of the person it shows (the old
   address before a move, the maiden name before a marriage), then applies record noise.
3. `sources.demo` formats the records per source convention and writes the files.

Everything is drawn from the numpy Generators handed in, so one seed gives one company.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache

import numpy as np
import pandas as pd
from anyascii import anyascii
from faker import Faker

from sources import demo_names as N

__all__ = [
    "HARD_NEGATIVE_KINDS",
    "PERSON_SOURCES",
    "People",
    "Pools",
    "Records",
    "build_pools",
    "format_phones",
    "make_people",
    "make_records",
]

#: Person sources in scv.yml order (record arrays carry the index into this tuple).
PERSON_SOURCES: tuple[str, ...] = (
    "crm",
    "shop_customers",
    "pos_loyalty",
    "email_subscribers",
    "support_contacts",
)
CRM, SHOP, POS, EMAIL, SUPPORT = range(5)

#: Which kinds of person field each person source holds.
SOURCE_FIELDS: dict[int, frozenset[str]] = {
    CRM: frozenset({"name", "email", "phone", "dob", "address", "country"}),
    SHOP: frozenset({"name", "email", "phone", "dob", "address", "country"}),
    POS: frozenset({"name", "email", "phone", "dob", "address"}),
    EMAIL: frozenset({"email"}),
    SUPPORT: frozenset({"name", "email"}),
}
#: How likely a person is to be in each source, relative to the others.
SOURCE_WEIGHTS = np.array([0.55, 0.65, 0.40, 0.45, 0.15])
#: How many person sources one person is in: 1, 2, 3 or 4.
SOURCES_PER_PERSON_P = np.array([0.22, 0.40, 0.28, 0.10])

HARD_NEGATIVE_KINDS: tuple[str, ...] = (
    "twin",
    "parent_child",
    "couple",
    "common_name",
    "shared_junk",
)
PHONE_STYLES: tuple[str, ...] = (
    "e164",
    "intl_spaced",
    "intl_00",
    "intl_trunk",
    "national",
    "national_compact",
    "national_dashed",
)

_SECONDS_PER_DAY = 86_400


# --------------------------------------------------------------------------------------------
# Pools
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pools:
    """Name and street pools drawn once from Faker with a fixed seed."""

    first: dict[tuple[str, str], np.ndarray]
    last: dict[str, np.ndarray]
    streets: dict[str, np.ndarray]
    latin: dict[str, str]


def _unique(values) -> np.ndarray:
    return np.array(list(dict.fromkeys(values)), dtype=object)


@lru_cache(maxsize=8)
def build_pools(seed: int) -> Pools:
    """Name pools per (origin, sex), surname pools per origin, street pools per country."""
    first: dict[tuple[str, str], np.ndarray] = {}
    last: dict[str, np.ndarray] = {}
    for origin in N.ORIGINS:
        if origin == "south_asian":
            first[origin, "male"] = _unique(N.SOUTH_ASIAN_NAMES["male"])
            first[origin, "female"] = _unique(N.SOUTH_ASIAN_NAMES["female"])
            last[origin] = _unique(N.SOUTH_ASIAN_NAMES["last"])
            continue
        fake = Faker(origin)
        fake.seed_instance(seed)
        extra = N.EXTRA_FIRST_NAMES.get(origin, {})
        first[origin, "male"] = _unique(
            [*extra.get("male", ()), *(fake.first_name_male() for _ in range(300))]
        )
        first[origin, "female"] = _unique(
            [*extra.get("female", ()), *(fake.first_name_female() for _ in range(300))]
        )
        last[origin] = _unique(
            [*N.EXTRA_LAST_NAMES.get(origin, ()), *(fake.last_name() for _ in range(500))]
        )
    # CJK names also need a Latin spelling (web forms, the POS till, e-mail addresses).
    latin = {}
    for key in ("zh_CN",):
        for name in [*first[key, "male"], *first[key, "female"], *last[key]]:
            latin[name] = anyascii(name).capitalize()

    rng = np.random.default_rng(seed)
    suffixes = np.array([s for s, _ in N.STREET_SUFFIXES], dtype=object)
    suffix_p = np.array([w for _, w in N.STREET_SUFFIXES])
    suffix_p = suffix_p / suffix_p.sum()
    streets: dict[str, np.ndarray] = {}
    for country, origin in (("GB", "en_GB"), ("IE", "en_IE"), ("US", "en_US")):
        stems = np.array([*N.STREET_STEMS, *last[origin][:150]], dtype=object)
        stems = stems[np.char.find(stems.astype(str), " ") < 0]  # one-word stems read better
        combo = (
            stems[rng.integers(0, len(stems), 900)]
            + " "
            + suffixes[rng.choice(len(suffixes), 900, p=suffix_p)]
        )
        streets[country] = _unique(combo)
    for country, origin in (("DE", "de_DE"), ("FR", "fr_FR"), ("PL", "pl_PL")):
        fake = Faker(origin)
        fake.seed_instance(seed + 1)
        streets[country] = _unique(fake.street_name() for _ in range(600))
    return Pools(first=first, last=last, streets=streets, latin=latin)


# --------------------------------------------------------------------------------------------
# Small vectorised helpers
# --------------------------------------------------------------------------------------------


def _zipf(k: int) -> np.ndarray:
    """Skewed popularity: the first names of a pool are much more common than the last."""
    w = 1.0 / (np.arange(k) + 6.0)
    return w / w.sum()


def _pick(rng: np.random.Generator, pool: np.ndarray, size: int, skew: bool = True):
    if skew:
        return pool[rng.choice(len(pool), size=size, p=_zipf(len(pool)))]
    return pool[rng.integers(0, len(pool), size)]


def _weighted(rng: np.random.Generator, pairs, size: int) -> np.ndarray:
    values = np.array([v for v, _ in pairs], dtype=object)
    p = np.array([w for _, w in pairs], dtype=float)
    return values[rng.choice(len(values), size=size, p=p / p.sum())]


def _digits(rng: np.random.Generator, size: int, width: int, low: int = 0) -> np.ndarray:
    nums = rng.integers(low, 10**width, size=size)
    return pd.Series(nums, dtype="int64").astype(str).str.zfill(width).to_numpy(dtype=object)


def _letters(rng: np.random.Generator, size: int, width: int, alphabet: str) -> np.ndarray:
    chars = np.array(list(alphabet), dtype="<U1")[rng.integers(0, len(alphabet), (size, width))]
    return np.ascontiguousarray(chars).view(f"<U{width}").ravel().astype(object)


def _digits_of(x: np.ndarray, width: int) -> np.ndarray:
    return pd.Series(x, dtype="int64").astype(str).str.zfill(width).to_numpy(dtype=object)


def _num_str(x: np.ndarray) -> np.ndarray:
    return pd.Series(x, dtype="int64").astype(str).to_numpy(dtype=object)


def _uniform_times(rng, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """A uniform random second in [start, end) per row (end > start assumed, else start)."""
    span = np.maximum((end - start).astype("int64"), 1)
    return start + (rng.random(len(start)) * span).astype("int64").astype("timedelta64[s]")


def _ymd(d: np.ndarray):
    y = d.astype("datetime64[Y]").astype("int64") + 1970
    m = d.astype("datetime64[M]").astype("int64") % 12 + 1
    day = (d - d.astype("datetime64[M]")).astype("int64") + 1
    return y, m, day


def _from_ymd(y, m, day) -> np.ndarray:
    months = ((np.asarray(y) - 1970) * 12 + np.asarray(m) - 1).astype("datetime64[M]")
    return months.astype("datetime64[D]") + (np.asarray(day) - 1).astype("timedelta64[D]")


def _ascii_key(names: np.ndarray) -> np.ndarray:
    """Lower-case ASCII letters of each name (for e-mail local parts); mapped per unique value."""
    uniq = pd.unique(names)
    mapping = {}
    for u in uniq:
        s = "".join(ch for ch in anyascii(str(u)).lower() if "a" <= ch <= "z")
        mapping[u] = s or "customer"
    return pd.Series(names, dtype=object).map(mapping).to_numpy(dtype=object)


# --------------------------------------------------------------------------------------------
# People
# --------------------------------------------------------------------------------------------


@dataclass
class People:
    """One entry per real person (index = person number); arrays of equal length."""

    n: int
    person_id: np.ndarray
    country: np.ndarray
    origin: np.ndarray
    female: np.ndarray
    first: np.ndarray
    last: np.ndarray
    dob: np.ndarray  # datetime64[D]
    street: np.ndarray
    postcode: np.ndarray
    city: np.ndarray
    phone: np.ndarray  # national significant number (digits)
    email: np.ndarray
    first_seen: np.ndarray  # datetime64[s]
    change_at: np.ndarray  # datetime64[s], NaT when no move / marriage
    moved: np.ndarray
    married: np.ndarray
    old_street: np.ndarray
    old_postcode: np.ndarray
    old_city: np.ndarray
    maiden: np.ndarray
    member: np.ndarray  # (n, 5) bool: person sources holding the person
    junk: np.ndarray  # junk value this person's records use, or None
    hard_negatives: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def cjk(self) -> np.ndarray:
        return self.origin == "zh_CN"


def _sample_first(rng, pools: Pools, origin: np.ndarray, female: np.ndarray) -> np.ndarray:
    out = np.empty(len(origin), dtype=object)
    for o in N.ORIGINS:
        for sex in ("male", "female"):
            m = (origin == o) & (female == (sex == "female"))
            if m.any():
                out[m] = _pick(rng, pools.first[o, sex], int(m.sum()))
    return out


def _sample_last(rng, pools: Pools, origin: np.ndarray) -> np.ndarray:
    out = np.empty(len(origin), dtype=object)
    for o in N.ORIGINS:
        m = origin == o
        if m.any():
            out[m] = _pick(rng, pools.last[o], int(m.sum()))
    return out


def _postcodes(rng, country: str, areas: np.ndarray) -> np.ndarray:
    k = len(areas)
    if country == "GB":
        district = _num_str(rng.integers(1, 21, k))
        inward = _num_str(rng.integers(0, 10, k)) + _letters(rng, k, 2, "ABDEFGHJLNPQRSTUWXYZ")
        return areas + district + " " + inward
    if country == "IE":
        return areas + " " + _letters(rng, k, 4, "ACDEFHKNPRTVWXY0123456789")
    if country == "DE":
        return areas + _digits(rng, k, 3)
    if country == "FR":
        return areas + _digits(rng, k, 2, low=1)
    if country == "PL":
        return areas + "-" + _digits(rng, k, 3)
    return areas + _digits(rng, k, 2)  # US ZIP


def _sample_address(rng, pools: Pools, country: np.ndarray, city_index: int | None = None):
    """Street line, postcode and city for each country code (local conventions); all in the
    country's `city_index`-th city when given."""
    n = len(country)
    street = np.empty(n, dtype=object)
    postcode = np.empty(n, dtype=object)
    city = np.empty(n, dtype=object)
    for c in N.COUNTRIES:
        m = country == c
        k = int(m.sum())
        if not k:
            continue
        specs = N.CITIES[c]
        p = np.array([w for _, w, _ in specs])
        if city_index is None:
            ci = rng.choice(len(specs), size=k, p=p / p.sum())
        else:
            ci = np.full(k, city_index)
        city[m] = np.array([s[0] for s in specs], dtype=object)[ci]
        areas = np.empty(k, dtype=object)
        for j, (_, _, codes) in enumerate(specs):
            mj = ci == j
            if mj.any():
                areas[mj] = np.array(codes, dtype=object)[rng.integers(0, len(codes), mj.sum())]
        postcode[m] = _postcodes(rng, c, areas)
        name = _pick(rng, pools.streets[c], k)
        if c in ("GB", "IE"):
            line = _num_str(rng.integers(1, 221, k)) + " " + name
            flat = rng.random(k) < 0.12
            label = "Flat " if c == "GB" else "Apt "
            line[flat] = label + _num_str(rng.integers(1, 31, flat.sum())) + ", " + line[flat]
        elif c == "US":
            line = _num_str(rng.integers(1, 9_999, k)) + " " + name
            apt = rng.random(k) < 0.10
            line[apt] = line[apt] + " Apt " + _num_str(rng.integers(1, 40, apt.sum()))
        elif c == "DE":
            line = name + " " + _num_str(rng.integers(1, 151, k))
        elif c == "FR":
            line = _num_str(rng.integers(1, 121, k)) + " " + name
        else:  # PL
            line = "ul. " + name + " " + _num_str(rng.integers(1, 120, k))
            flat = rng.random(k) < 0.35
            line[flat] = line[flat] + "/" + _num_str(rng.integers(1, 60, flat.sum()))
        street[m] = line
    return street, postcode, city


def _sample_phones(rng, country: np.ndarray) -> np.ndarray:
    out = np.empty(len(country), dtype=object)
    for c, plan in N.PHONE_PLANS.items():
        m = country == c
        k = int(m.sum())
        if not k:
            continue
        prefix = np.array(plan["prefixes"], dtype=object)[rng.integers(0, len(plan["prefixes"]), k)]
        low = 2 * 10 ** (plan["rest"] - 1) if c == "US" else 0  # US exchange codes start 2-9
        out[m] = prefix + _digits(rng, k, plan["rest"], low=low)
    return out


def _sample_emails(rng, first: np.ndarray, last: np.ndarray, dob, country) -> np.ndarray:
    """A plausible, unique personal e-mail per person (numbers appended on collision)."""
    n = len(first)
    f = _ascii_key(first)
    la = _ascii_key(last)
    yy = pd.Series(_ymd(dob)[0] % 100).astype(str).str.zfill(2).to_numpy(dtype=object)
    pattern = rng.choice(7, size=n, p=[0.34, 0.16, 0.14, 0.08, 0.12, 0.08, 0.08])
    local = np.empty(n, dtype=object)
    for i, build in enumerate(
        (
            lambda m: f[m] + "." + la[m],
            lambda m: f[m] + la[m],
            lambda m: np.array([s[:1] for s in f[m]], dtype=object) + "." + la[m],
            lambda m: f[m] + "_" + la[m],
            lambda m: f[m] + "." + la[m] + yy[m],
            lambda m: f[m] + _num_str(rng.integers(1, 999, m.sum())),
            lambda m: la[m] + "." + f[m],
        )
    ):
        m = pattern == i
        if m.any():
            local[m] = build(m)
    domain = np.empty(n, dtype=object)
    for c in N.COUNTRIES:
        m = country == c
        if m.any():
            domain[m] = _weighted(rng, N.EMAIL_DOMAINS[c], int(m.sum()))
    email = local + "@" + domain
    # Distinct people never share a mailbox by accident: number the repeats. Gmail ignores dots
    # and treats googlemail.com as gmail.com, so two such addresses are one mailbox.
    gmail = np.isin(domain, ("gmail.com", "googlemail.com"))
    for _ in range(5):
        mailbox = np.where(
            gmail, pd.Series(local).str.replace(".", "", regex=False).to_numpy() + "@gmail.com", email
        )
        s = pd.Series(mailbox)
        rep = s.groupby(s, sort=False).cumcount().to_numpy()
        if not (rep > 0).any():
            break
        m = rep > 0
        email[m] = local[m] + _num_str(rep[m] + 1) + "@" + domain[m]
        local[m] = local[m] + _num_str(rep[m] + 1)
    return email


def _membership(rng, country: np.ndarray) -> np.ndarray:
    """(n, 5) bool: which person sources hold each person (weighted sampling without
    replacement via the Gumbel top-k trick, k = 1..4)."""
    n = len(country)
    w = np.tile(SOURCE_WEIGHTS, (n, 1))
    w[~np.isin(country, ("GB", "IE")), POS] *= 0.05  # the stores are in the UK and Ireland
    keys = np.log(w) + rng.gumbel(size=w.shape)
    order = np.argsort(-keys, axis=1, kind="stable")
    rank = np.empty_like(order)
    rank[np.arange(n)[:, None], order] = np.arange(w.shape[1])
    k = rng.choice(np.arange(1, 5), size=n, p=SOURCES_PER_PERSON_P)
    return rank < k[:, None]


def make_people(rng: np.random.Generator, pools: Pools, n: int, end_date: date, rates) -> People:
    """Draw `n` people, their source memberships and the planted hard negatives."""
    end = np.datetime64(end_date, "s")
    cidx = rng.choice(
        len(N.COUNTRIES), size=n, p=np.array(N.COUNTRY_WEIGHTS) / sum(N.COUNTRY_WEIGHTS)
    )
    country = np.array(N.COUNTRIES, dtype=object)[cidx]
    origin = np.empty(n, dtype=object)
    for c in N.COUNTRIES:
        m = country == c
        if m.any():
            origin[m] = _weighted(rng, tuple(N.ORIGIN_MIX[c].items()), int(m.sum()))
    female = rng.random(n) < 0.52
    first = _sample_first(rng, pools, origin, female)
    last = _sample_last(rng, pools, origin)
    age_days = ((18 + rng.beta(2.0, 3.2, n) * 70) * 365.25).astype("int64")
    dob = np.datetime64(end_date, "D") - age_days.astype("timedelta64[D]")
    street, postcode, city = _sample_address(rng, pools, country)
    phone = _sample_phones(rng, country)
    first_seen = (
        end
        - rng.integers(45, 2_400, n).astype("timedelta64[D]").astype("timedelta64[s]")
        + rng.integers(0, _SECONDS_PER_DAY, n).astype("timedelta64[s]")
    )
    member = _membership(rng, country)

    people = People(
        n=n,
        person_id="P" + _digits_of(np.arange(1, n + 1), max(7, len(str(n)))),
        country=country,
        origin=origin,
        female=female,
        first=first,
        last=last,
        dob=dob,
        street=street,
        postcode=postcode,
        city=city,
        phone=phone,
        email=np.empty(n, dtype=object),
        first_seen=first_seen,
        change_at=np.full(n, np.datetime64("NaT"), dtype="datetime64[s]"),
        moved=np.zeros(n, bool),
        married=np.zeros(n, bool),
        old_street=np.full(n, None, dtype=object),
        old_postcode=np.full(n, None, dtype=object),
        old_city=np.full(n, None, dtype=object),
        maiden=np.full(n, None, dtype=object),
        member=member,
        junk=np.full(n, None, dtype=object),
    )
    taken = np.zeros(n, bool)
    pairs = _plant_hard_negatives(rng, pools, people, rates, taken, end_date)
    people.email = _sample_emails(rng, people.first, people.last, people.dob, people.country)
    # Couples share one e-mail address (and phone, copied in _plant_hard_negatives).
    couples = pairs[pairs["kind"] == "couple"]
    people.email[couples["b"].to_numpy()] = people.email[couples["a"].to_numpy()]
    _life_events(rng, pools, people, rates, taken, end)
    pairs["person_id_a"] = people.person_id[pairs["a"].to_numpy()]
    pairs["person_id_b"] = people.person_id[pairs["b"].to_numpy()]
    people.hard_negatives = pairs[["person_id_a", "person_id_b", "kind"]].reset_index(drop=True)
    return people


def _take(rng, candidates: np.ndarray, taken: np.ndarray, k: int) -> np.ndarray:
    free = candidates[~taken[candidates]]
    if len(free) < k:
        raise ValueError(
            f"too few people ({len(taken)}) for the requested hard negatives; "
            "use more people or lower the NoiseRates hard-negative rates"
        )
    chosen = rng.choice(free, size=k, replace=False)
    taken[chosen] = True
    return chosen


def _copy_household(p: People, a: np.ndarray, b: np.ndarray) -> None:
    p.country[b] = p.country[a]
    p.origin[b] = p.origin[a]
    p.street[b] = p.street[a]
    p.postcode[b] = p.postcode[a]
    p.city[b] = p.city[a]


def _different_first(rng, pools, p: People, a: np.ndarray, b: np.ndarray) -> None:
    """Give b a first name (of b's sex, a's origin) that differs from a's."""
    p.first[b] = _sample_first(rng, pools, p.origin[b], p.female[b])
    for _ in range(10):
        same = p.first[b] == p.first[a]
        if not same.any():
            return
        p.first[b[same]] = _sample_first(rng, pools, p.origin[b[same]], p.female[b[same]])
    same = p.first[b] == p.first[a]
    p.first[b[same]] = p.first[b[same]] + "a"  # a pool with one name: make it differ anyway


def _pairs_within(groups: list[np.ndarray], kind: str) -> pd.DataFrame:
    a_parts, b_parts = [], []
    for g in groups:
        g = np.sort(g)
        i, j = np.triu_indices(len(g), 1)
        a_parts.append(g[i])
        b_parts.append(g[j])
    a = np.concatenate(a_parts) if a_parts else np.empty(0, np.int64)
    b = np.concatenate(b_parts) if b_parts else np.empty(0, np.int64)
    return pd.DataFrame({"a": a, "b": b, "kind": kind})


def _count(rate: float, n: int) -> int:
    return max(1, round(rate * n))


def _plant_hard_negatives(rng, pools, p: People, rates, taken, end_date) -> pd.DataFrame:
    n = p.n
    everyone = np.arange(n)
    frames = []
    end_d = np.datetime64(end_date, "D")

    # Twins: same surname, address and birth date, different first names; some share a phone.
    k = _count(rates.twins, n)
    a, b = _take(rng, everyone, taken, k), _take(rng, everyone, taken, k)
    _copy_household(p, a, b)
    p.last[b] = p.last[a]
    p.dob[b] = p.dob[a]
    _different_first(rng, pools, p, a, b)
    shared = rng.random(k) < 0.3
    p.phone[b[shared]] = p.phone[a[shared]]
    frames.append(pd.DataFrame({"a": a, "b": b, "kind": "twin"}))

    # Parent and child with one full name at one address ("John Smith" senior and junior).
    k = _count(rates.parent_child, n)
    a, b = _take(rng, everyone, taken, k), _take(rng, everyone, taken, k)
    _copy_household(p, a, b)
    p.female[b] = p.female[a]
    p.first[b] = p.first[a]
    p.last[b] = p.last[a]
    parent_age = rng.integers(50 * 365, 78 * 365, k).astype("timedelta64[D]")
    p.dob[a] = end_d - parent_age
    gap = rng.integers(21 * 365, 34 * 365, k).astype("timedelta64[D]")
    p.dob[b] = p.dob[a] + gap
    frames.append(pd.DataFrame({"a": a, "b": b, "kind": "parent_child"}))

    # Couples: one address, one shared e-mail and phone, different first names.
    k = _count(rates.couples, n)
    a, b = _take(rng, everyone, taken, k), _take(rng, everyone, taken, k)
    _copy_household(p, a, b)
    p.female[b] = ~p.female[a] ^ (rng.random(k) < 0.1)
    same_surname = rng.random(k) < 0.7
    p.last[b[same_surname]] = p.last[a[same_surname]]
    p.last[b[~same_surname]] = _sample_last(rng, pools, p.origin[b[~same_surname]])
    _different_first(rng, pools, p, a, b)
    p.dob[b] = p.dob[a] + rng.integers(-6 * 365, 6 * 365, k).astype("timedelta64[D]")
    p.phone[b] = p.phone[a]
    frames.append(pd.DataFrame({"a": a, "b": b, "kind": "couple"}))

    # Very common names: groups of distinct people sharing one full name and one city. Each
    # (name, city) combination is planted once, so every namesake pair in it is listed (the
    # skewed name pools also make namesakes by chance; those are not listed).
    combos = [
        (country, name, ci)
        for country in N.COUNTRIES
        for name in N.COMMON_NAMES[country]
        for ci in range(len(N.CITIES[country]))
    ]
    w = np.array([N.COUNTRY_WEIGHTS[N.COUNTRIES.index(c)] for c, _, _ in combos])
    n_groups = min(_count(rates.common_name / 8, n), len(combos))
    groups = []
    for g in np.sort(rng.choice(len(combos), size=n_groups, replace=False, p=w / w.sum())):
        country, (first, last, sex), ci = combos[g]
        members = _take(rng, everyone, taken, int(rng.integers(4, 13)))
        p.country[members] = country
        p.origin[members] = "south_asian" if last == "Khan" else N.COMMON_NAME_ORIGIN[country]
        p.female[members] = sex == "female"
        p.first[members] = first
        p.last[members] = last
        street, postcode, city = _sample_address(rng, pools, p.country[members], city_index=ci)
        p.street[members], p.postcode[members], p.city[members] = street, postcode, city
        p.phone[members] = _sample_phones(rng, p.country[members])
        groups.append(members)
    frames.append(_pairs_within(groups, "common_name"))

    # Junk values: unrelated people whose records all carry the same placeholder.
    # Only people in a source with e-mail, phone and birth date fields (CRM, shop, POS) qualify.
    eligible = np.flatnonzero(p.member[:, [CRM, SHOP, POS]].any(axis=1))
    groups = []
    per_value = min(max(2, round(rates.junk * n / 4)), rates.junk_max_per_value)
    for value in (*N.JUNK_EMAILS, N.JUNK_PHONE, N.JUNK_DOB):
        members = _take(rng, eligible, taken, per_value)
        p.junk[members] = value
        groups.append(members)
    frames.append(_pairs_within(groups, "shared_junk"))

    pairs = pd.concat(frames, ignore_index=True)
    lo = np.minimum(pairs["a"], pairs["b"])
    hi = np.maximum(pairs["a"], pairs["b"])
    pairs["a"], pairs["b"] = lo, hi
    return pairs


def _life_events(rng, pools, p: People, rates, taken, end) -> None:
    """Moves and marriages, for people outside the hard negatives (their shared address must
    stay shared). Records older than `change_at` show the old address / maiden name."""
    free = np.flatnonzero(~taken)
    moved = free[rng.random(len(free)) < rates.moved]
    age = (np.datetime64(end, "D") - p.dob).astype("int64") / 365.25
    can_marry = free[p.female[free] & (age[free] > 24) & (age[free] < 65)]
    married = can_marry[rng.random(len(can_marry)) < rates.married * 2]
    p.moved[moved] = True
    p.married[married] = True
    changers = np.flatnonzero(p.moved | p.married)
    frac = rng.uniform(0.25, 0.75, len(changers))
    span = (end - p.first_seen[changers]).astype("int64")
    p.change_at[changers] = p.first_seen[changers] + (frac * span).astype("int64").astype(
        "timedelta64[s]"
    )
    old_street, old_postcode, old_city = _sample_address(rng, pools, p.country[moved])
    p.old_street[moved], p.old_postcode[moved], p.old_city[moved] = (
        old_street,
        old_postcode,
        old_city,
    )
    maiden = _sample_last(rng, pools, p.origin[married])
    same = maiden == p.last[married]
    maiden[same] = _sample_last(rng, pools, p.origin[married][same])
    p.maiden[married] = maiden


# --------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------


@dataclass
class Records:
    """Person records of every person source (one row each), after noise.

    `cols` holds object arrays: first, last, email, phone (national digits or a junk value),
    phone_country, dob (datetime64[D], NaT when missing), street, postcode, city, country.
    """

    source: np.ndarray  # index into PERSON_SOURCES
    pidx: np.ndarray  # person number
    time: np.ndarray  # datetime64[s]: updated_at / subscribed_at / opened_at
    cols: dict[str, np.ndarray]
    noise: dict[str, np.ndarray]  # noise kind -> records affected per source

    def of(self, source: int) -> np.ndarray:
        return np.flatnonzero(self.source == source)


def make_records(rng, pools: Pools, p: People, end_date: date, rates) -> Records:
    """Person records for every person source, with states over time and record noise."""
    end = np.datetime64(end_date, "s")
    src_parts, pidx_parts = [], []
    for s in range(len(PERSON_SOURCES)):
        persons = np.flatnonzero(p.member[:, s])
        if s == SUPPORT:
            counts = rng.geometric(0.6, len(persons))  # one record per ticket
        else:
            counts = 1 + (rng.random(len(persons)) < rates.within_source_duplicate)
        pidx_parts.append(np.repeat(persons, counts))
        src_parts.append(np.full(int(counts.sum()), s, dtype=np.int8))
    source = np.concatenate(src_parts)
    pidx = np.concatenate(pidx_parts)
    nrec = len(pidx)

    # Which state of the person each record shows: the oldest record of someone who moved or
    # married is from before the change (so the sources disagree), the others from after.
    key = rng.random(nrec)
    order = np.lexsort((key, pidx))
    starts = np.r_[0, np.flatnonzero(np.diff(pidx[order])) + 1]
    lengths = np.diff(np.r_[starts, nrec])
    rank = np.empty(nrec, np.int64)
    rank[order] = np.arange(nrec) - np.repeat(starts, lengths)
    nrec_person = np.zeros(p.n, np.int64)
    np.add.at(nrec_person, pidx, 1)
    changer = ~np.isnat(p.change_at[pidx])
    before = changer & np.where(nrec_person[pidx] > 1, rank == 0, rng.random(nrec) < 0.5)
    after = changer & ~before
    lo = p.first_seen[pidx].copy()
    hi = np.full(nrec, end)
    hi[before] = p.change_at[pidx[before]]
    lo[after] = p.change_at[pidx[after]]
    time = _uniform_times(rng, lo, hi)

    # Clean values of the state shown; CJK names in native script in some systems only.
    native = p.cjk[pidx] & np.isin(source, (CRM, SHOP, SUPPORT)) & (rng.random(nrec) < 0.5)
    first = p.first[pidx].copy()
    last = p.last[pidx].copy()
    maiden = before & p.married[pidx]
    last[maiden] = p.maiden[pidx[maiden]]
    latin = p.cjk[pidx] & ~native
    first[latin] = [_latin_of(pools, x) for x in first[latin]]
    last[latin] = [_latin_of(pools, x) for x in last[latin]]
    old = before & p.moved[pidx]
    street = np.where(old, p.old_street[pidx], p.street[pidx])
    postcode = np.where(old, p.old_postcode[pidx], p.postcode[pidx])
    city = np.where(old, p.old_city[pidx], p.city[pidx])
    cols = {
        "first": first,
        "last": last,
        "email": p.email[pidx].copy(),
        "phone": p.phone[pidx].copy(),
        "phone_country": p.country[pidx].copy(),
        "dob": p.dob[pidx].copy(),
        "street": street,
        "postcode": postcode,
        "city": city,
        "country": p.country[pidx].copy(),
    }
    recs = Records(source=source, pidx=pidx, time=time, cols=cols, noise={})
    recs.noise["moved_old_address"] = np.bincount(source[old], minlength=5)
    recs.noise["maiden_name"] = np.bincount(source[maiden], minlength=5)
    _apply_junk(recs, p)
    _name_noise(rng, recs, rates)
    _dob_noise(rng, recs, rates)
    _email_noise(rng, recs, rates)
    _address_noise(rng, recs, rates)
    _missing(rng, recs, rates)
    return recs


def _latin_of(pools: Pools, name: str) -> str:
    return pools.latin.get(name) or anyascii(name).capitalize()


def _present(recs: Records, what: str) -> np.ndarray:
    return np.isin(recs.source, [s for s, f in SOURCE_FIELDS.items() if what in f])


def _count_noise(recs: Records, kind: str, mask: np.ndarray) -> None:
    recs.noise[kind] = recs.noise.get(kind, np.zeros(5, np.int64)) + np.bincount(
        recs.source[mask], minlength=5
    )


def _apply_junk(recs: Records, p: People) -> None:
    junk = p.junk[recs.pidx]
    contact = np.isin(recs.source, (CRM, SHOP, POS))
    c = recs.cols
    m = contact & np.isin(junk, N.JUNK_EMAILS)
    c["email"][m] = junk[m]
    _count_noise(recs, "junk_email", m)
    m = contact & (junk == N.JUNK_PHONE)
    c["phone"][m] = N.JUNK_PHONE
    _count_noise(recs, "junk_phone", m)
    m = contact & (junk == N.JUNK_DOB)
    c["dob"][m] = np.datetime64(N.JUNK_DOB, "D")
    _count_noise(recs, "junk_dob", m)


_KEYBOARD = "abcdefghijklmnopqrstuvwxyz"


def _typo(s: str, u: np.ndarray) -> str:
    """One character edit: substitute, delete, insert (doubling) or transpose."""
    if len(s) < 3:
        return s + s[-1:]
    op = int(u[0] * 4)
    i = 1 + int(u[1] * (len(s) - 2))  # keep the first letter: typos rarely hit it
    if op == 0:
        new = _KEYBOARD[int(u[2] * 26)]
        if new == s[i].lower():
            new = _KEYBOARD[(int(u[2] * 26) + 1) % 26]
        return s[:i] + (new.upper() if s[i].isupper() else new) + s[i + 1 :]
    if op == 1:
        return s[:i] + s[i + 1 :]
    if op == 2:
        return s[:i] + s[i] + s[i:]
    if s[i] == s[i + 1 : i + 2]:
        return s[:i] + s[i + 1 :]
    return s[:i] + s[i + 1 : i + 2] + s[i] + s[i + 2 :]


def _name_noise(rng, recs: Records, rates) -> None:
    c = recs.cols
    n = len(recs.pidx)
    named = _present(recs, "name")
    first, last = c["first"], c["last"]

    # Nicknames (Robert -> Bob).
    eligible = named & pd.Series(first, dtype=object).isin(list(N.NICKNAMES)).to_numpy()
    m = eligible & (rng.random(n) < rates.nickname)
    u = rng.random(int(m.sum()))
    first[m] = [N.NICKNAMES[f][int(x * len(N.NICKNAMES[f]))] for f, x in zip(first[m], u)]
    _count_noise(recs, "nickname", m)

    # Accents dropped by ASCII-only forms (Zoë -> Zoe), not for CJK script.
    full = pd.Series(first, dtype=object) + " " + pd.Series(last, dtype=object)
    accented = full.str.contains(r"[À-ɏ]", regex=True).to_numpy(dtype=bool)
    m = named & accented & (rng.random(n) < rates.accent_stripped)
    first[m] = [anyascii(x) for x in first[m]]
    last[m] = [anyascii(x) for x in last[m]]
    _count_noise(recs, "accent_stripped", m)

    # One-character typos in the first or the last name.
    m = named & (rng.random(n) < rates.name_typo)
    which_first = rng.random(n) < 0.5
    u = rng.random((n, 3))
    for arr, sel in ((first, m & which_first), (last, m & ~which_first)):
        idx = np.flatnonzero(sel)
        arr[idx] = [_typo(s, u[i]) for s, i in zip(arr[idx], idx)]
    _count_noise(recs, "name_typo", m)

    # First and last name swapped.
    m = named & (rng.random(n) < rates.swapped_names)
    first[m], last[m] = last[m].copy(), first[m].copy()
    _count_noise(recs, "swapped_names", m)

    # Case noise: SHOUTING or all lower case.
    m = named & (rng.random(n) < rates.name_case)
    upper = m & (rng.random(n) < 0.5)
    lower = m & ~upper
    for sel, fn in ((upper, str.upper), (lower, str.lower)):
        first[sel] = [fn(x) for x in first[sel]]
        last[sel] = [fn(x) for x in last[sel]]
    _count_noise(recs, "name_case", m)

    # Stray spaces around names.
    m = named & (rng.random(n) < rates.name_spacing)
    first[m] = " " + first[m]
    last[m] = last[m] + "  "
    _count_noise(recs, "name_spacing", m)

    # Support agents often type only the first name the customer signed with.
    m = (recs.source == SUPPORT) & (rng.random(n) < rates.name_incomplete)
    last[m] = None
    _count_noise(recs, "name_incomplete", m)


def _dob_noise(rng, recs: Records, rates) -> None:
    dob = recs.cols["dob"]
    n = len(dob)
    real = _present(recs, "dob") & (dob != np.datetime64(N.JUNK_DOB, "D"))
    y, mo, d = _ymd(dob)
    m = real & (d <= 12) & (d != mo) & (rng.random(n) < rates.dob_swap)
    dob[m] = _from_ymd(y[m], d[m], mo[m])
    _count_noise(recs, "dob_day_month_swap", m)
    m = real & ~m & (rng.random(n) < rates.dob_typo)
    last_digit = y[m] % 10
    new_digit = (last_digit + rng.integers(1, 10, m.sum())) % 10
    new_year = y[m] - last_digit + new_digit
    day = np.where((mo[m] == 2) & (d[m] == 29), 28, d[m])
    dob[m] = _from_ymd(new_year, mo[m], day)
    _count_noise(recs, "dob_digit_typo", m)


def _email_noise(rng, recs: Records, rates) -> None:
    email = recs.cols["email"]
    n = len(email)
    s = pd.Series(email, dtype=object)
    domain = s.str.rsplit("@", n=1).str[-1].to_numpy(dtype=object)
    real = ~np.isin(email, N.JUNK_EMAILS)
    gmail = real & np.isin(domain, tuple(N.GMAIL_DOMAINS))
    m = gmail & (rng.random(n) < rates.gmail_variant)
    u = rng.random((n, 2))
    idx = np.flatnonzero(m)
    email[idx] = [_gmail_variant(e, u[i]) for e, i in zip(email[idx], idx)]
    _count_noise(recs, "gmail_variant", m)
    m = real & (rng.random(n) < rates.email_case)
    upper = m & (rng.random(n) < 0.3)
    email[upper] = pd.Series(email[upper], dtype=object).str.upper().to_numpy(dtype=object)
    cap = m & ~upper
    email[cap] = [_capitalise_parts(e) for e in email[cap]]
    _count_noise(recs, "email_case", m)


def _capitalise_parts(e: str) -> str:
    local, _, domain = e.partition("@")
    return ".".join(x[:1].upper() + x[1:] for x in local.split(".")) + "@" + domain.capitalize()


def _gmail_variant(e: str, u: np.ndarray) -> str:
    """Gmail ignores dots and +tags in the local part: the same mailbox, another string."""
    local, _, domain = e.partition("@")
    if u[0] < 0.5:
        return f"{local}+{N.GMAIL_TAGS[int(u[1] * len(N.GMAIL_TAGS))]}@{domain}"
    plain = local.replace(".", "")
    cut = 1 + int(u[1] * max(len(plain) - 1, 1))
    if plain == local:
        return f"{plain[:cut]}.{plain[cut:]}@{domain}".replace(".@", "@")
    return f"{plain}@{domain}"  # dotted address written without its dots


def _address_noise(rng, recs: Records, rates) -> None:
    street = recs.cols["street"]
    n = len(street)
    m = _present(recs, "address") & (rng.random(n) < rates.address_variant)
    idx = np.flatnonzero(m)
    street[idx] = [_abbreviate(s) for s in street[idx]]
    _count_noise(recs, "address_variant", m)


def _abbreviate(s: str) -> str:
    for full, short in N.ADDRESS_ABBREVIATIONS:
        if full in s:
            return s.replace(full, short)
    return s.upper()


def _missing(rng, recs: Records, rates) -> None:
    """Blank optional fields; the key of the e-mail list and the support desk stays."""
    c = recs.cols
    n = len(recs.pidx)
    keyed_by_email = np.isin(recs.source, (EMAIL, SUPPORT))
    plan = (
        ("email", "email", ~keyed_by_email, 1.0),
        ("phone", "phone", np.ones(n, bool), 1.0),
        ("dob", "dob", np.ones(n, bool), 2.0),
        ("street", "address", np.ones(n, bool), 1.0),
        ("postcode", "address", np.ones(n, bool), 1.0),
        ("city", "address", np.ones(n, bool), 1.0),
        ("country", "country", np.ones(n, bool), 0.5),
    )
    for col, what, allowed, factor in plan:
        rate = np.full(n, rates.missing_field * factor)
        if col == "email":
            rate[recs.source == POS] *= 6  # till staff rarely ask for an e-mail
        m = _present(recs, what) & allowed & (rng.random(n) < rate)
        if col == "dob":
            c[col][m] = np.datetime64("NaT")
        else:
            c[col][m] = None
        _count_noise(recs, f"missing_{col}", m)


# --------------------------------------------------------------------------------------------
# Phone formatting (shared by the person sources)
# --------------------------------------------------------------------------------------------


def _join(parts: list[pd.Series], sep: str) -> pd.Series:
    out = parts[0]
    for part in parts[1:]:
        out = out + sep + part
    return out


def format_phones(nsn: np.ndarray, country: np.ndarray, style: np.ndarray) -> np.ndarray:
    """Print national significant numbers in one of PHONE_STYLES each (junk kept as is)."""
    out = np.full(len(nsn), None, dtype=object)
    ok = pd.notna(nsn) & (nsn != N.JUNK_PHONE)
    for c, plan in N.PHONE_PLANS.items():
        for st in PHONE_STYLES:
            m = ok & (country == c) & (style == st)
            if not m.any():
                continue
            s = pd.Series(nsn[m], dtype=object)
            parts, pos = [], 0
            for g in plan["groups"]:
                parts.append(s.str.slice(pos, pos + g))
                pos += g
            cc, trunk = plan["cc"], plan["trunk"]
            if st == "e164":
                r = "+" + cc + s
            elif st == "intl_00":
                r = "00" + cc + " " + _join(parts, " ")
            elif st == "intl_trunk" and trunk:
                r = "+" + cc + " (" + trunk + ")" + _join(parts, " ")
            elif st in ("intl_spaced", "intl_trunk"):
                r = "+" + cc + " " + _join(parts, " ")
            elif st == "national" and c == "US":
                r = "(" + parts[0] + ") " + parts[1] + "-" + parts[2]
            elif st == "national":
                r = trunk + _join(parts, " ")
            elif st == "national_compact":
                r = trunk + s
            else:  # national_dashed
                r = trunk + _join(parts, "-")
            out[m] = r.to_numpy(dtype=object)
    junk = pd.notna(nsn) & (nsn == N.JUNK_PHONE)
    out[junk] = N.JUNK_PHONE
    return out
