"""The project configuration: one YAML file describes every source system and every rule.

`load_config(path)` turns the YAML into a validated `Config`. Errors name the file, the key and
what is wrong (`ConfigError`). Relative paths resolve against the config file's folder.
"""

from __future__ import annotations

import math
import os
import re
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

__all__ = [
    "CANONICAL_FIELDS",
    "Config",
    "ConfigError",
    "PersonRef",
    "SourceConfig",
    "default_config_path",
    "load_config",
]

SourceKind = Literal["person", "order", "event", "consent"]

#: Canonical fields a source may map, per kind (CONTRACT §3). Events also keep any unmapped
#: column as an attribute; `session_id` lets anonymous web sessions be stitched to a login.
CANONICAL_FIELDS: dict[str, tuple[str, ...]] = {
    "person": (
        "first_name",
        "last_name",
        "full_name",
        "email",
        "phone",
        "date_of_birth",
        "address_line",
        "postcode",
        "city",
        "country",
        "updated_at",
    ),
    "order": ("order_date", "amount", "currency", "status", "channel"),
    "event": ("event_time", "event_type", "channel", "session_id"),
    "consent": ("purpose", "granted", "recorded_at"),
}

#: Kinds whose unmapped columns are kept as an `attributes` JSON column.
KINDS_WITH_ATTRIBUTES = frozenset({"order", "event"})

FORMATS = ("csv", "jsonl", "parquet", "duckdb", "sqlite")
_EXTENSIONS = {
    ".csv": "csv",
    ".txt": "csv",
    ".tsv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".duckdb": "duckdb",
    ".db": "sqlite",
    ".sqlite": "sqlite",
    ".sqlite3": "sqlite",
}
_NAME = re.compile(r"^[a-z0-9_]+$")

DEFAULT_CONFIG = Path("data/sources/scv.yml")


class ConfigError(ValueError):
    """A config file that cannot be used; the message names the file, the key and the problem."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PersonRef(_Model):
    """Which person record an order, event or consent row belongs to."""

    source: str = Field(description="name of the person source whose record is referenced")
    key: str = Field(description="column of this source holding that person source's id")


class SourceConfig(_Model):
    """One source system export (a file or a database table) and how its columns map."""

    name: str = ""
    kind: SourceKind
    path: Path
    format: Literal["csv", "jsonl", "parquet", "duckdb", "sqlite"] | None = None
    table: str | None = Field(None, description="table to read when `path` is a database file")
    id: str
    columns: dict[str, str] = Field(default_factory=dict)
    person: PersonRef | None = None
    date_format: str | None = None
    default_country: str | None = None
    # CSV reading
    delimiter: str = ","
    quotechar: str = '"'
    encoding: str = "utf-8"
    # Rules
    trust: int = Field(50, description="survivorship trust rank: higher wins")
    constants: dict[str, Any] = Field(
        default_factory=dict, description="canonical field -> value for every row (e.g. channel)"
    )
    value_map: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="canonical field -> {source value: canonical value}, e.g. status or granted",
    )
    expectations: list[dict[str, Any]] = Field(
        default_factory=list,
        description="extra Great Expectations checks: {expectation: name, kwargs: {...}}",
    )
    max_row_drop: float | None = Field(
        None, ge=0, le=1, description="file-level failure when rows drop by more than this share"
    )
    enabled: bool = True

    @field_validator("default_country")
    @classmethod
    def _country(cls, v: str | None) -> str | None:
        if v is None:
            return v
        if not re.fullmatch(r"[A-Za-z]{2}", v):
            raise ValueError(f"must be a 2-letter ISO 3166 code, got {v!r}")
        return v.upper()

    @field_validator("date_format")
    @classmethod
    def _date_format(cls, v: str | None) -> str | None:
        problem = date_format_problem(v) if v is not None else None
        if problem:
            raise ValueError(problem)
        return v

    @field_validator("delimiter")
    @classmethod
    def _delimiter(cls, v: str) -> str:
        if v in ("\\t", "tab"):
            return "\t"
        if len(v) != 1:
            raise ValueError(f"must be one character, got {v!r}")
        return v

    @model_validator(mode="after")
    def _check(self) -> SourceConfig:
        allowed = CANONICAL_FIELDS[self.kind]
        unknown = sorted(set(self.columns) - set(allowed))
        if unknown:
            raise ValueError(
                f"columns: unknown canonical field(s) {unknown} for kind {self.kind!r}; "
                f"allowed: {list(allowed)}"
            )
        bad_const = sorted(set(self.constants) - set(allowed))
        if bad_const:
            raise ValueError(f"constants: unknown canonical field(s) {bad_const}")
        if self.kind != "person" and self.person is None:
            raise ValueError(
                f"person: required for kind {self.kind!r} "
                "(which person source and key column each row belongs to)"
            )
        fmt = self.resolved_format
        if fmt in ("duckdb", "sqlite") and not self.table:
            raise ValueError(f"table: required when reading a {fmt} database file")
        return self

    @property
    def resolved_format(self) -> str:
        if self.format:
            return self.format
        fmt = _EXTENSIONS.get(self.path.suffix.lower())
        if fmt is None:
            raise ValueError(
                f"format: cannot infer from extension {self.path.suffix!r}; set one of {FORMATS}"
            )
        return fmt

    def mapped(self, field: str) -> bool:
        """Whether the canonical `field` has a value in this source (a column or a constant)."""
        return field in self.columns or field in self.constants


class SparkConfig(_Model):
    """`linkage.spark:` where the linkage stage runs when `linkage.engine: spark`."""

    master: str = Field(
        "local[*]",
        description="Spark master URL: local[N], spark://HOST:PORT, yarn, k8s://…",
    )
    conf: dict[str, str | int | float | bool] = Field(
        default_factory=dict,
        description="extra Spark settings passed through (spark.executor.memory, "
        "spark.checkpoint.dir on shared storage for a real cluster, …)",
    )

    @field_validator("conf")
    @classmethod
    def _conf_keys(cls, v: dict[str, Any]) -> dict[str, Any]:
        bad = [k for k in v if not k.startswith("spark.")]
        if bad:
            raise ValueError(f"Spark settings start with 'spark.', got {bad}")
        return v


class LinkageConfig(_Model):
    engine: Literal["duckdb", "spark"] = "duckdb"
    spark: SparkConfig = SparkConfig()
    threshold: float = Field(0.8, gt=0, lt=1, description="match probability to accept a link")
    guards: Literal["adaptive", "strict", "off"] = Field(
        "adaptive",
        description="hard-conflict policy: adaptive (from the data's evidence), strict, off",
    )
    model_dir: Path = Path("models")
    labels: Path | None = None
    overrides: Path = Field(
        Path("overrides.csv"),
        description="a steward's must-link / cannot-link decisions (CSV, relative to the config)",
    )
    overrides_as_labels: bool = Field(
        False, description="train the model's m from the overrides as labels, too"
    )
    u_max_pairs: float = 1e7
    em_max_pairs: float = 5e6
    seed: int = 42
    memory_limit: str | None = Field(
        "4GB",
        description="DuckDB memory cap for linkage (e.g. '4GB'); beyond it DuckDB spills to disk. "
        "null: DuckDB's default (80% of RAM)",
    )

    @field_validator("memory_limit")
    @classmethod
    def _memory_limit(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"\s*\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*", v, re.IGNORECASE):
            raise ValueError(f"must be a size such as '4GB' or '512MiB', got {v!r}")
        return v


class SurvivorshipConfig(_Model):
    #: Rules applied in order until one value wins: validity, trust, recency, frequency.
    default: list[Literal["validity", "trust", "recency", "frequency"]] = [
        "validity",
        "trust",
        "recency",
        "frequency",
    ]
    fields: dict[str, list[Literal["validity", "trust", "recency", "frequency"]]] = Field(
        default_factory=dict
    )


class CurrencyConfig(_Model):
    """Money (CONTRACT §7). Without `reporting`, amounts stay in their own currency. With it,
    every order is converted into it at the rate the user gave: `rates` (valid on every date)
    or a `rates_file` of dated rates (the latest on or before the order date). No rate is built
    in; an order in a currency with no rate is quarantined (`unknown_currency`)."""

    reporting: str | None = Field(
        None, description="ISO 4217 code to convert every order amount into; unset: no conversion"
    )
    rates: dict[str, float] = Field(
        default_factory=dict,
        description="reporting-currency units per one unit of each currency (EUR: 0.86)",
    )
    rates_file: Path | None = Field(
        None, description="CSV with columns date,currency,rate: dated rates, relative to the config"
    )

    @field_validator("reporting")
    @classmethod
    def _reporting(cls, v: str | None) -> str | None:
        if v is None:
            return None
        code = str(v).strip().upper()
        if not re.fullmatch(r"[A-Z]{3}", code):
            raise ValueError(f"must be an ISO 4217 currency code such as GBP, got {v!r}")
        return code

    @field_validator("rates")
    @classmethod
    def _rates(cls, v: dict[str, float]) -> dict[str, float]:
        out: dict[str, float] = {}
        for code, rate in v.items():
            key = str(code).strip().upper()
            if not re.fullmatch(r"[A-Z]{3}", key):
                raise ValueError(f"{code!r} is not an ISO 4217 currency code")
            if not (math.isfinite(rate) and rate > 0):
                raise ValueError(f"{key}: {rate!r} is not a positive number")
            out[key] = float(rate)
        return out

    @model_validator(mode="after")
    def _needs_reporting(self) -> CurrencyConfig:
        if self.reporting is None and (self.rates or self.rates_file is not None):
            raise ValueError(
                "rates need currency.reporting, the currency they convert into "
                "(without it amounts stay in their own currency)"
            )
        if self.reporting is not None and self.rates.get(self.reporting, 1.0) != 1.0:
            raise ValueError(
                f"rates.{self.reporting}: the reporting currency converts at 1, "
                f"got {self.rates[self.reporting]}"
            )
        return self


class SegmentRule(_Model):
    name: str
    r: tuple[int, int]
    f: tuple[int, int] = (1, 5)
    m: tuple[int, int] = (1, 5)
    fm: tuple[int, int] | None = None


class RfmConfig(_Model):
    segments: list[SegmentRule] | None = None  # None: the documented default map


class LifecycleConfig(_Model):
    new_days: int = 30
    active_days: int = 90
    at_risk_days: int = 180
    lost_days: int = 365


class ScheduleConfig(_Model):
    cron: str = "0 2 * * *"
    timezone: str = "UTC"
    sensor_interval_seconds: int = Field(
        300,
        ge=30,
        le=86400,
        description="how often the source-file sensor looks for new or changed source files",
    )


class PrivacyConfig(_Model):
    key_env: str = "SCV_PRIVACY_KEY"
    key: str | None = None


class QualityConfig(_Model):
    max_row_drop: float = Field(0.5, ge=0, le=1)
    #: An order amount above this (in its own currency, or converted) is quarantined
    #: (`amount_too_large`). At most 1e15, so sums stay exact in DECIMAL(38, 6).
    max_amount: float = Field(1_000_000_000.0, gt=0, le=1e15)
    #: An order or event dated before this day is a placeholder, not a real date
    #: (`date_too_early`: 1900-01-01, 1970-01-01 …).
    min_date: date = date(1990, 1, 1)


class AudienceConfig(_Model):
    """A saved audience (README, Audiences): rebuilt every night and exported with the tables
    to exports/audiences/<name>/. Filters combine; a list means any of its values. Checked by
    `transforms.audience.saved_audience` when the config loads."""

    purpose: str = Field(description="consent purpose; only customers whose latest decision is a grant")
    stage: list[str] = Field(default_factory=list, description="lifecycle stage(s), e.g. at_risk")
    segment: list[str] = Field(default_factory=list, description="RFM segment(s), e.g. At Risk")
    channel: list[str] = Field(default_factory=list, description="seen on any of these channels")
    min_spend: float | None = None
    max_spend: float | None = None
    currency: str | None = Field(None, description="currency of the spend bounds (default: currency.reporting)")
    min_recency_days: int | None = None
    max_recency_days: int | None = None
    format: Literal["plain", "hashed"] = "hashed"

    @field_validator("stage", "segment", "channel", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v


class UiConfig(_Model):
    #: Where `make ui` serves the pages a night writes (run reports, Splink charts, Data Docs);
    #: the links in the Dagster UI point here. Bound to this host and port; 127.0.0.1 keeps it
    #: on this machine.
    files_url: str = "http://127.0.0.1:3001"

    @field_validator("files_url")
    @classmethod
    def _files_url(cls, v: str) -> str:
        if not re.match(r"^https?://[^/\s?#]+$", v.rstrip("/")):
            raise ValueError(f"expected http://HOST:PORT, got {v!r}")
        return v.rstrip("/")


class Config(_Model):
    """The whole project configuration."""

    config_path: Path = Path("scv.yml")
    data_dir: Path = Path("data")
    warehouse: Path = Path("data/warehouse/warehouse.duckdb")
    exports: Path = Path("data/exports")
    start_date: date = date(2024, 1, 1)
    sources: dict[str, SourceConfig]
    linkage: LinkageConfig = LinkageConfig()
    survivorship: SurvivorshipConfig = SurvivorshipConfig()
    currency: CurrencyConfig = CurrencyConfig()
    rfm: RfmConfig = RfmConfig()
    lifecycle: LifecycleConfig = LifecycleConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    privacy: PrivacyConfig = PrivacyConfig()
    quality: QualityConfig = QualityConfig()
    ui: UiConfig = UiConfig()
    audiences: dict[str, AudienceConfig] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> Config:
        if not self.sources:
            raise ValueError("sources: at least one source is needed")
        for name, src in self.sources.items():
            if not _NAME.match(name):
                raise ValueError(f"sources.{name}: source names must match [a-z0-9_]+")
            if src.person is not None:
                ref = self.sources.get(src.person.source)
                if ref is None or ref.kind != "person":
                    raise ValueError(
                        f"sources.{name}.person.source: {src.person.source!r} is not a person "
                        "source in this config"
                    )
        stem = self.warehouse.name.split(".")[0]
        if stem == "scv":
            raise ValueError(
                f"warehouse: a DuckDB file named {self.warehouse.name!r} makes its catalog "
                "'scv' clash with the schema 'scv' (scv.customer becomes ambiguous); "
                "name it e.g. warehouse.duckdb"
            )
        for name in self.audiences:
            if not _NAME.match(name):
                raise ValueError(f"audiences.{name}: audience names must match [a-z0-9_]+ (a folder name)")
        self.audience_specs()  # each value named in its dimension (stage / segment), bounds sane
        return self

    # Derived locations, all under data_dir.
    @property
    def landing_dir(self) -> Path:
        return self.data_dir / "landing"

    @property
    def staging_dir(self) -> Path:
        return self.data_dir / "staging"

    @property
    def staging_warehouse(self) -> Path:
        return self.staging_dir / "warehouse.staging.duckdb"

    @property
    def model_dir(self) -> Path:
        return self.linkage.model_dir

    @property
    def quality_dir(self) -> Path:
        return self.data_dir / "quality"

    @property
    def private_dir(self) -> Path:
        """Pages holding personal data for the people allowed to see it (owner-only)."""
        return self.data_dir / "private"

    @property
    def reports_dir(self) -> Path:
        return self.data_dir / "reports"

    @property
    def dagster_home(self) -> Path:
        return self.data_dir / "dagster_home"

    def person_sources(self) -> dict[str, SourceConfig]:
        return {n: s for n, s in self.sources.items() if s.kind == "person" and s.enabled}

    def sources_of(self, kind: str) -> dict[str, SourceConfig]:
        return {n: s for n, s in self.sources.items() if s.kind == kind and s.enabled}

    def privacy_key(self) -> str | None:
        return self.privacy.key or os.environ.get(self.privacy.key_env)

    def audience_specs(self) -> tuple:
        """The saved audiences as checked `transforms.audience.AudienceSpec`s (ValueError naming
        the audience and the problem otherwise)."""
        if not self.audiences:
            return ()
        from transforms.audience import saved_audience
        from transforms.rfm import segment_rules

        segments = [r["name"] if isinstance(r, dict) else r.name for r in segment_rules(self.rfm)]
        return tuple(
            saved_audience(name, a.model_dump(), segments, reporting_currency=self.currency.reporting)
            for name, a in self.audiences.items()
        )


def default_config_path() -> Path:
    """`$SCV_CONFIG` if set, else the demo config written by `scv demo` (data/sources/scv.yml)."""
    env = os.environ.get("SCV_CONFIG")
    return Path(env) if env else DEFAULT_CONFIG


def _resolve(base: Path, p: Path | None) -> Path | None:
    if p is None:
        return None
    p = Path(os.path.expanduser(str(p)))
    return p if p.is_absolute() else (base / p).resolve()


def _format_error(path: Path, err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        loc = ".".join(str(x) for x in e["loc"] if x != "__root__") or "(top level)"
        msg = e["msg"].removeprefix("Value error, ")
        lines.append(f"{path}: {loc}: {msg}")
    return "\n".join(lines)


#: The moment a `date_format` must write and read back (day > 12, so day and month cannot swap
#: unnoticed; aware, so %z and %Z have something to write).
_SAMPLE_MOMENT = datetime(2001, 11, 23, 14, 15, 16, tzinfo=UTC)


def date_format_problem(fmt: str) -> str | None:
    """Why the strftime pattern `fmt` cannot serve as a source's `date_format`, or None when it
    can: 23 November 2001 written with it must read back, with pandas as the pipeline reads
    dates (quality/validate.py, transforms/standardise/dates.py), as that same day."""
    if "%" not in fmt:
        return f"{fmt!r} has no strftime directive; write the pattern with them, e.g. '%d/%m/%Y'"
    import pandas as pd

    try:
        written = _SAMPLE_MOMENT.strftime(fmt)
        read = pd.to_datetime(pd.Series([written]), format=fmt, errors="raise", utc=True).iloc[0]
    except (ValueError, TypeError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"{fmt!r} is not a usable strftime pattern: {reason}"
    if read.date() != _SAMPLE_MOMENT.date():
        return (
            f"{fmt!r} cannot hold a whole date: 23 November 2001 written with it is {written!r}, "
            f"read back as {read.date().isoformat()}; it needs the day, month and year "
            "(e.g. '%d/%m/%Y')"
        )
    return None


class _ConfigLoader(yaml.SafeLoader):
    """PyYAML's safe loader; `read_yaml` also refuses duplicate keys, which PyYAML would let
    the last one win silently (a second `crm:` replacing the first source)."""


def read_yaml(path: Path) -> Any:
    """The YAML document in `path`. Raises yaml.YAMLError (with its line and column, see
    `yaml_problem`) for invalid YAML and for a key given twice in one mapping."""
    text = path.read_text(encoding="utf-8")
    _refuse_duplicate_keys(yaml.compose(text, Loader=_ConfigLoader))
    return yaml.load(text, Loader=_ConfigLoader)  # a SafeLoader: no arbitrary objects


def _refuse_duplicate_keys(root: yaml.Node | None) -> None:
    seen_nodes: set[int] = set()
    todo = [root] if root is not None else []
    while todo:
        node = todo.pop()
        if id(node) in seen_nodes:  # an alias shares its anchor's node
            continue
        seen_nodes.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first: dict[tuple[str, str], yaml.Mark] = {}
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
                    where = first.setdefault((key.tag, key.value), key.start_mark)
                    if where is not key.start_mark:
                        raise yaml.constructor.ConstructorError(
                            None,
                            None,
                            f"duplicate key {key.value!r} (first given at line {where.line + 1}, "
                            f"column {where.column + 1})",
                            key.start_mark,
                        )
                todo.extend((key, value))
        elif isinstance(node, yaml.SequenceNode):
            todo.extend(node.value)


def yaml_problem(exc: yaml.YAMLError) -> str:
    """A YAML error as one line with its line and column (1-based), e.g. `line 7, column 5:
    not valid YAML: mapping values are not allowed here`."""
    if not isinstance(exc, yaml.MarkedYAMLError):
        return f"not valid YAML: {' '.join(str(exc).split())}"
    mark = exc.problem_mark or exc.context_mark
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    problem = " ".join((exc.problem or exc.context or "invalid").split())
    context = ""
    if exc.context and exc.problem:
        context = f" ({' '.join(exc.context.split())}"
        if exc.context_mark is not None and exc.context_mark is not mark:
            context += f" from line {exc.context_mark.line + 1}, column {exc.context_mark.column + 1}"
        context += ")"
    return f"{where}not valid YAML: {problem}{context}"


def load_config(path: str | Path | None = None) -> Config:
    """Read, validate and resolve a config file. Raises ConfigError naming file, key and problem."""
    path = Path(path) if path else default_config_path()
    if not path.exists():
        raise ConfigError(
            f"{path}: config file not found (run `scv demo` to write the demo config, "
            "or pass --config / set SCV_CONFIG)"
        )
    try:
        raw = read_yaml(path)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: {yaml_problem(exc)}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte {exc.start:,} is {exc.object[exc.start]:#04x}): "
            "save the config as UTF-8"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file: {exc.strerror or exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: (top level): expected a mapping of settings")
    raw = dict(raw)
    sources = raw.get("sources")
    if isinstance(sources, dict):
        raw["sources"] = {
            n: ({**s, "name": n} if isinstance(s, dict) else s) for n, s in sources.items()
        }
    try:
        cfg = Config.model_validate({**raw, "config_path": path})
    except ValidationError as exc:
        raise ConfigError(_format_error(path, exc)) from None
    except ValueError as exc:  # property errors raised outside pydantic's wrapping
        raise ConfigError(f"{path}: {exc}") from None
    return resolve_paths(cfg, path.resolve().parent)


def resolve_paths(cfg: Config, base: Path) -> Config:
    """Return `cfg` with every relative path made absolute against `base`."""
    sources = {
        n: s.model_copy(update={"path": _resolve(base, s.path)}) for n, s in cfg.sources.items()
    }
    data_dir = _resolve(base, cfg.data_dir)
    linkage = cfg.linkage.model_copy(
        update={
            "model_dir": _resolve(data_dir, cfg.linkage.model_dir),
            "labels": _resolve(base, cfg.linkage.labels),
            "overrides": _resolve(base, cfg.linkage.overrides),
        }
    )
    currency = cfg.currency.model_copy(update={"rates_file": _resolve(base, cfg.currency.rates_file)})
    return cfg.model_copy(
        update={
            "config_path": cfg.config_path.resolve(),
            "data_dir": data_dir,
            "warehouse": _resolve(base, cfg.warehouse),
            "exports": _resolve(base, cfg.exports),
            "sources": sources,
            "linkage": linkage,
            "currency": currency,
        }
    )
