"""Person names: match keys, full-name splitting and nickname aliases.

- `name_key`: trimmed, case-folded, accent-folded (anyascii) ASCII with apostrophes removed and
  other punctuation turned into single spaces: `O'Brien` → `obrien`, `Zoë` → `zoe`,
  `Mary-Jane` → `mary jane`, `王` → `wang`. The original spelling is kept in the frame.
- `split_full_name`: `(first, last)` as written. CJK names (Han, kana, Hangul) are taken as
  surname first: with a space, the first word is the surname; without one, the first character
  is (`王芳` → first `芳`, last `王`), except names of four or more characters, whose first two
  characters are taken as a compound surname (`欧阳娜娜`). This is a heuristic: it suits Chinese
  and Korean names and is often wrong for Japanese names written without a space (two-character
  surnames are the rule there). Everything else is read as `nameparser` reads it (titles,
  suffixes, `SMITH, John`, `van Beethoven`): the common shapes by a fast path that gives the
  same answer (nameparser costs ~200 µs a name), the rest by nameparser itself.
- `nickname_key`: one canonical given name per nickname group from the `nicknames` package's
  table (see `_alias_table` for the rule), so `bob`, `rob`, `bobby` and `robert` share `robert`.
  Names the table does not know are their own key.
"""

from __future__ import annotations

import functools
import os
import re
from difflib import SequenceMatcher

import numpy as np
import pandas as pd

from transforms.standardise._text import (
    PLACEHOLDER_TEXT,
    as_text,
    broadcast,
    factorize,
    fold_keys,
    key_text,
)

#: Name keys that are not names (compared after `name_key`): form defaults and test data.
PLACEHOLDER_NAMES = PLACEHOLDER_TEXT | frozenset(
    {
        "na",
        "test",
        "testing",
        "tester",
        "asdf",
        "qwerty",
        "anonymous",
        "anon",
        "customer",
        "guest",
        "no name",
        "noname",
        "name",
        "first name",
        "firstname",
        "last name",
        "lastname",
        "surname",
        "dummy",
        "fake",
        "abc",
    }
)

_CJK = re.compile(
    "[\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]"
)
_SPACES = re.compile(r"\s+")


def name_key(value: str | None) -> str | None:
    """Match key of a name: `O'Brien` → `obrien`, `Zoë` → `zoe`; None when empty.

    Placeholders (`Test`, `Unknown`) keep their key here; `name_keys` drops them.
    """
    return key_text(value)


def name_keys(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Per row: the name key (None when missing or a placeholder) and an issue (`placeholder`)."""
    codes, uniques = factorize(as_text(values))
    keys = fold_keys(uniques)
    is_placeholder = keys.isna() | keys.isin(PLACEHOLDER_NAMES)
    key_arr = keys.to_numpy(dtype=object, na_value=None)
    key_arr[is_placeholder.to_numpy()] = None
    issue = np.where(is_placeholder.to_numpy(), "placeholder", None).astype(object)
    return broadcast(codes, key_arr), broadcast(codes, issue)


@functools.cache
def _nameparser_words() -> frozenset[str]:
    """Every word nameparser's default vocabulary gives a role (titles, suffixes, particles,
    conjunctions, …), lower-cased without edge periods: such words send a name to nameparser."""
    try:
        from nameparser._lexicon import _VOCAB_FIELDS, Lexicon

        lexicon = Lexicon.default()
        groups = [getattr(lexicon, name) for name in _VOCAB_FIELDS]
    except (ImportError, AttributeError):  # nameparser 1.x
        from nameparser.config import CONSTANTS

        groups = [
            CONSTANTS.titles,
            CONSTANTS.suffix_acronyms,
            CONSTANTS.suffix_not_acronyms,
            CONSTANTS.prefixes,
            CONSTANTS.conjunctions,
        ]
    words: set[str] = set()
    for group in groups:
        for word in group:
            if isinstance(word, str):
                words.add(_bare(word))
                words.add(word.lower().replace(".", ""))
    return frozenset(words)


# Honorifics and generational suffixes the fast path peels itself (nameparser reads them as
# titles / suffixes too; tests check that both agree).
_TITLES = frozenset(
    [
        "mr",
        "mrs",
        "ms",
        "miss",
        "mx",
        "dr",
        "prof",
        "sir",
        "dame",
        "rev",
        "lord",
        "lady",
        "fr",
        "master",
        "herr",
        "frau",
        "mme",
        "mlle",
    ]
)
_SUFFIXES = frozenset(["jr", "sr", "jnr", "snr", "ii", "iii", "iv", "phd", "md", "esq"])
# A word the fast path takes as a plain name part: letters with inner apostrophes or hyphens,
# or a one-letter initial with its period. Other periods ("Dott.", "B.Eng.") go to nameparser.
_PLAIN_WORD = re.compile(r"[^\W\d_](?:[^\W\d_]|['’\-](?=[^\W\d_]))*|[^\W\d_]\.")


def _bare(word: str) -> str:
    return word.lower().strip(".")


def _plain(words: list[str]) -> bool:
    special = _nameparser_words()
    return all(_PLAIN_WORD.fullmatch(w) and _bare(w) not in special for w in words)


def _split_fast(name: str) -> tuple[str | None, str | None] | None:
    """(first, last) for the common shapes, as nameparser reads them; None for anything else.

    Shapes: plain words (`John Smith`, `Mary-Jane O'Brien`, `John A. Smith`), optionally after
    honorifics and before suffixes (`Dr. John Smith Jr.`), and `SURNAME, First [Middle]`.
    """
    if "," in name:
        left, _, right = name.partition(",")
        last_words, first_words = left.split(), right.split()
        if "," in right or not last_words or not first_words:
            return None
        if not _plain(last_words + first_words):
            return None
        return first_words[0], " ".join(last_words)
    words = name.split(" ")
    while len(words) > 2 and _bare(words[0]) in _TITLES:
        words = words[1:]
    while len(words) > 2 and _bare(words[-1]) in _SUFFIXES:
        words = words[:-1]
    if not _plain(words):
        return None
    return words[0], (words[-1] if len(words) > 1 else None)


def _split_cjk(name: str) -> tuple[str | None, str | None]:
    parts = name.split(" ")
    if len(parts) > 1:
        return " ".join(parts[1:]), parts[0]
    if len(name) == 1:
        return None, name
    cut = 2 if len(name) >= 4 else 1
    return name[cut:], name[:cut]


def split_full_name(name: str | None) -> tuple[str | None, str | None]:
    """`(first, last)` of a full name as written (see the module docstring for the rules).

    >>> split_full_name("SMITH, John")
    ('John', 'SMITH')
    >>> split_full_name("Dr. John A. Smith Jr.")
    ('John', 'Smith')
    >>> split_full_name("王芳")
    ('芳', '王')
    """
    if name is None or (isinstance(name, float) and np.isnan(name)):
        return None, None
    name = _SPACES.sub(" ", str(name)).strip()
    if not name:
        return None, None
    if _CJK.search(name):
        return _split_cjk(name)
    fast = _split_fast(name)
    if fast is not None:
        return fast
    from nameparser import HumanName

    parsed = HumanName(name)
    return (parsed.first or None), (parsed.last or None)


def split_full_names(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """`split_full_name` per row, computed once per distinct value: (first, last) arrays."""
    codes, uniques = factorize(as_text(values))
    firsts = np.empty(len(uniques), dtype=object)
    lasts = np.empty(len(uniques), dtype=object)
    for i, v in enumerate(uniques):
        firsts[i], lasts[i] = split_full_name(v)
    return broadcast(codes, firsts), broadcast(codes, lasts)


def _similarity(a: str, b: str) -> int:
    longest = SequenceMatcher(None, a, b, autojunk=False).find_longest_match(0, len(a), 0, len(b))
    return longest.size + len(os.path.commonprefix([a, b]))


@functools.cache
def _alias_table() -> dict[str, str]:
    """Name key → canonical given name, for every name in the `nicknames` table.

    The table lists `formal has_nickname nick` pairs, but loosely: it holds both `robert → bob`
    and `bob → robert`, and a nickname may belong to several formal names (`al`, `chris`). So
    each name climbs towards a "more formal" name until none is left. From name `n`, the
    candidates are the names listing `n` as a nickname that have more nicknames than `n` (or as
    many and a longer spelling); the step goes to the candidate with the highest
    `2 × similarity + nickname count` (similarity: longest common substring + common prefix
    length), alphabetically smallest on ties; repeat. (nickname count, length) rises at every
    step, so the climb ends, and every name on a path shares its end as key.

    Examples: bob, bobby, rob → robert; bill, billy, will → william; liz, beth, betty →
    elizabeth; kate, kathy → katherine; tom, tommy → thomas. Inherently ambiguous nicknames go
    one way only (chris → christiana, not christopher; sam → samantha, not samuel), and a few
    formal names climb to a variant (michael → miguel): the key is a match key, not a display
    value.
    """
    from nicknames import NickNamer

    namer = NickNamer()
    nicknames_of = namer.nickname_lookup
    canonicals_of = namer.canonical_lookup

    def rank(name: str) -> tuple[int, int]:
        return len(nicknames_of.get(name, ())), len(name)

    def step(name: str) -> str:
        own = rank(name)
        better = sorted(m for m in canonicals_of.get(name, ()) if rank(m) > own)
        if not better:
            return name
        return max(better, key=lambda m: 2 * _similarity(name, m) + rank(m)[0])

    table: dict[str, str] = {}
    for name in set(nicknames_of) | set(canonicals_of):
        current = name
        while (nxt := step(current)) != current:
            current = nxt
        key = key_text(name)
        if key:
            table[key] = key_text(current) or key
    return table


def nickname_key(first_name_key: str | None) -> str | None:
    """Canonical given name for a first-name key (`bob` → `robert`); unknown names are their own."""
    if first_name_key is None:
        return None
    return _alias_table().get(first_name_key, first_name_key)


def nickname_keys(first_name_keys: pd.Series) -> pd.Series:
    """`nickname_key` for a column of first-name keys (vectorised dictionary lookup)."""
    mapped = first_name_keys.map(_alias_table())
    return mapped.where(mapped.notna(), first_name_keys)


__all__ = [
    "PLACEHOLDER_NAMES",
    "name_key",
    "name_keys",
    "nickname_key",
    "nickname_keys",
    "split_full_name",
    "split_full_names",
]
