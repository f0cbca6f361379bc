"""Hard conflicts: facts that say two records are different people, whatever the score.

Probabilistic scores add up evidence; a family living together shares a surname, a street, a
phone and often an email, which is a lot of evidence. Two facts can settle it the other way:

* **different date of birth**: both records have one and they differ by more than a typo (one
  character, two adjacent characters transposed, or day and month swapped). Parent and child
  with the same name, namesakes.
* **different first name**: both records have one and they are not the same name spelt
  differently: not equal, not linked in the nickname table (bob / robert, sandra / alexandra,
  either way round), not a typo of the other or of one of its nicknames (edit distance 1, or 2
  for names of 7+ letters), not an initial or a prefix of the other, and not first and last
  name swapped. Twins, couples, siblings sharing a phone or an email.

Whether such a fact is decisive depends on the data, so it is measured, per data set, at
training time (`guard_evidence`): among record pairs that agree exactly on every *other*
identifying field (surname, date of birth, street line, postcode) and hold no two different
email addresses, the share whose first names conflict, and likewise for dates of birth. That share is the model's m of the disagreement:
how often true matches disagree on the field. Where it is small (`RELIABLE_SHARE`), a
disagreement is strong evidence of two people and the conflict vetoes a link on its own; where
it is implausibly large (`IMPLAUSIBLE_SHARE`) the look-alike pairs are mostly family members
(twins, birth dates copied within a household) and the field stays decisive too; where the
data shows true matches often disagree (first names mistyped beyond a typo or replaced), a
conflict on that field vetoes only when the other guard field does not agree either, so a
replaced first name with the same date of birth links, while a spouse without a date of birth
still stays apart. `GuardPolicy` holds the outcome:

* `adaptive` (default): as above, from the evidence stored in the model;
* `strict`: every conflict vetoes (twins and families kept apart whatever the data says);
* `off`: no vetoes, no cluster rebuild: plain connected components of the scored links.

A vetoed pair is never linked directly, and a cluster holding such a pair through a chain of
other links is split (see `clustering`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "CONFLICT_DOB",
    "CONFLICT_FIRST_NAME",
    "GUARD_EVIDENCE_COLUMNS",
    "GUARD_MODES",
    "IMPLAUSIBLE_SHARE",
    "MIN_EVIDENCE_PAIRS",
    "RELIABLE_SHARE",
    "STRICT",
    "GuardPolicy",
    "NodeAttributes",
    "evidence_from_counts",
    "guard_anchors",
    "guard_evidence",
    "guard_group_keys",
    "guard_pair_counts",
    "pair_conflicts",
    "shows_unreliable",
]

CONFLICT_DOB = 1
CONFLICT_FIRST_NAME = 2

#: The guard policies `linkage.guards` accepts.
GUARD_MODES = ("adaptive", "strict", "off")

#: A guard field is decisive when at most this share of record pairs that agree on every other
#: identifying field disagree on it. Twins, parents and children and couples are a few percent of
#: the pairs a household's shared surname and address link; above this share a disagreement is
#: more often a replaced or mistyped value of one person than a second person.
RELIABLE_SHARE = 0.05

#: Above this share the look-alike pairs cannot be mostly one person's records (no export
#: replaces a third of its first names): they are mostly family members who share a birth date
#: too (twins, a birth date copied from a household member), so the field stays decisive.
IMPLAUSIBLE_SHARE = 0.3

#: Fewer anchor pairs than this (a small or sparse data set) cannot show that a field is
#: unreliable: its conflicts stay decisive.
MIN_EVIDENCE_PAIRS = 30

#: Anchor groups (records agreeing on every other field) larger than this are a shared junk
#: value, not one person: left out of the evidence.
_MAX_ANCHOR_GROUP = 30

#: Identifiers a person does not share with the family: two different values rule a pair out
#: of the evidence (a family phone is shared, so only the email counts).
_PERSONAL_IDENTIFIERS = ("email_key",)

#: The fields each guard's evidence is anchored on: records agreeing exactly on all of those
#: present (at least two) are compared on the guard field.
_ANCHORS = {
    "first_name": ("last_name_std", "dob", "address_std", "postcode_std"),
    "dob": ("first_name_std", "last_name_std", "address_std", "postcode_std"),
}


@dataclass(frozen=True)
class GuardPolicy:
    """Which conflicts veto a link.

    `mode` is 'adaptive', 'strict' or 'off'. `decisive` names the guard fields ('first_name',
    'dob') whose conflict vetoes on its own; a conflict on another guard field vetoes only when
    the other guard field does not agree (missing on either side, or in conflict too).
    `evidence` is what the decision was made from (per field: anchor pairs, disagreeing pairs,
    share), for metadata and the report.
    """

    mode: str = "strict"
    decisive: frozenset[str] = frozenset({"first_name", "dob"})
    evidence: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.mode not in GUARD_MODES:
            raise ValueError(
                f"linkage.guards: must be one of {', '.join(GUARD_MODES)}, got {self.mode!r}"
            )

    @property
    def active(self) -> bool:
        return self.mode != "off"

    @classmethod
    def from_evidence(cls, mode: str, evidence: Mapping[str, Any] | None) -> GuardPolicy:
        """The policy for `mode` given a model's guard evidence (`guard_evidence` output;
        None for a model trained before it was measured: every field decisive)."""
        if mode != "adaptive":
            return cls(mode=mode, evidence=evidence)
        decisive = {"first_name", "dob"}
        for fld, ev in (evidence or {}).items():
            if fld in decisive and shows_unreliable(ev):
                decisive.discard(fld)
        return cls(mode=mode, decisive=frozenset(decisive), evidence=evidence)

    def key(self) -> str:
        """A short text that changes whenever the policy decides differently."""
        return f"{self.mode}:{','.join(sorted(self.decisive)) if self.mode == 'adaptive' else ''}"

    def describe(self) -> str:
        """One line for a reader: which disagreements keep records apart, and why."""
        if self.mode == "off":
            return "guards off: links decided by the score alone"
        if self.mode == "strict":
            return "strict: a different first name or date of birth always keeps records apart"
        parts = []
        for fld, label in (("first_name", "first name"), ("dob", "date of birth")):
            ev = (self.evidence or {}).get(fld) or {}
            share = ev.get("share")
            seen = f" ({share:.1%} of {ev.get('pairs', 0):,} look-alike pairs differ)" if (
                share is not None
            ) else ""
            rule = "always keeps records apart" if fld in self.decisive else (
                "keeps records apart unless the other one agrees"
            )
            parts.append(f"a different {label}{seen} {rule}")
        return "adaptive: " + "; ".join(parts)


def shows_unreliable(ev: Mapping[str, Any] | None) -> bool:
    """Whether guard evidence shows, beyond chance, that true matches often disagree on the
    field: at least `MIN_EVIDENCE_PAIRS` look-alike pairs, the 95% Wilson lower bound of the
    disagreeing share above `RELIABLE_SHARE` (4 of 58 is not enough: twins alone can do that),
    and the share itself not above `IMPLAUSIBLE_SHARE`."""
    n = int((ev or {}).get("pairs") or 0)
    k = int((ev or {}).get("disagree") or 0)
    if n < MIN_EVIDENCE_PAIRS:
        return False
    share = k / n
    z = 1.96
    centre = share + z * z / (2 * n)
    margin = z * ((share * (1 - share) + z * z / (4 * n)) / n) ** 0.5
    lower = (centre - margin) / (1 + z * z / n)
    return lower > RELIABLE_SHARE and share <= IMPLAUSIBLE_SHARE


#: Every conflict vetoes: the behaviour before policies, and what `guards=True` means.
STRICT = GuardPolicy("strict")


class NodeAttributes:
    """The columns the guards read, as arrays aligned with node positions."""

    def __init__(self, nodes: pd.DataFrame) -> None:
        n = len(nodes)

        def col(name: str) -> np.ndarray:
            if name not in nodes.columns:
                return np.full(n, None, dtype=object)
            s = nodes[name].astype("string").str.strip()
            s = s.mask(s == "")
            return s.astype(object).where(s.notna(), None).to_numpy(dtype=object)

        self.first = col("first_name_std")
        self.alias = col("first_name_alias")
        self.last = col("last_name_std")
        dob = col("dob")
        self.has_dob = np.array([isinstance(d, str) and len(d) == 10 for d in dob], dtype=bool)
        padded = np.array([d if isinstance(d, str) and len(d) == 10 else "0000-00-00" for d in dob])
        self.dob_bytes = (
            np.frombuffer(padded.astype("S10").tobytes(), dtype=np.uint8).reshape(n, 10)
            if n
            else np.zeros((0, 10), dtype=np.uint8)
        )
        self.has_first = np.array([f is not None for f in self.first], dtype=bool)


def pair_conflicts(
    attrs: NodeAttributes,
    left: np.ndarray,
    right: np.ndarray,
    policy: GuardPolicy = STRICT,
) -> np.ndarray:
    """Veto flags (bit 1: date of birth, bit 2: first name) for node pairs left[i]-right[i],
    under `policy` (default: strict, every conflict)."""
    left = np.asarray(left, dtype=np.int64)
    right = np.asarray(right, dtype=np.int64)
    out = np.zeros(len(left), dtype=np.uint8)
    if len(left) == 0 or not policy.active:
        return out
    dob = _dob_conflict(attrs, left, right)
    first = _first_name_conflict(attrs, left, right)
    if policy.mode == "adaptive":
        # A conflict on a field the data shows to be unreliable counts only when the other
        # guard field does not agree: missing on either side, or in conflict as well.
        if "dob" not in policy.decisive:
            first_agrees = attrs.has_first[left] & attrs.has_first[right] & ~first
            dob = dob & ~first_agrees
        if "first_name" not in policy.decisive:
            dob_agrees = attrs.has_dob[left] & attrs.has_dob[right] & ~_dob_conflict(
                attrs, left, right
            )
            first = first & ~dob_agrees
    out |= np.where(dob, CONFLICT_DOB, 0).astype(np.uint8)
    out |= np.where(first, CONFLICT_FIRST_NAME, 0).astype(np.uint8)
    return out


def guard_evidence(persons: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """How often record pairs that agree on every other identifying field disagree on each
    guard field (first name, date of birth): the model's m of that disagreement, counted.

    For a guard field, records are grouped by exact agreement on its anchor columns (surname,
    date of birth or first name, street line, postcode: those the frame fills, at least two);
    every pair inside a group with the guard field on both records counts, and it disagrees
    when the guard rule says so (beyond a typo, nickname, initial or swap). Groups of more than
    `_MAX_ANCHOR_GROUP` records are left out, and so are pairs whose two records hold different
    email addresses (other evidence of two people: twins with their own mailboxes). Returns
    per field `pairs`, `disagree`, `share`
    and `anchors` (empty when no anchors are available).

    In parts, for an engine that holds the records elsewhere (Spark): `guard_anchors` from
    which anchor columns hold any value, `guard_pair_counts` over records grouped so that each
    anchor group is whole in one part (counts add up over parts), `evidence_from_counts`.
    """
    filled = {
        c: bool(_filled(persons[c]).notna().any())
        for c in GUARD_ANCHOR_COLUMNS
        if c in persons.columns
    }
    anchors = guard_anchors(filled, persons.columns)
    counts = {
        fld: guard_pair_counts(persons, fld, present)
        for fld, present in anchors.items()
        if present is not None
    }
    return evidence_from_counts(filled, anchors, counts)


#: Every column an anchor of `guard_evidence` can be.
GUARD_ANCHOR_COLUMNS = tuple(dict.fromkeys(c for a in _ANCHORS.values() for c in a))

def guard_anchors(
    filled: Mapping[str, bool], columns: Sequence[str]
) -> dict[str, list[str] | None]:
    """Per guard field, the anchor columns its evidence groups on (those among `filled`, the
    columns holding at least one value, in `_ANCHORS` order), or None when the field cannot
    be measured (fewer than two anchors, or the guard column missing from `columns`)."""
    out: dict[str, list[str] | None] = {}
    for fld, anchors in _ANCHORS.items():
        present = [c for c in anchors if filled.get(c)]
        usable = len(present) >= 2 and _GUARD_COLUMN[fld] in columns
        out[fld] = present if usable else None
    return out


def guard_pair_counts(records: pd.DataFrame, fld: str, present: Sequence[str]) -> tuple[int, int]:
    """(look-alike pairs, pairs whose `fld` disagrees) among `records` grouped by exact
    agreement on the anchor columns `present` (`guard_evidence`). Every anchor group must be
    whole in `records`: counts of parts that split no group add up to the whole's."""
    present = list(present)
    guard_col = _GUARD_COLUMN[fld]
    cols = list(dict.fromkeys([*present, *GUARD_NODE_COLUMNS]))
    cols += [c for c in _PERSONAL_IDENTIFIERS if c in records.columns]
    frame = pd.DataFrame(
        {c: _filled(records[c]) if c in records.columns else pd.NA for c in cols},
        index=records.index,
    )
    frame = frame[frame[present].notna().all(axis=1) & frame[guard_col].notna()]
    frame = frame.reset_index(drop=True)
    if len(frame) < 2:
        return 0, 0
    group = frame.groupby(present, sort=False, dropna=True).ngroup().to_numpy()
    sizes = np.bincount(group)
    keep = (sizes[group] >= 2) & (sizes[group] <= _MAX_ANCHOR_GROUP)
    idx = pd.DataFrame({"g": group[keep], "i": np.flatnonzero(keep)})
    pairs = idx.merge(idx, on="g")
    pairs = pairs[pairs["i_x"] < pairs["i_y"]]
    left, right = pairs["i_x"].to_numpy(), pairs["i_y"].to_numpy()
    # A pair whose records hold two different personal identifiers (twins with their own
    # email addresses) is two people by other evidence: not a look-alike pair.
    keep_pair = np.ones(len(left), dtype=bool)
    for col in _PERSONAL_IDENTIFIERS:
        if col in frame.columns:
            codes = pd.factorize(frame[col], use_na_sentinel=True)[0]
            a, b = codes[left], codes[right]
            keep_pair &= ~((a >= 0) & (b >= 0) & (a != b))
    left, right = left[keep_pair], right[keep_pair]
    attrs = NodeAttributes(frame)
    if fld == "first_name":
        hit = _first_name_conflict(attrs, left, right)
    else:
        hit = _dob_conflict(attrs, left, right)
    return len(left), int(hit.sum())


def guard_group_keys(records: pd.DataFrame, fld: str, present: Sequence[str]) -> pd.Series:
    """A 64-bit key of each record's anchor group for `guard_pair_counts(records, fld,
    present)`, NULL for a record that is in no group (an anchor or the guard field blank).
    Records of one group get one key, so records split by key keep every group whole."""
    keys = pd.DataFrame({c: _filled(records[c]) for c in present}, index=records.index)
    ok = keys.notna().all(axis=1) & _filled(records[_GUARD_COLUMN[fld]]).notna()
    out = pd.Series(pd.NA, index=records.index, dtype="Int64")
    if ok.any():
        hashed = pd.util.hash_pandas_object(keys[ok], index=False).to_numpy()
        out[ok] = hashed.view(np.int64)
    return out


def evidence_from_counts(
    filled: Mapping[str, bool],
    anchors: Mapping[str, list[str] | None],
    counts: Mapping[str, tuple[int, int]],
) -> dict[str, dict[str, Any]]:
    """`guard_evidence`'s result from its parts (see there)."""
    out: dict[str, dict[str, Any]] = {}
    for fld, candidates in _ANCHORS.items():
        present = anchors.get(fld)
        if present is None:
            shown = [c for c in candidates if filled.get(c)]
            out[fld] = {"pairs": 0, "disagree": 0, "share": None, "anchors": shown}
            continue
        n, k = counts.get(fld, (0, 0))
        out[fld] = {
            "pairs": n,
            "disagree": k,
            "share": (k / n) if n else None,
            "anchors": list(present),
        }
    return out


#: The column each guard field's evidence compares.
_GUARD_COLUMN = {"first_name": "first_name_std", "dob": "dob"}


#: The columns `NodeAttributes` reads.
GUARD_NODE_COLUMNS = ("first_name_std", "first_name_alias", "last_name_std", "dob")

#: The columns `guard_pair_counts` reads (those of them the records have).
GUARD_EVIDENCE_COLUMNS = tuple(
    dict.fromkeys([*GUARD_ANCHOR_COLUMNS, *GUARD_NODE_COLUMNS, *_PERSONAL_IDENTIFIERS])
)


def _filled(s: pd.Series) -> pd.Series:
    s = s.astype("string").str.strip()
    return s.mask(s == "")


def _dob_conflict(attrs: NodeAttributes, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    both = attrs.has_dob[left] & attrs.has_dob[right]
    a = attrs.dob_bytes[left]
    b = attrs.dob_bytes[right]
    diff = a != b
    ndiff = diff.sum(axis=1)
    # Two adjacent characters transposed (1985 -> 1958, 12 -> 21).
    transposed = np.zeros(len(left), dtype=bool)
    two = np.flatnonzero(ndiff == 2)
    if len(two):
        pos = np.argmax(diff[two], axis=1)
        nxt = np.minimum(pos + 1, 9)
        rows = two
        transposed[two] = (
            diff[rows, nxt] & (a[rows, pos] == b[rows, nxt]) & (a[rows, nxt] == b[rows, pos])
        )
    swapped = (
        (a[:, 0:4] == b[:, 0:4]).all(axis=1)
        & (a[:, 5:7] == b[:, 8:10]).all(axis=1)
        & (a[:, 8:10] == b[:, 5:7]).all(axis=1)
    )
    typo = (ndiff <= 1) | transposed | swapped
    return both & ~typo


def _first_name_conflict(attrs: NodeAttributes, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    both = attrs.has_first[left] & attrs.has_first[right]
    out = np.zeros(len(left), dtype=bool)
    idx = np.flatnonzero(both)
    if not len(idx):
        return out
    f1, f2 = attrs.first[left[idx]], attrs.first[right[idx]]
    differ = f1 != f2
    idx, f1, f2 = idx[differ], f1[differ], f2[differ]
    if not len(idx):
        return out
    li, ri = left[idx], right[idx]
    a1, a2 = attrs.alias[li], attrs.alias[ri]
    l1, l2 = attrs.last[li], attrs.last[ri]
    for k in range(len(idx)):
        out[idx[k]] = _names_conflict(f1[k], f2[k], a1[k], a2[k], l1[k], l2[k])
    return out


def _names_conflict(f1: str, f2: str, a1, a2, l1, l2) -> bool:
    if (l2 is not None and f1 == l2) or (l1 is not None and f2 == l1):
        return False
    return not _same_first_name(f1, f2, a1, a2)


@lru_cache(maxsize=200_000)
def _same_first_name(f1: str, f2: str, a1, a2) -> bool:
    """Whether two first names can be one person's: equal, the same canonical name, linked in
    the nickname table (either way: sandra / alexandra, jack / john), or a typo of one of those
    (bitly ~ billy, a nickname of william)."""
    left = {f1} if a1 is None else {f1, a1}
    right = {f2} if a2 is None else {f2, a2}
    if left & right:
        return True
    rel_left = set().union(*(_related(x) for x in left))
    rel_right = set().union(*(_related(x) for x in right))
    if rel_left & rel_right:
        return True
    return any(_same_name_spelling(x, y) for x in left for y in rel_right) or any(
        _same_name_spelling(x, y) for x in rel_left for y in right
    )


@lru_cache(maxsize=50_000)
def _related(name: str) -> frozenset[str]:
    namer = _namer()
    return frozenset({name, *namer.nicknames_of(name), *namer.canonicals_of(name)})


@lru_cache(maxsize=1)
def _namer():
    from nicknames import NickNamer

    return NickNamer()


@lru_cache(maxsize=200_000)
def _same_name_spelling(a: str, b: str) -> bool:
    if a[0] == b[0] and (len(a) == 1 or len(b) == 1):
        return True  # an initial
    short, long_ = (a, b) if len(a) <= len(b) else (b, a)
    if len(short) >= 3 and long_.startswith(short):
        return True  # chris / christopher
    limit = 2 if len(long_) >= 7 else 1
    return _osa_distance(a, b, limit) <= limit


def _osa_distance(a: str, b: str, limit: int) -> int:
    """Optimal-string-alignment (restricted Damerau-Levenshtein) distance, capped at limit+1."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        best = cur[0]
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            v = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                v = min(v, prev2[j - 2] + 1)
            cur[j] = v
            best = min(best, v)
        if best > limit:
            return limit + 1
        prev2, prev = prev, cur
    return prev[-1]
