"""Email addresses: trimmed, lower-cased, syntax-checked, placeholders removed, plus a match key.

Validity is `email-validator`'s syntax check (`check_deliverability=False`: no DNS at night).
That call costs ~35 µs, so most addresses never reach it: a conservative ASCII pattern, whose
matches email-validator always accepts unchanged, clears the ordinary ones in one vectorised
pass; only the rest (unicode, odd characters, long parts) go to the library, once per distinct
value. `tests/transforms/test_standardise.py` checks the two agree.

Placeholders (rule `placeholder`) are addresses typed to get past a form: a documented set of
whole addresses, local parts and domains (`PLACEHOLDER_EMAIL*`), plus two patterns: a local part
of one repeated character (`x@`, `aaa@`) and a local part equal to the domain's first label
(`test@test.com`, `none@none.com`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from transforms.standardise._text import (
    PLACEHOLDER_TEXT,
    as_text,
    broadcast,
    factorize,
    fold_keys,
)

#: Whole addresses that are never a person's (compared lower-cased).
PLACEHOLDER_EMAILS = frozenset(
    {
        "test@test.com",
        "none@none.com",
        "noemail@noemail.com",
        "no@email.com",
        "no@no.com",
        "na@na.com",
        "a@a.com",
        "a@b.com",
        "abc@abc.com",
        "x@x.com",
        "xx@xx.com",
        "xxx@xxx.com",
        "email@email.com",
        "name@domain.com",
        "user@domain.com",
        "someone@somewhere.com",
        "me@me.com",
    }
)

#: Local parts that mark a placeholder at any domain.
PLACEHOLDER_EMAIL_LOCAL_PARTS = frozenset(
    {
        "noemail",
        "no-email",
        "no_email",
        "no.email",
        "nomail",
        "no-mail",
        "none",
        "noreply",
        "no-reply",
        "donotreply",
        "do-not-reply",
        "dontreply",
        "test",
        "testing",
        "tester",
        "nobody",
        "noone",
        "no-one",
        "null",
        "nil",
        "na",
        "n.a",
        "unknown",
        "dummy",
        "fake",
        "invalid",
        "notprovided",
        "not-provided",
        "notgiven",
        "asdf",
        "qwerty",
        "sample",
        "example",
        "anonymous",
    }
)

#: Domains (and their subdomains) that only hold placeholders.
PLACEHOLDER_EMAIL_DOMAINS = frozenset(
    {
        "example.com",
        "example.org",
        "example.net",
        "example.co.uk",
        "test.com",
        "testing.com",
        "none.com",
        "noemail.com",
        "nomail.com",
        "no-email.com",
        "invalid.com",
        "fake.com",
        "dummy.com",
        "domain.com",
        "email.invalid",
    }
)

# Matches only addresses email-validator accepts as they are (ASCII dot-atom local part of common
# characters, hostname labels without "--", alphabetic TLD that is not special-use). RE2 syntax:
# it runs inside pyarrow.
_FAST_VALID = (
    r"[a-z0-9_%+\-]+(?:\.[a-z0-9_%+\-]+)*"
    r"@(?:[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?\.)+"
    r"(?:[a-z]{2,63})"
)
_SPECIAL_USE_TLDS = (".arpa", ".invalid", ".local", ".localhost", ".onion", ".test")
_GMAIL_DOMAINS = frozenset({"gmail.com", "googlemail.com"})
#: Text without an @ that means "no email" (folded), beyond `PLACEHOLDER_TEXT`.
_NO_EMAIL_TEXT = PLACEHOLDER_TEXT | {"no email", "noemail", "no mail", "nomail", "na", "no"}


def _validate_slow(address: str) -> str | None:
    from email_validator import EmailNotValidError, validate_email

    try:
        result = validate_email(address, check_deliverability=False)
    except EmailNotValidError:
        return None
    return result.normalized.lower()


def _placeholder_mask(emails: pd.Series) -> pd.Series:
    """Which (lower-cased, syntactically valid) addresses are placeholders."""
    local, domain = _split(emails)
    first_label = domain.str.replace(r"\..*$", "", regex=True)
    repeated = _one_repeated_char(local)
    by_domain = domain.isin(PLACEHOLDER_EMAIL_DOMAINS)
    for d in PLACEHOLDER_EMAIL_DOMAINS:
        by_domain |= domain.str.endswith("." + d)
    by_domain |= domain.str.endswith(".example")
    return (
        emails.isin(PLACEHOLDER_EMAILS)
        | local.isin(PLACEHOLDER_EMAIL_LOCAL_PARTS)
        | by_domain
        | repeated
        | (local == first_label)
    ).fillna(False)


def _split(emails: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Local part and domain (split at the last @) of addresses that contain an @."""
    emails = emails.astype("str")
    return (
        emails.str.replace(r"@[^@]*$", "", regex=True),
        emails.str.replace(r"^.*@", "", regex=True),
    )


# RE2 (pyarrow's regex engine) has no back-references: spell "one character repeated" out.
_ONE_REPEATED_CHAR = "(?:" + "|".join(f"{c}+" for c in "abcdefghijklmnopqrstuvwxyz0123456789") + ")"


def _one_repeated_char(local: pd.Series) -> pd.Series:
    return local.str.fullmatch(_ONE_REPEATED_CHAR).fillna(False).astype(bool)


def standardise_emails(values: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row: `email_std`, `email_key` and an issue (`invalid` / `placeholder`), or None.

    Works once per distinct trimmed value; see the module docstring for the rules.
    """
    codes, uniques = factorize(as_text(values))
    lowered = uniques.str.strip().str.lower()
    std = pd.Series(np.nan, index=lowered.index, dtype="str")
    issue = np.full(len(lowered), None, dtype=object)

    no_at = ~lowered.str.contains("@", regex=False).to_numpy(dtype=bool)
    text_placeholder = pd.Series(False, index=lowered.index)
    if no_at.any():
        text_placeholder[no_at] = (
            fold_keys(lowered[no_at]).fillna("").isin(_NO_EMAIL_TEXT).to_numpy(dtype=bool)
        )
    fast = (
        lowered.str.fullmatch(_FAST_VALID)
        & (lowered.str.len() <= 254)
        & (_split(lowered)[0].str.len() <= 64)
        & ~lowered.str.endswith(_SPECIAL_USE_TLDS)
    )
    std[fast] = lowered[fast]
    slow_idx = np.flatnonzero(~(fast | text_placeholder).to_numpy())
    if len(slow_idx):
        slow_values = lowered.iloc[slow_idx].to_numpy(dtype=object)
        std.iloc[slow_idx] = [_validate_slow(v) for v in slow_values]

    valid = std.notna().to_numpy()
    placeholder = text_placeholder.to_numpy() | (valid & _placeholder_mask(std).to_numpy())
    issue[~valid] = "invalid"
    issue[placeholder] = "placeholder"
    std[placeholder] = np.nan
    key = email_keys(std)
    return (
        broadcast(codes, std.to_numpy(dtype=object, na_value=None)),
        broadcast(codes, key.to_numpy(dtype=object, na_value=None)),
        broadcast(codes, issue),
    )


def email_keys(emails: pd.Series) -> pd.Series:
    """Match key of standardised emails: `+tag` removed everywhere; for gmail.com and
    googlemail.com also the dots of the local part, with googlemail.com read as gmail.com."""
    local, domain = _split(emails)
    local = local.str.replace(r"\+.*$", "", regex=True)
    gmail = domain.isin(_GMAIL_DOMAINS)
    local = local.where(~gmail, local.str.replace(".", "", regex=False))
    domain = domain.where(~gmail, "gmail.com")
    key = local + "@" + domain
    # "+tag@x" alone (an empty local part after the tag) keeps its original form.
    return key.where(local.str.len() > 0, emails)


__all__ = [
    "PLACEHOLDER_EMAILS",
    "PLACEHOLDER_EMAIL_DOMAINS",
    "PLACEHOLDER_EMAIL_LOCAL_PARTS",
    "email_keys",
    "standardise_emails",
]
