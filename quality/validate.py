"""Quality gates for one source: typed accepted rows, quarantined rows, named checks.

`validate_source(raw, canon, src, as_of=…)` parses the canonical frame into typed columns with
vectorised pandas, then lets Great Expectations evaluate every expectation on that typed frame
(ids present and unique, dates and amounts parsed, value sets, ranges) and on the raw frame
(row count, column set, and the source's own ``expectations:`` from config). Each failing row
found through GX's ``unexpected_index_list`` is quarantined under exactly one rule: the first
that fails, in this fixed order (`RULE_ORDER`):

1. ``missing_id``         the id column is empty
2. ``duplicate_id``       the id was already seen: the first occurrence is kept, later ones go
3. ``unparseable_date``   the required date (order_date / event_time / recorded_at) is empty or
                          not a date in ``date_format`` (else ISO 8601)
4. ``date_too_early``     an order_date / event_time before ``quality.min_date`` (a placeholder
                          such as 1900-01-01, not a real date; consents are kept: a withdrawal
                          with a placeholder date must still count)
5. ``unparseable_amount`` the order amount is empty or not a number
6. ``negative_amount``    the order amount is below zero
7. ``amount_too_large``   the order amount, in its own currency or converted, is above
                          ``quality.max_amount``
8. ``unknown_currency``   the currency is empty or not an ISO 4217 code (in a source that maps
                          one), or, with a reporting currency, has no rate on the order's date
9. ``invalid_status``     the order status (after ``value_map.status``) is not completed,
                          cancelled or returned
10. ``invalid_granted``   the consent ``granted`` value (after ``value_map.granted``) is not a
                          yes / no value
11. ``missing_purpose``   the consent purpose is empty
12. ``future_date``       the required date is later than the end of the day after ``as_of``
13. ``unknown_person``    ``person_record_id`` is empty (orders, consents) or not among the
                          accepted records of the person source (events may be anonymous)
14. declared expectations, in config order: rule = the expectation's name

so ``rows_in == rows_accepted + rows_quarantined`` always. Person sources are only checked for
their id (and declared expectations on the id column): a person is never dropped because an
optional field is bad; `field_findings` counts those problems after standardisation.

Declared expectations (``expectations:`` of a source) look like::

    - expectation: expect_column_values_to_match_regex
      kwargs: {column: order_id, regex: "^ORD-[0-9]+$"}
      on_failure: quarantine     # or warn; default quarantine, but warn for a person source's
                                 # non-id columns
      severity: warn             # or error (blocking); the check's severity
      name: order_id_format      # optional check name

``kwargs.column`` names a column of the source as read. Table-level expectations only report.

Normalisation on the way (documented because it decides what "valid" means): ids are trimmed;
``value_map`` is looked up on the trimmed value, exactly first, then ignoring case; status,
channel, event_type and purpose are then trimmed and lower-cased; currency upper-cased; an order
source that maps no status has every order ``completed``; amounts accept ``1,234.50`` thousands
separators; dates with a UTC offset are converted to UTC, naive ones are taken as UTC.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from quality.suites import (
    ExpectationConfigError,
    SuiteRun,
    build_expectation,
    run_suite,
)
from sources.config import SourceConfig
from transforms.money import Conversion, is_currency_code, lookup_rates

__all__ = [
    "CHECK_AMOUNTS_NON_NEGATIVE",
    "CHECK_AMOUNTS_PARSE",
    "CHECK_AMOUNTS_WITHIN_BOUND",
    "CHECK_COLUMNS_STABLE",
    "CHECK_COLUMNS_UNCHANGED",
    "CHECK_CURRENCIES_KNOWN",
    "CHECK_DATES_AFTER_FLOOR",
    "CHECK_DATES_NOT_FUTURE",
    "CHECK_DATES_PARSE",
    "CHECK_GRANTED_VALID",
    "CHECK_IDS_PRESENT",
    "CHECK_IDS_UNIQUE",
    "CHECK_PERSONS_KNOWN",
    "CHECK_PURPOSE_PRESENT",
    "CHECK_ROWS_ACCEPTED",
    "CHECK_ROWS_CONSERVED",
    "CHECK_ROWS_PRESENT",
    "CHECK_ROW_COUNT_STABLE",
    "CHECK_STATUS_VALID",
    "DEFAULT_MAX_AMOUNT",
    "DEFAULT_MIN_DATE",
    "FALSE_VALUES",
    "ORDER_STATUSES",
    "RULE_ORDER",
    "SEVERITY_ERROR",
    "SEVERITY_WARN",
    "TRUE_VALUES",
    "CheckOutcome",
    "ExpectationConfigError",
    "QualityGateError",
    "ValidationOutcome",
    "check_names",
    "field_findings",
    "validate_source",
]

TEXT = pd.StringDtype()

SEVERITY_ERROR = "ERROR"  # blocking: downstream would be wrong
SEVERITY_WARN = "WARN"  # a human should look; rows were quarantined, the run goes on

# Row-level rules, in the order that decides which rule a row is quarantined under.
RULE_MISSING_ID = "missing_id"
RULE_DUPLICATE_ID = "duplicate_id"
RULE_UNPARSEABLE_DATE = "unparseable_date"
RULE_DATE_TOO_EARLY = "date_too_early"
RULE_UNPARSEABLE_AMOUNT = "unparseable_amount"
RULE_NEGATIVE_AMOUNT = "negative_amount"
RULE_AMOUNT_TOO_LARGE = "amount_too_large"
RULE_UNKNOWN_CURRENCY = "unknown_currency"
RULE_INVALID_STATUS = "invalid_status"
RULE_INVALID_GRANTED = "invalid_granted"
RULE_MISSING_PURPOSE = "missing_purpose"
RULE_FUTURE_DATE = "future_date"
RULE_UNKNOWN_PERSON = "unknown_person"
RULE_ORDER = (
    RULE_MISSING_ID,
    RULE_DUPLICATE_ID,
    RULE_UNPARSEABLE_DATE,
    RULE_DATE_TOO_EARLY,
    RULE_UNPARSEABLE_AMOUNT,
    RULE_NEGATIVE_AMOUNT,
    RULE_AMOUNT_TOO_LARGE,
    RULE_UNKNOWN_CURRENCY,
    RULE_INVALID_STATUS,
    RULE_INVALID_GRANTED,
    RULE_MISSING_PURPOSE,
    RULE_FUTURE_DATE,
    RULE_UNKNOWN_PERSON,
)

# Check names (Dagster asset check names). File-level checks are blocking.
CHECK_ROWS_PRESENT = "rows_present"
CHECK_ROW_COUNT_STABLE = "row_count_stable"
CHECK_COLUMNS_STABLE = "columns_stable"
CHECK_COLUMNS_UNCHANGED = "columns_unchanged"
CHECK_ROWS_ACCEPTED = "rows_accepted"
CHECK_ROWS_CONSERVED = "rows_conserved"
# Row-level checks: failing rows are quarantined, the check warns.
CHECK_IDS_PRESENT = "ids_present"
CHECK_IDS_UNIQUE = "ids_unique"
CHECK_DATES_PARSE = "dates_parse"
CHECK_DATES_AFTER_FLOOR = "dates_after_floor"
CHECK_AMOUNTS_PARSE = "amounts_parse"
CHECK_AMOUNTS_NON_NEGATIVE = "amounts_non_negative"
CHECK_AMOUNTS_WITHIN_BOUND = "amounts_within_bound"
CHECK_CURRENCIES_KNOWN = "currencies_known"
CHECK_STATUS_VALID = "status_valid"
CHECK_GRANTED_VALID = "granted_valid"
CHECK_PURPOSE_PRESENT = "purpose_present"
CHECK_DATES_NOT_FUTURE = "dates_not_future"
CHECK_PERSONS_KNOWN = "persons_known"

# GX suite names are "<source>.<suite>".
SUITE_RULES = "rules"
SUITE_FILE = "file"

ORDER_STATUSES = ("completed", "cancelled", "returned")
TRUE_VALUES = frozenset(
    {"true", "t", "yes", "y", "1", "on", "granted", "opt_in", "opt-in", "opted_in", "subscribed"}
)
FALSE_VALUES = frozenset(
    {
        "false",
        "f",
        "no",
        "n",
        "0",
        "off",
        "denied",
        "withdrawn",
        "revoked",
        "opt_out",
        "opt-out",
        "opted_out",
        "unsubscribed",
    }
)

#: The required date field of each kind that has one.
DATE_FIELD = {"order": "order_date", "event": "event_time", "consent": "recorded_at"}
#: Kinds whose date must not lie before `min_date` (a consent with a placeholder date is kept:
#: dropping a withdrawal would be worse than misdating it).
FLOORED_KINDS = ("order", "event")

#: Defaults of `quality.max_amount` and `quality.min_date` (sources.config.QualityConfig).
DEFAULT_MAX_AMOUNT = 1_000_000_000.0
DEFAULT_MIN_DATE = date(1990, 1, 1)

#: Typed accepted columns by kind (docs/architecture.md §3); person keeps the canonical frame.
ACCEPTED_COLUMNS = {
    "order": (
        "source",
        "source_record_id",
        "_row_number",
        "person_record_id",
        "order_date",
        "amount",
        "currency",
        "amount_reporting",
        "reporting_currency",
        "fx_rate",
        "status",
        "channel",
        "attributes",
    ),
    "event": (
        "source",
        "source_record_id",
        "_row_number",
        "person_record_id",
        "session_id",
        "event_time",
        "event_type",
        "channel",
        "attributes",
    ),
    "consent": (
        "source",
        "source_record_id",
        "_row_number",
        "person_record_id",
        "purpose",
        "granted",
        "recorded_at",
    ),
}

QUARANTINE_COLUMNS = ("source", "row_number", "source_record_id", "rule", "detail", "raw")
FINDING_COLUMNS = ("field", "rule", "count")

_MAX_SHOWN = 40


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckOutcome:
    """One named quality check: reported as a Dagster asset check by the pipeline."""

    name: str
    passed: bool
    severity: str  # SEVERITY_ERROR (blocking) or SEVERITY_WARN
    description: str
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def blocking(self) -> bool:
        return self.severity == SEVERITY_ERROR and not self.passed


class QualityGateError(Exception):
    """Blocking checks failed for a source; ``str()`` is one line naming source and checks."""

    def __init__(self, source: str, failures: Sequence[CheckOutcome]) -> None:
        self.source = source
        self.failures = list(failures)
        reasons = "; ".join(f"{c.name}: {c.metadata.get('reason', c.description)}" for c in failures)
        super().__init__(f"source {source}: blocking quality check failed: {reasons}")


@dataclass
class ValidationOutcome:
    """Everything `validate_source` decided about one source's rows.

    ``accepted``: typed frame (order / event / consent, docs/architecture.md §3) or, for a person
    source, the canonical frame without its quarantined rows (for
    ``transforms.standardise.standardise_persons``). ``quarantine``: one row per rejected source
    row (`QUARANTINE_COLUMNS`; ``raw`` is the row exactly as read, as JSON text). ``checks``:
    named `CheckOutcome`s. ``findings``: field-level problems (field, rule, count) of kept rows.
    ``gx_results``: the Great Expectations suite validation results (for Data Docs).
    """

    source: str
    kind: str
    accepted: pd.DataFrame
    quarantine: pd.DataFrame
    checks: list[CheckOutcome]
    findings: pd.DataFrame
    rows_in: int
    rows_accepted: int
    rows_quarantined: int
    quarantine_by_rule: dict[str, int]
    gx_results: list[Any] = field(default_factory=list, repr=False)

    @property
    def blocking_failures(self) -> list[CheckOutcome]:
        """Failed checks of severity ERROR."""
        return [c for c in self.checks if c.blocking]

    @property
    def passed(self) -> bool:
        return not self.blocking_failures

    def check(self, name: str) -> CheckOutcome:
        """The check called `name` (KeyError if this source has none of that name)."""
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(name)

    def raise_for_blocking(self) -> None:
        """Raise `QualityGateError` if any blocking check failed."""
        if self.blocking_failures:
            raise QualityGateError(self.source, self.blocking_failures)


# --------------------------------------------------------------------------------------------
# Normalisation helpers (vectorised; per-value work only on distinct values)
# --------------------------------------------------------------------------------------------


def _map_distinct(series: pd.Series, fn: Callable[[str], Any]) -> np.ndarray:
    """Apply `fn` to each distinct non-null value; return an object array aligned with `series`."""
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    mapped = np.empty(len(uniques), dtype=object)
    mapped[:] = [fn(u) for u in uniques]
    out = np.full(len(series), None, dtype=object)
    valid = codes >= 0
    out[valid] = mapped[codes[valid]]
    return out


def _key_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).strip()


def _lookup(mapping: dict[str, Any] | None) -> Callable[[str], Any]:
    """A value -> mapped value function: exact (trimmed) match first, then ignoring case."""
    exact = {_key_text(k): v for k, v in (mapping or {}).items()}
    folded = {k.casefold(): v for k, v in exact.items()}

    def look(value: str) -> Any:
        value = value.strip()
        if value in exact:
            return exact[value]
        return folded.get(value.casefold(), value)

    return look


def _empty_to_none(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value).strip()
    return text or None


def _codes(series: pd.Series, mapping: dict[str, Any] | None, *, upper: bool = False) -> pd.Series:
    """Trim, apply the value map, then case-fold a low-cardinality code column."""
    look = _lookup(mapping)

    def norm(value: str) -> str | None:
        text = _empty_to_none(look(value))
        if text is None:
            return None
        return text.upper() if upper else text.lower()

    return pd.Series(pd.array(_map_distinct(series, norm), dtype=TEXT), index=series.index)


def _granted(series: pd.Series, mapping: dict[str, Any] | None) -> pd.Series:
    look = _lookup(mapping)

    def norm(value: str) -> bool | None:
        mapped = look(value)
        if isinstance(mapped, bool):
            return mapped
        text = _empty_to_none(mapped)
        if text is None:
            return None
        text = text.lower()
        if text in TRUE_VALUES:
            return True
        if text in FALSE_VALUES:
            return False
        return None

    return pd.Series(pd.array(_map_distinct(series, norm), dtype="boolean"), index=series.index)


def _is_in(values: pd.Series, allowed: set[str]) -> np.ndarray:
    """Vectorised membership test (pandas' isin on arrow strings is per-value Python)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not allowed:
        return np.zeros(len(values), dtype=bool)
    array = pa.array(values.astype(TEXT), type=pa.string(), from_pandas=True)
    try:
        value_set = pa.array(list(allowed), type=pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # ids given as numbers: compare as text
        value_set = pa.array([str(v) for v in allowed], type=pa.string())
    hit = pc.fill_null(pc.is_in(array, value_set=value_set), False)
    return hit.to_numpy(zero_copy_only=False).astype(bool)


def parse_datetimes(values: pd.Series, date_format: str | None) -> pd.Series:
    """Text -> naive UTC timestamps (NaT when empty or unparseable).

    `date_format` (strftime) is tried first; values it does not fit are tried as ISO 8601, which
    is unambiguous, so a source mixing ``05/01/2024`` and ``2024-01-05`` still parses.
    """
    text = values.astype(TEXT).str.strip()
    text = text.mask(text == "")
    if date_format:
        parsed = pd.to_datetime(text, format=date_format, errors="coerce", utc=True)
        retry = parsed.isna() & text.notna()
        if retry.any():
            parsed = parsed.copy()
            parsed[retry] = pd.to_datetime(text[retry], format="ISO8601", errors="coerce", utc=True)
    else:
        parsed = pd.to_datetime(text, format="ISO8601", errors="coerce", utc=True)
    return parsed.dt.tz_localize(None)


_THOUSANDS = r"^[+-]?[0-9]{1,3}(,[0-9]{3})+(\.[0-9]+)?$"
_NUMBER = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"


def parse_amounts(values: pd.Series) -> pd.Series:
    """Text -> float64 (NaN when empty, not a number, or not finite).

    Plain decimals and exponents are accepted, as is ``1,234.50`` (comma thousands separators);
    currency symbols, decimal commas, ``NaN`` and ``inf`` are not.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    text = pc.utf8_trim_whitespace(pa.array(values.astype(TEXT), type=pa.string(), from_pandas=True))
    grouped = pc.fill_null(pc.match_substring_regex(text, _THOUSANDS), False)
    text = pc.if_else(grouped, pc.replace_substring(text, ",", ""), text)
    valid = pc.fill_null(pc.match_substring_regex(text, _NUMBER), False)
    numbers = pc.cast(pc.if_else(valid, text, pa.scalar(None, pa.string())), pa.float64())
    out = numbers.to_numpy(zero_copy_only=False).astype("float64")
    out[~np.isfinite(out)] = np.nan
    return pd.Series(out, index=values.index)


# --------------------------------------------------------------------------------------------
# Building the typed frame and the expectations
# --------------------------------------------------------------------------------------------


@dataclass
class _RowCheck:
    """A row-level check: GX expectations whose failing rows are quarantined under `rule`."""

    name: str
    rule: str | None  # None: report only
    description: str
    severity: str = SEVERITY_WARN
    expectations: list[Any] = field(default_factory=list)
    skipped: str | None = None
    suite: str = "rules"  # SUITE_RULES or SUITE_FILE
    detail: Callable[[np.ndarray], list[str]] | None = None


def _show(value: Any) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "empty"
    text = str(value)
    if len(text) > _MAX_SHOWN:
        text = text[: _MAX_SHOWN - 1] + "…"
    return repr(text)


def _col(canon: pd.DataFrame, name: str) -> pd.Series:
    if name in canon.columns:
        return canon[name].astype(TEXT)
    return pd.Series(pd.array([None] * len(canon), dtype=TEXT), index=canon.index)


def _expect(name: str, check: str, **kwargs: Any) -> Any:
    return build_expectation(name, kwargs, {"check": check}, where=f"check {check}")


def _typed_frame(
    canon: pd.DataFrame,
    src: SourceConfig,
    as_of: date,
    known_person_ids: set[str] | None,
    conversion: Conversion | None = None,
    max_amount: float = DEFAULT_MAX_AMOUNT,
    min_date: date = DEFAULT_MIN_DATE,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(typed frame for every row, GX frame of the columns the expectations look at)."""
    kind = src.kind
    vm = src.value_map
    typed = pd.DataFrame(index=canon.index)
    typed["source"] = pd.array([src.name] * len(canon), dtype=TEXT)
    typed["source_record_id"] = _col(canon, "source_record_id")
    typed["_row_number"] = canon["_row_number"].astype("int64")
    gx_frame = pd.DataFrame({"source_record_id": typed["source_record_id"]}, index=canon.index)
    if kind == "person":
        return typed, gx_frame

    pid = _col(canon, "person_record_id")
    typed["person_record_id"] = pid
    gx_frame["person_record_id"] = pid
    if known_person_ids is not None:
        known = _is_in(pid, known_person_ids)
        if kind == "event":
            known |= pid.isna().to_numpy()
        gx_frame["person_known"] = known

    date_field = DATE_FIELD[kind]
    when = parse_datetimes(_col(canon, date_field), src.date_format)
    typed[date_field] = when
    gx_frame[date_field] = when
    as_of_ts = pd.Timestamp(as_of)
    gx_frame[f"{date_field}_days_after_as_of"] = (when - as_of_ts) / pd.Timedelta(days=1)
    if kind in FLOORED_KINDS:
        gx_frame[f"{date_field}_days_after_floor"] = (when - pd.Timestamp(min_date)) / pd.Timedelta(days=1)

    if kind == "order":
        amount = parse_amounts(_col(canon, "amount"))
        typed["amount"] = amount
        gx_frame["amount"] = amount
        currency = _codes(_col(canon, "currency"), vm.get("currency"), upper=True)
        typed["currency"] = currency
        gx_frame["currency"] = currency
        gx_frame["currency_iso"] = _map_distinct(currency, is_currency_code).astype(bool) | currency.isna().to_numpy()
        if conversion is not None:
            looked = lookup_rates(conversion, currency, when, amount)
            typed["amount_reporting"] = looked.amount_reporting
            typed["reporting_currency"] = pd.Series(
                pd.array([conversion.reporting] * len(canon), dtype=TEXT), index=canon.index
            )
            typed["fx_rate"] = looked.rate
            gx_frame["fx_rate"] = looked.rate
            converted = looked.amount_reporting.to_numpy()
        else:
            typed["amount_reporting"] = pd.Series(np.nan, index=canon.index, dtype="float64")
            typed["reporting_currency"] = pd.Series(pd.array([None] * len(canon), dtype=TEXT), index=canon.index)
            typed["fx_rate"] = pd.Series(np.nan, index=canon.index, dtype="float64")
            converted = np.full(len(canon), np.nan)
        with np.errstate(invalid="ignore"):
            too_large = (amount.to_numpy() > max_amount) | (converted > max_amount)
        gx_frame["amount_too_large"] = too_large
        if src.mapped("status"):
            status = _codes(_col(canon, "status"), vm.get("status"))
        else:
            status = pd.Series(pd.array(["completed"] * len(canon), dtype=TEXT), index=canon.index)
        typed["status"] = status
        gx_frame["status"] = status
        typed["channel"] = _codes(_col(canon, "channel"), vm.get("channel"))
        typed["attributes"] = _col(canon, "attributes")
    elif kind == "event":
        session = _col(canon, "session_id").str.strip()
        typed["session_id"] = session.mask(session == "")
        typed["event_type"] = _codes(_col(canon, "event_type"), vm.get("event_type"))
        typed["channel"] = _codes(_col(canon, "channel"), vm.get("channel"))
        typed["attributes"] = _col(canon, "attributes")
    elif kind == "consent":
        typed["purpose"] = _codes(_col(canon, "purpose"), vm.get("purpose"))
        gx_frame["purpose"] = typed["purpose"]
        typed["granted"] = _granted(_col(canon, "granted"), vm.get("granted"))
        gx_frame["granted"] = typed["granted"]
    return typed, gx_frame


def _row_checks(
    canon: pd.DataFrame,
    typed: pd.DataFrame,
    src: SourceConfig,
    as_of: date,
    known_person_ids: set[str] | None,
    conversion: Conversion | None = None,
    max_amount: float = DEFAULT_MAX_AMOUNT,
    min_date: date = DEFAULT_MIN_DATE,
) -> list[_RowCheck]:
    kind = src.kind
    ids = typed["source_record_id"]
    checks = [
        _RowCheck(
            CHECK_IDS_PRESENT,
            RULE_MISSING_ID,
            f"every row has a value in the id column {src.id!r}",
            expectations=[
                _expect("expect_column_values_to_not_be_null", CHECK_IDS_PRESENT, column="source_record_id")
            ],
            detail=lambda idx: [f"id column {src.id!r} is empty"] * len(idx),
        ),
    ]

    def dup_detail(idx: np.ndarray) -> list[str]:
        first = (
            pd.DataFrame({"id": ids, "row": typed["_row_number"]})
            .dropna(subset=["id"])
            .drop_duplicates("id")
            .set_index("id")["row"]
        )
        vals = ids.iloc[idx].tolist()
        return [
            f"id {_show(v)} already on row {int(first[v])}: the first occurrence is kept"
            for v in vals
        ]

    checks.append(
        _RowCheck(
            CHECK_IDS_UNIQUE,
            RULE_DUPLICATE_ID,
            f"ids in {src.id!r} are unique (later duplicates are quarantined, the first kept)",
            expectations=[
                _expect("expect_column_values_to_be_unique", CHECK_IDS_UNIQUE, column="source_record_id")
            ],
            detail=dup_detail,
        )
    )
    if kind == "person":
        return checks

    date_field = DATE_FIELD[kind]
    date_mapped = src.mapped(date_field)
    raw_dates = _col(canon, date_field)
    fmt_text = f"format {src.date_format!r} or ISO 8601" if src.date_format else "ISO 8601"

    def date_detail(idx: np.ndarray) -> list[str]:
        if not date_mapped:
            return [f"{date_field} is not mapped for this source (`columns.{date_field}`)"] * len(idx)
        return [
            f"{date_field} is empty" if v is None or pd.isna(v) else f"{date_field} {_show(v)} is not a date ({fmt_text})"
            for v in raw_dates.iloc[idx].tolist()
        ]

    checks.append(
        _RowCheck(
            CHECK_DATES_PARSE,
            RULE_UNPARSEABLE_DATE,
            f"{date_field} is present and parses as a date ({fmt_text})",
            expectations=[_expect("expect_column_values_to_not_be_null", CHECK_DATES_PARSE, column=date_field)],
            detail=date_detail,
        )
    )
    if kind in FLOORED_KINDS:
        floor_text = min_date.isoformat()
        parsed = typed[date_field]
        checks.append(
            _RowCheck(
                CHECK_DATES_AFTER_FLOOR,
                RULE_DATE_TOO_EARLY,
                f"{date_field} is on or after quality.min_date ({floor_text}); earlier dates are "
                "placeholders such as 1900-01-01",
                expectations=[
                    _expect(
                        "expect_column_values_to_be_between",
                        CHECK_DATES_AFTER_FLOOR,
                        column=f"{date_field}_days_after_floor",
                        min_value=0,
                    )
                ],
                detail=lambda idx: [
                    f"{date_field} {v.date().isoformat()} is before quality.min_date {floor_text} "
                    "(a placeholder, not a real date)"
                    for v in parsed.iloc[idx].tolist()
                ],
            )
        )

    if kind == "order":
        raw_amount = _col(canon, "amount")
        amounts = typed["amount"]
        checks.append(
            _RowCheck(
                CHECK_AMOUNTS_PARSE,
                RULE_UNPARSEABLE_AMOUNT,
                "amount is present and a number",
                expectations=[_expect("expect_column_values_to_not_be_null", CHECK_AMOUNTS_PARSE, column="amount")],
                detail=lambda idx: [
                    "amount is empty" if v is None or pd.isna(v) else f"amount {_show(v)} is not a number"
                    for v in raw_amount.iloc[idx].tolist()
                ],
            )
        )
        checks.append(
            _RowCheck(
                CHECK_AMOUNTS_NON_NEGATIVE,
                RULE_NEGATIVE_AMOUNT,
                "amount is zero or more (refunds are orders with status returned)",
                expectations=[
                    _expect(
                        "expect_column_values_to_be_between",
                        CHECK_AMOUNTS_NON_NEGATIVE,
                        column="amount",
                        min_value=0,
                    )
                ],
                detail=lambda idx: [f"amount {a:g} is negative" for a in amounts.iloc[idx].tolist()],
            )
        )
        bound_text = f"{max_amount:,.0f}" if max_amount >= 1 else f"{max_amount:g}"
        converted = typed["amount_reporting"]
        currencies = typed["currency"]

        def bound_detail(idx: np.ndarray) -> list[str]:
            out = []
            for a, c, r in zip(amounts.iloc[idx].tolist(), currencies.iloc[idx].tolist(), converted.iloc[idx].tolist()):
                own = f"amount {a:g}" + ("" if c is None or pd.isna(c) else f" {c}")
                if a > max_amount or conversion is None or pd.isna(r):
                    out.append(f"{own} is above quality.max_amount ({bound_text})")
                else:
                    out.append(f"{own} is {r:g} {conversion.reporting}, above quality.max_amount ({bound_text})")
            return out

        checks.append(
            _RowCheck(
                CHECK_AMOUNTS_WITHIN_BOUND,
                RULE_AMOUNT_TOO_LARGE,
                f"amount is at most quality.max_amount ({bound_text}), in its own currency and converted",
                expectations=[
                    _expect(
                        "expect_column_values_to_be_in_set",
                        CHECK_AMOUNTS_WITHIN_BOUND,
                        column="amount_too_large",
                        value_set=[False],
                    )
                ],
                detail=bound_detail,
            )
        )
        rc = _RowCheck(
            CHECK_CURRENCIES_KNOWN,
            RULE_UNKNOWN_CURRENCY,
            (
                f"currency is present and has a rate into {conversion.reporting} on the order date "
                "(currency.rates, currency.rates_file)"
                if conversion is not None
                else "currency, where the source maps one, is present and an ISO 4217 code"
            ),
        )
        if conversion is None and not src.mapped("currency"):
            rc.skipped = "currency is not mapped and no reporting currency is set: amounts have no named currency"
        elif conversion is None:
            rc.expectations = [
                _expect("expect_column_values_to_not_be_null", CHECK_CURRENCIES_KNOWN, column="currency"),
                _expect(
                    "expect_column_values_to_be_in_set", CHECK_CURRENCIES_KNOWN, column="currency_iso", value_set=[True]
                ),
            ]
            rc.detail = lambda idx: [
                "currency is empty"
                if v is None or pd.isna(v)
                else f"currency {_show(v)} is not an ISO 4217 code (map it in value_map.currency)"
                for v in currencies.iloc[idx].tolist()
            ]
        else:
            rc.expectations = [
                _expect("expect_column_values_to_not_be_null", CHECK_CURRENCIES_KNOWN, column="fx_rate"),
            ]
            known = ", ".join(conversion.currencies)
            order_dates = typed[date_field]
            mapped_currency = src.mapped("currency")

            def rate_detail(idx: np.ndarray) -> list[str]:
                out = []
                for v, when in zip(currencies.iloc[idx].tolist(), order_dates.iloc[idx].tolist()):
                    if v is None or pd.isna(v):
                        out.append(
                            "currency is empty"
                            if mapped_currency
                            else "currency is not mapped for this source (columns.currency or "
                            f"constants.currency), so it cannot be converted into {conversion.reporting}"
                        )
                        continue
                    first = conversion.first_dated(v)
                    if first is not None and not pd.isna(when):
                        out.append(
                            f"currency {_show(v)} has no rate into {conversion.reporting} on or before "
                            f"{when.date().isoformat()} (its first dated rate is for {first.isoformat()})"
                        )
                    else:
                        out.append(f"currency {_show(v)} has no rate into {conversion.reporting} (rates for: {known})")
                return out

            rc.detail = rate_detail
        checks.append(rc)
        status_raw = _col(canon, "status")
        rc = _RowCheck(
            CHECK_STATUS_VALID,
            RULE_INVALID_STATUS,
            "status is one of completed, cancelled, returned (after value_map.status)",
        )
        if not src.mapped("status"):
            rc.skipped = "status is not mapped: every order counts as completed"
        else:
            rc.expectations = [
                _expect("expect_column_values_to_not_be_null", CHECK_STATUS_VALID, column="status"),
                _expect(
                    "expect_column_values_to_be_in_set",
                    CHECK_STATUS_VALID,
                    column="status",
                    value_set=list(ORDER_STATUSES),
                ),
            ]
            rc.detail = lambda idx: [
                "status is empty"
                if v is None or pd.isna(v)
                else f"status {_show(v)} is not completed, cancelled or returned (map it in value_map.status)"
                for v in status_raw.iloc[idx].tolist()
            ]
        checks.append(rc)

    if kind == "consent":
        granted_raw = _col(canon, "granted")
        checks.append(
            _RowCheck(
                CHECK_GRANTED_VALID,
                RULE_INVALID_GRANTED,
                "granted is a yes / no value (after value_map.granted)",
                expectations=[_expect("expect_column_values_to_not_be_null", CHECK_GRANTED_VALID, column="granted")],
                detail=lambda idx: [
                    "granted is empty"
                    if v is None or pd.isna(v)
                    else f"granted {_show(v)} is not a yes / no value (map it in value_map.granted)"
                    for v in granted_raw.iloc[idx].tolist()
                ],
            )
        )
        checks.append(
            _RowCheck(
                CHECK_PURPOSE_PRESENT,
                RULE_MISSING_PURPOSE,
                "purpose is present",
                expectations=[_expect("expect_column_values_to_not_be_null", CHECK_PURPOSE_PRESENT, column="purpose")],
                detail=lambda idx: ["purpose is empty"] * len(idx),
            )
        )

    limit = as_of.toordinal() + 1
    limit_text = date.fromordinal(limit).isoformat()
    dates = typed[date_field]
    checks.append(
        _RowCheck(
            CHECK_DATES_NOT_FUTURE,
            RULE_FUTURE_DATE,
            f"{date_field} is no later than the day after as_of ({as_of.isoformat()})",
            expectations=[
                _expect(
                    "expect_column_values_to_be_between",
                    CHECK_DATES_NOT_FUTURE,
                    column=f"{date_field}_days_after_as_of",
                    max_value=2,
                    strict_max=True,
                )
            ],
            detail=lambda idx: [
                f"{date_field} {v.isoformat()} is after {limit_text} (as_of {as_of.isoformat()} + 1 day)"
                for v in dates.iloc[idx].tolist()
            ],
        )
    )

    pids = typed["person_record_id"]
    person_source = src.person.source if src.person else "?"
    rc = _RowCheck(
        CHECK_PERSONS_KNOWN,
        RULE_UNKNOWN_PERSON,
        f"{src.person.key if src.person else 'person key'} refers to an accepted record of "
        f"source {person_source}" + (" (empty = anonymous, allowed)" if kind == "event" else ""),
    )
    if kind != "event":
        rc.expectations.append(
            _expect("expect_column_values_to_not_be_null", CHECK_PERSONS_KNOWN, column="person_record_id")
        )
    if known_person_ids is not None:
        rc.expectations.append(
            _expect(
                "expect_column_values_to_be_in_set",
                CHECK_PERSONS_KNOWN,
                column="person_known",
                value_set=[True],
            )
        )
    if not rc.expectations:
        rc.skipped = "no known person ids given"
    rc.detail = lambda idx: [
        "person_record_id is empty"
        if v is None or pd.isna(v)
        else f"person_record_id {_show(v)} is not an accepted record of source {person_source}"
        for v in pids.iloc[idx].tolist()
    ]
    checks.append(rc)
    return checks


@dataclass(frozen=True)
class _Declared:
    """One ``expectations:`` entry of a source, checked for shape (GX not yet involved)."""

    where: str
    expectation: str
    kwargs: dict[str, Any]
    check: str
    rule: str | None
    severity: str
    description: str


def _declared_specs(src: SourceConfig) -> list[_Declared]:
    out: list[_Declared] = []
    taken: set[str] = set()
    for i, entry in enumerate(src.expectations):
        where = f"source {src.name}: expectations[{i}]"
        if not isinstance(entry, dict):
            raise ExpectationConfigError(
                f"{where}: expected a mapping with `expectation` and `kwargs`"
            )
        name = str(entry.get("expectation") or entry.get("type") or "")
        if not name:
            raise ExpectationConfigError(
                f"{where}: `expectation` (the Great Expectations expectation name) is missing"
            )
        kwargs = entry.get("kwargs") or {}
        if not isinstance(kwargs, dict):
            raise ExpectationConfigError(f"{where}: `kwargs` must be a mapping")
        column = kwargs.get("column")
        on_failure = entry.get("on_failure")
        if on_failure is None:
            # A person is never dropped for a bad optional field: only the id may quarantine.
            on_failure = "warn" if src.kind == "person" and column != src.id else "quarantine"
        if on_failure not in ("quarantine", "warn"):
            raise ExpectationConfigError(f"{where}: on_failure must be quarantine or warn")
        severity = str(entry.get("severity", "warn")).upper()
        if severity not in (SEVERITY_ERROR, SEVERITY_WARN):
            raise ExpectationConfigError(f"{where}: severity must be warn or error")
        if entry.get("name"):
            base = str(entry["name"])
        else:
            short = name.removeprefix("expect_")
            base = f"declared_{short}_{column}" if column is not None else f"declared_{short}"
        check = "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in base).strip("_")
        check = check or f"declared_{i}"
        candidate, k = check, 2
        while candidate in taken:
            candidate, k = f"{check}_{k}", k + 1
        taken.add(candidate)
        target = f" on column {column!r}" if column is not None else ""
        out.append(
            _Declared(
                where=where,
                expectation=name,
                kwargs=dict(kwargs),
                check=candidate,
                rule=name if on_failure == "quarantine" else None,
                severity=severity,
                description=str(entry.get("description") or f"declared in config: {name}{target}"),
            )
        )
    return out


def _declared_checks(src: SourceConfig, raw_columns: Sequence[str]) -> list[_RowCheck]:
    """The source's own ``expectations:`` entries as GX expectations on the raw frame."""
    out: list[_RowCheck] = []
    for spec in _declared_specs(src):
        column = spec.kwargs.get("column")
        if column is not None and column not in raw_columns:
            raise ExpectationConfigError(
                f"{spec.where}: column {column!r} is not a column of the source "
                f"(columns: {', '.join(map(repr, raw_columns[:12]))})"
            )
        meta = {"check": spec.check}
        expectation = build_expectation(spec.expectation, spec.kwargs, meta, where=spec.where)
        target = f" on column {column!r}" if column is not None else ""
        message = f"failed {spec.expectation}{target}"
        out.append(
            _RowCheck(
                spec.check,
                spec.rule,
                spec.description,
                severity=spec.severity,
                expectations=[expectation],
                suite=SUITE_FILE,
                detail=(lambda idx, m=message: [m] * len(idx)),
            )
        )
    return out


def check_names(src: SourceConfig) -> list[str]:
    """Names of the checks `validate_source` reports for `src`, known before any data is read.

    Dagster needs asset check names at definition time; a check that does not apply on a given
    night (no previous run to compare with) is still reported, as passed with a ``skipped`` note.
    """
    file_level = [CHECK_ROWS_PRESENT, CHECK_ROW_COUNT_STABLE, CHECK_COLUMNS_STABLE, CHECK_COLUMNS_UNCHANGED]
    rows = [CHECK_IDS_PRESENT, CHECK_IDS_UNIQUE]
    if src.kind != "person":
        rows.append(CHECK_DATES_PARSE)
    if src.kind in FLOORED_KINDS:
        rows.append(CHECK_DATES_AFTER_FLOOR)
    if src.kind == "order":
        rows += [
            CHECK_AMOUNTS_PARSE,
            CHECK_AMOUNTS_NON_NEGATIVE,
            CHECK_AMOUNTS_WITHIN_BOUND,
            CHECK_CURRENCIES_KNOWN,
            CHECK_STATUS_VALID,
        ]
    if src.kind == "consent":
        rows += [CHECK_GRANTED_VALID, CHECK_PURPOSE_PRESENT]
    if src.kind != "person":
        rows += [CHECK_DATES_NOT_FUTURE, CHECK_PERSONS_KNOWN]
    declared = [d.check for d in _declared_specs(src)]
    return file_level + rows + declared + [CHECK_ROWS_ACCEPTED, CHECK_ROWS_CONSERVED]


# --------------------------------------------------------------------------------------------
# The gate
# --------------------------------------------------------------------------------------------


def _file_checks(
    raw_columns: list[str],
    previous_rows: int | None,
    previous_columns: Sequence[str] | None,
    max_row_drop: float,
) -> list[_RowCheck]:
    checks = [
        _RowCheck(
            CHECK_ROWS_PRESENT,
            None,
            "the source has at least one data row",
            severity=SEVERITY_ERROR,
            suite=SUITE_FILE,
            expectations=[_expect("expect_table_row_count_to_be_between", CHECK_ROWS_PRESENT, min_value=1)],
        )
    ]
    rc = _RowCheck(
        CHECK_ROW_COUNT_STABLE,
        None,
        f"rows did not drop by more than {max_row_drop:.0%} since the previous run",
        severity=SEVERITY_ERROR,
        suite=SUITE_FILE,
    )
    if previous_rows is None:
        rc.skipped = "no previous run to compare with"
    else:
        floor = max(0, math.ceil(previous_rows * (1 - max_row_drop) - 1e-9))
        rc.expectations = [
            _expect("expect_table_row_count_to_be_between", CHECK_ROW_COUNT_STABLE, min_value=floor)
        ]
    checks.append(rc)
    for name, exact, severity, text in (
        (CHECK_COLUMNS_STABLE, False, SEVERITY_ERROR, "no column of the previous run is missing"),
        (CHECK_COLUMNS_UNCHANGED, True, SEVERITY_WARN, "the columns are the same as in the previous run"),
    ):
        rc = _RowCheck(name, None, text, severity=severity, suite=SUITE_FILE)
        if previous_columns is None:
            rc.skipped = "no previous run to compare with"
        else:
            rc.expectations = [
                _expect(
                    "expect_table_columns_to_match_set",
                    name,
                    column_set=[str(c) for c in previous_columns if c != "_row_number"],
                    exact_match=exact,
                )
            ]
        checks.append(rc)
    return checks


def _raw_json(raw: pd.DataFrame, positions: np.ndarray) -> list[str]:
    columns = [c for c in raw.columns if c != "_row_number"]
    sub = raw.iloc[positions][columns].astype(object)
    sub = sub.where(sub.notna(), None)
    encode = json.JSONEncoder(ensure_ascii=False, default=str).encode
    return [encode(dict(zip(columns, row))) for row in sub.itertuples(index=False, name=None)]


def _empty_quarantine() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "source": pd.array([], dtype=TEXT),
            "row_number": pd.array([], dtype="int64"),
            "source_record_id": pd.array([], dtype=TEXT),
            "rule": pd.array([], dtype=TEXT),
            "detail": pd.array([], dtype=TEXT),
            "raw": pd.array([], dtype=TEXT),
        }
    )


def validate_source(
    raw: pd.DataFrame,
    canon: pd.DataFrame,
    src: SourceConfig,
    *,
    as_of: date,
    known_person_ids: set[str] | None = None,
    conversion: Conversion | None = None,
    currency_rates: dict[str, float] | None = None,
    max_amount: float = DEFAULT_MAX_AMOUNT,
    min_date: date = DEFAULT_MIN_DATE,
    previous_rows: int | None = None,
    previous_columns: Sequence[str] | None = None,
    max_row_drop: float = 0.5,
) -> ValidationOutcome:
    """Split one source's rows into accepted and quarantined, with named checks.

    `raw` and `canon` are `sources.readers.read_source` / `to_canonical` output for `src`
    (same rows, same order). `known_person_ids`: accepted ``source_record_id``s of the person
    source this source refers to (None: only empty references are rejected). `conversion`: the
    reporting currency and its rates (`transforms.money.Conversion`; None: amounts stay in
    their own currency, which must then be empty-free ISO 4217 where the source maps one).
    `currency_rates` (older callers): undated rates into the currency whose rate is 1, the same
    as a `conversion` of them. `max_amount` / `min_date`: `quality.max_amount` and
    `quality.min_date` of the config. `previous_rows` /
    `previous_columns`: the previous run's row count and raw columns (None: not compared).
    ``src.max_row_drop``, when set, overrides `max_row_drop`. Raises `ExpectationConfigError`
    for an unusable ``expectations:`` entry; blocking failures are reported in ``checks`` and
    raised by ``outcome.raise_for_blocking()``.
    """
    if len(raw) != len(canon):
        raise ValueError(
            f"source {src.name}: raw frame has {len(raw)} rows but canonical frame {len(canon)}"
        )
    raw = raw.reset_index(drop=True)
    canon = canon.reset_index(drop=True)
    n = len(raw)
    drop = src.max_row_drop if src.max_row_drop is not None else max_row_drop
    raw_columns = [c for c in raw.columns if c != "_row_number"]

    if conversion is None and currency_rates is not None:
        conversion = _conversion_of_rates(currency_rates)
    typed, gx_frame = _typed_frame(canon, src, as_of, known_person_ids, conversion, max_amount, min_date)
    row_checks = _row_checks(canon, typed, src, as_of, known_person_ids, conversion, max_amount, min_date)
    declared = _declared_checks(src, raw_columns)
    file_checks = _file_checks(raw_columns, previous_rows, previous_columns, drop)

    # Two GX suites: "rules" on the typed frame, "file" on the raw frame as read (row count,
    # column set, and the source's declared expectations, which name raw columns).
    frames = {SUITE_RULES: gx_frame, SUITE_FILE: raw[raw_columns]}
    runs: list[SuiteRun] = []
    suites = {
        name: (frame, [e for c in file_checks + row_checks + declared if c.suite == name for e in c.expectations])
        for name, frame in frames.items()
    }
    masks: dict[str, np.ndarray] = {}
    exceptions: dict[str, str] = {}
    for suite_name, (frame, expectations) in suites.items():
        if not expectations:
            continue
        run = run_suite(frame, f"{src.name}.{suite_name}", expectations)
        runs.append(run)
        for e in run.expectations:
            check = e.meta["check"]
            if e.exception:
                exceptions[check] = e.exception
            if e.unexpected is not None:
                masks[check] = masks.get(check, np.zeros(n, dtype=bool)) | e.unexpected

    # duplicate_id: GX flags every occurrence of a repeated id; the first one is kept.
    dup_flagged = masks.get(CHECK_IDS_UNIQUE)
    if dup_flagged is not None and dup_flagged.any():
        flagged = np.flatnonzero(dup_flagged)
        later = typed["source_record_id"].iloc[flagged].duplicated(keep="first").to_numpy()
        masks[CHECK_IDS_UNIQUE] = np.zeros(n, dtype=bool)
        masks[CHECK_IDS_UNIQUE][flagged[later]] = True

    assigned = np.full(n, -1, dtype=np.int64)
    ordered = [c for c in row_checks + declared if c.rule is not None]
    for pos, check in enumerate(ordered):
        mask = masks.get(check.name)
        if mask is not None:
            assigned[(assigned < 0) & mask] = pos

    quarantined = assigned >= 0
    raw_text = dict(zip(np.flatnonzero(quarantined).tolist(), _raw_json(raw, np.flatnonzero(quarantined))))
    parts = []
    by_rule: dict[str, int] = {}
    quarantined_by_check: dict[str, int] = {}
    for pos, check in enumerate(ordered):
        idx = np.flatnonzero(assigned == pos)
        quarantined_by_check[check.name] = len(idx)
        if not len(idx):
            continue
        by_rule[check.rule] = by_rule.get(check.rule, 0) + len(idx)
        details = check.detail(idx) if check.detail else [check.description] * len(idx)
        parts.append(
            pd.DataFrame(
                {
                    "source": pd.array([src.name] * len(idx), dtype=TEXT),
                    "row_number": typed["_row_number"].to_numpy()[idx],
                    "source_record_id": typed["source_record_id"].iloc[idx].array,
                    "rule": pd.array([check.rule] * len(idx), dtype=TEXT),
                    "detail": pd.array(details, dtype=TEXT),
                    "raw": pd.array([raw_text[i] for i in idx.tolist()], dtype=TEXT),
                }
            )
        )
    quarantine = (
        pd.concat(parts, ignore_index=True).sort_values("row_number", kind="stable").reset_index(drop=True)
        if parts
        else _empty_quarantine()
    )
    quarantine = quarantine.astype({"row_number": "int64"})

    keep = ~quarantined
    if src.kind == "person":
        accepted = canon.loc[keep].reset_index(drop=True)
    else:
        accepted = typed.loc[keep, list(ACCEPTED_COLUMNS[src.kind])].reset_index(drop=True)
        date_field = DATE_FIELD[src.kind]
        accepted[date_field] = accepted[date_field].astype("datetime64[us]")
        if src.kind == "consent":
            accepted["granted"] = accepted["granted"].astype(bool)
    rows_accepted = int(keep.sum())
    rows_quarantined = int(quarantined.sum())

    outcomes: list[CheckOutcome] = []
    for check in file_checks:
        outcomes.append(_outcome(check, runs, exceptions, n, raw_columns, previous_rows, previous_columns))
    for check in row_checks + declared:
        outcomes.append(
            _row_outcome(check, runs, masks, quarantined_by_check, exceptions)
        )
    outcomes.append(
        CheckOutcome(
            CHECK_ROWS_ACCEPTED,
            passed=rows_accepted > 0 or n == 0,
            severity=SEVERITY_ERROR,
            description="at least one row is accepted (all rejected usually means a wrong mapping)",
            metadata={"rows_in": n, "rows_accepted": rows_accepted}
            | ({} if rows_accepted > 0 or n == 0 else {"reason": f"all {n} rows were quarantined"}),
        )
    )
    outcomes.append(
        CheckOutcome(
            CHECK_ROWS_CONSERVED,
            passed=n == rows_accepted + rows_quarantined,
            severity=SEVERITY_ERROR,
            description="rows_in = rows_accepted + rows_quarantined",
            metadata={"rows_in": n, "rows_accepted": rows_accepted, "rows_quarantined": rows_quarantined},
        )
    )
    # Person field-level findings need the standardised frame: see `field_findings`.
    findings = _empty_findings()
    return ValidationOutcome(
        source=src.name,
        kind=src.kind,
        accepted=accepted,
        quarantine=quarantine,
        checks=outcomes,
        findings=findings,
        rows_in=n,
        rows_accepted=rows_accepted,
        rows_quarantined=rows_quarantined,
        quarantine_by_rule={r: by_rule[r] for r in sorted(by_rule, key=_rule_rank)},
        gx_results=[r.result for r in runs],
    )


def _conversion_of_rates(rates: Mapping[str, float]) -> Conversion:
    ones = [str(k).upper() for k, v in rates.items() if v == 1]
    if len(ones) != 1:
        raise ValueError("currency_rates: exactly one currency must have rate 1 (the one converted into)")
    return Conversion.of(ones[0], rates)


def _rule_rank(rule: str) -> tuple[int, str]:
    return (RULE_ORDER.index(rule), rule) if rule in RULE_ORDER else (len(RULE_ORDER), rule)


def _expectation_runs(check: str, runs: list[SuiteRun]) -> list[Any]:
    return [e for run in runs for e in run.by_check(check)]


def _outcome(
    check: _RowCheck,
    runs: list[SuiteRun],
    exceptions: dict[str, str],
    n: int,
    raw_columns: list[str],
    previous_rows: int | None,
    previous_columns: Sequence[str] | None,
) -> CheckOutcome:
    """A file-level (table) check's outcome, with a one-line reason when it fails."""
    if check.skipped:
        return CheckOutcome(check.name, True, check.severity, check.description, {"skipped": check.skipped})
    results = _expectation_runs(check.name, runs)
    passed = all(e.success for e in results) and check.name not in exceptions
    meta: dict[str, Any] = {"rows_in": n}
    if check.name == CHECK_ROW_COUNT_STABLE:
        meta["previous_rows"] = int(previous_rows or 0)
        if not passed:
            meta["reason"] = f"rows fell from {previous_rows} to {n}, more than the allowed drop"
    elif check.name in (CHECK_COLUMNS_STABLE, CHECK_COLUMNS_UNCHANGED):
        before = [c for c in (previous_columns or []) if c != "_row_number"]
        missing = [c for c in before if c not in raw_columns]
        added = [c for c in raw_columns if c not in before]
        meta["columns_missing"] = ", ".join(missing)
        meta["columns_added"] = ", ".join(added)
        if not passed:
            meta["reason"] = (
                f"columns missing since the previous run: {', '.join(missing)}"
                if missing
                else f"new columns since the previous run: {', '.join(added)}"
            )
    elif check.name == CHECK_ROWS_PRESENT and not passed:
        meta["reason"] = "the source has no data rows"
    if check.name in exceptions:
        meta["exception"] = exceptions[check.name]
    return CheckOutcome(check.name, passed, check.severity, check.description, meta)


def _row_outcome(
    check: _RowCheck,
    runs: list[SuiteRun],
    masks: dict[str, np.ndarray],
    quarantined_by_check: dict[str, int],
    exceptions: dict[str, str],
) -> CheckOutcome:
    if check.skipped:
        return CheckOutcome(check.name, True, check.severity, check.description, {"skipped": check.skipped})
    results = _expectation_runs(check.name, runs)
    meta: dict[str, Any] = {}
    mask = masks.get(check.name)
    if mask is not None:
        meta["rows_failing"] = int(mask.sum())
    else:  # table-level declared expectation
        meta["rows_failing"] = 0
    if check.rule is not None:
        meta["rows_quarantined"] = int(quarantined_by_check.get(check.name, 0))
        meta["rule"] = check.rule
    if check.name in exceptions:
        meta["exception"] = exceptions[check.name]
    passed = all(e.success for e in results) and check.name not in exceptions
    if check.name == CHECK_IDS_UNIQUE:
        passed = meta["rows_failing"] == 0 and check.name not in exceptions
    if not passed and "reason" not in meta:
        meta["reason"] = f"{meta['rows_failing']} row(s) failed: {check.description}"
    return CheckOutcome(check.name, passed, check.severity, check.description, meta)


def _empty_findings() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "field": pd.array([], dtype=TEXT),
            "rule": pd.array([], dtype=TEXT),
            "count": pd.array([], dtype="int64"),
        }
    )


def field_findings(person_std: pd.DataFrame) -> pd.DataFrame:
    """Count field-level issues of a standardised person frame: columns (field, rule, count).

    Reads the ``field_issues`` column (a list of ``"field:rule"`` strings per row, e.g.
    ``"email:placeholder"``) written by ``transforms.standardise.standardise_persons``. Those
    records are kept; the invalid value is only treated as missing.
    """
    if "field_issues" not in person_std.columns or person_std.empty:
        return _empty_findings()
    issues: list[str] = []
    for value in person_std["field_issues"].tolist():
        if value is None:
            continue
        if isinstance(value, str):
            items: Iterable[Any] = [value]
        else:
            try:
                items = list(value)
            except TypeError:
                continue
        issues.extend(str(v) for v in items if v is not None and not (isinstance(v, float) and math.isnan(v)))
    return findings_from_counts(Counter(issues))


def findings_from_counts(counts: Mapping[str, int]) -> pd.DataFrame:
    """`field_findings` from issue counts (``{"field:rule": n}``), e.g. counted in SQL over the
    staged rows; an issue without a colon counts as rule ``invalid``."""
    rows: Counter = Counter()
    for issue, n in counts.items():
        if issue is None or not n:
            continue
        field, rule = str(issue).split(":", 1) if ":" in str(issue) else (str(issue), "invalid")
        rows[(field, rule)] += int(n)
    if not rows:
        return _empty_findings()
    counted = pd.DataFrame([(f, r, n) for (f, r), n in sorted(rows.items())], columns=["field", "rule", "count"])
    return counted.astype({"field": TEXT, "rule": TEXT, "count": "int64"})
