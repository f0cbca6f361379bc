"""Identity resolution assets: all standardised person records, the Splink model, the clusters."""


import json
import os
from datetime import datetime, timezone
from importlib.metadata import version as _package_version
from pathlib import Path

import dagster as dg
import pandas as pd

from dagster_project import constants as C
from dagster_project.assets.common import file_link, night
from dagster_project.assets.sources import accepted_key
from dagster_project.resources import WarehouseResource
from sources.config import Config
from transforms import linkage
from transforms.incremental import (
    carry_edges,
    plan_incremental,
    record_fingerprints,
    relink_scope,
)
from warehouse.store import fetch_frame, stack_view, write_frame

__version__ = _package_version("scv-warehouse")

MODEL_FILE = "linkage_model.json"
FULL_TAG = "scv/full"


def _state_dir(cfg: Config) -> Path:
    return cfg.data_dir / "state" / "linkage"


def load_linkage_state(cfg: Config) -> dict | None:
    """Edges and record fingerprints of the last PUBLISHED night (saved by the publish step)."""
    d = _state_dir(cfg)
    files = [d / "edges.parquet", d / "records.parquet", d / "state.json"]
    if not all(f.exists() for f in files):
        return None
    return {
        "edges": pd.read_parquet(files[0]),
        "records": pd.read_parquet(files[1]),
        **{k: v for k, v in json.loads(files[2].read_text()).items() if k in ("model_version", "clustering")},
    }


def save_linkage_state(cfg: Config, warehouse: WarehouseResource) -> None:
    """Keep tonight's edges and fingerprints for the next incremental night. Called only after a
    successful publish, so the state always matches the published warehouse."""
    d = _state_dir(cfg)
    d.mkdir(parents=True, exist_ok=True)
    with warehouse.store.stage() as con:
        edges = fetch_frame(con, "SELECT * FROM stage.edges")
        records = fetch_frame(con, "SELECT * FROM stage.record_fingerprints")
        version, clustering = con.execute(
            "SELECT model_version, clustering FROM stage.linkage_state"
        ).fetchall()[0]
    for name, frame in (("edges", edges), ("records", records)):
        tmp = d / f".{name}.parquet.tmp"
        frame.to_parquet(tmp, index=False)
        os.replace(tmp, d / f"{name}.parquet")
    tmp = d / ".state.json.tmp"
    tmp.write_text(json.dumps({"model_version": version, "clustering": clustering}))
    os.replace(tmp, d / "state.json")


class LinkageModelConfig(dg.Config):
    """Run-time switches for the linkage model."""

    retrain: bool = False


def clustering_key(settings: linkage.LinkageSettings) -> str:
    """What last night's clusters depend on besides the records and edges: the threshold, the
    guards and the code. When it changes, every record is clustered again."""
    return f"{settings.threshold}|{settings.guards}|{__version__}"


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


def _link_incremental(context, cfg, warehouse, persons, fingerprints, state, model, settings):
    """An incremental night's linkage: score only new and changed records, then cluster again
    only the records connected to a touched one (`relink_scope`); every other record keeps the
    cluster it was published with. Returns the result and the scope (None when everything was
    clustered again: the clustering settings or code changed, or the published xref and the
    stored state disagree)."""
    plan = plan_incremental(state["records"], fingerprints)
    edges = carry_edges(state["edges"], plan)
    changed = persons[persons["unique_id"].isin(plan.changed)]
    new_edges = linkage.predict_incremental(
        changed, persons[~persons["unique_id"].isin(plan.changed)], model, settings
    ) if len(changed) else edges.iloc[0:0]
    all_edges = pd.concat([edges, new_edges], ignore_index=True)
    metrics = {
        "records_rescored": len(changed),
        "records_deleted": len(plan.deleted),
        "records_unchanged": plan.unchanged,
        "edges_carried": len(edges),
        "edges_new": len(new_edges),
    }
    scope = None
    if state.get("clustering") != clustering_key(settings):
        context.log.info("clustering settings or code changed: every record is clustered again")
    else:
        scope = relink_scope(state["edges"], new_edges, plan.touched, settings.threshold) - plan.deleted
        carried = _published_clusters(warehouse, scope)
        if len(carried) + len(scope) != len(persons):
            context.log.warning(
                f"published xref holds {len(carried):,} of the {len(persons) - len(scope):,} records "
                "outside tonight's scope: every record is clustered again"
            )
            scope = None
    if scope is None:
        clusters = linkage.cluster_edges(persons, all_edges, settings.threshold)
        metrics["records_reclustered"] = len(persons)
    else:
        inside = persons["unique_id"].isin(scope)
        in_scope = all_edges["unique_id_l"].isin(scope) & all_edges["unique_id_r"].isin(scope)
        part = linkage.cluster_edges(persons[inside], all_edges[in_scope], settings.threshold)
        metrics.update({f"scope_{k}": v for k, v in part.attrs["metrics"].items() if k != "records"})
        metrics["records_reclustered"] = len(part)
        clusters = pd.concat([part, carried], ignore_index=True)
    return linkage.LinkageResult(clusters=clusters, edges=all_edges, metrics=metrics), scope


def _published_clusters(warehouse: WarehouseResource, scope: frozenset[str]) -> pd.DataFrame:
    """Last night's published clusters of tonight's records outside `scope`."""
    with warehouse.store.stage() as con:
        con.register("_scope", pd.DataFrame({"unique_id": sorted(scope)}, dtype="str"))
        try:
            with warehouse.store.published_attached(con) as attached:
                if not attached:
                    return pd.DataFrame(columns=linkage.CLUSTER_COLUMNS)
                return fetch_frame(
                    con,
                    """
                    SELECT p.unique_id, p.source, p.source_record_id, x.cluster_key, x.match_probability
                    FROM stage.person_records p
                    JOIN published.scv.customer_xref x USING (source, source_record_id)
                    WHERE p.unique_id NOT IN (SELECT unique_id FROM _scope)
                    """,
                )
        finally:
            con.unregister("_scope")


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
            metadata={"dagster/row_count": total, "records_by_source": per_source}
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
        fields = linkage.available_fields(load_persons(warehouse, linkage.MATCH_FIELD_COLUMNS))
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
            model = linkage.train_model(
                load_persons(warehouse), linkage_settings(cfg), created_at=datetime.now(timezone.utc)
            )
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_text(json.dumps(model, indent=2, default=str))
            os.replace(tmp, path)
        meta = model.get("scv", {})
        return dg.MaterializeResult(
            metadata={
                "trained_this_run": reason is not None,
                "reason": reason or "reused",
                "model_version": str(meta.get("version")),
                "fields": meta.get("fields", fields),
                "training": meta.get("training", {}),
                "path": file_link(path),
            }
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
        the match probability of its strongest link; scored edges kept in stage.edges.

        Incremental by default: only new and changed records are scored against the rest, and
        clusters are recomputed from the stored edges plus the new ones. A full re-link runs on
        the first night, with `scv run --full`, or when the model changed."""
        n = night(context)
        persons = load_persons(warehouse, linkage.LINKAGE_COLUMNS)
        model = json.loads(model_path(cfg).read_text())
        settings = linkage_settings(cfg)
        version = str(model.get("scv", {}).get("version"))
        fingerprints = record_fingerprints(persons)
        state = load_linkage_state(cfg)
        if context.run.tags.get(FULL_TAG) == "true":
            mode = "full (requested)"
        elif state is None:
            mode = "full (no stored edges)"
        elif state["model_version"] != version:
            mode = "full (model changed)"
        else:
            mode = "incremental"
        context.log.info(f"linking {len(persons):,} person records: {mode}")
        scope = None
        if mode == "incremental":
            result, scope = _link_incremental(context, cfg, warehouse, persons, fingerprints, state, model, settings)
        else:
            result = linkage.link_and_dedupe(persons, model, settings)
        with warehouse.store.stage() as con:
            write_frame(con, "clusters", result.clusters)
            write_frame(con, "edges", result.edges)
            write_frame(con, "record_fingerprints", fingerprints)
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
                        "clustering": [clustering_key(settings)],
                        "scope": ["partial" if scope is not None else "all"],
                    }
                ),
            )
        clusters = result.clusters
        sizes = clusters.groupby("cluster_key").size()
        size_dist = sizes.value_counts().sort_index()
        records = len(clusters)
        people = int(sizes.shape[0])
        charts = {}
        if mode != "incremental":
            try:
                charts = linkage.write_charts(
                    persons, model, result, cfg.reports_dir / "linkage" / n.run_id
                )
            except Exception as exc:  # charts are a view, never a reason to fail the night
                context.log.warning(f"linkage charts not written: {exc}")
        return dg.MaterializeResult(
            metadata={
                "mode": mode,
                "records": records,
                "people_found": people,
                "duplicates_merged": records - people,
                "match_rate": float((sizes[sizes > 1].sum()) / max(records, 1)),
                "cluster_size_distribution": {str(k): int(v) for k, v in size_dist.items()},
                "threshold": settings.threshold,
                **{k: v for k, v in result.metrics.items() if isinstance(v, (int, float, str))},
                **{f"chart_{k}": file_link(Path(v)) for k, v in charts.items()},
                "dagster/row_count": records,
            }
        )

    return [person_records, linkage_model, person_clusters]
