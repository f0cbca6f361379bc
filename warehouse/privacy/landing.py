"""The rows of erased people held back as a source is landed.

`split_erased_raw` takes them out of the raw rows read, so an erased person's rows never reach
the landed Parquet (nor, after it, staging, the Data Docs samples or the quarantine's `raw`).
What is kept of them, in `landing/<source>/erased.parquet`, is their row number, record id and
a detail naming the subject by a hash prefix, so that the accepted step quarantines them as
`erased` (`erased_quarantine`) and every row read is still accounted for
(`rows_in = rows_accepted + rows_quarantined`).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pandas as pd

from sources.config import Config, SourceConfig
from sources.readers import required_columns, to_canonical
from warehouse.privacy.erased_rows import ERASED_RULE, erased_source_rows

__all__ = [
    "ERASED_FILE",
    "erased_quarantine",
    "landed_erased",
    "read_key",
    "split_erased_raw",
    "write_landed_erased",
]

#: Per source, next to the landed Parquet: the rows of erased people held back as it was read.
ERASED_FILE = "erased.parquet"


def _erased_path(cfg: Config, name: str) -> Path:
    return cfg.landing_dir / name / ERASED_FILE


def landed_erased(cfg: Config, name: str) -> pd.DataFrame:
    """The rows of `name` held back as erased when it was last landed (`_row_number`,
    `source_record_id`, `detail`); empty when none or before the first landing."""
    path = _erased_path(cfg, name)
    if path.exists():
        return pd.read_parquet(path)
    return erased_source_rows(pd.DataFrame(), name, set(), None)


def write_landed_erased(cfg: Config, name: str, erased: pd.DataFrame) -> None:
    """Replace `landing/<name>/erased.parquet` whole (written before the landed rows)."""
    path = _erased_path(cfg, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    erased.to_parquet(tmp, index=False)
    os.replace(tmp, path)


def read_key(cfg: Config, src: SourceConfig, suppressed: set[str]) -> str:
    """What the landed rows depend on besides the file's bytes: how the file is read (format,
    encoding, delimiter, table, id and mapped columns) and who is erased (the suppression list,
    and for an order / event / consent source the person rows its person source held back).
    A landing whose file and read key are unchanged is not read again."""
    erased_refs: list[str] = []
    if src.person is not None:
        erased_refs = sorted(
            landed_erased(cfg, src.person.source)["source_record_id"].dropna().astype(str)
        )
    parts = {
        "read": src.model_dump(
            mode="json",
            include={"format", "encoding", "delimiter", "quotechar", "table", "id", "columns", "person", "constants", "default_country"},
        ),
        "suppressed": sorted(suppressed),
        "erased_refs": erased_refs,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def split_erased_raw(
    raw: pd.DataFrame, cfg: Config, src: SourceConfig, suppressed: set[str], key: str | None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rows to land, rows of erased people held back) of a source's raw frame."""
    erased_refs: set[str] = set()
    if src.person is not None:
        erased_refs = set(landed_erased(cfg, src.person.source)["source_record_id"].dropna().astype(str))
    if not suppressed and not erased_refs:
        return raw, erased_source_rows(pd.DataFrame(), src.name, set(), None)
    needed = [c for c in dict.fromkeys(required_columns(src)) if c in raw.columns]
    canon = to_canonical(raw[[*needed, "_row_number"]], src)
    erased = erased_source_rows(
        canon,
        src.name,
        suppressed,
        key,
        default_country=src.default_country,
        person_source=src.person.source if src.person is not None else None,
        erased_person_ids=erased_refs,
    )
    if erased.empty:
        return raw, erased
    kept = raw[~raw["_row_number"].isin(erased["_row_number"])].reset_index(drop=True)
    return kept, erased


def erased_quarantine(erased: pd.DataFrame, source: str) -> pd.DataFrame:
    """Quarantine rows (docs/architecture.md §3) of the rows held back at landing: rule
    `erased`, no raw row."""
    return pd.DataFrame(
        {
            "source": pd.Series(source, index=erased.index, dtype="str"),
            "row_number": erased["_row_number"].astype("int64"),
            "source_record_id": erased["source_record_id"].astype("str"),
            "rule": pd.Series(ERASED_RULE, index=erased.index, dtype="str"),
            "detail": erased["detail"].astype("str"),
            "raw": pd.Series(None, index=erased.index, dtype=object),
        }
    )
