"""Audiences, pure: what a marketer combines (lifecycle stage, RFM segment, channel, spend and
recency bounds, consent purpose), checked, and turned into one SQL query whose values are bound
as parameters; and the rows of an audience file in its format.

- `AudienceSpec`: one audience (from `scv audience` options or a saved audience in config);
  `check_spec` normalises and checks it, naming the dimension of every value it refuses.
- `resolve_stage` / `resolve_segment`: "at risk" is two things here, the lifecycle stage
  `at_risk` and the RFM segment "At Risk". A value is only ever looked up in the dimension it
  was given for (`--stage` / `--segment`, `stage:` / `segment:`); a value that is not a name of
  that dimension but resembles one of either is refused in one line naming both spellings.
- `audience_sql(spec)` selects the customers matching every filter with their latest consent
  decision for the purpose; `filter_counts_sql(spec)` counts the customers matching each filter
  alone and all of them (for `--dry-run`). Both are built from code constants and named
  parameters (`$purpose`, `$stages`, …): no value of the spec is ever written into the SQL.
- `audience_rows(candidates, fmt)`: the consenting customers with a usable email or phone, as
  `plain` (for an email tool) or `hashed` (SHA-256 hex, Google Ads Customer Match layout).

Nothing here reads a file or a database: warehouse/audience.py runs the SQL and writes files.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from transforms.lifecycle import STAGES

__all__ = [
    "FORMATS",
    "HASHED_COLUMNS",
    "PLAIN_COLUMNS",
    "AudienceError",
    "AudienceSpec",
    "Filter",
    "audience_email",
    "audience_phone",
    "audience_rows",
    "audience_sql",
    "check_single_select",
    "check_spec",
    "filter_counts_sql",
    "filters",
    "resolve_segment",
    "resolve_stage",
    "saved_audience",
    "sha256_hex",
    "specs_from_json",
    "specs_to_json",
]

FORMATS = ("plain", "hashed")
#: `hashed`: Google Ads Customer Match (hashed upload), each the SHA-256 hex of the trimmed
#: lower-case email / the E.164 phone; empty when the customer has none.
HASHED_COLUMNS = ("Email", "Phone")
#: `plain`: for an email (or SMS) tool; email trimmed and lower-case, phone in E.164.
PLAIN_COLUMNS = ("customer_id", "email", "phone", "first_name", "last_name")
#: How a flag is spelt where the value came from: options of `scv audience`, keys in config.
CLI_NAMES = {"stage": "--stage", "segment": "--segment"}
CONFIG_NAMES = {"stage": "stage:", "segment": "segment:"}

_CURRENCY = re.compile(r"^[A-Z]{3}$")


class AudienceError(ValueError):
    """An audience that cannot be built as asked; the message is one line without personal data."""


@dataclass(frozen=True)
class AudienceSpec:
    """One audience. Filters combine: a customer must match every dimension given, and any one
    of the values given for a dimension (`stages=("at_risk", "lost")`: at risk or lost).
    Spend bounds compare `customer_profile.total_spend` in `currency`; recency bounds compare
    `rfm.recency_days` (days since the last completed order; customers who never ordered have
    none and match no recency bound)."""

    purpose: str
    stages: tuple[str, ...] = ()
    segments: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    min_spend: float | None = None
    max_spend: float | None = None
    currency: str | None = None
    min_recency_days: int | None = None
    max_recency_days: int | None = None
    format: str = "hashed"
    name: str | None = None
    #: customer ids chosen by `scv audience --sql` (None: no such filter)
    customer_ids: tuple[str, ...] | None = field(default=None, repr=False)

    @property
    def has_spend_bound(self) -> bool:
        return self.min_spend is not None or self.max_spend is not None

    def describe(self) -> str:
        """The audience in words (names of stages, segments, channels; never a customer)."""
        parts = [f.label for f in filters(self)] or ["every customer"]
        return f"{'; '.join(parts)}; consent to {self.purpose!r} ({self.format})"

    def as_dict(self) -> dict[str, Any]:
        """The spec as plain data (config-like keys), for metadata and the exports manifest."""
        out: dict[str, Any] = {"purpose": self.purpose, "format": self.format}
        for key, value in (
            ("stage", list(self.stages)),
            ("segment", list(self.segments)),
            ("channel", list(self.channels)),
            ("min_spend", self.min_spend),
            ("max_spend", self.max_spend),
            ("currency", self.currency if self.has_spend_bound else None),
            ("min_recency_days", self.min_recency_days),
            ("max_recency_days", self.max_recency_days),
        ):
            if value not in (None, []):
                out[key] = value
        return out


# ------------------------------------------------------------------------------ names
def _loose(text: str) -> str:
    """A spelling-insensitive key: case, spaces, `_` and `-` do not count."""
    return re.sub(r"[\s_\-]+", " ", str(text)).strip().casefold()


def _exact(text: str) -> str:
    return " ".join(str(text).split()).casefold()


def _quoted(text: str) -> str:
    return f"'{text}'" if re.search(r"[\s'\"]", text) else text


def _other_dimension(value: str, dimension: str, stages: Iterable[str], segments: Iterable[str], names: Mapping[str, str]) -> str | None:
    """The one-line refusal of `value` given for `dimension` when it resembles a name of either
    dimension; None when it resembles nothing."""
    key = _loose(value)
    stage = next((s for s in stages if _loose(s) == key), None)
    segment = next((s for s in segments if _loose(s) == key), None)
    given = f"{names[dimension]} {_quoted(value)}"
    if stage is not None and segment is not None:
        return (
            f"{given} is ambiguous: write {names['stage']} {stage} for the lifecycle stage, "
            f"or {names['segment']} {_quoted(segment)} for the RFM segment"
        )
    if dimension == "segment" and stage is not None:
        return (
            f"{given}: {stage!r} is a lifecycle stage, not an RFM segment: "
            f"write {names['stage']} {stage}"
        )
    if dimension == "stage" and segment is not None:
        return (
            f"{given}: {segment!r} is an RFM segment, not a lifecycle stage: "
            f"write {names['segment']} {_quoted(segment)}"
        )
    return None


def resolve_stage(value: str, segments: Iterable[str] = (), names: Mapping[str, str] = CLI_NAMES) -> str:
    """The lifecycle stage named `value` (any case: `AT_RISK` is `at_risk`). Anything else is
    refused in one line: a value resembling a stage or an RFM segment ("at risk", "At Risk")
    names the flag to write for each, so "at risk" never silently means one of the two."""
    segments = list(segments)
    for stage in STAGES:
        if _exact(value) == stage:
            return stage
    hint = _other_dimension(value, "stage", STAGES, segments, names)
    if hint:
        raise AudienceError(hint)
    raise AudienceError(
        f"{names['stage']} {_quoted(value)}: unknown lifecycle stage; stages: {', '.join(STAGES)}"
    )


def resolve_segment(value: str, segments: Iterable[str], names: Mapping[str, str] = CLI_NAMES) -> str:
    """The RFM segment named `value` in the segment map in force (any case, spaces as written:
    `champions` is Champions, `at_risk` is not At Risk). Refusals as `resolve_stage`."""
    segments = list(dict.fromkeys(segments))
    for segment in segments:
        if _exact(value) == _exact(segment):
            return segment
    hint = _other_dimension(value, "segment", STAGES, segments, names)
    if hint:
        raise AudienceError(hint)
    raise AudienceError(
        f"{names['segment']} {_quoted(value)}: unknown RFM segment; segments: "
        + (", ".join(segments) or "(none)")
    )


def _tuple(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value)


def check_spec(
    spec: AudienceSpec,
    segments: Iterable[str],
    *,
    reporting_currency: str | None = None,
    names: Mapping[str, str] = CLI_NAMES,
) -> AudienceSpec:
    """`spec` with its names resolved (stage, segment, lower-case channels, upper-case currency)
    and its bounds checked; AudienceError in one line otherwise. `segments` are the names of
    the RFM segment map in force. With `reporting_currency` (currency.reporting), every spend is
    in it: `currency` defaults to it and may not name another one."""
    segments = list(segments)
    purpose = (spec.purpose or "").strip()
    if not purpose:
        raise AudienceError("a consent purpose is needed (--purpose, or purpose: in config)")
    if spec.format not in FORMATS:
        raise AudienceError(f"format {spec.format!r}: choose one of {', '.join(FORMATS)}")
    stages = tuple(dict.fromkeys(resolve_stage(s, segments, names) for s in _tuple(spec.stages)))
    chosen = tuple(dict.fromkeys(resolve_segment(s, segments, names) for s in _tuple(spec.segments)))
    channels = tuple(dict.fromkeys(c.strip().lower() for c in _tuple(spec.channels) if c.strip()))
    for low, high, what in (
        (spec.min_spend, spec.max_spend, "spend"),
        (spec.min_recency_days, spec.max_recency_days, "recency days"),
    ):
        for bound in (low, high):
            if bound is not None and not (bound >= 0):  # also refuses NaN
                raise AudienceError(f"{what} bounds must be 0 or more, got {bound!r}")
        if low is not None and high is not None and low > high:
            raise AudienceError(f"minimum {what} {low} is above the maximum {high}: nobody matches")
    currency = spec.currency.strip().upper() if spec.currency else None
    if currency is not None and not _CURRENCY.match(currency):
        raise AudienceError(f"currency {spec.currency!r}: expected an ISO 4217 code such as GBP")
    if reporting_currency:
        if currency is not None and currency != reporting_currency:
            raise AudienceError(
                f"currency {currency}: every spend is converted into {reporting_currency} "
                "(currency.reporting), so spend bounds are in it"
            )
        currency = reporting_currency
    return replace(
        spec,
        purpose=purpose,
        stages=stages,
        segments=chosen,
        channels=channels,
        currency=currency,
    )


def saved_audience(
    name: str,
    settings: Mapping[str, Any],
    segments: Iterable[str],
    *,
    reporting_currency: str | None = None,
) -> AudienceSpec:
    """The saved audience `name` from its config settings (`stage`, `segment`, `channel`: one
    value or a list; `purpose`, `min_spend`, `max_spend`, `currency`, `min_recency_days`,
    `max_recency_days`, `format`), checked as `check_spec` does; AudienceError naming the
    audience otherwise. Spend bounds need `currency` unless currency.reporting is set: the
    config must not depend on which currencies tonight's orders happen to be in."""
    spec = AudienceSpec(
        purpose=str(settings.get("purpose") or ""),
        stages=_tuple(settings.get("stage")),
        segments=_tuple(settings.get("segment")),
        channels=_tuple(settings.get("channel")),
        min_spend=settings.get("min_spend"),
        max_spend=settings.get("max_spend"),
        currency=settings.get("currency"),
        min_recency_days=settings.get("min_recency_days"),
        max_recency_days=settings.get("max_recency_days"),
        format=str(settings.get("format") or "hashed"),
        name=name,
    )
    try:
        spec = check_spec(spec, segments, reporting_currency=reporting_currency, names=CONFIG_NAMES)
        if spec.has_spend_bound and spec.currency is None:
            raise AudienceError(
                "spend bounds need currency: (e.g. currency: GBP), or currency.reporting to "
                "convert every order into one currency"
            )
    except AudienceError as exc:
        raise AudienceError(f"audiences.{name}: {exc}") from None
    return spec


def specs_to_json(specs: Iterable[AudienceSpec]) -> str:
    """Saved audiences as JSON text (a Dagster resource's config holds them so)."""
    return json.dumps([asdict(s) for s in specs], sort_keys=True)


def specs_from_json(text: str) -> tuple[AudienceSpec, ...]:
    """The saved audiences written by `specs_to_json`."""
    out = []
    for raw in json.loads(text or "[]"):
        for key in ("stages", "segments", "channels", "customer_ids"):
            if raw.get(key) is not None:
                raw[key] = tuple(raw[key])
        out.append(AudienceSpec(**raw))
    return tuple(out)


# ------------------------------------------------------------------------------- SQL
@dataclass(frozen=True)
class Filter:
    """One dimension of an audience: a label in words, a predicate on the `base` relation of
    `audience_sql`, and the parameters it binds."""

    key: str
    label: str
    predicate: str
    params: dict[str, Any]


def _money(value: float) -> str:
    return f"{value:,.2f}".rstrip("0").rstrip(".") if value != int(value) else f"{int(value):,}"


def filters(spec: AudienceSpec) -> list[Filter]:
    """The filters of `spec`, in a fixed order: stage, segment, channel, spend, recency, --sql."""
    out: list[Filter] = []
    if spec.stages:
        out.append(
            Filter("stage", "lifecycle stage " + " or ".join(spec.stages),
                   "list_contains($stages, b.stage)", {"stages": list(spec.stages)})
        )  # fmt: skip
    if spec.segments:
        out.append(
            Filter("segment", "RFM segment " + " or ".join(spec.segments),
                   "list_contains($segments, b.segment)", {"segments": list(spec.segments)})
        )  # fmt: skip
    if spec.channels:
        out.append(
            Filter(
                "channel",
                "seen on channel " + " or ".join(spec.channels),
                "b.customer_id IN (SELECT t.customer_id FROM scv.touchpoint AS t "
                "WHERE list_contains($channels, lower(t.channel)))",
                {"channels": list(spec.channels)},
            )
        )
    if spec.has_spend_bound:
        conds, params, words = [], {}, []
        if spec.min_spend is not None:
            conds.append("b.spend >= $min_spend")
            params["min_spend"] = float(spec.min_spend)
            words.append(f"at least {_money(spec.min_spend)}")
        if spec.max_spend is not None:
            conds.append("b.spend <= $max_spend")
            params["max_spend"] = float(spec.max_spend)
            words.append(f"at most {_money(spec.max_spend)}")
        # Zero is zero in any currency; a spend in another currency, or in several (NULL
        # total_spend), is not comparable with the bound and matches no bound.
        currency = "(b.spend = 0 OR b.spend_currency = $spend_currency)"
        params["spend_currency"] = spec.currency
        out.append(
            Filter("spend", f"spend {' and '.join(words)} {spec.currency or '(no currency)'}",
                   f"({currency} AND {' AND '.join(conds)})", params)
        )  # fmt: skip
    if spec.min_recency_days is not None or spec.max_recency_days is not None:
        conds, params, words = [], {}, []
        if spec.min_recency_days is not None:
            conds.append("b.recency_days >= $min_recency_days")
            params["min_recency_days"] = int(spec.min_recency_days)
            words.append(f"at least {spec.min_recency_days}")
        if spec.max_recency_days is not None:
            conds.append("b.recency_days <= $max_recency_days")
            params["max_recency_days"] = int(spec.max_recency_days)
            words.append(f"at most {spec.max_recency_days}")
        out.append(
            Filter("recency", f"last order {' and '.join(words)} days ago",
                   "(" + " AND ".join(conds) + ")", params)
        )  # fmt: skip
    if spec.customer_ids is not None:
        out.append(
            Filter("sql", "chosen by --sql", "list_contains($customer_ids, b.customer_id)",
                   {"customer_ids": list(spec.customer_ids)})
        )  # fmt: skip
    return out


#: Every customer with what the filters look at. One row per customer: scv.lifecycle, scv.rfm
#: and scv.customer_profile hold at most one row per customer.
_BASE = """
base AS (
    SELECT
        c.customer_id,
        c.email,
        c.phone,
        c.first_name,
        c.last_name,
        l.stage,
        r.segment,
        r.recency_days,
        p.total_spend AS spend,
        p.spend_currency
    FROM scv.customer AS c
    LEFT JOIN scv.lifecycle AS l ON l.customer_id = c.customer_id
    LEFT JOIN scv.rfm AS r ON r.customer_id = c.customer_id
    LEFT JOIN scv.customer_profile AS p ON p.customer_id = c.customer_id
)"""

#: The latest decision per customer for the purpose; at equal timestamps a withdrawal wins.
_LATEST_CONSENT = """
latest_consent AS (
    SELECT customer_id, granted
    FROM scv.consent
    WHERE purpose = $purpose
    QUALIFY row_number() OVER (
        PARTITION BY customer_id ORDER BY recorded_at DESC NULLS LAST, granted ASC NULLS FIRST
    ) = 1
)"""


def _params(found: list[Filter]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for f in found:
        params.update(f.params)
    return params


def audience_sql(spec: AudienceSpec) -> tuple[str, dict[str, Any]]:
    """(SQL, parameters): the customers matching every filter of `spec`, one row each, ordered
    by customer_id: customer_id, email, phone, first_name, last_name and `granted`, their latest
    consent decision for the purpose (NULL: none recorded). Consent is left to the caller to
    enforce (`audience_rows`) so that it can count who was left out and why."""
    found = filters(spec)
    where = " AND ".join(f.predicate for f in found) or "TRUE"
    sql = (
        f"WITH {_BASE.strip()},\n{_LATEST_CONSENT.strip()}\n"
        "SELECT b.customer_id, b.email, b.phone, b.first_name, b.last_name, lc.granted\n"
        "FROM base AS b\n"
        "LEFT JOIN latest_consent AS lc ON lc.customer_id = b.customer_id\n"
        f"WHERE {where}\n"
        "ORDER BY b.customer_id"
    )
    return sql, {"purpose": spec.purpose, **_params(found)}


def filter_counts_sql(spec: AudienceSpec) -> tuple[str, dict[str, Any], list[str]]:
    """(SQL, parameters, column names): one row counting `customers` (everyone), the customers
    matching each filter alone (one column per `Filter.key`), and `matched` (all filters)."""
    found = filters(spec)
    columns = ["customers", *(f.key for f in found), "matched"]
    counts = ["count(*) AS customers"]
    counts += [f"count(*) FILTER (WHERE {f.predicate}) AS {f.key}" for f in found]
    where = " AND ".join(f.predicate for f in found) or "TRUE"
    counts.append(f"count(*) FILTER (WHERE {where}) AS matched")
    sql = f"WITH {_BASE.strip()}\nSELECT " + ",\n       ".join(counts) + "\nFROM base AS b"
    return sql, _params(found), columns


# ------------------------------------------------------------------------------ rows
def _text(value: Any) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    return str(value)


def audience_rows(candidates: pd.DataFrame, fmt: str) -> tuple[pd.DataFrame, dict[str, int]]:
    """The audience file's rows from `audience_sql`'s result, and the counts of who was left
    out: `no_consent_record`, `withdrawn` (latest decision not a grant), `no_identifier`
    (consenting but with neither a usable email nor an E.164 phone). Only customers whose
    latest decision is a grant are ever in the rows."""
    if fmt not in FORMATS:
        raise AudienceError(f"format {fmt!r}: choose one of {', '.join(FORMATS)}")
    granted = candidates["granted"]
    no_record = int(granted.isna().sum())
    consenting = candidates[granted.fillna(False).astype(bool)]
    withdrawn = len(candidates) - no_record - len(consenting)
    records = []
    no_identifier = 0
    for row in consenting.itertuples(index=False):
        email, phone = audience_email(row.email), audience_phone(row.phone)
        if email is None and phone is None:
            no_identifier += 1
            continue
        if fmt == "hashed":
            records.append((sha256_hex(email) if email else "", sha256_hex(phone) if phone else ""))
        else:
            records.append(
                (_text(row.customer_id), email or "", phone or "", _text(row.first_name), _text(row.last_name))
            )
    columns = list(HASHED_COLUMNS if fmt == "hashed" else PLAIN_COLUMNS)
    rows = pd.DataFrame.from_records(records, columns=columns).astype("str")
    # hashed: sorted by hash, so the file's order tells nothing about the customers
    rows = rows.sort_values(columns, ignore_index=True)
    counts = {"no_consent_record": no_record, "withdrawn": int(withdrawn), "no_identifier": no_identifier}
    return rows, counts


# ------------------------------------------- identifiers as ad platforms match them; the --sql check
def sha256_hex(value: str) -> str:
    """Plain SHA-256 of `value` (UTF-8) as lower-case hex: what ad platforms match on."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


_E164 = re.compile(r"^\+[1-9]\d{6,14}$")


def audience_email(value: Any) -> str | None:
    """An email as ad platforms want it before hashing: trimmed, lower-case; None if unusable."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return None
    text = re.sub(r"\s+", "", str(value)).lower()
    return text if "@" in text else None


def audience_phone(value: Any) -> str | None:
    """A phone number as ad platforms want it before hashing: E.164 (`+` and digits only);
    None if the value is not an E.164 number."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return None
    text = str(value).strip()
    if not text.startswith("+"):
        return None
    text = "+" + re.sub(r"\D", "", text)
    return text if _E164.match(text) else None


def check_single_select(sql: str) -> None:
    """Raise ValueError unless `sql` is exactly one read-only query (SELECT, possibly with WITH
    or UNION), as DuckDB's dialect parses it."""
    import sqlglot
    from sqlglot import exp

    try:
        statements = [s for s in sqlglot.parse(sql, read="duckdb") if s is not None]
    except sqlglot.errors.ParseError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "parse error"
        raise ValueError(f"--sql is not valid SQL: {first}") from None
    if len(statements) != 1:
        raise ValueError(f"--sql must be one SELECT statement, got {len(statements)} statements")
    stmt = statements[0]
    if not isinstance(stmt, (exp.Select, exp.SetOperation)):
        raise ValueError(f"--sql must be a SELECT statement, got {stmt.key.upper()}")
    writes = (
        exp.Insert,
        exp.Update,
        exp.Delete,
        exp.Merge,
        exp.Create,
        exp.Drop,
        exp.Alter,
        exp.Command,
        exp.Copy,
        exp.Into,
    )
    bad = next(stmt.find_all(*writes), None)
    if bad is not None:
        raise ValueError(f"--sql must only read: it contains {bad.key.upper()}")
