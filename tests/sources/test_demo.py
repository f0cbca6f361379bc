"""The demo company generator: determinism, truth, references, config, defects, conventions."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import phonenumbers
import pyarrow.parquet as pq
import pytest
from nicknames import NickNamer

from sources import demo_names as N
from sources.config import load_config
from sources.demo import FILES, NoiseRates, generate_demo
from sources.demo_people import PERSON_SOURCES, build_pools, make_people

PEOPLE = 400
SEED = 7
END = date(2026, 11, 20)


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo") / "sources"
    generate_demo(out, people=PEOPLE, seed=SEED)
    return out


@pytest.fixture(scope="module")
def stats(demo) -> dict:
    return json.loads((demo / "demo_stats.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def cfg(demo):
    return load_config(demo / "scv.yml")


def read(demo: Path, file: str) -> pd.DataFrame:
    """A source file as text columns (missing values as NA), the way its system wrote it."""
    path = demo / file
    if file.endswith(".parquet"):
        df = pq.read_table(path).to_pandas(types_mapper=pd.ArrowDtype)
        return df.astype(str).where(df.notna(), None).astype(object)
    if file.endswith(".jsonl"):
        with path.open(encoding="utf-8") as fh:
            rows = [json.loads(line) for line in fh]
        df = pd.DataFrame(rows, dtype=object)  # object: JSON integers stay integers
        return df.map(lambda v: None if pd.isna(v) else str(v))
    pos = file.startswith("pos_")
    df = pd.read_csv(
        path,
        sep=";" if pos else ",",
        encoding="latin-1" if pos else "utf-8",
        dtype=str,
        keep_default_na=False,
        na_values=[""],
    )
    return df.astype(object).where(df.notna(), None)


def defect_rows(stats: dict, file: str, kind: str) -> list[int]:
    return stats["defect_rows"].get(file, {}).get("kinds", {}).get(kind, {}).get("rows", [])


# ---------------------------------------------------------------------------------------------


def test_same_seed_gives_identical_bytes_and_other_seed_differs(demo, tmp_path):
    again = tmp_path / "again"
    other = tmp_path / "other"
    generate_demo(again, people=PEOPLE, seed=SEED)
    generate_demo(other, people=PEOPLE, seed=SEED + 1)
    names = sorted(p.name for p in demo.iterdir())
    assert names == sorted(p.name for p in again.iterdir())
    assert len(names) == 14  # 10 source files + scv.yml, truth, hard negatives, stats
    for name in names:
        assert (demo / name).read_bytes() == (again / name).read_bytes(), name
    for name in set(FILES.values()) | {"truth.csv", "hard_negatives.csv"}:
        assert (demo / name).read_bytes() != (other / name).read_bytes(), name


def test_summary_matches_files_and_stats(demo, stats, tmp_path):
    s = generate_demo(tmp_path / "s", people=PEOPLE, seed=SEED)
    assert s.people == PEOPLE
    assert set(s.files) == set(FILES.values())
    for file, n in s.rows.items():
        assert len(read(demo, file)) == n == stats["files"][file], file
    assert s.person_records == stats["person_records"]
    assert s.defects == stats["defects_by_file"]
    assert s.config.name == "scv.yml" and s.truth.exists() and s.stats.exists()
    assert s.total_rows == sum(s.rows.values())


def test_config_loads_and_maps_existing_columns(demo, cfg):
    assert set(cfg.sources) == set(FILES)
    assert cfg.data_dir == demo.parent.resolve()
    assert cfg.warehouse == (demo.parent / "warehouse" / "warehouse.duckdb").resolve()
    assert cfg.exports == (demo.parent / "exports").resolve()
    for name, src in cfg.sources.items():
        assert src.path == (demo / FILES[name]).resolve(), name
        columns = set(read(demo, FILES[name]).columns)
        used = {src.id, *src.columns.values()}
        if src.person:
            used.add(src.person.key)
            assert cfg.sources[src.person.source].kind == "person"
        assert used <= columns, (name, used - columns)
        for field in src.value_map:
            assert src.mapped(field), (name, field)
    pos = cfg.sources["pos_loyalty"]
    assert (pos.delimiter, pos.encoding, pos.default_country) == (";", "latin-1", "GB")
    assert pos.date_format == "%d/%m/%Y"
    assert cfg.sources["support_tickets"].person.source == "support_contacts"
    assert cfg.sources["pos_receipts"].constants["channel"] == "store"
    assert set(cfg.sources["consent_records"].value_map["granted"].values()) == {True, False}
    assert (
        cfg.sources["crm"].trust
        > cfg.sources["shop_customers"].trust
        > cfg.sources["pos_loyalty"].trust
        > cfg.sources["email_subscribers"].trust
    )


def test_value_maps_cover_every_value_written(demo, cfg):
    for name, src in cfg.sources.items():
        df = read(demo, FILES[name])
        for field, mapping in src.value_map.items():
            values = set(df[src.columns[field]].dropna())
            assert values <= set(mapping), (name, values - set(mapping))


def test_truth_covers_every_person_record_with_an_id_and_nothing_else(demo, cfg, stats):
    truth = pd.read_csv(demo / "truth.csv", dtype=str, keep_default_na=False)
    assert list(truth.columns) == ["source", "source_record_id", "person_id"]
    assert set(truth["source"]) == set(PERSON_SOURCES) == set(cfg.person_sources())
    assert not truth.duplicated(["source", "source_record_id"]).any()
    for name, src in cfg.person_sources().items():
        ids = read(demo, FILES[name])[src.id]
        assert set(truth.loc[truth["source"] == name, "source_record_id"]) == set(ids.dropna())
        assert ids.isna().sum() == stats["person_records_without_id"][name] >= 1
        assert stats["person_records"][name] == (truth["source"] == name).sum()
    # duplicated ids are the same record exported twice: one person per id
    per_person = truth.groupby("person_id")["source"].nunique()
    assert per_person.max() <= 5
    assert truth["person_id"].nunique() <= PEOPLE


def test_people_spread_over_one_to_four_sources(stats):
    by_k = {int(k): v for k, v in stats["people_by_number_of_sources"].items()}
    assert sum(by_k.values()) == PEOPLE
    assert all(by_k[k] > 0 for k in (1, 2, 3, 4))
    assert by_k[2] + by_k[3] > by_k[1] + by_k[4]
    assert stats["people_only_in"]["email_subscribers"] > 0
    assert stats["people_only_in"]["support_contacts"] > 0


def test_references_exist_except_counted_orphans(demo, cfg, stats):
    checked = 0
    for name, src in cfg.sources.items():
        if src.person is None or name == "support_tickets":
            continue
        ref = cfg.sources[src.person.source]
        known = set(read(demo, FILES[src.person.source])[ref.id].dropna())
        keys = read(demo, FILES[name])[src.person.key]
        dangling = [i + 1 for i, k in enumerate(keys) if pd.notna(k) and k not in known]
        assert dangling == defect_rows(stats, FILES[name], "orphan_reference"), name
        assert len(dangling) >= 1
        checked += 1
    assert checked == 5


def test_defect_counts_match_the_files(demo, cfg, stats):
    for name, src in cfg.sources.items():
        file = FILES[name]
        df = read(demo, file)
        counts = stats["defects_by_file"][file]
        assert stats["defects_by_source"][name] == counts
        ids = df[src.id]
        assert ids.isna().sum() == counts["missing_id"] >= 1, file
        assert [i + 1 for i in np.flatnonzero(ids.isna())] == defect_rows(stats, file, "missing_id")
        dup = ids.notna() & ids.duplicated(keep="first")
        assert dup.sum() == counts["duplicate_id"] >= 1, file
        if "negative_amount" in counts:
            amount = df[src.columns["amount"]].astype(float)
            assert (amount < 0).sum() == counts["negative_amount"] >= 1
        if "unknown_currency" in counts:
            currency = df[src.columns["currency"]]
            known = set(N.CURRENCY.values())
            assert (~currency.isin(known)).sum() == counts["unknown_currency"] >= 1
        if "unparseable_date" in counts:
            info = stats["defect_rows"][file]["kinds"]["unparseable_date"]
            assert len(info["rows"]) == counts["unparseable_date"] >= 1
            bad = 0
            for col in {
                src.columns.get("date_of_birth"),
                src.columns.get("updated_at"),
                src.columns.get("event_time"),
                src.columns.get("order_date"),
                src.columns.get("recorded_at"),
            } - {None}:
                values = df[col]
                parsed = pd.to_datetime(
                    values, format=src.date_format or "ISO8601", errors="coerce"
                )
                broken = values.notna() & parsed.isna()
                bad += broken.sum()
                for row in np.flatnonzero(broken):
                    k = info["rows"].index(row + 1)
                    assert info["fields"][k] == col
            assert bad == counts["unparseable_date"], file


def test_hard_negatives_listed_for_every_kind(demo, stats):
    hn = pd.read_csv(demo / "hard_negatives.csv", dtype=str)
    assert list(hn.columns) == ["person_id_a", "person_id_b", "kind"]
    for kind in ("twin", "parent_child", "couple", "common_name", "shared_junk"):
        assert (hn["kind"] == kind).sum() == stats["hard_negatives"][kind] >= 1, kind
    assert (hn["person_id_a"] < hn["person_id_b"]).all()
    truth = pd.read_csv(demo / "truth.csv", dtype=str)
    assert set(hn["person_id_a"]) | set(hn["person_id_b"]) <= set(truth["person_id"])


def test_hard_negative_people_really_look_alike():
    rates = NoiseRates()
    rng = np.random.default_rng(3)
    p = make_people(rng, build_pools(3), 2000, END, rates)
    idx = {pid: i for i, pid in enumerate(p.person_id)}
    hn = p.hard_negatives
    for kind in ("twin", "parent_child", "couple", "common_name", "shared_junk"):
        rows = hn[hn["kind"] == kind]
        assert len(rows) >= 1, kind
        a = rows["person_id_a"].map(idx).to_numpy()
        b = rows["person_id_b"].map(idx).to_numpy()
        if kind == "twin":
            assert (p.last[a] == p.last[b]).all() and (p.dob[a] == p.dob[b]).all()
            assert (p.street[a] == p.street[b]).all() and (p.first[a] != p.first[b]).all()
        elif kind == "parent_child":
            assert (p.first[a] == p.first[b]).all() and (p.last[a] == p.last[b]).all()
            assert (p.street[a] == p.street[b]).all()
            assert (np.abs((p.dob[a] - p.dob[b]).astype(int)) > 20 * 365).all()
        elif kind == "couple":
            assert (p.email[a] == p.email[b]).all() and (p.phone[a] == p.phone[b]).all()
            assert (p.first[a] != p.first[b]).all() and (p.street[a] == p.street[b]).all()
        elif kind == "common_name":
            assert (p.first[a] == p.first[b]).all() and (p.last[a] == p.last[b]).all()
            assert (p.city[a] == p.city[b]).all()
        else:
            assert (p.junk[a] == p.junk[b]).all() and pd.notna(p.junk[a]).all()
    # one namesake group per (name, city): every namesake pair among planted people is listed
    cn = hn[hn["kind"] == "common_name"]
    planted = np.unique(np.r_[cn["person_id_a"].map(idx), cn["person_id_b"].map(idx)])
    sizes = pd.Series(list(zip(p.first[planted], p.last[planted], p.city[planted]))).value_counts()
    assert len(cn) == sum(k * (k - 1) // 2 for k in sizes) and sizes.min() >= 4
    # everyone else has their own e-mail address
    couples = set(hn.loc[hn["kind"] == "couple", "person_id_b"].map(idx))
    others = np.array([i for i in range(p.n) if i not in couples])
    assert len(set(p.email[others])) == len(others)


def test_countries_and_names_are_international(demo, stats):
    assert sum(v > 0 for v in stats["people_by_country"].values()) == 6
    assert stats["people_by_country"]["GB"] > PEOPLE / 2
    crm = read(demo, FILES["crm"])
    countries = set(crm["Country"].dropna())
    assert {"GB", "United Kingdom"} <= countries and len(countries) >= 8
    text = (demo / FILES["crm"]).read_text(encoding="utf-8")
    assert any(ord(ch) > 0x7F for ch in text)


def test_pos_file_is_latin1_with_semicolons(demo):
    for file in (FILES["pos_loyalty"], FILES["pos_receipts"]):
        raw = (demo / file).read_bytes()
        text = raw.decode("latin-1")
        assert text.encode("latin-1") == raw
        assert not any(0x80 <= b <= 0x9F for b in raw)  # same bytes in cp1252
        header = text.splitlines()[0]
        assert ";" in header and "," not in header
    raw = (demo / FILES["pos_loyalty"]).read_bytes()
    assert any(b >= 0xA0 for b in raw)  # accented names kept as latin-1 bytes ...
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")  # ... which are not UTF-8
    pos = read(demo, FILES["pos_loyalty"])
    assert pos["FullName"].str.contains(", ", regex=False).any()  # "SMITH, John"
    assert pos["Phone"].str.match(r"^07\d{3} \d{6}$").mean() > 0.5  # national GB format
    dob = pd.to_datetime(pos["DOB"], format="%d/%m/%Y", errors="coerce")
    assert dob.notna().sum() >= pos["DOB"].notna().sum() - 1


def test_phone_numbers_are_real_numbers(demo):
    crm = read(demo, FILES["crm"])
    code = {v: k for k, v in N.COUNTRY_NAMES.items()}
    ok = total = 0
    for phone, country in zip(crm["Phone"], crm["Country"]):
        if phone is None or phone == N.JUNK_PHONE:
            continue
        region = code.get(country, (country or "GB").upper())
        total += 1
        try:
            ok += phonenumbers.is_valid_number(phonenumbers.parse(phone, region))
        except phonenumbers.NumberParseException:
            pass
    assert total > 50 and ok / total > 0.97
    formats = crm["Phone"].dropna().str.slice(0, 2)
    assert {"+4", "00", "07"} <= set(formats)


def test_web_sessions_stitch_anonymous_events_to_a_login(demo):
    events = read(demo, FILES["web_events"])
    events = events[events["event_id"].notna()]
    by_session = events.groupby("session_id", sort=False)["customer_key"]
    anonymous_then_known = never_known = 0
    for _, keys in by_session:
        known = keys.notna().to_numpy()
        if not known.any():
            never_known += 1
        elif not known[0] and known[-1]:
            anonymous_then_known += 1
    assert anonymous_then_known > 0 and never_known > 0
    assert {"page_view", "add_to_cart", "abandoned_cart", "login", "purchase"} <= set(
        events["type"]
    )


def test_consent_has_withdrawals_and_same_time_conflicts(demo, stats):
    c = read(demo, FILES["consent_records"])
    c = c[c["consent_id"].notna()]
    granted = c["granted"].map({"opt-in": True, "yes": True, "opt-out": False, "no": False})
    c = c.assign(g=granted)
    per = c.groupby(["customer_id", "purpose"])["g"].agg(["min", "max"])
    assert (~per["min"].astype(bool) & per["max"].astype(bool)).sum() > 0  # withdrawn later
    same = c.groupby(["customer_id", "purpose", "recorded_at"])["g"].nunique()
    assert (same > 1).sum() >= 1
    assert stats["consent"]["withdrawals"] > 0
    assert set(c["purpose"]) == {"email_marketing", "sms_marketing", "profiling", "third_party"}


def test_email_variants_and_noise_are_counted(demo, stats):
    subs = read(demo, FILES["email_subscribers"])["email"].dropna()
    assert subs.str.contains(r"\+", regex=True).any()
    for kind in (
        "name_typo",
        "nickname",
        "gmail_variant",
        "email_case",
        "moved_old_address",
        "missing_phone",
        "phone_format",
        "address_variant",
    ):
        assert stats["noise"][kind]["total"] > 0, kind


def test_shop_orders_currency_and_status(demo):
    orders = read(demo, FILES["shop_orders"])
    assert set(orders["currency"].dropna()) >= {"GBP", "EUR", "XYZ"}
    assert set(orders["status"]) == {"completed", "cancelled", "returned"}
    assert (orders["status"] == "completed").mean() > 0.8
    assert {"items", "coupon"} <= set(orders.columns)


def test_all_dates_are_before_end_date(demo, cfg):
    limit = datetime(END.year, END.month, END.day)
    for name, src in cfg.sources.items():
        df = read(demo, FILES[name])
        for field in ("updated_at", "order_date", "event_time", "recorded_at"):
            if field in src.columns:
                t = pd.to_datetime(
                    df[src.columns[field]],
                    format=src.date_format or "ISO8601",
                    errors="coerce",
                    utc=True,
                ).dropna()
                assert len(t) and t.max().tz_localize(None) < limit, (name, field)


def test_no_noise_rates_turn_noise_off(tmp_path):
    quiet = NoiseRates(
        name_typo=0,
        nickname=0,
        swapped_names=0,
        name_case=0,
        name_spacing=0,
        accent_stripped=0,
        name_incomplete=0,
        email_case=0,
        gmail_variant=0,
        missing_field=0,
        address_variant=0,
        dob_swap=0,
        dob_typo=0,
    )
    s = generate_demo(tmp_path, people=200, seed=1, noise=quiet)
    for kind in ("name_typo", "nickname", "gmail_variant", "missing_email", "dob_digit_typo"):
        assert s.noise[kind] == 0, kind
    assert s.hard_negatives["twin"] >= 1


def test_nickname_table_is_known_to_the_nicknames_package():
    nn = NickNamer()
    for formal, nicks in N.NICKNAMES.items():
        for nick in nicks:
            assert formal.lower() in nn.canonicals_of(nick), (formal, nick)


def test_too_few_people_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="people"):
        generate_demo(tmp_path, people=10)
