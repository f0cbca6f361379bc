"""Phone numbers to E.164 with `phonenumbers`.

A number is read in the region of its record's country, else the source's `default_country`,
else with no region (then only numbers written internationally, `+44…` or `0044…`, can be read).
A number starting with `00` that the region cannot read is read as international (`00` → `+`):
systems store numbers as dialled from their own country, so a GB CRM holds a US customer's
number as `001 212 …` although the US itself dials out with `011`.
It must be a *valid* number for phonenumbers (a real numbering-plan range, right length), not
merely a possible one. Placeholders (rule `placeholder`) are text such as `n/a`, digit strings
of one repeated digit (`0000000000`, `0`) and, 7 digits or longer, of one repeated digit or a
run of consecutive digits (`1234567890`, `0123456789`, `9876543210`), checked on the whole
number, after a leading trunk `0`, and, for numbers written with `+` / `00`, after a country
code of up to 3 digits (`+44 1234567890`, `+1 555 555 5555`). A real number that merely
contains a run (`0170 1234567`) is kept. Everything else unreadable is `invalid`.

Speed: phonenumbers costs 45-100 µs a number, too slow for a million rows. So each distinct
(region, number) pair is read once, after formatting characters (spaces, dots, dashes, brackets,
slashes) are stripped (`07911 123456` and `07911-123-456` are one lookup), and numbers that are
then only digits, or `+` and digits (nearly all), take `_to_e164_fast`: phonenumbers' own
algorithm and metadata for just those shapes, with each region's number-type patterns compiled
into one regex (~5 µs). Anything else (letters, extensions, odd prefixes, non-geographic codes)
goes through the library itself.
"""

from __future__ import annotations

import functools
import re

import numpy as np
import pandas as pd

from transforms.standardise._text import (
    PLACEHOLDER_TEXT,
    WHITESPACE,
    as_text,
    broadcast,
    factorize,
    fold_keys,
)

_ASCENDING = "0123456789" * 3
_DESCENDING = "9876543210" * 3
_FORMATTING = f"[{WHITESPACE}().\\-/]"
#: Minimum length of a run of consecutive digits that marks a placeholder number.
PLACEHOLDER_PHONE_RUN = 7
#: Text without digits that means "no phone" (folded; formatting characters already removed,
#: so `n/a` arrives as `na`).
_NO_PHONE_TEXT = PLACEHOLDER_TEXT | {"na", "no", "nophone", "no phone", "none given"}


def is_placeholder_digits(digits: str, international: bool = False) -> bool:
    """Whether a phone number's digits are a placeholder (see the module docstring).

    `international`: the number was written with `+` or `00`, so up to 3 digits after it are a
    country code and the rest is checked on its own too.
    """
    if not digits:
        return False
    if len(set(digits)) == 1:
        return True
    tails = [digits]
    if digits[0] == "0":
        tails.append(digits[1:])
    if international:
        body = digits.removeprefix("00")
        tails += [body[skip:] for skip in (1, 2, 3)]
    for tail in tails:
        if len(tail) < PLACEHOLDER_PHONE_RUN:
            continue
        if len(set(tail)) == 1 or tail in _ASCENDING or tail in _DESCENDING:
            return True
    return False


@functools.cache
def _run_prefilter() -> str:
    """RE2 pattern found in every digit string `is_placeholder_digits` flags for its runs."""
    pieces = [d * PLACEHOLDER_PHONE_RUN for d in "0123456789"]
    for seq in (_ASCENDING, _DESCENDING):
        pieces += [seq[start : start + PLACEHOLDER_PHONE_RUN] for start in range(10)]
    return "|".join(pieces)


def placeholder_digits_mask(
    digits: pd.Series, international: np.ndarray | None = None
) -> np.ndarray:
    """`is_placeholder_digits` over a text column, vectorised apart from rare candidates."""
    if international is None:
        international = np.zeros(len(digits), dtype=bool)
    same = digits.str.fullmatch("|".join(f"{d}+" for d in "0123456789"))
    flags = same.fillna(False).to_numpy(dtype=bool).copy()
    candidates = np.flatnonzero(
        digits.str.contains(_run_prefilter(), regex=True).fillna(False).to_numpy(dtype=bool)
        & ~flags
    )
    values = digits.to_numpy(dtype=object)
    for i in candidates:
        flags[i] = is_placeholder_digits(values[i], bool(international[i]))
    return flags


def _to_e164_library(number: str, region: str | None) -> str | None:
    """The reference path: phonenumbers' own parse + is_valid_number + E.164 format."""
    import phonenumbers

    try:
        parsed = phonenumbers.parse(number, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


_SLOW = object()  # the fast path's "ask phonenumbers" answer
_ASCII_DIGITS = re.compile(r"[0-9]+")
_TYPE_DESCS = (
    "premium_rate", "toll_free", "shared_cost", "voip", "personal_number", "pager", "uan",
    "voicemail", "fixed_line", "mobile",
)  # fmt: skip


class _Region:
    """One region's phonenumbers metadata, compiled for one regex call per validity check.

    `valid(nsn)` is phonenumbers' `_number_type_helper(nsn, metadata) != UNKNOWN`: the number
    matches the general description (length and pattern) and at least one number type's
    (length and pattern); the type patterns are merged per length into one alternation.
    """

    def __init__(self, metadata) -> None:
        self.metadata = metadata
        general = metadata.general_desc
        self.general_lengths = frozenset(general.possible_length or ())
        pattern = general.national_number_pattern
        self.general = re.compile(pattern) if pattern else None
        descs = [getattr(metadata, name) for name in _TYPE_DESCS]
        descs = [d for d in descs if d is not None and d.national_number_pattern]
        self.by_length: dict[int, re.Pattern] = {}
        for length in range(2, 18):
            patterns = [
                d.national_number_pattern
                for d in descs
                if not d.possible_length or length in d.possible_length
            ]
            if patterns:
                self.by_length[length] = re.compile("|".join(f"(?:{p})" for p in patterns))
        self.leading = re.compile(metadata.leading_digits) if metadata.leading_digits else None

    def valid(self, nsn: str) -> bool:
        if self.general is None:
            return False
        if self.general_lengths and len(nsn) not in self.general_lengths:
            return False
        if not self.general.fullmatch(nsn):
            return False
        typed = self.by_length.get(len(nsn))
        return typed is not None and typed.fullmatch(nsn) is not None


@functools.cache
def _region(region: str) -> _Region | None:
    from phonenumbers import PhoneMetadata

    metadata = PhoneMetadata.metadata_for_region(region, None)
    return None if metadata is None else _Region(metadata)


@functools.cache
def _library_internals():
    """phonenumbers' own helpers the fast path reuses, or None if this version lacks them."""
    try:
        from phonenumbers import COUNTRY_CODE_TO_REGION_CODE
        from phonenumbers.phonenumberutil import (
            ValidationResult,
            _maybe_strip_national_prefix_carrier_code,
            _test_number_length,
        )
    except ImportError:  # pragma: no cover - depends on the installed phonenumbers
        return None
    refused = (
        ValidationResult.TOO_SHORT,
        ValidationResult.IS_POSSIBLE_LOCAL_ONLY,
        ValidationResult.INVALID_LENGTH,
    )
    return (
        COUNTRY_CODE_TO_REGION_CODE,
        _maybe_strip_national_prefix_carrier_code,
        _test_number_length,
        refused,
    )


def _to_e164_fast(number: str, region: str | None):
    """E.164 (or None) for `+digits` / plain-digit numbers, exactly as phonenumbers would say;
    `_SLOW` for any shape whose reading needs more of phonenumbers' rules.

    It follows `phonenumbers.parse` + `is_valid_number` step by step for these two shapes (country
    code, national prefix, length test, region of a shared country code, type patterns), with
    the slow generic steps (character normalisation, extension and vanity handling) left out
    because the input has only digits. `tests/transforms/test_standardise.py` checks it against
    the library on thousands of numbers.
    """
    internals = _library_internals()
    if internals is None:
        return _SLOW
    cc_regions, strip_prefix, test_length, refused = internals
    if number.startswith("+"):
        digits = number[1:]
        if not _ASCII_DIGITS.fullmatch(digits) or len(digits) <= 2 or digits[0] == "0":
            return _SLOW
        for size in (1, 2, 3):
            if int(digits[:size]) in cc_regions:
                cc, rest = int(digits[:size]), digits[size:]
                break
        else:
            return _SLOW
        regions = cc_regions[cc]
        home = _region(regions[0])
        if home is None or "001" in regions:
            return _SLOW
    else:
        if region is None or not _ASCII_DIGITS.fullmatch(number):
            return _SLOW
        home = _region(region)
        if home is None:
            return _SLOW
        metadata = home.metadata
        idd = metadata.international_prefix
        if (idd and re.match(idd, number)) or number.startswith(str(metadata.country_code)):
            return _SLOW
        cc, rest = metadata.country_code, number
        regions = cc_regions.get(cc, ())
    if len(rest) < 2:
        return None
    _, stripped, _ = strip_prefix(rest, home.metadata)
    if test_length(stripped, home.metadata) not in refused:
        rest = stripped
    if not 2 <= len(rest) <= 17:
        return None
    valid = False
    if len(regions) == 1:
        only = _region(regions[0])
        if only is None:
            return _SLOW
        valid = only.valid(rest)
    else:
        for code in regions:
            candidate = _region(code)
            if candidate is None:
                continue
            if candidate.leading is not None:
                if candidate.leading.match(rest):
                    valid = candidate.valid(rest)
                    break
            elif candidate.valid(rest):
                valid = True
                break
    return f"+{cc}{rest}" if valid else None


def _read(number: str, region: str | None) -> str | None:
    if region is None and "+" not in number and "\uff0b" not in number:
        return None  # phonenumbers refuses a national number without a region
    fast = _to_e164_fast(number, region)
    return _to_e164_library(number, region) if fast is _SLOW else fast


def _to_e164(pair: str) -> str | None:
    region, _, number = pair.partition("|")
    found = _read(number, region or None)
    if found is None and number.startswith("00"):
        # 00 is the international prefix nearly everywhere, and no national number starts with
        # it: `001 212 …` in a GB system is a US number even though the US dials out with 011.
        found = _read("+" + number[2:], None)
    return found


def standardise_phones(
    values: pd.Series, regions: pd.Series | str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Per row: the number in E.164 (or None) and an issue (`invalid` / `placeholder`, or None).

    `regions` is an ISO alpha-2 code per row (or one for all rows, or None): where to read
    national numbers.
    """
    index = values.index
    values = as_text(values)
    compact = values.str.replace(_FORMATTING, "", regex=True)
    compact = compact.mask(compact == "")
    if isinstance(regions, pd.Series):
        region = regions.astype("str").reindex(index).fillna("").str.upper()
    else:
        region = pd.Series((regions or "").upper(), index=index, dtype="str")
    # A number written with + reads the same in every region: one lookup for all of them.
    region = region.mask(compact.str.startswith("+").fillna(False).astype(bool), "")
    pair = (region + "|" + compact).where(compact.notna())

    codes, pairs = factorize(pair)
    numbers = pairs.str.replace("^[^|]*[|]", "", regex=True)
    digits = numbers.str.replace("[^0-9]", "", regex=True)
    no_digits = (digits == "").to_numpy(dtype=bool)
    international = numbers.str.match("[+]|00").fillna(False).to_numpy(dtype=bool)
    placeholder = placeholder_digits_mask(digits, international)
    if no_digits.any():
        placeholder[no_digits] = (
            fold_keys(numbers[no_digits]).fillna("").isin(_NO_PHONE_TEXT).to_numpy(dtype=bool)
        )
    e164 = np.full(len(pairs), None, dtype=object)
    pair_values = pairs.to_numpy(dtype=object)
    for i in np.flatnonzero(~placeholder):
        e164[i] = _to_e164(pair_values[i])
    issue = np.full(len(pairs), None, dtype=object)
    issue[pd.isna(e164)] = "invalid"
    issue[placeholder] = "placeholder"
    return broadcast(codes, e164), broadcast(codes, issue)


__all__ = [
    "PLACEHOLDER_PHONE_RUN",
    "is_placeholder_digits",
    "placeholder_digits_mask",
    "standardise_phones",
]
