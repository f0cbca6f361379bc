"""Places: country codes, postcodes, cities and street address lines.

- `country_code`: ISO 3166-1 alpha-2 from a code (alpha-2 or alpha-3) or a name, by exact
  lookup of the folded value (no fuzzy matching). Names known: pycountry's English names
  (name, official and common name), `country_aliases.csv` (UK, Great Britain, England, USA,
  Holland, short names such as Russia or Turkey …), and pycountry's own translations of every
  country name into `TRANSLATION_LANGUAGES` (Deutschland, España, Polska, Éire, Sverige …), a
  translation used only when it names one country. Priority when keys collide: alpha-2 code,
  alias table, alpha-3 code, English names, translations. A leading "the" is ignored.
- `postcode_key`: upper case, no whitespace (`sw1a 1aa` → `SW1A1AA`).
- `city_key`: folded like names; a leading `st`/`ste`/`mt`/`ft` becomes saint/sainte/mount/fort
  (`St. Albans` → `saint albans`).
- `address_key`: folded like names (accents, case, punctuation), house numbers kept, each word
  in `address_abbreviations.csv` expanded (st → street, rd → road, ave → avenue, ln → lane,
  dr → drive, apt → apartment …). `st` is read as `saint` instead when it starts the line or
  follows a house number and another word comes after it (`12 St John's Rd` →
  `12 saint johns road`, `12 High St` → `12 high street`). German street names abbreviated
  inside the word read as the full word (`Hauptstr. 5` → `hauptstrasse 5`, like `Hauptstraße 5`).
"""

from __future__ import annotations

import csv
import functools
import gettext
from importlib import resources

import numpy as np
import pandas as pd

from transforms.standardise._text import (
    PLACEHOLDER_TEXT,
    WHITESPACE,
    as_text,
    broadcast,
    factorize,
    fold_keys,
    key_text,
)

#: Languages whose pycountry translations of country names are accepted as input.
TRANSLATION_LANGUAGES = (
    "de", "fr", "es", "it", "pt", "nl", "pl", "sv", "da", "nb", "nn", "fi", "cs", "sk", "hu",
    "ro", "hr", "sl", "et", "lv", "lt", "el", "tr", "ga", "cy", "is", "ca", "eu", "gl", "ru",
    "uk", "bg", "sr", "zh_CN", "zh_TW", "ja", "ko",
)  # fmt: skip

_CITY_PREFIXES = {"st": "saint", "ste": "sainte", "mt": "mount", "ft": "fort"}


def _read_table(name: str) -> list[dict[str, str]]:
    text = resources.files("transforms.standardise").joinpath(name).read_text(encoding="utf-8")
    return list(csv.DictReader(text.splitlines()))


@functools.cache
def address_abbreviations() -> dict[str, str]:
    """The abbreviation → expansion table (`address_abbreviations.csv`), keys folded."""
    return {
        row["abbreviation"]: row["expansion"] for row in _read_table("address_abbreviations.csv")
    }


@functools.cache
def _country_table() -> dict[str, str]:
    import pycountry

    countries = list(pycountry.countries)
    table: dict[str, str] = {}

    translated: dict[str, set[str]] = {}
    for lang in TRANSLATION_LANGUAGES:
        try:
            tr = gettext.translation("iso3166-1", pycountry.LOCALES_DIR, languages=[lang])
        except OSError:
            continue
        for c in countries:
            for attr in ("name", "official_name", "common_name"):
                english = getattr(c, attr, None)
                key = key_text(tr.gettext(english)) if english else None
                if key:
                    translated.setdefault(key, set()).add(c.alpha_2)
    table.update({k: next(iter(v)) for k, v in translated.items() if len(v) == 1})

    for c in countries:
        for attr in ("name", "official_name", "common_name"):
            key = key_text(getattr(c, attr, None))
            if key:
                table[key] = c.alpha_2
    for c in countries:
        table[c.alpha_3.lower()] = c.alpha_2
    for row in _read_table("country_aliases.csv"):
        table[key_text(row["alias"])] = row["code"].upper()
    for c in countries:
        table[c.alpha_2.lower()] = c.alpha_2
    return table


def _lookup_country(key: str | None) -> str | None:
    if key is None:
        return None
    table = _country_table()
    code = table.get(key)
    if code is None and key.startswith("the "):
        code = table.get(key[4:])
    return code


def country_codes(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Per row: ISO alpha-2 code (or None) and an issue (`unknown`: a value not recognised)."""
    codes, uniques = factorize(as_text(values))
    keys = fold_keys(uniques).to_numpy(dtype=object, na_value=None)
    out = np.array([_lookup_country(k) for k in keys], dtype=object)
    placeholder = np.array([k is None or k in PLACEHOLDER_TEXT for k in keys], dtype=bool)
    issue = np.where(pd.isna(out) & ~placeholder, "unknown", None).astype(object)
    return broadcast(codes, out), broadcast(codes, issue)


def country_code(value: str | None) -> str | None:
    """ISO 3166-1 alpha-2 code of a country code or name (`Deutschland` → `DE`), or None."""
    return _lookup_country(key_text(value))


def _placeholder_issue(keys: pd.Series) -> np.ndarray:
    return np.where(keys.isna() | keys.isin(PLACEHOLDER_TEXT), "placeholder", None).astype(object)


def postcode_keys(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Per row: postcode upper-cased without whitespace (or None) and an issue (`placeholder`)."""
    codes, uniques = factorize(as_text(values))
    issue = _placeholder_issue(fold_keys(uniques))
    out = uniques.str.upper().str.replace(f"[{WHITESPACE}]+", "", regex=True)
    out = out.to_numpy(dtype=object, na_value=None)
    out[issue != None] = None
    return broadcast(codes, out), broadcast(codes, issue)


def postcode_key(value: str | None) -> str | None:
    """Postcode match key of one value (`sw1a 1aa` → `SW1A1AA`), or None."""
    return _scalar(postcode_keys, value)


def _city(key: str) -> str:
    first, _, rest = key.partition(" ")
    if rest and first in _CITY_PREFIXES:
        return f"{_CITY_PREFIXES[first]} {rest}"
    return key


def city_keys(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Per row: folded city key (or None) and an issue (`placeholder`)."""
    codes, uniques = factorize(as_text(values))
    keys = fold_keys(uniques)
    issue = _placeholder_issue(keys)
    out = np.array(
        [None if bad else _city(k) for k, bad in zip(keys.to_numpy(dtype=object), issue != None)],
        dtype=object,
    )
    return broadcast(codes, out), broadcast(codes, issue)


def city_key(value: str | None) -> str | None:
    """City match key of one value (`St. Albans` → `saint albans`), or None."""
    return _scalar(city_keys, value)


def _address(key: str, table: dict[str, str]) -> str:
    words = key.split(" ")
    last = len(words) - 1
    out = []
    for i, word in enumerate(words):
        if word == "st" and i < last and (i == 0 or any(ch.isdigit() for ch in words[i - 1])):
            out.append("saint")
        elif len(word) > 3 and word.endswith("str") and word not in table:
            out.append(word[:-3] + "strasse")  # German compounds: Hauptstr. = Hauptstraße
        else:
            out.append(table.get(word, word))
    return " ".join(out)


def address_keys(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Per row: normalised street line (or None) and an issue (`placeholder`)."""
    codes, uniques = factorize(as_text(values))
    keys = fold_keys(uniques)
    issue = _placeholder_issue(keys)
    table = address_abbreviations()
    out = np.array(
        [
            None if bad else _address(k, table)
            for k, bad in zip(keys.to_numpy(dtype=object), issue != None)
        ],
        dtype=object,
    )
    return broadcast(codes, out), broadcast(codes, issue)


def address_key(value: str | None) -> str | None:
    """Street-line match key of one value (`12 High St.` → `12 high street`), or None."""
    return _scalar(address_keys, value)


def _scalar(func, value: str | None) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    stripped = str(value).strip()
    if not stripped:
        return None
    return func(pd.Series([stripped], dtype="str"))[0][0]


__all__ = [
    "TRANSLATION_LANGUAGES",
    "address_abbreviations",
    "address_key",
    "address_keys",
    "city_key",
    "city_keys",
    "country_code",
    "country_codes",
    "postcode_key",
    "postcode_keys",
]
