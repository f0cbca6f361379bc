"""The Splink model specification: one comparison per match field, blocking rules, priors.

Levels go from the most to the least specific agreement. Exact levels carry term-frequency
adjustments, so agreeing on a value many people share (a common surname, a big city, a family
phone, a junk email that escaped the standardiser) is worth less than agreeing on a rare one.
Every level has a prior m probability: it is what the model uses for a comparison that training
cannot estimate (an email-only dataset has nothing to run EM against but the email itself).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import splink.comparison_level_library as cll
from splink import ColumnExpression, SettingsCreator, block_on
from splink.comparison_library import CustomComparison

__all__ = [
    "COUNTED_COLUMNS",
    "DOB_DIFFERENT_LABEL",
    "DOB_DIFFERENT_M",
    "build_settings",
    "comparison_for",
    "comparison_plan",
    "deterministic_rules_for",
    "em_rules_for",
]

#: Lowest m probability of "both dates of birth present and different beyond a typo". The
#: level's m is counted at training time (`guards.guard_evidence`: the share of pairs agreeing
#: on name and address whose birth dates differ) and fixed during EM: EM on data full of twins
#: and namesakes otherwise learns that such a disagreement is weak evidence, and families merge.
DOB_DIFFERENT_M = 0.005
DOB_DIFFERENT_LABEL = "different beyond a typo"

#: Columns whose value frequency (records holding the value) goes into the frame as
#: `<column>_count`, for the widely-shared levels below.
COUNTED_COLUMNS = ("email_key", "phone_e164", "address_std")
COUNT_SUFFIX = "_count"
#: Above this many records, a shared identifier value says nothing about identity.
SHARED_VALUE_RECORDS = 30


def _exact_tf(col: str, m: float) -> cll.ExactMatchLevel:
    return cll.ExactMatchLevel(col).configure(tf_adjustment_column=col, m_probability=m)


def _exact(col: str, m: float) -> cll.ExactMatchLevel:
    return cll.ExactMatchLevel(col).configure(m_probability=m)


def _widely_shared(col: str) -> cll.ComparisonLevelCreator:
    """Agreement on a value held by more records than one person plausibly has (a junk email
    the standardiser did not know, a call-centre phone): counted as no information at all.

    Identifier-like fields (email, phone, street address) use this instead of term-frequency
    adjustments: their frequencies are driven by one person's own duplicate records, so TF
    would discount exactly the agreements that matter.
    """
    shared = cll.CustomLevel(f"{col}{COUNT_SUFFIX}_l > {SHARED_VALUE_RECORDS}")
    return cll.And(cll.ExactMatchLevel(col), shared).configure(
        is_null_level=True,
        label_for_charts=f"same {col}, held by more than {SHARED_VALUE_RECORDS} records",
    )


def _first_name(with_last: bool) -> CustomComparison:
    levels: list[Any] = [
        cll.NullLevel("first_name_std"),
        _exact_tf("first_name_std", 0.82),
    ]
    if with_last:
        levels.append(
            cll.ColumnsReversedLevel("first_name_std", "last_name_std", symmetrical=True).configure(
                m_probability=0.02, label_for_charts="first and last name swapped"
            )
        )
    levels += [
        cll.ExactMatchLevel("first_name_alias").configure(
            m_probability=0.05, label_for_charts="same canonical name (nickname)"
        ),
        cll.JaroWinklerLevel("first_name_std", 0.92).configure(m_probability=0.05),
        cll.JaroWinklerLevel("first_name_std", 0.80).configure(m_probability=0.03),
        cll.CustomLevel(
            "(length(first_name_std_l) = 1 OR length(first_name_std_r) = 1) "
            "AND substr(first_name_std_l, 1, 1) = substr(first_name_std_r, 1, 1)",
            label_for_charts="initial matches",
        ).configure(m_probability=0.02),
        cll.ElseLevel().configure(m_probability=0.01),
    ]
    return CustomComparison(
        levels, output_column_name="first_name", comparison_description="first name"
    )


def _last_name(with_first: bool) -> CustomComparison:
    levels: list[Any] = [cll.NullLevel("last_name_std"), _exact_tf("last_name_std", 0.85)]
    if with_first:
        levels.append(
            cll.ColumnsReversedLevel("first_name_std", "last_name_std", symmetrical=True).configure(
                m_probability=0.02, label_for_charts="first and last name swapped"
            )
        )
    levels += [
        cll.JaroWinklerLevel("last_name_std", 0.92).configure(m_probability=0.05),
        cll.JaroWinklerLevel("last_name_std", 0.80).configure(m_probability=0.03),
        cll.ElseLevel().configure(m_probability=0.05),
    ]
    return CustomComparison(
        levels, output_column_name="last_name", comparison_description="last name"
    )


def _typo_level(col: str, head: int, tail: int, distance: int = 1) -> cll.ComparisonLevelCreator:
    """Damerau-Levenshtein <= distance, computed only when the first `head` or the last
    `tail` characters agree: one edit cannot change both ends, and the distance function is
    by far the most expensive thing Splink evaluates (u sampling compares millions of pairs).
    """
    c = ColumnExpression(col)
    ends = cll.Or(
        cll.ExactMatchLevel(c.substr(1, head)), cll.ExactMatchLevel(c.substr(-tail, tail))
    )
    return cll.And(ends, cll.DamerauLevenshteinLevel(col, distance))


def _dob() -> CustomComparison:
    dob = ColumnExpression("dob")
    day_month_swapped = cll.And(
        cll.ExactMatchLevel(dob.substr(1, 4)),
        cll.ColumnsReversedLevel(dob.substr(6, 2), dob.substr(9, 2), symmetrical=True),
    )
    levels = [
        cll.NullLevel("dob"),
        _exact_tf("dob", 0.9),
        cll.Or(_typo_level("dob", 4, 5), day_month_swapped).configure(
            m_probability=0.095, label_for_charts="one typo or day/month swapped"
        ),
        cll.ElseLevel().configure(
            m_probability=DOB_DIFFERENT_M,
            fix_m_probability=True,
            label_for_charts=DOB_DIFFERENT_LABEL,
        ),
    ]
    return CustomComparison(
        levels, output_column_name="dob", comparison_description="date of birth"
    )


def _email() -> CustomComparison:
    # No fuzzy levels: user names are made of the person's name, so "same user name at
    # another domain" or "one character apart" (john.smith / john.smith2) mostly finds
    # namesakes, counting their name agreement a second time.
    levels = [
        cll.NullLevel("email_key"),
        _widely_shared("email_key"),
        _exact("email_key", 0.9),
        cll.ElseLevel().configure(m_probability=0.1),
    ]
    return CustomComparison(levels, output_column_name="email", comparison_description="email")


def _phone() -> CustomComparison:
    last_digits = ColumnExpression("phone_e164").substr(-9, 9)
    levels = [
        cll.NullLevel("phone_e164"),
        _widely_shared("phone_e164"),
        _exact("phone_e164", 0.8),
        cll.ExactMatchLevel(last_digits).configure(
            m_probability=0.04, label_for_charts="same last 9 digits"
        ),
        _typo_level("phone_e164", 7, 6).configure(m_probability=0.06, label_for_charts="one typo"),
        cll.ElseLevel().configure(m_probability=0.1),
    ]
    return CustomComparison(levels, output_column_name="phone", comparison_description="phone")


def _postcode() -> CustomComparison:
    pc = ColumnExpression("postcode_std")
    levels = [
        cll.NullLevel("postcode_std"),
        _exact_tf("postcode_std", 0.75),
        _typo_level("postcode_std", 3, 3).configure(
            m_probability=0.05, label_for_charts="one typo"
        ),
        cll.ExactMatchLevel(pc.substr(1, 3)).configure(
            m_probability=0.05, label_for_charts="same area (first 3 characters)"
        ),
        cll.ElseLevel().configure(m_probability=0.15),
    ]
    return CustomComparison(
        levels, output_column_name="postcode", comparison_description="postcode"
    )


def _address() -> CustomComparison:
    levels = [
        cll.NullLevel("address_std"),
        _widely_shared("address_std"),
        _exact("address_std", 0.7),
        cll.JaroWinklerLevel("address_std", 0.9).configure(m_probability=0.1),
        cll.ElseLevel().configure(m_probability=0.2),
    ]
    return CustomComparison(
        levels, output_column_name="address", comparison_description="street address"
    )


def _address_in_area(area: str, with_city: bool = False) -> CustomComparison:
    """Street line and postcode (or city) as ONE comparison: a postcode adds nothing once the
    street line agrees, and scoring both would count one home twice (the classic way a
    father and son of one name at one address end up merged).

    A postcode mistyped by one character (or, when the city is known too, differing while
    street line and city agree) is still the same home: a level of its own, learnt like the
    others, so one wrong digit does not turn the strongest evidence a pair has into a penalty.
    """
    area_name = "postcode" if area == "postcode_std" else "city"
    area_ok = f"({area}_l = {area}_r OR {area}_l IS NULL OR {area}_r IS NULL)"
    same_place: Any = _typo_level(area, 2, 2) if area == "postcode_std" else None
    if same_place is not None and with_city:
        same_place = cll.Or(same_place, cll.ExactMatchLevel("city_std"))
    levels = [
        cll.CustomLevel(
            "(address_std_l IS NULL OR address_std_r IS NULL) "
            f"AND ({area}_l IS NULL OR {area}_r IS NULL)",
            label_for_charts="no address to compare",
        ).configure(is_null_level=True),
        _widely_shared("address_std"),
        cll.CustomLevel(
            f"address_std_l = address_std_r AND {area_ok}",
            label_for_charts=f"same street line and {area_name}",
        ).configure(m_probability=0.75),
        cll.And(cll.JaroWinklerLevel("address_std", 0.9), cll.ExactMatchLevel(area)).configure(
            m_probability=0.08, label_for_charts=f"street line alike, same {area_name}"
        ),
    ]
    if same_place is not None:
        place = "postcode one typo" + (" or same city" if with_city else "")
        levels.append(
            cll.And(cll.JaroWinklerLevel("address_std", 0.9), same_place).configure(
                m_probability=0.04, label_for_charts=f"street line alike, {place}"
            )
        )
    levels += [
        cll.ExactMatchLevel(area).configure(
            tf_adjustment_column=area,
            m_probability=0.05,
            label_for_charts=f"same {area_name}, other or no street line",
        ),
        cll.ElseLevel().configure(m_probability=0.12),
    ]
    return CustomComparison(
        levels, output_column_name="address", comparison_description=f"address ({area_name})"
    )


def _city() -> CustomComparison:
    levels = [
        cll.NullLevel("city_std"),
        _exact_tf("city_std", 0.8),
        cll.JaroWinklerLevel("city_std", 0.9).configure(m_probability=0.05),
        cll.ElseLevel().configure(m_probability=0.15),
    ]
    return CustomComparison(levels, output_column_name="city", comparison_description="city")


def comparison_plan(fields: Sequence[str]) -> list[tuple[str, frozenset[str]]]:
    """The comparisons a model over these fields has: (comparison name, fields it reads).

    One comparison per field, except the address: street line, postcode and city say where a
    person lives, and are scored together (street line + postcode, or + city when there is no
    postcode; a lone postcode or city on its own).
    """
    f = set(fields)
    plan: list[tuple[str, frozenset[str]]] = []
    names = {"first_name", "last_name"} & f
    for field in ("first_name", "last_name"):
        if field in f:
            plan.append((field, frozenset(names)))
    for field in ("dob", "email", "phone"):
        if field in f:
            plan.append((field, frozenset({field})))
    if "address" in f:
        area = "postcode" if "postcode" in f else ("city" if "city" in f else None)
        reads = {"address", area} - {None}
        if area == "postcode" and "city" in f:
            reads.add("city")  # a mistyped postcode is excused by the same city
        plan.append(("address", frozenset(reads)))
    elif "postcode" in f:
        plan.append(("postcode", frozenset({"postcode"})))
    elif "city" in f:
        plan.append(("city", frozenset({"city"})))
    return plan


def comparison_for(name: str, fields: Sequence[str]) -> CustomComparison:
    """The Splink comparison called `name` in `comparison_plan(fields)`."""
    f = set(fields)
    if name == "address":
        if "postcode" in f:
            return _address_in_area("postcode_std", with_city="city" in f)
        if "city" in f:
            return _address_in_area("city_std")
        return _address()
    builders = {
        "first_name": lambda: _first_name("last_name" in f),
        "last_name": lambda: _last_name("first_name" in f),
        "dob": _dob,
        "email": _email,
        "phone": _phone,
        "postcode": _postcode,
        "city": _city,
    }
    return builders[name]()


def build_settings(
    fields: Sequence[str],
    blocking_keys: dict[str, Sequence[str]],
    *,
    probability_two_random_records_match: float = 1e-4,
) -> SettingsCreator:
    """Splink settings (untrained) for a dedupe over the given fields and blocking keys."""
    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="unique_id",
        comparisons=[comparison_for(name, fields) for name, _ in comparison_plan(fields)],
        blocking_rules_to_generate_predictions=[block_on(k) for k in blocking_keys],
        probability_two_random_records_match=probability_two_random_records_match,
        retain_matching_columns=False,
        retain_intermediate_calculation_columns=False,
        em_convergence=0.001,
        max_iterations=20,
    )


#: Candidate EM blocks, best first: each trains every comparison except those it blocks on.
_EM_CANDIDATES: list[tuple[str, ...]] = [
    ("dob",),
    ("first_name", "last_name"),
    ("email",),
    ("phone",),
    ("postcode",),
    ("address",),
]


def em_rules_for(fields: Sequence[str]) -> list[tuple[str, ...]]:
    """EM blocking rules (as tuples of match fields) that together train every comparison
    that can be trained: a greedy cover, usually two rules. A rule trains the comparisons
    that read none of its fields (Splink's own rule)."""
    plan = comparison_plan(fields)
    untrained = {name for name, _ in plan}
    rules: list[tuple[str, ...]] = []
    for cand in _EM_CANDIDATES:
        if not set(cand) <= set(fields):
            continue
        trainable = {name for name, reads in plan if not reads & set(cand)}
        # EM needs at least two comparisons to tell matches from non-matches with.
        if trainable & untrained and len(trainable) >= 2:
            rules.append(cand)
            untrained -= trainable
        if not untrained:
            break
    return rules


def deterministic_rules_for(fields: Sequence[str]) -> list[tuple[str, ...]]:
    """Near-certain match rules (tuples of match fields) used to estimate the prior
    probability that two random records match."""
    f = set(fields)
    rules: list[tuple[str, ...]] = []
    for cand in [
        ("first_name", "last_name", "dob"),
        ("first_name", "email"),
        ("first_name", "phone"),
        ("first_name", "last_name", "postcode"),
        ("first_name", "last_name", "address"),
        ("email", "dob"),
    ]:
        if set(cand) <= f:
            rules.append(cand)
    if not rules:
        for cand in [("email",), ("phone",), ("first_name", "last_name"), ("address",)]:
            if set(cand) <= f:
                rules.append(cand)
                break
    return rules
