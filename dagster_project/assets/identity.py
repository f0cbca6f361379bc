"""Identity resolution assets: all standardised person records, the Splink model, the clusters."""


import json
import os
from datetime import datetime, timezone
from importlib.metadata import version as _package_version
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd

from dagster_project import constants as C
from dagster_project.assets.common import file_link, night
from dagster_project.assets.sources import accepted_key
from dagster_project.file_server import page_link
from dagster_project.metadata import readable, training_metadata
from dagster_project.splink_log import splink_to_dagster
from dagster_project.resources import WarehouseResource
from sources.config import Config
from transforms import linkage
from transforms.linkage.review_page import review_page_html
from transforms.incremental import (
    FINGERPRINT_VERSION,
    carried_edges_sql,
    fingerprints_sql,
    plan_incremental,
    relink_scope,
)
from warehouse.store import drop_relation, fetch_frame, stack_view, write_frame

__version__ = _package_version("scv-warehouse")

MODEL_FILE = "linkage_model.json"
FULL_TAG = "scv/full"
#: Tonight's linkage results, staged as Parquet next to the staging file
#: (`Warehouse.staged_file`): each is written once and read by a later step or handed over as
#: state by the publish step; staging tables of 2.5M rows cost 1-3 s each to write.
CLUSTERS_FILE = "clusters.parquet"
EDGES_FILE = "edges.parquet"
FINGERPRINTS_FILE = "record_fingerprints.parquet"
#: Tonight's review queue (pairs for a steward), by unique id; the xref step names customers.
REVIEW_FILE = "review_pairs.parquet"
#: Staging tables that held these before.
_OLD_TABLES = ("clusters", "edges", "record_fingerprints")


def _state_dir(cfg: Config) -> Path:
    return cfg.data_dir / "state" / "linkage"


def load_linkage_state(cfg: Config) -> dict | None:
    """Paths of the edges and record fingerprints of the last PUBLISHED night (saved by the
    publish step), and what they were made with."""
    d = _state_dir(cfg)
    files = [d / "edges.parquet", d / "records.parquet", d / "state.json"]
    if not all(f.exists() for f in files):
        return None
    meta = json.loads(files[2].read_text())
    return {
        "edges": files[0],
        "records": files[1],
        **{k: meta.get(k) for k in ("model_version", "clustering", "fingerprint")},
    }


def save_linkage_state(cfg: Config, warehouse: WarehouseResource) -> None:
    """Keep tonight's edges and fingerprints for the next incremental night. Called only after a
    successful publish, so the state always matches the published warehouse."""
    d = _state_dir(cfg)
    d.mkdir(parents=True, exist_ok=True)
    for name, staged in (("edges", EDGES_FILE), ("records", FINGERPRINTS_FILE)):
        warehouse.store.copy_staged(staged, d / f"{name}.parquet")
    with warehouse.store.stage() as con:
        version, clustering = con.execute(
            "SELECT model_version, clustering FROM stage.linkage_state"
        ).fetchall()[0]
    tmp = d / ".state.json.tmp"
    tmp.write_text(
        json.dumps({"model_version": version, "clustering": clustering, "fingerprint": FINGERPRINT_VERSION})
    )
    os.replace(tmp, d / "state.json")


def _sql_text(p: Path) -> str:
    return str(p).replace("'", "''")


class LinkageModelConfig(dg.Config):
    """Run-time switches for the linkage model."""

    retrain: bool = False


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


def linkage_settings(cfg: Config) -> linkage.LinkageSettings:
    lc = cfg.linkage
    return linkage.LinkageSettings(
        engine=lc.engine,
        threshold=lc.threshold,
        u_max_pairs=lc.u_max_pairs,
        em_max_pairs=lc.em_max_pairs,
        seed=lc.seed,
        labels=lc.labels,
        memory_limit=lc.memory_limit,
        guards=lc.guards,
        temp_directory=cfg.data_dir / "tmp" / "linkage",
    )


def model_path(cfg: Config) -> Path:
    return cfg.model_dir / MODEL_FILE


def load_persons(warehouse: WarehouseResource, columns: tuple[str, ...] | None = None) -> pd.DataFrame:
    """Tonight's standardised person records: every column, or only those of `columns` that
    exist (deciding whether the model covers the fields needs the match columns, not all)."""
    with warehouse.store.stage() as con:
        if columns is None:
            return fetch_frame(con, "SELECT * FROM stage.person_records")
        have = {r[0] for r in con.execute("DESCRIBE stage.person_records").fetchall()}
        cols = ", ".join(f'"{c}"' for c in columns if c in have) or "unique_id"
        return fetch_frame(con, f"SELECT {cols} FROM stage.person_records")


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


def _must_links(overrides: linkage.OverrideSet) -> pd.DataFrame:
    """Must-links as links of probability 1, so the relink scope keeps their records together."""
    return pd.DataFrame(
        {
            "unique_id_l": [a for a, _, _ in overrides.must],
            "unique_id_r": [b for _, b, _ in overrides.must],
            "match_probability": [1.0] * len(overrides.must),
        }
    )


def _link_incremental(
    context, warehouse, persons, state, model, settings, overrides
) -> tuple[dict, frozenset | None, pd.DataFrame]:
    """An incremental night's linkage, staged as the edges and clusters files: score only new
    and changed records, then cluster again only the records connected to a touched one
    (`relink_scope`); every other record keeps the cluster it was published with, copied in
    SQL. Returns the figures and the scope (None when everything was clustered again: the
    clustering settings or code changed, or the published xref and the stored state disagree)."""
    records_state = f"read_parquet('{_sql_text(state['records'])}')"
    edges_state = f"read_parquet('{_sql_text(state['edges'])}')"
    store = warehouse.store
    with store.stage() as con:
        plan = plan_incremental(con, store.staged_relation(FINGERPRINTS_FILE), records_state)
        old_links = fetch_frame(
            con,
            f"SELECT unique_id_l, unique_id_r, match_probability FROM {edges_state} "
            "WHERE match_probability >= ?",
            [settings.threshold],
        )
    rescored = int(persons["unique_id"].isin(plan.changed).sum())
    new_edges = linkage.predict_changed(persons, plan.changed, model, settings) if rescored else linkage.empty_edges()
    scope = None
    policy = linkage.guard_policy(model, settings.guards)
    if state.get("clustering") != clustering_key(settings, model, overrides):
        context.log.info(
            "clustering settings, overrides or code changed: every record is clustered again"
        )
    else:
        old_links = pd.concat([old_links, _must_links(overrides)], ignore_index=True)
        scope = relink_scope(old_links, new_edges, plan.touched, settings.threshold) - plan.deleted
    del old_links
    with warehouse.store.stage() as con:
        con.register("_touched", pd.DataFrame({"unique_id": sorted(plan.touched)}, dtype="str"))
        con.register("_new_edges", new_edges)
        con.register("_scope", pd.DataFrame({"unique_id": sorted(scope or ())}, dtype="str"))
        try:
            # Tonight's edges: last night's between two unchanged records, plus the new ones.
            store.write_staged(
                con,
                EDGES_FILE,
                carried_edges_sql(edges_state, "_touched")
                + " UNION ALL SELECT unique_id_l, unique_id_r, match_probability, match_weight FROM _new_edges",
            )
            edges = store.staged_relation(EDGES_FILE)
            with warehouse.store.published_attached(con) as attached:
                if scope is not None:
                    outside = (
                        con.execute(
                            "SELECT count(*) FROM stage.person_records p "
                            "JOIN published.scv.customer_xref x USING (source, source_record_id) "
                            "WHERE p.unique_id NOT IN (SELECT unique_id FROM _scope)"
                        ).fetchall()[0][0]
                        if attached
                        else 0
                    )
                    if outside + len(scope) != len(persons):
                        context.log.warning(
                            f"published xref holds {outside:,} of the {len(persons) - len(scope):,} "
                            "records outside tonight's scope: every record is clustered again"
                        )
                        scope = None
                if scope is None:
                    clusters, part_metrics, review = linkage.cluster_with_review(
                        persons,
                        fetch_frame(con, f"SELECT * FROM {edges}"),
                        settings.threshold,
                        guards=policy,
                        overrides=overrides,
                    )
                    store.write_staged_frame(con, CLUSTERS_FILE, clusters[linkage.CLUSTER_COLUMNS])
                    part_metrics, reclustered = _override_metrics(part_metrics), len(persons)
                else:
                    part, part_metrics, review = linkage.cluster_with_review(
                        persons[persons["unique_id"].isin(scope)],
                        fetch_frame(
                            con,
                            f"SELECT * FROM {edges} WHERE unique_id_l IN (SELECT unique_id FROM _scope) "
                            "AND unique_id_r IN (SELECT unique_id FROM _scope)",
                        ),
                        settings.threshold,
                        guards=policy,
                        overrides=overrides,
                    )
                    part = part[linkage.CLUSTER_COLUMNS]
                    con.register("_part", part)
                    store.write_staged(
                        con,
                        CLUSTERS_FILE,
                        """
                        SELECT unique_id, source, source_record_id, cluster_key, match_probability FROM _part
                        UNION ALL
                        SELECT p.unique_id, p.source, p.source_record_id, x.cluster_key, x.match_probability
                        FROM stage.person_records p
                        JOIN published.scv.customer_xref x USING (source, source_record_id)
                        WHERE p.unique_id NOT IN (SELECT unique_id FROM _scope)
                        """,
                    )
                    con.unregister("_part")
                    part_metrics = {
                        **{f"scope_{k}": v for k, v in part_metrics.items() if k != "records"},
                        **_override_metrics(part_metrics),
                    }
                    reclustered = len(part)
            carried = con.execute(f"SELECT count(*) FROM {edges}").fetchall()[0][0] - len(new_edges)
        finally:
            for view in ("_touched", "_new_edges", "_scope"):
                con.unregister(view)
    metrics = {
        "records_rescored": rescored,
        "records_deleted": len(plan.deleted),
        "records_unchanged": plan.unchanged,
        "edges_carried": int(carried),
        "edges_new": len(new_edges),
        "records_reclustered": reclustered,
        **part_metrics,
    }
    return metrics, scope, review


def _override_metrics(metrics: dict) -> dict:
    keys = ("overrides_must_applied", "overrides_cannot_applied", "vetoed_by_override", "review_pairs")
    return {k: metrics[k] for k in keys if k in metrics}


def _release_memory() -> None:
    """Give the memory freed by a big step back to the OS before the next one (glibc keeps
    freed heap; the night's steps share one process)."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def build_identity_assets(cfg: Config, partitions) -> list[dg.AssetsDefinition]:
    person_sources = list(cfg.person_sources())

    @dg.asset(
        group_name=C.GROUP_IDENTITY,
        partitions_def=partitions,
        deps=[accepted_key(n) for n in person_sources],
        kinds={"duckdb"},
    )
    def person_records(
        context: dg.AssetExecutionContext, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:
        """One row per accepted person record from every person source, standardised with match
        keys (unique_id = source:source_record_id)."""
        with warehouse.store.stage() as con:
            stack_view(con, "person_records", [f"stage.accepted_{n}" for n in person_sources])
            per_source = dict(
                con.execute(
                    "SELECT source, count(*) FROM stage.person_records GROUP BY ALL ORDER BY 1"
                ).fetchall()
            )
        total = sum(per_source.values())
        context.log.info(f"{total:,} person records from {len(per_source)} sources")
        return dg.MaterializeResult(
            metadata=readable({"dagster/row_count": total, "records_by_source": per_source})
        )

    @dg.asset(
        group_name=C.GROUP_IDENTITY,
        partitions_def=partitions,
        deps=[person_records],
        kinds={"splink", "json"},
    )
    def linkage_model(
        context: dg.AssetExecutionContext, config: LinkageModelConfig, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:
        """The trained Splink model (JSON under the models folder). Reused every night; retrained
        when asked (`scv run --retrain`) or when the configured sources provide fields that the
        saved model does not cover."""
        path = model_path(cfg)
        with warehouse.store.stage() as con:
            fields = available_fields(con)
        saved = json.loads(path.read_text()) if path.exists() else None
        reason = None
        if config.retrain:
            reason = "retrain requested"
        elif saved is None:
            reason = "no saved model"
        elif not linkage.model_covers(saved, fields):
            reason = f"saved model does not cover the fields {fields}"
        if reason is None:
            model = saved
            context.log.info(f"reusing model {model.get('scv', {}).get('version')} from {path}")
        else:
            context.log.info(f"training a new linkage model: {reason}")
            settings = linkage_settings(cfg)
            labels = None
            if cfg.linkage.overrides_as_labels:
                from transforms.linkage.overrides import as_labels

                labels = as_labels(linkage.read_overrides(cfg.linkage.overrides))
                if settings.labels is not None:
                    labels = pd.concat([linkage.read_labels(settings.labels), labels], ignore_index=True)
                context.log.info(f"training m from {len(labels):,} labelled pairs (overrides included)")
            with splink_to_dagster(context.log, "training the linkage model"):
                model = linkage.train_model(
                    load_persons(warehouse), settings, created_at=datetime.now(timezone.utc), labels=labels
                )
            _release_memory()
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_text(json.dumps(model, indent=2, default=str))
            os.replace(tmp, path)
        meta = model.get("scv", {})
        return dg.MaterializeResult(
            metadata=readable({
                "trained_this_run": reason is not None,
                "reason": reason or "reused",
                "model_version": str(meta.get("version")),
                "fields": meta.get("fields", fields),
                **training_metadata(meta.get("training", {})),
                "path": file_link(path),
            })
        )

    @dg.asset(
        group_name=C.GROUP_IDENTITY,
        partitions_def=partitions,
        deps=[person_records, linkage_model],
        kinds={"splink", "duckdb"},
    )
    def person_clusters(
        context: dg.AssetExecutionContext, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:
        """One row per accepted person record with its cluster (the real person behind it) and
        the match probability of its strongest link; clusters and scored edges staged as Parquet
        (CLUSTERS_FILE, EDGES_FILE) for the xref step and the next night's state.

        Incremental by default: only new and changed records are scored against the rest, and
        clusters are recomputed from the stored edges plus the new ones. A full re-link runs on
        the first night, with `scv run --full`, or when the model changed."""
        n = night(context)
        persons = load_persons(warehouse, linkage.LINKAGE_COLUMNS)
        model = json.loads(model_path(cfg).read_text())
        settings = linkage_settings(cfg)
        # A contradiction stops the night here (OverrideConflictError names the rows).
        overrides = linkage.resolve_overrides(cfg.linkage.overrides, persons["unique_id"])
        if overrides.stale:
            context.log.warning(
                f"{cfg.linkage.overrides}: {len(overrides.stale)} override(s) name a record that "
                f"does not exist tonight and were not applied (rows {list(overrides.stale)[:10]})"
            )
        version = str(model.get("scv", {}).get("version"))
        with warehouse.store.stage() as con:
            for old in _OLD_TABLES:
                drop_relation(con, "stage", old)
            warehouse.store.write_staged(con, FINGERPRINTS_FILE, fingerprints_sql("stage.person_records"))
        state = load_linkage_state(cfg)
        if context.run.tags.get(FULL_TAG) == "true":
            mode = "full (requested)"
        elif state is None:
            mode = "full (no stored edges)"
        elif state["fingerprint"] != FINGERPRINT_VERSION:
            mode = "full (stored state from an older version)"
        elif state["model_version"] != version:
            mode = "full (model changed)"
        else:
            mode = "incremental"
        context.log.info(f"linking {len(persons):,} person records: {mode}")
        scope = None
        result = None
        with splink_to_dagster(context.log, "linking"):
            if mode == "incremental":
                metrics, scope, review = _link_incremental(
                    context, warehouse, persons, state, model, settings, overrides
                )
            else:
                result = linkage.link_and_dedupe(persons, model, settings, overrides)
                metrics, review = result.metrics, result.review
        with warehouse.store.stage() as con:
            if result is not None:
                warehouse.store.write_staged_frame(con, CLUSTERS_FILE, result.clusters)
                warehouse.store.write_staged_frame(con, EDGES_FILE, result.edges)
            warehouse.store.write_staged_frame(con, REVIEW_FILE, review)
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
                        "clustering": [clustering_key(settings, model, overrides)],
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
                    f"SELECT n, count(*) FROM (SELECT count(*) AS n FROM {warehouse.store.staged_relation(CLUSTERS_FILE)} "
                    "GROUP BY cluster_key) "
                    "GROUP BY n ORDER BY n"
                ).fetchall()
            )
        records = sum(k * v for k, v in size_dist.items())
        people = sum(size_dist.values())
        in_multi = sum(k * v for k, v in size_dist.items() if k > 1)
        charts = {}
        if mode != "incremental":
            try:
                with splink_to_dagster(context.log, "drawing the Splink charts"):
                    charts = linkage.write_charts(
                        persons, model, result, cfg.reports_dir / "linkage" / n.run_id
                    )
            except Exception as exc:  # charts are a view, never a reason to fail the night
                context.log.warning(f"linkage charts not written: {exc}")
        return dg.MaterializeResult(
            metadata=readable({
                "mode": mode,
                "records": records,
                "people_found": people,
                "duplicates_merged": records - people,
                "match_rate": float(in_multi / max(records, 1)),
                "cluster_size_distribution": {str(k): int(v) for k, v in size_dist.items()},
                "threshold": settings.threshold,
                "guard_policy": linkage.guard_policy(model, settings.guards).describe(),
                "overrides_in_file": len(overrides) + len(overrides.stale),
                "overrides_stale": len(overrides.stale),
                "review_queue_pairs": len(review),
                **{k: v for k, v in metrics.items() if isinstance(v, (int, float, str))},
                **{f"chart_{k}": page_link(cfg, Path(v)) for k, v in charts.items()},
                "dagster/row_count": records,
            })
        )

    @dg.asset(
        group_name=C.GROUP_IDENTITY,
        partitions_def=partitions,
        deps=["review_queue"],
        kinds={"html"},
    )
    def review_page(
        context: dg.AssetExecutionContext, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:
        """One HTML page per night for the data steward: tonight's review queue with both
        records side by side and Splink's waterfall chart per pair. It shows personal data, so
        it is written to the private folder (owner-only), never to reports/ or exports/."""
        n = night(context)
        with warehouse.store.stage() as con:
            queue = fetch_frame(con, "SELECT * FROM scv.review_queue")
        persons = load_persons(warehouse) if len(queue) else pd.DataFrame({"unique_id": []})
        model = json.loads(model_path(cfg).read_text())
        with splink_to_dagster(context.log, "drawing the review page"):
            page, waterfall = review_page_html(
                persons, model, queue, settings=linkage_settings(cfg), title=f"Review queue, {n.run_id}"
            )
        path = write_private_page(cfg.private_dir / "review", page, waterfall)
        context.log.info(f"review page: {len(queue):,} pairs, {path}")
        return dg.MaterializeResult(
            metadata=readable({"pairs": len(queue), "shown": min(len(queue), 200), "path": file_link(path)})
        )

    return [person_records, linkage_model, person_clusters, review_page]


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
