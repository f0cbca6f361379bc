"""Identity resolution assets: all standardised person records, the Splink model, the clusters."""


import json
import os
from datetime import datetime, timezone
from pathlib import Path

import dagster as dg
import pandas as pd

from dagster_project import constants as C
from dagster_project.assets.common import file_link, night
from dagster_project.assets.sources import accepted_key
from dagster_project.resources import WarehouseResource
from sources.config import Config
from transforms import linkage
from transforms.incremental import carry_edges, plan_incremental, record_fingerprints
from warehouse.store import fetch_frame, write_frame

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
        "model_version": json.loads(files[2].read_text())["model_version"],
    }


def save_linkage_state(cfg: Config, warehouse: WarehouseResource) -> None:
    """Keep tonight's edges and fingerprints for the next incremental night. Called only after a
    successful publish, so the state always matches the published warehouse."""
    d = _state_dir(cfg)
    d.mkdir(parents=True, exist_ok=True)
    with warehouse.store.stage() as con:
        edges = fetch_frame(con, "SELECT * FROM stage.edges")
        records = fetch_frame(con, "SELECT * FROM stage.record_fingerprints")
        version = con.execute("SELECT model_version FROM stage.linkage_state").fetchall()[0][0]
    for name, frame in (("edges", edges), ("records", records)):
        tmp = d / f".{name}.parquet.tmp"
        frame.to_parquet(tmp, index=False)
        os.replace(tmp, d / f"{name}.parquet")
    tmp = d / ".state.json.tmp"
    tmp.write_text(json.dumps({"model_version": version}))
    os.replace(tmp, d / "state.json")


class LinkageModelConfig(dg.Config):
    """Run-time switches for the linkage model."""

    retrain: bool = False


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
            union = " UNION ALL BY NAME ".join(
                f"SELECT * FROM stage.accepted_{n}" for n in person_sources
            )
            con.execute(f"CREATE OR REPLACE TABLE stage.person_records AS {union}")
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
        persons = load_persons(warehouse)
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
        if mode == "incremental":
            plan = plan_incremental(state["records"], fingerprints)
            edges = carry_edges(state["edges"], plan)
            changed = persons[persons["unique_id"].isin(plan.changed)]
            if len(changed):
                rest = persons[~persons["unique_id"].isin(plan.changed)]
                new_edges = linkage.predict_incremental(changed, rest, model, settings)
                edges = pd.concat([edges, new_edges], ignore_index=True)
            clusters = linkage.cluster_edges(persons, edges, settings.threshold)
            metrics = {
                "records_rescored": len(changed),
                "records_deleted": len(plan.deleted),
                "records_unchanged": plan.unchanged,
                "edges_carried": int(len(edges) - (len(new_edges) if len(changed) else 0)),
            }
            result = linkage.LinkageResult(clusters=clusters, edges=edges, metrics=metrics)
        else:
            result = linkage.link_and_dedupe(persons, model, settings)
        with warehouse.store.stage() as con:
            write_frame(con, "clusters", result.clusters)
            write_frame(con, "edges", result.edges)
            write_frame(con, "record_fingerprints", fingerprints)
            write_frame(con, "linkage_state", pd.DataFrame({"model_version": [version]}))
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
