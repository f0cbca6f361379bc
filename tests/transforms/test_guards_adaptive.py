"""The adaptive guard policy: conflicts veto where the data shows true matches rarely disagree.

Two small labelled companies, identical but for one thing. In the first, a person's records
agree on the first name (a typo at most) and twins live together; in the second, one record in
five has its first name replaced by another name (as exports re-keyed by hand do). The same
defaults must keep the twins apart in the first and link the replaced names in the second.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from transforms.linkage import (
    GuardPolicy,
    LinkageSettings,
    cluster_edges,
    guard_evidence,
)
from transforms.linkage.guards import (
    MIN_EVIDENCE_PAIRS,
    RELIABLE_SHARE,
    STRICT,
    NodeAttributes,
    pair_conflicts,
    shows_unreliable,
)
from transforms.linkage.model import guard_policy

FIRST = ["oliver", "amelia", "harry", "isla", "jack", "freya", "noah", "ivy", "oscar", "grace"]
LAST = ["hart", "price", "okafor", "nowak", "lindqvist", "moreau", "tanaka", "silva"]
COLS = ["unique_id", "first_name_std", "first_name_alias", "last_name_std", "dob", "address_std",
        "postcode_std"]


def _company(replaced_share: float, seed: int = 7, people: int = 240) -> pd.DataFrame:
    """Three records per person; `replaced_share` of the second and third records carry a
    different first name (another name from the list)."""
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(people):
        first = FIRST[p % len(FIRST)]
        last = f"{LAST[p % len(LAST)]}{p}"
        dob = f"19{50 + p % 45:02d}-{1 + p % 12:02d}-{1 + p % 27:02d}"
        addr, pc = f"{p} high street", f"ab{p % 90}"
        for r in range(3):
            name = first
            if r and rng.random() < replaced_share:
                name = FIRST[(p + 3 + r) % len(FIRST)]
            rows.append((f"s:{p}-{r}", name, None, last, dob, addr, pc))
    return pd.DataFrame(rows, columns=COLS).astype("string")


def _twins() -> pd.DataFrame:
    # Twins: same surname, birth date, address; different first names. Plus a couple with no
    # birth dates at one address.
    return pd.DataFrame(
        [
            ("t:1", "amelia", None, "zed", "1990-01-01", "1 elm road", "zz1"),
            ("t:2", "olivia", None, "zed", "1990-01-01", "1 elm road", "zz1"),
            ("c:1", "maria", None, "yew", None, "2 yew lane", "zz2"),
            ("c:2", "peter", None, "yew", None, "2 yew lane", "zz2"),
        ],
        columns=COLS,
    ).astype("string")


def _edges(pairs, p=0.999, w=12.0):
    return pd.DataFrame(
        {
            "unique_id_l": [a for a, _ in pairs],
            "unique_id_r": [b for _, b in pairs],
            "match_probability": [p] * len(pairs),
            "match_weight": [w] * len(pairs),
        }
    )


def test_evidence_counts_disagreement_among_look_alike_pairs():
    reliable = guard_evidence(_company(0.0))
    assert reliable["first_name"]["pairs"] == 240 * 3  # three pairs per person
    assert reliable["first_name"]["disagree"] == 0
    assert reliable["dob"]["share"] == 0.0
    noisy = guard_evidence(_company(0.2))
    # About 2 of every 3 pairs of a person involve a replaced record when one of the two is.
    assert 0.15 < noisy["first_name"]["share"] < 0.40
    assert set(noisy["first_name"]["anchors"]) == {
        "last_name_std", "dob", "address_std", "postcode_std"
    }


def test_adaptive_keeps_twins_apart_where_first_names_are_reliable():
    persons = pd.concat([_company(0.0), _twins()], ignore_index=True)
    policy = GuardPolicy.from_evidence("adaptive", guard_evidence(persons))
    assert policy.decisive == frozenset({"first_name", "dob"})
    out = cluster_edges(persons, _edges([("t:1", "t:2"), ("c:1", "c:2")]), 0.9, guards=policy)
    key = dict(zip(out["unique_id"], out["cluster_key"], strict=True))
    assert key["t:1"] != key["t:2"]
    assert key["c:1"] != key["c:2"]
    assert out.attrs["metrics"]["vetoed_first_name"] == 2


def test_adaptive_links_replaced_first_names_where_the_data_shows_them():
    persons = pd.concat([_company(0.2), _twins()], ignore_index=True)
    evidence = guard_evidence(persons)
    assert evidence["first_name"]["share"] > RELIABLE_SHARE
    policy = GuardPolicy.from_evidence("adaptive", evidence)
    assert "first_name" not in policy.decisive and "dob" in policy.decisive
    replaced = persons[
        persons["unique_id"].str.endswith("-1")
        & (persons["first_name_std"] != persons["unique_id"].map(
            lambda u: FIRST[int(u[2:].split("-")[0]) % len(FIRST)]
        ))
    ]["unique_id"].iloc[0]
    owner = replaced.replace("-1", "-0")
    pairs = [(owner, replaced), ("c:1", "c:2")]
    adaptive = cluster_edges(persons, _edges(pairs), 0.9, guards=policy)
    key = dict(zip(adaptive["unique_id"], adaptive["cluster_key"], strict=True))
    assert key[owner] == key[replaced]  # same birth date: a replaced name, linked
    assert key["c:1"] != key["c:2"]  # no birth date to agree on: the couple stays apart
    strict = cluster_edges(persons, _edges(pairs), 0.9, guards=STRICT)
    skey = dict(zip(strict["unique_id"], strict["cluster_key"], strict=True))
    assert skey[owner] != skey[replaced]


def test_unreliable_field_conflict_still_vetoes_when_the_other_field_conflicts_too():
    nodes = pd.DataFrame(
        [("a", "anna", None, "k", "1970-01-01"), ("b", "maria", None, "k", "1999-06-01")],
        columns=["unique_id", "first_name_std", "first_name_alias", "last_name_std", "dob"],
    ).astype("string")
    lenient = GuardPolicy("adaptive", decisive=frozenset())
    got = pair_conflicts(NodeAttributes(nodes), np.array([0]), np.array([1]), lenient)
    assert int(got[0]) == 3  # both conflicts stand: neither field agrees
    off = pair_conflicts(NodeAttributes(nodes), np.array([0]), np.array([1]), GuardPolicy("off"))
    assert int(off[0]) == 0


def test_too_little_evidence_keeps_every_guard_decisive():
    few = {"first_name": {"pairs": MIN_EVIDENCE_PAIRS - 1, "disagree": 5, "share": 0.17}}
    assert GuardPolicy.from_evidence("adaptive", few).decisive == frozenset({"first_name", "dob"})
    # A model trained before the evidence existed: every guard decisive.
    assert guard_policy(None, "adaptive").decisive == frozenset({"first_name", "dob"})


@pytest.mark.parametrize(
    ("pairs", "disagree", "unreliable"),
    [
        (58, 4, False),  # 6.9%, but twins alone can do that: not beyond chance
        (1000, 112, True),  # 11.2% of many pairs: names really are replaced
        (98, 13, True),
        (1000, 40, False),  # 4%: reliable
        (159, 87, False),  # 55%: mostly family members sharing a birth date, not typos
    ],
)
def test_unreliable_only_beyond_chance_and_within_plausibility(pairs, disagree, unreliable):
    ev = {"pairs": pairs, "disagree": disagree, "share": disagree / pairs}
    assert shows_unreliable(ev) is unreliable
    policy = GuardPolicy.from_evidence("adaptive", {"first_name": ev})
    assert ("first_name" not in policy.decisive) is unreliable


def test_policy_settings_and_errors():
    assert LinkageSettings().guards == "adaptive"
    assert LinkageSettings(guards=True).guards == "strict"
    assert LinkageSettings(guards=False).guards == "off"
    with pytest.raises(ValueError, match="linkage.guards"):
        LinkageSettings(guards="sometimes")
    with pytest.raises(ValueError, match="linkage.guards"):
        GuardPolicy("lenient")
    evidence = {"first_name": {"pairs": 500, "disagree": 100, "share": 0.2}}
    adaptive = GuardPolicy.from_evidence("adaptive", evidence)
    assert adaptive.key() != STRICT.key()
    assert "20.0% of 500" in adaptive.describe()
