"""What changed for a source since it was last landed and validated, and what a night leaves
for the next: is tonight's file the one landed, does last night's validation still hold, were
tonight's person rows standardised under the same settings.

Three kinds of state, each beside what it describes (not in the published state manifest: a
source's landing and validation stand for the file and the staging tables they sit with, which a
failed night keeps, and `scv forget` deletes `landing/<source>/` with them):

- `landing/<source>/landing.json`: the file's fingerprint and how it was read (the suppression
  list's key), with the landing's metadata and the columns of the landing before.
- `landing/<source>/accepted.json`: the key of the inputs of the last validation, its as-of
  date, its summary and checks (reported again on a night that reuses it).
- `stage.std_key_<source>`: the settings and code last night's standardised rows were made
  under, next to `stage.std_inputs_<source>` (what each was made from).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date
from importlib.metadata import version
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from sources.config import Config, SourceConfig
from sources.rates import rates_fingerprint
from warehouse.privacy import ERASED_RULE
from warehouse.store import relation_names, write_frame

__all__ = [
    "LandingState",
    "landing_state",
    "previous_standardised",
    "reusable_validation",
    "save_landing_state",
    "save_validation",
    "stage_standardise_key",
    "standardise_key",
    "validation_key",
]

__version__ = version("scv-warehouse")


# ------------------------------------------------------------------------- landing
def _landing_state_path(cfg: Config, name: str) -> Path:
    return cfg.landing_dir / name / "landing.json"


@dataclass(frozen=True)
class LandingState:
    """What the last landing of a source recorded (empty before the first)."""

    values: dict[str, Any]

    @property
    def fingerprint(self) -> str | None:
        return self.values.get("fingerprint")

    @property
    def metadata(self) -> dict[str, Any]:
        return self.values.get("metadata", {})

    @property
    def previous_columns(self) -> list[str] | None:
        """The columns of the landing before the last one (what the schema-drift check compares
        tonight's columns with)."""
        return self.values.get("previous_columns")

    def unchanged(self, fingerprint: str, read_key: str | None, landed: Path) -> bool:
        """The file is the one last landed, read the same way, and its landing is still there."""
        return (
            self.values.get("fingerprint") == fingerprint
            and self.values.get("read_key") == read_key
            and landed.exists()
        )


def landing_state(cfg: Config, name: str) -> LandingState:
    """The last landing of source `name` (`landing.json`)."""
    p = _landing_state_path(cfg, name)
    return LandingState(json.loads(p.read_text()) if p.exists() else {})


def save_landing_state(
    cfg: Config, name: str, fingerprint: str, read_key: str | None, metadata: dict, previous: LandingState
) -> None:
    """Record tonight's landing of `name`, keeping the columns of the one before."""
    state = {
        "fingerprint": fingerprint,
        "read_key": read_key,
        "metadata": metadata,
        # what the schema-drift check compares tonight's columns with
        "previous_columns": previous.metadata.get("columns"),
    }
    _landing_state_path(cfg, name).write_text(json.dumps(state))


# ------------------------------------------------------------------------- validation
def _validation_state_path(cfg: Config, name: str) -> Path:
    return cfg.landing_dir / name / "accepted.json"


def known_ids_digest_sql(ref: str) -> str:
    """A digest of the ids person source `ref` accepted tonight and those it quarantined as
    erased (one parameter: the erased rule)."""
    return f"""
        WITH ids AS (
            SELECT 'a' AS k, source_record_id FROM stage.accepted_{ref}
            UNION ALL
            SELECT 'e', source_record_id FROM stage.quarantine_{ref}
            WHERE rule = ? AND source_record_id IS NOT NULL
        )
        SELECT count(*), bit_xor(hash(k, source_record_id)),
               sum(hash(k || source_record_id)::HUGEINT) % 18446744073709551557
        FROM ids
        """


def _known_ids_digest(con: duckdb.DuckDBPyConnection, ref: str) -> str:
    """A digest of the person ids an activity source is checked against: the ids the referenced
    person source accepted tonight and those it quarantined as erased. A change of addresses or
    emails in the person file leaves it alone, so the activity rows need no re-validation."""
    tables = relation_names(con, "stage")
    if not {f"accepted_{ref}", f"quarantine_{ref}"} <= tables:
        return "none"
    row = con.execute(known_ids_digest_sql(ref), [ERASED_RULE]).fetchall()[0]
    return ":".join(str(v) for v in row)


def validation_key(
    cfg: Config, src: SourceConfig, suppressed: set[str], con: duckdb.DuckDBPyConnection
) -> str:
    """What a validation result depends on, besides the as-of date: the landed file, the source's
    config, the rules shared by all sources, the set of ids the referenced person source accepted
    (not its other fields), the suppression list and this code's version."""
    ref = _known_ids_digest(con, src.person.source) if src.person is not None else ""
    parts = {
        "landing": landing_state(cfg, src.name).fingerprint,
        "source": src.model_dump(mode="json"),
        "currency": rates_fingerprint(cfg.currency) if src.kind == "order" else None,
        "plausible": [cfg.quality.max_amount, cfg.quality.min_date.isoformat()],
        "max_row_drop": cfg.quality.max_row_drop,
        "ref": ref,
        "suppressed": sorted(suppressed),
        "code": __version__,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def reusable_validation(
    cfg: Config, name: str, key: str, as_of: date, con: duckdb.DuckDBPyConnection
) -> dict[str, Any] | None:
    """Last night's validation of `name` ({"summary", "checks"}) when it still holds: same
    inputs, the as-of date has not gone back (a date that was not in the future then is not
    now), no row was quarantined for a future date, and its staging tables are still there."""
    path = _validation_state_path(cfg, name)
    state = json.loads(path.read_text()) if path.exists() else {}
    if state.get("key") != key or state.get("future_date_rows", 1) != 0:
        return None
    if state.get("as_of", "9999-12-31") > as_of.isoformat():
        return None
    if not {f"accepted_{name}", f"quarantine_{name}"} <= relation_names(con, "stage"):
        return None
    return state


def save_validation(
    cfg: Config,
    name: str,
    key: str,
    as_of: date,
    future_date_rows: int,
    summary: dict[str, Any],
    checks: list[dict[str, Any]],
) -> None:
    """Record tonight's validation of `name`, to be reused while its inputs stay the same."""
    _validation_state_path(cfg, name).write_text(
        json.dumps(
            {
                "key": key,
                "as_of": as_of.isoformat(),
                "future_date_rows": future_date_rows,
                "summary": summary,
                "checks": checks,
            },
            default=str,
        )
    )


# ------------------------------------------------------------------------- standardisation
def standardise_key(src: SourceConfig) -> str:
    """What a person source's standardised rows depend on besides their own canonical values
    (and the as-of date, which `transforms.standardise.reuse` checks): the settings
    `standardise_persons` reads and this code. Not the file's path: a moved export whose rows
    are the same needs no new standardisation."""
    parts = {
        "name": src.name,
        "date_format": src.date_format,
        "default_country": src.default_country,
        "code": __version__,
        "input_hash": f"duckdb {duckdb.__version__}",
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def previous_standardised(
    con: duckdb.DuckDBPyConnection, name: str, key: str
) -> tuple[str | None, str | None]:
    """(table of last validation's standardised rows of `name`, table of their input hashes),
    when they were made under the same config and code; (None, None) otherwise."""
    tables = relation_names(con, "stage")
    if not {f"accepted_{name}", f"std_inputs_{name}", f"std_key_{name}"} <= tables:
        return None, None
    if con.execute(f"SELECT key FROM stage.std_key_{name}").fetchall() != [(key,)]:
        return None, None
    return f"stage.accepted_{name}", f"stage.std_inputs_{name}"


def stage_standardise_key(con: duckdb.DuckDBPyConnection, name: str, key: str) -> None:
    """Record the key tonight's standardised rows of `name` were made under (in the caller's
    transaction, with the rows)."""
    write_frame(con, f"std_key_{name}", pd.DataFrame({"key": [key]}))
