"""Identity resolution on small hand-made standardised person frames.

The toy company has ~120 people with 1-3 records each (typos, nicknames, swapped names, moved
house, missing fields) plus planted hard cases: twins, a father and son of one name at one
address, a couple sharing email and phone. One model is trained per module and reused.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from transforms.linkage import (
    LinkageSettings,
    available_fields,
    cluster_edges,
    link_and_dedupe,
    model_covers,
    predict_incremental,
    train_model,
    write_charts,
)
from transforms.linkage.engine import EngineUnavailableError, make_db_api
from transforms.linkage.evaluation import pairwise_metrics
from transforms.linkage.fields import prepare_frame
from transforms.linkage.guards import NodeAttributes, pair_conflicts

FIRST = [
    "oliver",
    "george",
    "harry",
    "jack",
    "jacob",
    "noah",
    "charlie",
    "thomas",
    "oscar",
    "william",
    "james",
    "henry",
    "leo",
    "alfie",
    "joshua",
    "freddie",
    "archie",
    "ethan",
    "isaac",
    "alexander",
    "joseph",
    "edward",
    "samuel",
    "max",
    "daniel",
    "arthur",
    "lucas",
    "olivia",
    "amelia",
    "isla",
    "ava",
    "emily",
    "sophia",
    "grace",
    "mia",
    "poppy",
    "ella",
    "lily",
    "evie",
    "isabella",
    "sophie",
    "ivy",
    "freya",
    "harper",
    "willow",
    "charlotte",
    "daisy",
    "alice",
    "florence",
    "matilda",
    "rosie",
    "ruby",
    "hannah",
    "eleanor",
]
LAST = [
    "smith",
    "jones",
    "taylor",
    "brown",
    "williams",
    "wilson",
    "johnson",
    "davies",
    "robinson",
    "wright",
    "thompson",
    "evans",
    "walker",
    "white",
    "roberts",
    "green",
    "hall",
    "wood",
    "jackson",
    "clarke",
    "patel",
    "khan",
    "lewis",
    "james",
    "phillips",
    "mason",
    "mitchell",
    "rose",
    "davis",
    "rodriguez",
    "cox",
    "alexander",
    "morgan",
    "moore",
    "hughes",
    "murphy",
    "turner",
    "hill",
    "cooper",
    "ward",
    "harris",
    "martin",
    "king",
    "baker",
    "lee",
    "allen",
    "bell",
    "carter",
    "parker",
    "shaw",
    "collins",
    "russell",
]
NICK = {"william": "bill", "james": "jim", "thomas": "tom", "samuel": "sam", "daniel": "dan"}
ALIAS = {v: k for k, v in NICK.items()}
STREETS = [
    "high street",
    "station road",
    "park avenue",
    "church lane",
    "mill road",
    "victoria road",
]
CITIES = [("london", "E"), ("leeds", "LS"), ("bristol", "BS"), ("york", "YO")]

COLUMNS = [
    "unique_id",
    "source",
    "source_record_id",
    "first_name_std",
    "first_name_alias",
    "last_name_std",
    "dob",
    "email_key",
    "phone_e164",
    "address_std",
    "postcode_std",
    "city_std",
]

SETTINGS = LinkageSettings(u_max_pairs=2e5, em_max_pairs=2e5, threshold=0.9)


def _typo(rng: np.random.Generator, s: str) -> str:
    i = int(rng.integers(1, len(s) - 1))
    return s[:i] + s[i + 1] + s[i] + s[i + 2 :]


def _person(rng, pid: int, **kw) -> dict:
    first = kw.get("first", FIRST[pid * 7 % len(FIRST)])
    last = kw.get("last", LAST[pid * 11 % len(LAST)])
    city, area = CITIES[pid % len(CITIES)]
    return {
        "pid": pid,
        "first": first,
        "last": last,
        "dob": kw.get("dob", f"{1950 + pid % 50}-{1 + pid % 12:02d}-{1 + pid % 28:02d}"),
        "email": kw.get("email", f"{first}.{last}{pid}@mail.example"),
        "phone": kw.get("phone", f"+4477009{pid:05d}"),
        "address": kw.get("address", f"{1 + pid} {STREETS[pid % len(STREETS)]}"),
        "postcode": kw.get("postcode", f"{area}{1 + pid % 9}{pid % 10}AB"),
        "city": kw.get("city", city),
    }


def _record(p: dict, source: str, n: int, **changes) -> dict:
    first = changes.get("first", p["first"])
    return {
        "unique_id": f"{source}:{p['pid']}-{n}",
        "source": source,
        "source_record_id": f"{p['pid']}-{n}",
        "first_name_std": first,
        "first_name_alias": ALIAS.get(first, first) if first else None,
        "last_name_std": changes.get("last", p["last"]),
        "dob": changes.get("dob", p["dob"]),
        "email_key": changes.get("email", p["email"]),
        "phone_e164": changes.get("phone", p["phone"]),
        "address_std": changes.get("address", p["address"]),
        "postcode_std": changes.get("postcode", p["postcode"]),
        "city_std": changes.get("city", p["city"]),
        "person_id": f"P{p['pid']}",
    }


def toy_company(n_people: int = 120, seed: int = 7) -> pd.DataFrame:
    """Standardised person records with a `person_id` truth column (dropped before linking)."""
    rng = np.random.default_rng(seed)
    recs: list[dict] = []
    for pid in range(n_people):
        p = _person(rng, pid)
        recs.append(_record(p, "crm", 0))
        if pid % 3 == 0:
            continue  # a third of the people have one record only
        noise: dict = {}
        kind = pid % 7
        if kind == 1:
            noise["first"] = _typo(rng, p["first"])
        elif kind == 2 and p["first"] in NICK:
            noise["first"] = NICK[p["first"]]
        elif kind == 3:
            noise.update(first=p["last"], last=p["first"])
        elif kind == 4:
            noise.update(address=f"{90 + pid} new road", postcode=f"NW{pid % 9}1CD", phone=None)
        elif kind == 5:
            noise["dob"] = (
                p["dob"][:5] + p["dob"][8:] + "-" + p["dob"][5:7]
                if int(p["dob"][8:]) <= 12
                else None
            )
        elif kind == 6:
            noise.update(email=None, phone=None)
        recs.append(_record(p, "shop", 1, **noise))
        if pid % 4 == 1:
            recs.append(_record(p, "pos", 2, email=None, dob=None))
    base = n_people
    # Twins: same surname, birth date, address and phone; different first names.
    a = _person(rng, base, first="amelia", last="hartley", dob="1990-05-17", phone="+447700955501")
    b = _person(
        rng,
        base + 1,
        first="olivia",
        last="hartley",
        dob="1990-05-17",
        phone="+447700955501",
        address=a["address"],
        postcode=a["postcode"],
        city=a["city"],
    )
    # Father and son of one name at one address, birth dates 30 years apart.
    c = _person(
        rng, base + 2, first="george", last="whitfield", dob="1952-03-08", phone="+447700955502"
    )
    d = _person(
        rng,
        base + 3,
        first="george",
        last="whitfield",
        dob="1982-11-23",
        phone="+447700955503",
        address=c["address"],
        postcode=c["postcode"],
        city=c["city"],
    )
    # A couple sharing email, phone and address.
    e = _person(
        rng,
        base + 4,
        first="daniel",
        last="marsh",
        dob="1975-01-30",
        email="marshfamily@mail.example",
        phone="+447700955504",
    )
    f = _person(
        rng,
        base + 5,
        first="sophie",
        last="marsh",
        dob="1977-09-12",
        email="marshfamily@mail.example",
        phone="+447700955504",
        address=e["address"],
        postcode=e["postcode"],
        city=e["city"],
    )
    for p in (a, b, c, d, e, f):
        recs.append(_record(p, "crm", 0))
        recs.append(_record(p, "shop", 1))
    # A duplicate with a nickname, a typo in the surname, and a new address.
    g = _person(rng, base + 6, first="william", last="kingsley", dob="1968-07-04")
    recs.append(_record(g, "crm", 0))
    recs.append(
        _record(
            g,
            "shop",
            1,
            first="bill",
            last="kingsly",
            address="4 quay street",
            postcode="YO11ZZ",
            city="york",
        )
    )
    df = pd.DataFrame(recs)
    return df.astype({c: "string" for c in df.columns})


@pytest.fixture(scope="module")
def company() -> pd.DataFrame:
    return toy_company()


@pytest.fixture(scope="module")
def persons(company) -> pd.DataFrame:
    return company.drop(columns=["person_id"])


@pytest.fixture(scope="module")
def truth(company) -> pd.DataFrame:
    return company[["source", "source_record_id", "person_id"]]


@pytest.fixture(scope="module")
def model(persons) -> dict:
    return train_model(persons, SETTINGS, created_at="2026-01-01T00:00:00")


@pytest.fixture(scope="module")
def result(persons, model):
    return link_and_dedupe(persons, model, SETTINGS)


def _cluster_of(result, uid: str) -> str:
    c = result.clusters
    return c.loc[c["unique_id"] == uid, "cluster_key"].iloc[0]


def _same(result, a: str, b: str) -> bool:
    return _cluster_of(result, a) == _cluster_of(result, b)


# ---------------------------------------------------------------------------------------------
# The toy company end to end
# ---------------------------------------------------------------------------------------------


def test_model_document(model, persons):
    meta = model["scv"]
    assert meta["fields"] == available_fields(persons)
    assert set(meta["fields"]) == {
        "first_name",
        "last_name",
        "dob",
        "email",
        "phone",
        "address",
        "postcode",
        "city",
    }
    assert len(meta["version"]) == 16
    assert meta["created_at"] == "2026-01-01T00:00:00"
    training = meta["training"]
    assert training["u_pairs"] > 1000
    assert training["m_sessions"] and all(s["method"] == "em" for s in training["m_sessions"])
    assert any(r["comparison"] == "email" for r in training["parameters"])
    # The rest is Splink's own model JSON: Splink can load it without our key.
    assert model["link_type"] == "dedupe_only" and "linker_uid" not in model
    from splink import DuckDBAPI, Linker

    splink_only = {k: v for k, v in model.items() if k != "scv"}
    Linker(
        DuckDBAPI().register(prepare_frame(persons, meta["fields"], meta["blocking_keys"])),
        splink_only,
    )


def test_links_the_toy_company(result, truth):
    m = pairwise_metrics(result.clusters, truth)
    assert m["precision"] >= 0.98, m
    assert m["recall"] >= 0.9, m
    assert list(result.clusters.columns) == [
        "unique_id",
        "source",
        "source_record_id",
        "cluster_key",
        "match_probability",
    ]
    assert list(result.edges.columns) == [
        "unique_id_l",
        "unique_id_r",
        "match_probability",
        "match_weight",
    ]
    assert result.clusters["unique_id"].is_unique
    assert result.metrics["records"] == len(result.clusters)
    assert result.metrics["candidate_pairs"] >= result.metrics["edges"] > 0
    assert set(result.metrics["seconds"]) >= {"predict", "cluster"}


def test_singletons_have_probability_one_and_linked_records_their_best_link(result):
    c = result.clusters
    sizes = c.groupby("cluster_key")["unique_id"].transform("size")
    assert (c.loc[sizes == 1, "match_probability"] == 1.0).all()
    linked = c[sizes > 1]
    assert (
        (linked["match_probability"] >= SETTINGS.threshold) & (linked["match_probability"] <= 1)
    ).all()


def test_hard_negatives_stay_apart_while_real_duplicates_merge(result, persons):
    n = 120
    twins = (f"crm:{n}-0", f"crm:{n + 1}-0")
    father_son = (f"crm:{n + 2}-0", f"crm:{n + 3}-0")
    couple = (f"crm:{n + 4}-0", f"crm:{n + 5}-0")
    for a, b in (twins, father_son, couple):
        assert not _same(result, a, b)
        assert not _same(result, a, b.replace("crm:", "shop:").replace("-0", "-1"))
    for pid in range(n, n + 6):
        assert _same(result, f"crm:{pid}-0", f"shop:{pid}-1")  # each one's own two records
    # nickname + surname typo + moved house
    assert _same(result, f"crm:{n + 6}-0", f"shop:{n + 6}-1")
    # a swapped first/last name (pid % 7 == 3) and a typo'd first name (pid % 7 == 1)
    assert _same(result, "crm:10-0", "shop:10-1")
    assert _same(result, "crm:8-0", "shop:8-1")


def test_guards_off_lets_the_shared_household_merge(persons, model):
    loose = LinkageSettings(u_max_pairs=2e5, em_max_pairs=2e5, threshold=0.9, guards=False)
    res = link_and_dedupe(persons, model, loose)
    # Without the vetoes, at least one planted family is merged: the guards are what
    # keeps them apart, not luck.
    pairs = [(120, 121), (122, 123), (124, 125)]
    assert any(_same(res, f"crm:{a}-0", f"crm:{b}-0") for a, b in pairs)
    assert res.metrics["vetoed_edges"] == 0


def _without_timings(doc):
    if isinstance(doc, dict):
        return {k: _without_timings(v) for k, v in doc.items() if k != "seconds"}
    if isinstance(doc, list):
        return [_without_timings(v) for v in doc]
    return doc


def test_determinism(persons, model, result):
    again = train_model(persons, SETTINGS, created_at="2026-01-01T00:00:00")
    assert _without_timings(again) == _without_timings(model)
    res = link_and_dedupe(persons, again, SETTINGS)
    pd.testing.assert_frame_equal(res.clusters, result.clusters)
    pd.testing.assert_frame_equal(res.edges, result.edges)


def test_model_json_round_trip_and_coverage(persons, model, result):
    text = json.dumps(model)
    back = json.loads(text)
    res = link_and_dedupe(persons, back, SETTINGS)
    pd.testing.assert_frame_equal(res.clusters, result.clusters)
    assert model_covers(back, available_fields(persons))
    assert not model_covers(back, [f for f in available_fields(persons) if f != "phone"])
    assert not model_covers(back, [*available_fields(persons), "extra"])
    assert not model_covers(None, ["email"])
    assert not model_covers(
        {**back, "scv": {**back["scv"], "format_version": -1}}, back["scv"]["fields"]
    )
    with pytest.raises(ValueError, match="not a linkage model"):
        link_and_dedupe(persons, {"link_type": "dedupe_only"}, SETTINGS)


def test_incremental_clustering_equals_full(persons, model, result):
    new_ids = set(persons["unique_id"][persons["source"] == "shop"])
    old = persons[~persons["unique_id"].isin(new_ids)]
    new = persons[persons["unique_id"].isin(new_ids)]
    old_edges = link_and_dedupe(old, model, SETTINGS).edges
    new_edges = predict_incremental(new, old, model, SETTINGS)
    assert set(new_edges.columns) == {
        "unique_id_l",
        "unique_id_r",
        "match_probability",
        "match_weight",
    }
    touches_new = new_edges["unique_id_l"].isin(new_ids) | new_edges["unique_id_r"].isin(new_ids)
    assert touches_new.all()
    edges = pd.concat([old_edges, new_edges], ignore_index=True)
    incremental = cluster_edges(persons, edges, SETTINGS.threshold)
    full = result.clusters.sort_values("unique_id").reset_index(drop=True)
    pd.testing.assert_series_equal(
        incremental["cluster_key"].reset_index(drop=True), full["cluster_key"], check_names=False
    )


def test_charts_are_written(tmp_path, persons, model, result):
    paths = write_charts(persons, model, result, tmp_path / "charts", sample=5)
    assert set(paths) == {"match_weights", "m_u_parameters", "cluster_sizes", "waterfall"}
    for p in paths.values():
        text = p.read_text(encoding="utf-8")
        assert p.stat().st_size > 500 and "<html" in text.lower()
    # Waterfalls carry weights only by default: no names or emails in the page.
    assert "marshfamily" not in paths["waterfall"].read_text(encoding="utf-8")


# ---------------------------------------------------------------------------------------------
# Datasets with few fields
# ---------------------------------------------------------------------------------------------


def test_email_only_dataset_links(company):
    sub = company[["unique_id", "source", "source_record_id", "email_key", "person_id"]]
    sub = sub[sub["email_key"].notna()]
    persons = sub.drop(columns=["person_id"])
    model = train_model(persons, SETTINGS)
    assert model["scv"]["fields"] == ["email"]
    res = link_and_dedupe(persons, model, SETTINGS)
    m = pairwise_metrics(res.clusters, sub)
    # Exact emails link; the couple's shared address (the only error) is one pair.
    assert m["recall"] >= 0.95 and m["precision"] >= 0.9, m


def test_names_address_dob_only_dataset_links(company):
    keep = [
        "unique_id",
        "source",
        "source_record_id",
        "first_name_std",
        "first_name_alias",
        "last_name_std",
        "dob",
        "address_std",
        "postcode_std",
        "city_std",
    ]
    persons = company[keep]
    model = train_model(persons, SETTINGS)
    assert set(model["scv"]["fields"]) == {
        "first_name",
        "last_name",
        "dob",
        "address",
        "postcode",
        "city",
    }
    res = link_and_dedupe(persons, model, SETTINGS)
    m = pairwise_metrics(res.clusters, company)
    assert m["precision"] >= 0.97 and m["recall"] >= 0.85, m
    assert not _same(res, "crm:122-0", "crm:123-0")  # father and son
    assert not _same(res, "crm:120-0", "crm:121-0")  # twins


def test_no_person_fields_means_every_record_alone():
    persons = pd.DataFrame(
        {
            "unique_id": ["a:1", "a:2", "b:1"],
            "source": ["a", "a", "b"],
            "source_record_id": ["1", "2", "1"],
        }
    )
    assert available_fields(persons) == []
    model = train_model(persons, SETTINGS)
    assert "comparisons" not in model and model_covers(model, [])
    res = link_and_dedupe(persons, model, SETTINGS)
    assert res.clusters["cluster_key"].tolist() == ["a:1", "a:2", "b:1"]
    assert res.edges.empty
    assert predict_incremental(persons.iloc[:1], persons.iloc[1:], model, SETTINGS).empty


def test_labels_train_m(tmp_path, persons, company):
    t = company[["unique_id", "person_id"]]
    pairs = t.merge(t, on="person_id")
    pairs = pairs[pairs["unique_id_x"] < pairs["unique_id_y"]].head(40)
    path = tmp_path / "labels.csv"
    pd.DataFrame(
        {"unique_id_l": pairs["unique_id_x"], "unique_id_r": pairs["unique_id_y"], "is_match": "1"}
    ).to_csv(path, index=False)
    settings = LinkageSettings(u_max_pairs=2e5, em_max_pairs=2e5, labels=path)
    model = train_model(persons, settings)
    assert model["scv"]["training"]["m_sessions"] == [{"method": "labels", "pairs": 40}]
    assert model["scv"]["settings"]["labels"] == "labels.csv"


def test_bad_labels_name_file_row_and_field(tmp_path, persons):
    path = tmp_path / "labels.csv"
    path.write_text("unique_id_l,unique_id_r,is_match\na,b,1\nc,d,maybe\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"labels.csv: row 2: field 'is_match'"):
        train_model(persons, LinkageSettings(labels=path))


# ---------------------------------------------------------------------------------------------
# Pieces
# ---------------------------------------------------------------------------------------------


def test_available_fields_needs_enough_values():
    df = pd.DataFrame(
        {
            "unique_id": [f"s:{i}" for i in range(200)],
            "email_key": [f"x{i}@y.z" for i in range(200)],
            "phone_e164": [None] * 199 + ["+447700900000"],
            "dob": [" "] * 200,
        }
    )
    assert available_fields(df) == ["email"]


def test_prepare_frame_rejects_repeated_ids():
    df = pd.DataFrame({"unique_id": ["a:1", "a:2", "a:1"], "email_key": ["x", "y", "z"]})
    with pytest.raises(ValueError, match=r"row 2: field 'unique_id'"):
        prepare_frame(df, ["email"], {"bk_email": ("email_key",)})


def test_blocking_keys_skip_values_shared_by_too_many_records():
    df = pd.DataFrame(
        {
            "unique_id": [f"s:{i}" for i in range(50)],
            "email_key": ["junk@x.y"] * 40 + [f"{i}@x.y" for i in range(10)],
        }
    )
    frame = prepare_frame(df, ["email"], {"bk_email": ("email_key",)})
    assert frame["bk_email"].isna().sum() == 40
    assert (frame["email_key_count"].iloc[:40] == 40).all()


@pytest.mark.parametrize(
    ("a", "b", "conflict"),
    [
        (("john", None, "smith", "1980-05-17"), ("john", None, "smith", "1980-05-17"), 0),
        (("john", None, "smith", "1980-05-17"), ("john", None, "smith", "1980-05-18"), 0),  # typo
        (
            ("john", None, "smith", "1980-05-17"),
            ("john", None, "smith", "1908-05-17"),
            0,
        ),  # transposed
        (
            ("john", None, "smith", "1980-05-07"),
            ("john", None, "smith", "1980-07-05"),
            0,
        ),  # day/month
        (("john", None, "smith", "1980-05-17"), ("john", None, "smith", "1952-05-17"), 1),  # father
        (("amelia", None, "hart", "1990-01-01"), ("olivia", None, "hart", "1990-01-01"), 2),  # twin
        (("bill", "william", "k", None), ("william", "william", "k", None), 0),  # nickname
        (("jmaes", None, "k", None), ("jimmy", "james", "k", None), 0),  # typo of a nickname
        (("j", None, "k", None), ("john", None, "k", None), 0),  # initial
        (("chris", None, "k", None), ("christopher", None, "k", None), 0),  # short form
        (("smith", None, "john", None), ("john", None, "smith", None), 0),  # swapped
        (("jonathan", None, "k", None), ("jonathon", None, "k", None), 0),  # typo
        (("anna", None, "k", "1970-01-01"), ("maria", None, "k", "1999-01-01"), 3),
        ((None, None, None, None), ("maria", None, "k", "1999-01-01"), 0),  # nothing to compare
    ],
)
def test_pair_conflicts(a, b, conflict):
    cols = ["first_name_std", "first_name_alias", "last_name_std", "dob"]
    nodes = pd.DataFrame([a, b], columns=cols).astype("string")
    got = pair_conflicts(NodeAttributes(nodes), np.array([0]), np.array([1]))
    assert int(got[0]) == conflict


def _nodes(rows):
    return pd.DataFrame(
        rows, columns=["unique_id", "first_name_std", "last_name_std", "dob"]
    ).astype("string")


def test_chaining_guard_splits_a_bridged_family():
    # Father and son share name and address; a record without birth date links to both.
    nodes = _nodes(
        [
            ("a:1", "george", "whit", "1952-03-08"),
            ("a:2", "george", "whit", "1952-03-08"),
            ("b:1", "george", "whit", "1982-11-23"),
            ("b:2", "george", "whit", "1982-11-23"),
            ("c:1", "george", "whit", None),
        ]
    )
    edges = pd.DataFrame(
        {
            "unique_id_l": ["a:1", "b:1", "a:1", "b:1", "a:1"],
            "unique_id_r": ["a:2", "b:2", "c:1", "c:1", "b:1"],
            "match_probability": [0.9999, 0.9999, 0.999, 0.95, 0.99],
            "match_weight": [30.0, 30.0, 15.0, 6.0, 10.0],
        }
    )
    out = cluster_edges(nodes, edges, 0.9)
    key = dict(zip(out["unique_id"], out["cluster_key"]))
    assert key["a:1"] == key["a:2"] == key["c:1"]  # the stronger side keeps the bridge record
    assert key["b:1"] == key["b:2"] != key["a:1"]
    assert out.attrs["metrics"]["vetoed_edges"] == 1  # a:1-b:1 (birth dates 30 years apart)
    assert out.attrs["metrics"]["split_clusters"] == 1
    plain = cluster_edges(nodes, edges, 0.9, guards=False)
    assert plain["cluster_key"].nunique() == 1
    with pytest.raises(ValueError, match="guard column"):
        cluster_edges(nodes[["unique_id"]], edges, 0.9)


def test_ambiguous_bridge_is_left_alone():
    # An email-only record links equally well to both halves of a couple: no guess.
    nodes = _nodes(
        [
            ("a:1", "daniel", "marsh", "1975-01-30"),
            ("b:1", "sophie", "marsh", "1977-09-12"),
            ("e:1", None, None, None),
        ]
    )
    edges = pd.DataFrame(
        {
            "unique_id_l": ["a:1", "b:1", "a:1"],
            "unique_id_r": ["e:1", "e:1", "b:1"],
            "match_probability": [0.96, 0.96, 0.999],
        }
    )
    out = cluster_edges(nodes, edges, 0.9)
    assert out["cluster_key"].tolist() == ["a:1", "b:1", "e:1"]
    assert out.attrs["metrics"]["isolated_ambiguous"] == 1


def test_cluster_edges_ignores_unknown_records_and_keeps_best_duplicate_edge():
    nodes = _nodes([("a", "x", "y", None), ("b", "x", "y", None), ("c", "x", "y", None)])
    edges = pd.DataFrame(
        {
            "unique_id_l": ["a", "b", "a", "zz"],
            "unique_id_r": ["b", "a", "c", "a"],
            "match_probability": [0.5, 0.97, 0.2, 0.99],
        }
    )
    out = cluster_edges(nodes, edges, 0.9)
    assert out["cluster_key"].tolist() == ["a", "a", "c"]
    assert out["match_probability"].tolist() == [0.97, 0.97, 1.0]
    assert out.attrs["metrics"]["edges_unknown_records"] == 1


def test_settings_validation():
    with pytest.raises(ValueError, match="linkage.threshold"):
        LinkageSettings(threshold=1.5)
    with pytest.raises(ValueError, match="linkage.engine"):
        LinkageSettings(engine="postgres")


def test_spark_engine_without_pyspark_names_the_setting(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "pyspark", None)  # as if not installed
    monkeypatch.setitem(sys.modules, "pyspark.sql", None)
    with pytest.raises(EngineUnavailableError, match="linkage.engine"):
        make_db_api(LinkageSettings(engine="spark"))


def test_duckdb_engine_has_its_own_connection():
    a, b = make_db_api(SETTINGS), make_db_api(SETTINGS)
    assert a.duckdb_con is not b.duckdb_con
    threads = a.duckdb_con.execute("SELECT current_setting('threads')").fetchall()[0][0]
    assert int(threads) == 2


def test_duckdb_engine_applies_memory_limit_and_spill_folder(tmp_path):
    api = make_db_api(LinkageSettings(memory_limit="1GB", temp_directory=tmp_path / "spill"))
    con = api._con
    limit, temp = con.execute(
        "SELECT current_setting('memory_limit'), current_setting('temp_directory')"
    ).fetchall()[0]
    assert limit.endswith("MiB") or limit.endswith("GiB")
    assert float(limit.split()[0]) < 1.0 or limit.endswith("MiB")
    assert temp == str(tmp_path / "spill")


@pytest.mark.parametrize("storage", ["python", "pyarrow"])
def test_email_user_is_the_part_before_the_first_at(storage):
    from transforms.linkage.fields import _email_user

    values = pd.Series(["anna@x.com", "@x.com", "ben@", "nouser", None, "a@b@c", " sp@x"], dtype=pd.StringDtype(storage))
    got = _email_user(values)
    assert got.dtype == values.dtype
    assert got.tolist() == values.str.extract(r"^([^@]+)@", expand=False).tolist()
    assert got.tolist()[:4] == ["anna", pd.NA, "ben", pd.NA]


def _predict_changed_by_split(persons, new_ids, model, settings):
    """`predict_changed` as first written: new x existing scored against a copy of the
    unchanged records (the reference for the version that scores against the whole frame)."""
    from transforms.linkage.model import model_meta
    from transforms.linkage.predict import _edges_frame, _linker, _tf_columns

    meta = model_meta(model)
    frame = prepare_frame(persons, meta["fields"], meta["blocking_keys"])
    is_new = frame["unique_id"].isin(new_ids).to_numpy()
    db_api = make_db_api(settings)
    linker = _linker(frame, model, db_api)
    for col in _tf_columns(model):
        linker.table_management.compute_tf_table(col)
    floor = settings.edge_floor or None
    new_sdf = db_api.register(frame[is_new].reset_index(drop=True), dataset_display_name="new")
    old_sdf = db_api.register(frame[~is_new].reset_index(drop=True), dataset_display_name="old")
    within = linker.inference.predict_within(new_sdf, threshold_match_probability=floor)
    between = linker.inference.predict_between(
        old_sdf, new_sdf, threshold_match_probability=floor
    )
    edges = pd.concat([_edges_frame(linker, e) for e in (within, between)], ignore_index=True)
    swap = edges["unique_id_l"] > edges["unique_id_r"]
    edges.loc[swap, ["unique_id_l", "unique_id_r"]] = edges.loc[
        swap, ["unique_id_r", "unique_id_l"]
    ].to_numpy()
    return edges.sort_values(["unique_id_l", "unique_id_r"], kind="stable").reset_index(drop=True)


@pytest.mark.parametrize("share", [0.3, 1 / 120])
def test_predict_changed_equals_scoring_against_a_copy_of_the_unchanged(persons, model, share):
    from transforms.linkage.predict import predict_changed

    rng = np.random.default_rng(5)
    ids = persons["unique_id"].to_numpy()
    new_ids = set(rng.choice(ids, max(2, int(share * len(ids))), replace=False).tolist())
    got = predict_changed(persons, new_ids, model, SETTINGS)
    want = _predict_changed_by_split(persons, new_ids, model, SETTINGS)
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    l_new, r_new = got["unique_id_l"].isin(new_ids), got["unique_id_r"].isin(new_ids)
    assert (l_new | r_new).all() and (got["unique_id_l"] != got["unique_id_r"]).all()
    if share > 0.1:  # both kinds of edge are there: new x new and new x existing
        assert (l_new & r_new).any() and (l_new ^ r_new).any()
