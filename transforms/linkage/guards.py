"""Hard conflicts: facts that say two records are different people, whatever the score.

Probabilistic scores add up evidence; a family living together shares a surname, a street, a
phone and often an email, which is a lot of evidence. Two facts settle it the other way:

* **different date of birth**: both records have one and they differ by more than a typo (one
  character, two adjacent characters transposed, or day and month swapped). Parent and child
  with the same name, namesakes.
* **different first name**: both records have one and they are not the same name spelt
  differently: not equal, not linked in the nickname table (bob / robert, sandra / alexandra,
  either way round), not a typo of the other or of one of its nicknames (edit distance 1, or 2
  for names of 7+ letters), not an initial or a prefix of the other, and not first and last
  name swapped. Twins, couples, siblings sharing a phone or an email.

A pair with either conflict is never linked directly (veto), and a cluster holding such a pair
through a chain of other links is split (see `clustering`).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd

__all__ = [
    "CONFLICT_DOB",
    "CONFLICT_FIRST_NAME",
    "NodeAttributes",
    "pair_conflicts",
]

CONFLICT_DOB = 1
CONFLICT_FIRST_NAME = 2


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


def pair_conflicts(attrs: NodeAttributes, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Conflict flags (bit 1: date of birth, bit 2: first name) for node pairs left[i]-right[i]."""
    left = np.asarray(left, dtype=np.int64)
    right = np.asarray(right, dtype=np.int64)
    out = np.zeros(len(left), dtype=np.uint8)
    if len(left) == 0:
        return out
    out |= np.where(_dob_conflict(attrs, left, right), CONFLICT_DOB, 0).astype(np.uint8)
    out |= np.where(_first_name_conflict(attrs, left, right), CONFLICT_FIRST_NAME, 0).astype(
        np.uint8
    )
    return out


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
