"""Stable customer ids across nights, and field survivorship of the golden record."""

from __future__ import annotations

import itertools
from datetime import date, datetime

import pandas as pd
import pytest

from transforms.golden import (
    CUSTOMER_COLUMNS,
    HISTORY_COLUMNS,
    PROVENANCE_COLUMNS,
    XREF_COLUMNS,
    assign_customer_ids,
    build_golden,
    id_age_key,
)

NIGHT1 = datetime(2024, 1, 1, 2, 0)
NIGHT2 = datetime(2024, 1, 2, 2, 0)
NIGHT3 = datetime(2024, 1, 3, 2, 0)


def clusters(*groups: list[str], label: str = "k") -> pd.DataFrame:
    """Clusters from groups of 'source:id' strings; keys mean nothing across calls."""
    rows = []
    for k, group in enumerate(groups):
        for uid in group:
            source, rid = uid.split(":")
            rows.append(
                {
                    "unique_id": uid,
                    "source": source,
                    "source_record_id": rid,
                    "cluster_key": f"{label}{k}",
                    "match_probability": 1.0 if len(group) == 1 else 0.97,
                }
            )
    return pd.DataFrame(rows)


def ids(xref: pd.DataFrame) -> dict[str, str]:
    return {
        f"{s}:{r}": c
        for s, r, c in xref[["source", "source_record_id", "customer_id"]].values
    }


def history_rows(history: pd.DataFrame) -> set[tuple]:
    return {
        (o, n, c, int(m))
        for o, n, c, m in history[
            ["old_customer_id", "new_customer_id", "change", "records_moved"]
        ].values
    }


@pytest.fixture
def night1():
    xref, history = assign_customer_ids(
        clusters(["crm:1", "shop:1", "pos:1"], ["crm:2", "shop:2"], ["crm:3"]),
        None,
        NIGHT1,
    )
    return xref, history


# ------------------------------------------------------------------------------- stable ids


def test_first_night_mints_counter_ids_in_record_order(night1):
    xref, history = night1
    assert list(xref.columns) == XREF_COLUMNS
    assert list(history.columns) == HISTORY_COLUMNS and history.empty
    got = ids(xref)
    # Clusters are minted for in the order of their smallest (source, source_record_id).
    assert got["crm:1"] == got["shop:1"] == got["pos:1"] == "C000000001"
    assert got["crm:2"] == got["shop:2"] == "C000000002"
    assert got["crm:3"] == "C000000003"
    # Not derived from a record key or tonight's cluster key.
    assert set(xref["customer_id"]).isdisjoint(set(xref["cluster_key"]))


def test_same_data_relinked_keeps_every_id(night1):
    xref1, _ = night1
    relinked = clusters(
        ["crm:3"], ["shop:2", "crm:2"], ["pos:1", "shop:1", "crm:1"], label="z"
    )
    xref2, history = assign_customer_ids(relinked, xref1, NIGHT2)
    assert ids(xref2) == ids(xref1)
    assert history.empty


def test_record_joining_a_cluster_keeps_its_id_and_nobody_else_changes(night1):
    xref1, _ = night1
    xref2, history = assign_customer_ids(
        clusters(["crm:1", "shop:1", "pos:1"], ["crm:2", "shop:2", "web:9"], ["crm:3"]),
        xref1,
        NIGHT2,
    )
    got = ids(xref2)
    assert got["web:9"] == got["crm:2"] == ids(xref1)["crm:2"]
    assert {k: v for k, v in got.items() if k != "web:9"} == ids(xref1)
    assert history.empty


def test_new_singleton_gets_a_new_id_after_the_highest(night1):
    xref1, _ = night1
    xref2, history = assign_customer_ids(
        clusters(
            ["crm:1", "shop:1", "pos:1"], ["crm:2", "shop:2"], ["crm:3"], ["aaa:0"]
        ),
        xref1,
        NIGHT2,
    )
    got = ids(xref2)
    # Smallest record key of all, still not given an old id or a reused one.
    assert got["aaa:0"] == "C000000004"
    assert {k: v for k, v in got.items() if k != "aaa:0"} == ids(xref1)
    assert history.empty


def test_a_subset_of_records_with_the_other_ids_reserved_gets_the_same_ids_as_everything(night1):
    """What an incremental night does: only the clusters it decided again, with the rows of the
    previous customers they touch, and every other id in use reserved."""
    xref1, _ = night1
    tonight = clusters(["crm:1", "shop:1"], ["pos:1"], ["crm:2", "shop:2"], ["crm:3", "new:1"], ["new:2"])
    full, full_history = assign_customer_ids(tonight, xref1, NIGHT2)
    scope = {"crm:1", "shop:1", "pos:1", "new:2"}
    part = tonight[tonight["unique_id"].isin(scope)]
    prev = xref1[xref1["customer_id"] == ids(xref1)["crm:1"]]
    sub, sub_history = assign_customer_ids(part, prev, NIGHT2, reserved_ids=set(xref1["customer_id"]))
    assert ids(sub) == {k: v for k, v in ids(full).items() if k in scope}
    assert history_rows(sub_history) == history_rows(full_history)
    # without the reservation the subset would mint an id another customer holds
    clash, _ = assign_customer_ids(part, prev, NIGHT2)
    assert ids(clash)["new:2"] in set(xref1["customer_id"])


def test_bridging_record_merges_two_customers_into_the_older_id(night1):
    xref1, _ = night1
    xref2, history = assign_customer_ids(
        clusters(["crm:1", "shop:1", "pos:1"], ["crm:2", "shop:2", "crm:3", "web:5"]),
        xref1,
        NIGHT2,
    )
    got = ids(xref2)
    assert got["crm:2"] == got["shop:2"] == got["crm:3"] == got["web:5"] == "C000000002"
    assert got["crm:1"] == "C000000001"
    assert history_rows(history) == {("C000000003", "C000000002", "merge", 1)}
    assert history["run_at"].iloc[0] == pd.Timestamp(NIGHT2)


def test_older_id_survives_a_merge_even_when_it_is_the_smaller_part():
    xref1, _ = assign_customer_ids(
        clusters(["b:1"], ["c:1", "c:2", "c:3"]), None, NIGHT1
    )
    assert ids(xref1)["b:1"] == "C000000001"
    xref2, history = assign_customer_ids(
        clusters(["b:1", "c:1", "c:2", "c:3"]), xref1, NIGHT2
    )
    assert set(xref2["customer_id"]) == {"C000000001"}
    assert history_rows(history) == {("C000000002", "C000000001", "merge", 3)}


def test_correction_splits_a_customer_and_the_majority_keeps_the_id(night1):
    xref1, _ = night1
    xref2, history = assign_customer_ids(
        clusters(["crm:1", "shop:1"], ["pos:1"], ["crm:2", "shop:2"], ["crm:3"]),
        xref1,
        NIGHT2,
    )
    got = ids(xref2)
    assert got["crm:1"] == got["shop:1"] == "C000000001"
    assert got["pos:1"] == "C000000004"
    assert got["crm:2"] == "C000000002" and got["crm:3"] == "C000000003"
    assert history_rows(history) == {("C000000001", "C000000004", "split", 1)}


def test_split_into_equal_parts_is_decided_by_the_smallest_record():
    xref1, _ = assign_customer_ids(clusters(["a:1", "a:2"]), None, NIGHT1)
    for order in (["a:2"], ["a:1"]), (["a:1"], ["a:2"]):
        xref2, history = assign_customer_ids(clusters(*order), xref1, NIGHT2)
        assert ids(xref2) == {"a:1": "C000000001", "a:2": "C000000002"}
        assert history_rows(history) == {("C000000001", "C000000002", "split", 1)}


def test_corrected_record_moves_without_renaming_bystanders():
    xref1, _ = assign_customer_ids(clusters(["a:1", "a:2"], ["b:1"]), None, NIGHT1)
    # a:2 was wrongly linked to a:1; corrected at the source it now matches b:1.
    xref2, history = assign_customer_ids(
        clusters(["a:1"], ["a:2", "b:1"]), xref1, NIGHT2
    )
    assert ids(xref2) == {"a:1": "C000000001", "a:2": "C000000002", "b:1": "C000000002"}
    assert history_rows(history) == {("C000000001", "C000000002", "split", 1)}


def test_deleted_records_disappear_and_ids_are_not_reused_with_history(night1):
    xref1, _ = night1
    # crm:3 (C000000003, the highest id) is deleted; pos:1 too.
    xref2, history = assign_customer_ids(
        clusters(["crm:1", "shop:1"], ["crm:2", "shop:2"]), xref1, NIGHT2
    )
    assert ids(xref2) == {
        k: v for k, v in ids(xref1).items() if k not in ("crm:3", "pos:1")
    }
    assert history.empty
    merged_away = pd.DataFrame(
        {
            "run_at": [NIGHT1],
            "old_customer_id": ["C000000007"],
            "new_customer_id": ["C000000002"],
            "change": ["merge"],
            "records_moved": [1],
        }
    )
    xref3, _ = assign_customer_ids(
        clusters(["crm:1", "shop:1"], ["crm:2", "shop:2"], ["new:1"]),
        xref2,
        NIGHT3,
        previous_history=merged_away,
    )
    assert ids(xref3)["new:1"] == "C000000008"


def test_ids_do_not_depend_on_row_order_or_cluster_labels(night1):
    xref1, _ = night1
    tonight = clusters(
        ["crm:1", "shop:1"],
        ["pos:1", "web:1"],
        ["crm:2", "shop:2", "crm:3"],
        ["web:2"],
        ["web:3"],
    )
    reference_xref, reference_history = assign_customer_ids(tonight, xref1, NIGHT2)
    for seed in range(5):
        shuffled = tonight.sample(frac=1, random_state=seed).reset_index(drop=True)
        shuffled["cluster_key"] = shuffled["cluster_key"].map(
            lambda k, s=seed: f"{s}-{k[::-1]}"
        )
        prev = xref1.sample(frac=1, random_state=seed + 100)
        xref2, history = assign_customer_ids(shuffled, prev, NIGHT2)
        assert ids(xref2) == ids(reference_xref)
        pd.testing.assert_frame_equal(history, reference_history)


def test_rerunning_a_night_with_its_own_output_changes_nothing(night1):
    xref1, _ = night1
    tonight = clusters(
        ["crm:1"], ["shop:1", "pos:1", "crm:2", "shop:2"], ["crm:3", "x:1"]
    )
    xref2, _ = assign_customer_ids(tonight, xref1, NIGHT2)
    xref3, history3 = assign_customer_ids(tonight, xref2, NIGHT3)
    assert ids(xref3) == ids(xref2)
    assert history3.empty


def test_custom_mint_and_age_order():
    counter = itertools.count(1)
    xref, _ = assign_customer_ids(
        clusters(["a:1"], ["b:1"]), None, NIGHT1, mint=lambda: f"X{next(counter)}"
    )
    assert ids(xref) == {"a:1": "X1", "b:1": "X2"}
    with pytest.raises(ValueError, match="already in use"):
        assign_customer_ids(clusters(["a:1"], ["c:1"]), xref, NIGHT2, mint=lambda: "X1")
    assert sorted(["C000000010", "C000000009", "C1000000000"], key=id_age_key) == [
        "C000000009",
        "C000000010",
        "C1000000000",
    ]


def test_minted_ids_count_on_from_the_highest_id_in_use_anywhere():
    # reserved ids (every customer outside a partial night's scope) count, and so do ids
    # that are not counters, longer than an int64, or repeated
    reserved = pd.Series(["C000000041", "legacy-99", "C", "Cx7", "C000000041"], dtype="string")
    xref, _ = assign_customer_ids(clusters(["a:1"]), None, NIGHT1, reserved_ids=reserved)
    assert ids(xref) == {"a:1": "C000000042"}
    xref, _ = assign_customer_ids(clusters(["a:1"]), None, NIGHT1, reserved_ids=["C99999999999999999999"])
    assert ids(xref) == {"a:1": "C100000000000000000000"}
    xref, _ = assign_customer_ids(clusters(["a:1"]), None, NIGHT1, reserved_ids=[])
    assert ids(xref) == {"a:1": "C000000001"}
    with pytest.raises(ValueError, match="'C7'.*already in use"):
        assign_customer_ids(clusters(["a:1"]), None, NIGHT1, mint=lambda: "C7", reserved_ids=["C7"])
    with pytest.raises(ValueError, match="'Z'.*already in use"):
        assign_customer_ids(clusters(["a:1"], ["b:1"]), None, NIGHT1, mint=lambda: "Z")


def test_bad_clusters_are_refused_with_the_row():
    dup = clusters(["a:1"], ["a:1"])
    with pytest.raises(ValueError, match="unique"):
        assign_customer_ids(dup, None, NIGHT1)
    with pytest.raises(ValueError, match="cluster_key"):
        assign_customer_ids(clusters(["a:1"]).drop(columns="cluster_key"), None, NIGHT1)


# ------------------------------------------------------------------------------- survivorship

TRUST = {"crm": 90, "shop": 50, "pos": 50}
RULES = ["validity", "trust", "recency", "frequency"]


def person(source: str, rid: str, updated: str = "2024-01-01", **fields) -> dict:
    """A standardised person row: originals as given, match keys derived naively."""
    row = {
        "source": source,
        "source_record_id": rid,
        "updated_at": pd.Timestamp(updated),
    }
    for name in ("first_name", "last_name", "address_line", "postcode", "city"):
        value = fields.get(name)
        row[name] = value
        std = {"address_line": "address_std"}.get(name, f"{name}_std")
        row[std] = fields.get(std, value.lower().replace("é", "e") if value else None)
    row["email"] = fields.get("email")
    row["email_std"] = fields.get(
        "email_std", row["email"].lower() if row["email"] else None
    )
    row["email_key"] = fields.get("email_key", row["email_std"])
    row["phone"] = fields.get("phone")
    row["phone_e164"] = fields.get("phone_e164")
    row["date_of_birth"] = fields.get("date_of_birth")
    row["dob"] = fields.get("dob")
    row["country"] = fields.get("country")
    row["country_code"] = fields.get("country_code")
    row["field_issues"] = fields.get("field_issues", [])
    return row


def golden(rows: list[dict], rules: dict | None = None, default=RULES, trust=TRUST):
    persons = pd.DataFrame(rows)
    xref = pd.DataFrame(
        {
            "source": persons["source"],
            "source_record_id": persons["source_record_id"],
            "customer_id": [r.get("cid", "C1") for r in rows],
        }
    )
    customer, prov = build_golden(
        persons.drop(columns="cid", errors="ignore"), xref, rules or {}, default, trust
    )
    return customer, prov


def decided(prov: pd.DataFrame, field: str, customer_id: str = "C1") -> dict:
    row = prov[(prov["customer_id"] == customer_id) & (prov["field"] == field)]
    assert len(row) == 1, f"{field}: expected one provenance row"
    return row.iloc[0].to_dict()


def test_validity_beats_trust():
    customer, prov = golden(
        [
            person(
                "crm",
                "1",
                phone="n/a",
                phone_e164=None,
                email="none@none.com",
                email_std=None,
            ),
            person(
                "shop",
                "7",
                phone="07700 900123",
                phone_e164="+447700900123",
                email="Ann@Example.com",
            ),
        ]
    )
    assert customer.loc[0, "phone"] == "+447700900123"
    assert customer.loc[0, "email"] == "ann@example.com"
    p = decided(prov, "phone")
    assert (p["source"], p["source_record_id"], p["rule"], p["candidates"]) == (
        "shop",
        "7",
        "validity",
        1,
    )


def test_standardised_fields_never_take_an_invalid_value_even_without_validity_rule():
    customer, prov = golden(
        [
            person("crm", "1", "2024-06-01", email="test@test", email_std=None),
            person("shop", "2", "2020-01-01", email="bo@x.org"),
        ],
        rules={"email": ["recency"]},
    )
    assert customer.loc[0, "email"] == "bo@x.org"
    assert decided(prov, "email")["rule"] == "validity"


def test_only_invalid_candidates_leave_the_field_empty_without_provenance():
    customer, prov = golden(
        [person("crm", "1", phone="12", phone_e164=None, first_name="Ann")]
    )
    assert pd.isna(customer.loc[0, "phone"])
    assert "phone" not in set(prov["field"])
    assert decided(prov, "first_name")["rule"] == "only"


def test_trust_beats_recency():
    customer, prov = golden(
        [
            person("crm", "1", "2020-01-01", last_name="Smith"),
            person("shop", "2", "2024-05-01", last_name="Smyth"),
        ]
    )
    assert customer.loc[0, "last_name"] == "Smith"
    assert decided(prov, "last_name")["rule"] == "trust"


def test_recency_among_equally_trusted_sources():
    customer, prov = golden(
        [
            person("shop", "1", "2023-01-01", city="Leeds"),
            person("pos", "2", "2024-02-01", city="York"),
            person("shop", "3", "2022-01-01", city="York"),
        ]
    )
    assert customer.loc[0, "city"] == "York"
    p = decided(prov, "city")
    assert (p["source"], p["source_record_id"], p["rule"], p["candidates"]) == (
        "pos",
        "2",
        "recency",
        2,
    )


def test_frequency_compares_match_keys_then_spellings():
    customer, prov = golden(
        [
            person("shop", "1", first_name="Pepe", first_name_std="pepe"),
            person("shop", "2", first_name="José", first_name_std="jose"),
            person("shop", "3", first_name="JOSE", first_name_std="jose"),
            person("shop", "4", first_name="Pepe", first_name_std="pepe"),
            person("shop", "5", first_name="José", first_name_std="jose"),
        ],
    )
    # By spelling alone Pepe and José tie (2 each); by match key jose wins 3 to 2, and José is
    # its most common spelling.
    assert customer.loc[0, "first_name"] == "José"
    p = decided(prov, "first_name")
    assert (p["source"], p["source_record_id"], p["rule"], p["candidates"]) == (
        "shop",
        "2",
        "frequency",
        3,
    )


def test_frequency_tie_between_spellings_goes_to_the_tiebreak():
    customer, prov = golden(
        [
            person("shop", "1", first_name="JOSÉ", first_name_std="jose"),
            person("shop", "2", first_name="Pepe", first_name_std="pepe"),
            person("pos", "3", first_name="José", first_name_std="jose"),
        ],
        default=["trust", "frequency"],
    )
    # The key jose wins; its two spellings tie and the smallest (source, id), pos:3, is kept.
    assert customer.loc[0, "first_name"] == "José"
    p = decided(prov, "first_name")
    assert (p["source"], p["source_record_id"], p["rule"]) == ("pos", "3", "tiebreak")


def test_tiebreak_is_deterministic_and_reported():
    rows = [
        person("shop", "2", postcode="LS1 4AP"),
        person("shop", "10", postcode="YO1 7HH"),
    ]
    for ordered in (rows, rows[::-1]):
        customer, prov = golden(ordered)
        # String order of ids: "10" < "2".
        assert customer.loc[0, "postcode"] == "YO1 7HH"
        assert decided(prov, "postcode")["rule"] == "tiebreak"


def test_accents_case_and_standard_forms_in_the_golden_record():
    customer, prov = golden(
        [
            person(
                "crm",
                "1",
                "2023-03-01",
                first_name="José",
                last_name="Müller-Łukasz",
                city="Kraków",
                address_line="12 High St",
                email=" JOSE@Example.COM",
                email_std="jose@example.com",
                phone="07700 900123",
                phone_e164="+447700900123",
                date_of_birth="01/02/1980",
                dob="1980-02-01",
                country="Poland",
                country_code="PL",
            ),
            person("shop", "9", "2024-01-05", first_name="jose"),
        ]
    )
    row = customer.iloc[0]
    assert list(customer.columns) == CUSTOMER_COLUMNS
    assert (row["first_name"], row["last_name"], row["city"]) == (
        "José",
        "Müller-Łukasz",
        "Kraków",
    )
    assert row["address_line"] == "12 High St"
    assert (row["email"], row["phone"], row["country"]) == (
        "jose@example.com",
        "+447700900123",
        "PL",
    )
    assert row["date_of_birth"] == date(1980, 2, 1)
    assert row["first_seen_at"] == pd.Timestamp("2023-03-01")
    assert row["last_seen_at"] == pd.Timestamp("2024-01-05")
    assert row["record_count"] == 2
    assert list(row["sources"]) == ["crm", "shop"]
    assert list(prov.columns) == PROVENANCE_COLUMNS
    assert decided(prov, "date_of_birth")["value"] == "1980-02-01"


def test_provenance_has_one_row_per_customer_and_field_with_a_value():
    rows = [
        {**person("crm", "1", first_name="Ann", email="ann@x.com"), "cid": "C1"},
        {**person("shop", "1", first_name="Anne", email="ann@x.com"), "cid": "C1"},
        {**person("shop", "2", last_name="Lee"), "cid": "C2"},
    ]
    customer, prov = golden(rows)
    assert list(customer["customer_id"]) == ["C1", "C2"]
    assert sorted(zip(prov["customer_id"], prov["field"])) == [
        ("C1", "email"),
        ("C1", "first_name"),
        ("C2", "last_name"),
    ]
    email = decided(prov, "email")
    assert (email["rule"], email["candidates"], email["source"]) == ("only", 1, "crm")
    first = decided(prov, "first_name")
    assert (first["value"], first["rule"], first["candidates"]) == ("Ann", "trust", 2)


def test_customers_without_any_field_still_get_a_row():
    customer, prov = golden([person("web", "1")], trust={})
    assert len(customer) == 1 and prov.empty
    assert customer.loc[0, "record_count"] == 1


def test_per_field_rules_override_the_default():
    rows = [
        person("crm", "1", "2020-01-01", last_name="Old"),
        person("shop", "2", "2024-01-01", last_name="New"),
    ]
    customer, _ = golden(rows)
    assert customer.loc[0, "last_name"] == "Old"
    customer, prov = golden(rows, rules={"last_name": ["recency"]})
    assert customer.loc[0, "last_name"] == "New"
    assert decided(prov, "last_name")["rule"] == "recency"


def test_persons_and_xref_must_hold_the_same_records():
    persons = pd.DataFrame([person("crm", "1"), person("crm", "2")])
    xref = pd.DataFrame(
        {"source": ["crm"], "source_record_id": ["1"], "customer_id": ["C1"]}
    )
    with pytest.raises(ValueError, match="only one of persons and xref"):
        build_golden(persons, xref, {}, RULES, TRUST)
    with pytest.raises(ValueError, match="unknown rule"):
        build_golden(persons.iloc[:1], xref, {"email": ["loudest"]}, RULES, TRUST)


def test_best_cased_spelling_of_the_chosen_name_is_shown():
    # The trusted CRM wrote the name in lower case; the shop has the same letters properly cased.
    customer, prov = golden(
        [
            person("crm", "1", first_name="geraldine", last_name="STEPHENS", city="leeds"),
            person("shop", "2", first_name="Geraldine", last_name="Stephens", city="Leeds"),
            person("pos", "3", first_name="Gerri", last_name="stephens", cid="C1"),
        ]
    )
    assert customer.loc[0, "first_name"] == "Geraldine"
    assert customer.loc[0, "last_name"] == "Stephens"
    assert customer.loc[0, "city"] == "Leeds"
    row = decided(prov, "first_name")
    assert (row["source"], row["source_record_id"], row["rule"]) == ("shop", "2", "trust")


def test_casing_never_changes_the_letters_or_beats_a_different_value():
    # "Gerri" is properly cased but another name: the trusted lower-case value stays.
    customer, _ = golden(
        [
            person("crm", "1", first_name="geraldine", last_name="mcdonald"),
            person("shop", "2", first_name="Gerri", last_name="McDonald"),
        ]
    )
    assert customer.loc[0, "first_name"] == "geraldine"
    assert customer.loc[0, "last_name"] == "McDonald"
    # Caseless scripts and mixed case are left alone.
    customer, _ = golden([person("crm", "1", first_name="王芳"), person("shop", "2", first_name="王芳")])
    assert customer.loc[0, "first_name"] == "王芳"
