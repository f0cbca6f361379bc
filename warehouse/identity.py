"""The identity stage on the warehouse's side: the person records it reads, the model file it
keeps, the files it hands to the linkage stage (`transforms.linkage.stage`) and gets back.

The Dagster assets of the identity group each make one call here.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib.metadata import version as _package_version
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from sources.config import Config
from transforms import linkage
from transforms.linkage.overrides import as_labels
from transforms.linkage.review_page import review_page_html
from transforms.linkage.settings import spark_value
from transforms.linkage import linkage_stage
from transforms.linkage.stage import LinkageFiles, LinkageJob
from warehouse.nightly import state_of
from warehouse.nightly.linkage import SECTION, linkage_mode, previous_linkage, stage_linkage
from warehouse.store import Warehouse, fetch_frame, stack_view, write_frame

__version__ = _package_version("scv-warehouse")

__all__ = [
    "CLUSTERS_FILE",
    "REVIEW_FILE",
    "LinkFigures",
    "ModelChoice",
    "available_fields",
    "clustering_key",
    "ensure_model",
    "link_persons",
    "linkage_settings",
    "load_persons",
    "model_path",
    "stack_person_records",
    "write_review_page",
]

#: A logger with `.info` and `.warning` (`logging.Logger`, or a Dagster step's `context.log`).
Log = Any

MODEL_FILE = "linkage_model.json"
#: Tonight's linkage files, staged next to the staging file (`Warehouse.staged_file`): written
#: once by the linkage stage and read by a later step, or handed over as state.
CLUSTERS_FILE = "clusters.parquet"
EDGES_FILE = "edges.parquet"
FINGERPRINTS_FILE = "record_fingerprints.parquet"
#: Tonight's review queue (pairs for a steward), by unique id; the xref step names customers.
REVIEW_FILE = "review_pairs.parquet"
#: Every standardised person record, for the linkage stage (which reads files, not the warehouse).
PERSONS_FILE = "person_records.parquet"
#: The published night's clusters (from its xref), for an incremental night.
PUBLISHED_CLUSTERS_FILE = "published_clusters.parquet"


def linkage_settings(cfg: Config, **overrides: Any) -> linkage.LinkageSettings:
    """The linkage stage's settings from the config's `linkage:` block; Splink's spill folder
    (and Spark's checkpoints) under `<data_dir>/tmp/linkage`."""
    lc = cfg.linkage
    values: dict[str, Any] = {
        "engine": lc.engine,
        "threshold": lc.threshold,
        "u_max_pairs": lc.u_max_pairs,
        "em_max_pairs": lc.em_max_pairs,
        "seed": lc.seed,
        "labels": lc.labels,
        "memory_limit": lc.memory_limit,
        "guards": lc.guards,
        "spark_master": lc.spark.master,
        "spark_conf": {k: spark_value(v) for k, v in lc.spark.conf.items()},
        "temp_directory": cfg.data_dir / "tmp" / "linkage",
    }
    return linkage.LinkageSettings(**{**values, **overrides})


def model_path(cfg: Config) -> Path:
    return cfg.model_dir / MODEL_FILE


def clustering_key(
    settings: linkage.LinkageSettings,
    model: dict | None = None,
    overrides: linkage.OverrideSet | None = None,
) -> str:
    """What last night's clusters depend on besides the records and edges: the threshold, the
    guard policy (with what the model's evidence made of it), the steward's overrides and the
    code. When it changes, every record is clustered again."""
    policy = linkage.guard_policy(model, settings.guards)
    applied = overrides.fingerprint() if overrides is not None else "none"
    return f"{settings.threshold}|{policy.key()}|{applied}|{__version__}"


# ----------------------------------------------------------------------------- person records
def stack_person_records(store: Warehouse, person_sources: list[str]) -> dict[str, int]:
    """`stage.person_records`: every accepted person record of `person_sources` in one view;
    returns the records per source."""
    with store.stage() as con:
        stack_view(con, "person_records", [f"stage.accepted_{n}" for n in person_sources])
        return dict(
            con.execute(
                "SELECT source, count(*) FROM stage.person_records GROUP BY ALL ORDER BY 1"
            ).fetchall()
        )


def load_persons(store: Warehouse, columns: tuple[str, ...] | None = None) -> pd.DataFrame:
    """Tonight's standardised person records: every column, or only those of `columns` that
    exist."""
    with store.stage() as con:
        if columns is None:
            return fetch_frame(con, "SELECT * FROM stage.person_records")
        have = {r[0] for r in con.execute("DESCRIBE stage.person_records").fetchall()}
        cols = ", ".join(f'"{c}"' for c in columns if c in have) or "unique_id"
        return fetch_frame(con, f"SELECT {cols} FROM stage.person_records")


def _write_persons_file(store: Warehouse) -> Path:
    with store.stage() as con:
        store.write_staged(con, PERSONS_FILE, "SELECT * FROM stage.person_records")
    return store.staged_file(PERSONS_FILE)


def available_fields(con: duckdb.DuckDBPyConnection, relation: str = "stage.person_records") -> list[str]:
    """`linkage.available_fields` of the person records in `relation`, counted in SQL instead
    of on a frame of every record (2 s at a million people). A value that starts with a
    printable ASCII character is filled under any meaning of blank; only the others (blanks,
    and values starting with a space or a non-ASCII letter) are fetched and judged by the
    linkage's own rule, so the result is the same."""
    have = {r[0] for r in con.execute(f"DESCRIBE {relation}").fetchall()}
    mains = [c for c in linkage.MATCH_FIELD_COLUMNS if c != "unique_id" and c in have]
    n = int(con.execute(f"SELECT count(*) FROM {relation}").fetchall()[0][0])
    if not mains:
        return linkage.fields_filled_enough(n, {})
    # first character printable ASCII other than a space (codes 33-126)
    ascii_ = {c: f'ascii(CAST("{c}" AS VARCHAR)) BETWEEN 33 AND 126' for c in mains}
    counted = ", ".join(f'count(*) FILTER ({ascii_[c]}), count("{c}")' for c in mains)
    row = con.execute(f"SELECT {counted} FROM {relation}").fetchall()[0]
    filled = {}
    for i, c in enumerate(mains):
        filled[c] = int(row[2 * i])
        if row[2 * i + 1] > row[2 * i]:  # the frame rule decides the rest
            rest = fetch_frame(con, f'SELECT "{c}" FROM {relation} WHERE "{c}" IS NOT NULL AND NOT {ascii_[c]}')
            filled[c] += linkage.count_not_blank(rest[c])
    return linkage.fields_filled_enough(n, filled)


# ----------------------------------------------------------------------------- the model
@dataclass(frozen=True)
class ModelChoice:
    """The model tonight links with: `reason` it was trained (None: the saved one reused)."""

    model: dict[str, Any]
    reason: str | None
    fields: list[str]
    path: Path


def ensure_model(cfg: Config, store: Warehouse, retrain: bool, log: Log) -> ModelChoice:
    """The saved model, or a new one trained when asked (`retrain`), when none is saved, or
    when the sources provide fields the saved one does not cover; saved atomically."""
    path = model_path(cfg)
    with store.stage() as con:
        fields = available_fields(con)
    saved = json.loads(path.read_text()) if path.exists() else None
    reason = None
    if retrain:
        reason = "retrain requested"
    elif saved is None:
        reason = "no saved model"
    elif not linkage.model_covers(saved, fields):
        reason = f"saved model does not cover the fields {fields}"
    if reason is None:
        log.info(f"reusing model {saved.get('scv', {}).get('version')} from {path}")
        return ModelChoice(saved, None, fields, path)
    log.info(f"training a new linkage model: {reason}")
    settings = linkage_settings(cfg)
    labels = None
    if cfg.linkage.overrides_as_labels:
        labels = as_labels(linkage.read_overrides(cfg.linkage.overrides))
        if settings.labels is not None:
            labels = pd.concat([linkage.read_labels(settings.labels), labels], ignore_index=True)
        log.info(f"training m from {len(labels):,} labelled pairs (overrides included)")
    model = linkage_stage(settings).train(
        _write_persons_file(store), created_at=datetime.now(timezone.utc), labels=labels
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(model, indent=2, default=str))
    os.replace(tmp, path)
    return ModelChoice(model, reason, fields, path)


# ----------------------------------------------------------------------------- linking
@dataclass
class LinkFigures:
    """What tonight's linkage did, for the Dagster metadata."""

    mode: str
    threshold: float
    guard_policy: str
    size_distribution: dict[int, int]
    overrides_in_file: int
    overrides_stale: int
    review_pairs: int
    metrics: dict[str, Any]
    charts: dict[str, str]

    @property
    def records(self) -> int:
        return sum(k * v for k, v in self.size_distribution.items())

    @property
    def people(self) -> int:
        return sum(self.size_distribution.values())

    @property
    def in_multi(self) -> int:
        return sum(k * v for k, v in self.size_distribution.items() if k > 1)


def write_published_clusters(store: Warehouse) -> Path:
    """The published xref's clusters (`source, source_record_id, cluster_key,
    match_probability`) as a staged Parquet file; empty when nothing is published yet."""
    cols = "source, source_record_id, cluster_key, match_probability"
    with store.stage() as con, store.published_attached(con) as attached:
        if attached:
            store.write_staged(con, PUBLISHED_CLUSTERS_FILE, f"SELECT {cols} FROM published.scv.customer_xref")
        else:
            store.write_staged(
                con,
                PUBLISHED_CLUSTERS_FILE,
                "SELECT NULL::VARCHAR AS source, NULL::VARCHAR AS source_record_id, "
                "NULL::VARCHAR AS cluster_key, NULL::DOUBLE AS match_probability LIMIT 0",
            )
    return store.staged_file(PUBLISHED_CLUSTERS_FILE)


def link_persons(cfg: Config, store: Warehouse, *, full_requested: bool, run_id: str, log: Log) -> LinkFigures:
    """Tonight's linkage, through the configured engine's linkage stage: incremental when the
    published night's state allows (`warehouse.nightly.linkage`), full otherwise. Stages the
    clusters, edges and review pairs for the xref step, tonight's scope and figures in
    staging, and tonight's linkage state for the publish step to commit."""
    model = json.loads(model_path(cfg).read_text())
    settings = linkage_settings(cfg)
    with store.stage() as con:
        ids = fetch_frame(con, "SELECT unique_id FROM stage.person_records")["unique_id"]
    # A contradiction stops the night here (OverrideConflictError names the rows).
    overrides = linkage.resolve_overrides(cfg.linkage.overrides, ids)
    if overrides.stale:
        log.warning(
            f"{cfg.linkage.overrides}: {len(overrides.stale)} override(s) name a record that "
            f"does not exist tonight and were not applied (rows {list(overrides.stale)[:10]})"
        )
    version = str(model.get("scv", {}).get("version"))
    clustering = clustering_key(settings, model, overrides)
    state = state_of(cfg)
    section = state.published(SECTION)
    stage = linkage_stage(settings)
    mode = linkage_mode(section, version, stage.fingerprint_version, full_requested)
    log.info(f"linking {len(ids):,} person records: {mode}")
    files = LinkageFiles(
        clusters=store.staged_file(CLUSTERS_FILE),
        edges=store.staged_file(EDGES_FILE),
        fingerprints=store.staged_file(FINGERPRINTS_FILE),
        review=store.staged_file(REVIEW_FILE),
    )
    previous = None
    if mode == "incremental":
        assert section is not None
        previous = previous_linkage(section, write_published_clusters(store))
    job = LinkageJob(
        persons=_write_persons_file(store),
        model=model,
        overrides=overrides,
        out=files,
        clustering=clustering,
        previous=previous,
        # a full night draws Splink's charts, beside the run's report
        charts_dir=cfg.reports_dir / "linkage" / run_id if previous is None else None,
    )
    run = stage.link(job, log)
    scope = run.scope
    with store.stage() as con:
        # Tonight's scope of re-clustered records, for the xref (all of them on a full night).
        write_frame(
            con,
            "relink_scope",
            pd.DataFrame({"unique_id": sorted(scope) if scope is not None else []}, dtype="str"),
        )
        write_frame(
            con,
            "linkage_state",
            pd.DataFrame(
                {
                    "model_version": [version],
                    "clustering": [clustering],
                    "scope": ["partial" if scope is not None else "all"],
                    # For the run report: the steward's overrides tonight.
                    "overrides_must": [len(overrides.must)],
                    "overrides_cannot": [len(overrides.cannot)],
                    "overrides_stale": [len(overrides.stale)],
                }
            ),
        )
        size_dist = dict(
            con.execute(
                f"SELECT n, count(*) FROM (SELECT count(*) AS n FROM {store.staged_relation(CLUSTERS_FILE)} "
                "GROUP BY cluster_key) GROUP BY n ORDER BY n"
            ).fetchall()
        )
    stage_linkage(state, files, version, clustering, stage.fingerprint_version)
    return LinkFigures(
        mode=mode,
        threshold=settings.threshold,
        guard_policy=linkage.guard_policy(model, settings.guards).describe(),
        size_distribution={int(k): int(v) for k, v in size_dist.items()},
        overrides_in_file=len(overrides) + len(overrides.stale),
        overrides_stale=len(overrides.stale),
        review_pairs=run.review_pairs,
        metrics=run.metrics,
        charts=run.charts,
    )


# ----------------------------------------------------------------------------- review page
def write_review_page(cfg: Config, store: Warehouse, title: str) -> tuple[Path, int]:
    """Tonight's review queue as one HTML page for the data steward, with both records side
    by side and Splink's waterfall per pair, in the private folder (owner-only, never exported).
    Returns the page's path and the number of pairs."""
    with store.stage() as con:
        queue = fetch_frame(con, "SELECT * FROM scv.review_queue")
    persons = load_persons(store) if len(queue) else pd.DataFrame({"unique_id": []})
    model = json.loads(model_path(cfg).read_text())
    page, waterfall = review_page_html(
        persons, model, queue, settings=linkage_settings(cfg), title=title
    )
    return write_private_page(cfg.private_dir / "review", page, waterfall), len(queue)


def write_private_page(folder: Path, page: str, waterfall: str | None) -> Path:
    """Write the review page (and its waterfall page) into `folder`, readable by the owner
    only; returns the page's path."""
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    written = folder / "review_queue.html"
    for name, text in (("review_waterfall.html", waterfall), (written.name, page)):
        if text is None:
            continue
        tmp = folder / f".{name}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, folder / name)
    return written
