"""Write-audit-publish, on the warehouse's side: audit the staged night, then swap it in with
the exports and the nightly state's manifest in one journal; and check afterwards that the
exports hold the published night."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sources.config import Config
from warehouse.audit import audit_staged_warehouse
from warehouse.exports import ExportError
from warehouse.nightly import state_of
from warehouse.schema import SCHEMA, TABLES
from warehouse.store import Warehouse

__all__ = ["ExportsCheck", "PublishRefused", "Published", "check_exports", "publish_night"]


class PublishRefused(RuntimeError):
    """Nothing was published: a failed audit (`failures` lists them) or an export that cannot be
    written. The last published warehouse, exports and state stay as they were."""

    def __init__(self, message: str, failures: list[str] | None = None) -> None:
        super().__init__(message)
        self.failures = failures or []


@dataclass
class Published:
    """What the publish step put in place: row counts per table and the audits' figures."""

    counts: dict[str, int]
    audits: dict[str, Any]


def publish_night(cfg: Config, store: Warehouse, run_id: str, as_of: str) -> Published:
    """Audit the staged night; if it passes, publish the warehouse, the exports and tonight's
    nightly state (linkage, golden records) together. Raises PublishRefused otherwise."""
    with store.stage() as con:
        failures, figures = audit_staged_warehouse(con)
    if failures:
        raise PublishRefused("audit failed, nothing published: " + "; ".join(failures), failures)
    state = state_of(cfg)
    manifest = state.prepare_commit(run_id, as_of)
    try:
        counts = store.publish(run_id, as_of, also_move=manifest)
    except ExportError as exc:
        raise PublishRefused(str(exc)) from None
    state.sweep()
    return Published(counts=counts, audits=figures)


@dataclass
class ExportsCheck:
    """The exports as published: their manifest, and one line per export that does not hold
    the published night (empty when all do)."""

    manifest: dict[str, Any]
    problems: list[str] = field(default_factory=list)

    @property
    def rows_by_table(self) -> dict[str, int]:
        return {k: v["rows"] for k, v in self.manifest.get("tables", {}).items()}


def check_exports(store: Warehouse, run_id: str) -> ExportsCheck:
    """Whether every export holds the published night: the manifest names `run_id`, and each
    table's export file holds as many rows as the published table."""
    import json

    manifest_path = store.exports / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    problems = []
    if manifest.get("run_id") != run_id:
        problems.append(f"{manifest_path} is of run {manifest.get('run_id')}")
    with store.read_published() as con:
        for name in TABLES:
            path = store.exports / name / "data.parquet"
            published = con.execute(f"SELECT count(*) FROM {SCHEMA}.{name}").fetchall()[0][0]
            exported = (
                con.execute("SELECT count(*) FROM read_parquet(?)", [str(path)]).fetchall()[0][0]
                if path.exists()
                else None
            )
            if exported != published:
                problems.append(f"{path} holds {exported} rows, scv.{name} {published}")
    return ExportsCheck(manifest=manifest, problems=problems)
