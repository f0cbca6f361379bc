"""How the assets look in the Dagster catalog: column schemas from the warehouse's own COMMENTs,
figures in words a reader understands, ratios as percentages, distributions as tables.

- `with_warehouse_schemas(assets)`: every asset named after an `scv` table carries that table's
  columns (name, DuckDB type, COMMENT) as `dagster/column_schema`, and `dagster/table_name`,
  from `warehouse.schema.TABLES`, the one description the DDL and COMMENTs are made from.
- `readable(metadata)`: what an asset returns, made readable: internal names (`vetoed_edges`,
  `isolated_ambiguous`, …) relabelled (`LABELS`), shares shown as percentages (`PERCENT`),
  counts by category (`{"crm": 170, …}`) as tables with named columns (`TABLE_COLUMNS`), lists
  of names as text, the linkage scope's figures gathered in one table.
- `training_metadata(training)`: the linkage model's training record as two tables.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import dagster as dg

from warehouse.schema import SCHEMA, TABLES

__all__ = [
    "LABELS",
    "PERCENT",
    "TABLE_COLUMNS",
    "column_schema",
    "readable",
    "training_metadata",
    "with_warehouse_schemas",
]

#: Internal names -> what they mean. Keys that already read as words (rows_in, people_found,
#: records_rescored, mode, written, …) stay as they are: tests and the run report read them.
LABELS: dict[str, str] = {
    "edges": "scored pairs",
    "edges_unknown_records": "scored pairs naming a record not in tonight's data",
    "edges_above_threshold": "scored pairs at or above the threshold",
    "edges_kept": "links that make up customers",
    "edges_carried": "scored pairs carried from last night",
    "edges_new": "pairs scored tonight",
    "vetoed_edges": "links kept apart (a guard or an override)",
    "vetoed_dob": "links kept apart: different date of birth",
    "vetoed_first_name": "links kept apart: different first name",
    "vetoed_by_override": "links kept apart: cannot-link override",
    "split_clusters": "groups split because they held a conflict",
    "isolated_ambiguous": "records left on their own (they fit two people)",
    "clusters": "people (clusters)",
    "singletons": "people with a single record",
    "largest_cluster": "records of the largest person",
    "review_pairs": "pairs for a steward to review",
    "review_queue_pairs": "pairs for a steward to review",
    "overrides_must_applied": "must-link overrides applied",
    "overrides_cannot_applied": "cannot-link overrides applied",
    "overrides_in_file": "overrides in the overrides file",
    "overrides_stale": "overrides naming a record that no longer exists",
    "candidate_pairs": "candidate pairs compared (blocking)",
    "records_reclustered": "records clustered again tonight",
    "guard_policy": "guards (what keeps look-alike records apart)",
    "fingerprint": "file fingerprint (SHA-256)",
    "unchanged": "file unchanged since last night",
    "revalidated": "validated again tonight",
    "field_findings": "optional fields invalid (treated as missing)",
    "with_field_issues": "records with an invalid optional field",
    "stitched_from_sessions": "web events attributed through a later login",
    "unresolved": "touchpoints of nobody known (anonymous)",
    "trained_this_run": "model trained tonight",
    # counts by category, shown as tables
    "cluster_size_distribution": "people by number of records",
    "records_by_source": "person records by source",
    "quarantined_by_rule": "rows quarantined by rule",
    "field_findings_by_rule": "invalid optional fields by field and problem",
    "invalid_by_field": "records with the field invalid (%)",
    "changes_this_night": "lifecycle stage changes tonight",
    "rows_by_table": "rows by table",
    "by_kind": "touchpoints by kind",
    "granted_by_purpose": "customers who granted consent, by purpose",
    "decided_by_rule": "golden values by deciding rule",
    "pairs_by_reason": "pairs by reason",
    "by_source_and_rule": "rows by source and rule",
    "this_run": "tonight's rows by source",
}

#: Shares (0..1) shown as percentages: key -> label (the label says %).
PERCENT: dict[str, str] = {
    "match_rate": "records in a multi-record person (%)",
    "threshold": "match threshold (match probability, %)",
    "share": "share of rows (%)",
    "linked_record_rate": "records linked to another record (%)",
}

#: Counts by category -> (category column, count column) of the table they are shown as.
TABLE_COLUMNS: dict[str, tuple[str, str]] = {
    "cluster_size_distribution": ("records per person", "people"),
    "records_by_source": ("source", "person records"),
    "quarantined_by_rule": ("rule", "rows quarantined"),
    "field_findings_by_rule": ("field: problem", "records"),
    "invalid_by_field": ("field", "records invalid (%)"),
    "segments": ("RFM segment", "customers"),
    "stages": ("lifecycle stage", "customers"),
    "changes_this_night": ("stage change", "customers"),
    "rows_by_table": ("table", "rows"),
    "by_kind": ("kind", "touchpoints"),
    "granted_by_purpose": ("purpose", "customers who granted it"),
    "decided_by_rule": ("survivorship rule", "values decided"),
    "pairs_by_reason": ("reason", "pairs"),
    "by_source_and_rule": ("source: rule", "rows"),
    "this_run": ("source", "rows in = accepted + quarantined"),
}
#: A label back to its key: metadata stored as JSON and read back (a validation reused on an
#: incremental night) comes with the labels, and keeps its tables' column names.
_KEY_OF_LABEL = {label: key for key, label in LABELS.items()}
_SCOPE = "scope_"
_SCOPE_LABEL = "tonight's relink scope (records connected to a new or changed record)"


# ------------------------------------------------------------------------- column schemas
def column_schema(table: str) -> dg.TableSchema:
    """The columns of `scv.<table>` with their DuckDB types and COMMENTs."""
    return dg.TableSchema(
        columns=[
            dg.TableColumn(name=c.name, type=c.type, description=c.comment)
            for c in TABLES[table].columns
        ]
    )


def with_warehouse_schemas(assets: Iterable[dg.AssetsDefinition]) -> list[dg.AssetsDefinition]:
    """`assets`, those named after an `scv` table carrying its column schema and table name."""

    def add(spec: dg.AssetSpec) -> dg.AssetSpec:
        path = spec.key.path
        if len(path) != 1 or path[0] not in TABLES:
            return spec
        return spec.merge_attributes(
            metadata={
                "dagster/column_schema": column_schema(path[0]),
                "dagster/table_name": f"{SCHEMA}.{path[0]}",
            }
        )

    return list(dg.map_asset_specs(add, list(assets)))


# ------------------------------------------------------------------------- figures
def _label(key: str) -> str:
    return LABELS.get(key, key)


def _cell_type(values: Iterable[Any]) -> str:
    values = list(values)
    if all(isinstance(v, bool) for v in values):
        return "bool"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return "int"
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return "float"
    return "string"


def table(rows: Iterable[tuple[Any, Any]], columns: tuple[str, str]) -> dg.TableMetadataValue:
    """Two-column table metadata (category, value)."""
    rows = [(str(k), v) for k, v in rows]
    kind = _cell_type(v for _, v in rows) if rows else "int"
    if kind == "string":
        rows = [(k, str(v)) for k, v in rows]
    schema = dg.TableSchema(
        columns=[dg.TableColumn(columns[0], "string"), dg.TableColumn(columns[1], kind)]
    )
    return dg.MetadataValue.table(
        records=[dg.TableRecord({columns[0]: k, columns[1]: v}) for k, v in rows], schema=schema
    )


def _percent(value: float) -> float:
    return round(100.0 * float(value), 2) if math.isfinite(value) else value


def readable(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """`metadata` as a reader of the Dagster catalog wants it (see the module docstring).
    Values that are already Dagster metadata values pass through; `dagster/…` keys too."""
    out: dict[str, Any] = {}
    scope: list[tuple[str, Any]] = []
    for key, value in metadata.items():
        raw = getattr(value, "value", value) if type(value).__module__.startswith("dagster") else value
        if key.startswith("dagster/") or isinstance(value, dg.MetadataValue) and not isinstance(
            value, (dg.JsonMetadataValue, dg.FloatMetadataValue)
        ):
            out[key] = value
        elif key.startswith(_SCOPE):
            scope.append((_label(key[len(_SCOPE):]), raw))
        elif key in PERCENT and isinstance(raw, (int, float)) and not isinstance(raw, bool):
            out[PERCENT[key]] = _percent(raw)
        elif isinstance(raw, Mapping) and all(
            not isinstance(v, (Mapping, list, tuple)) for v in raw.values()
        ):
            columns = TABLE_COLUMNS.get(_KEY_OF_LABEL.get(key, key), ("item", "value"))
            out[_label(key)] = table(raw.items(), columns)
        elif isinstance(raw, (list, tuple)) and all(isinstance(v, str) for v in raw):
            out[_label(key)] = ", ".join(raw) if raw else "(none)"
        else:
            out[_label(key)] = value
    if scope:
        out[_SCOPE_LABEL] = table(scope, ("figure", "value"))
    return out


def training_metadata(training: Mapping[str, Any]) -> dict[str, Any]:
    """The linkage model's training record (`model.scv.training`) as readable metadata: a
    summary table and the model's m and u per comparison level, as percentages."""
    if not training:
        return {}
    rows: list[tuple[str, Any]] = []
    if "records" in training:
        rows.append(("records trained on", training["records"]))
    if "u_pairs" in training:
        rows.append((f"pairs for u ({training.get('u_method', '?')})", training["u_pairs"]))
    prior = training.get("prior") or {}
    if isinstance(prior.get("value"), (int, float)) and prior["value"] > 0:
        rows.append(
            (f"prior: two random records match ({prior.get('method', '?')})", f"1 in {1 / prior['value']:,.0f}")
        )
    for i, session in enumerate(training.get("m_sessions") or [], start=1):
        if not isinstance(session, Mapping):
            continue
        on = ", ".join(session.get("block_on") or []) or "?"
        what = f"{session.get('iterations', '?')} iterations, {session.get('seconds', '?')} s"
        rows.append((f"m session {i} ({session.get('method', '?')} on {on})", what))
    for step, seconds in (training.get("seconds") or {}).items():
        rows.append((f"seconds: {step}", seconds))
    for note in training.get("levels_adjusted") or []:
        rows.append(("level adjusted", note))
    out: dict[str, Any] = {"training": table(rows, ("figure", "value"))}
    params = [p for p in training.get("parameters") or [] if isinstance(p, Mapping)]
    if params:
        records = []
        for p in params:
            m, u = p.get("m"), p.get("u")
            weight = (
                round(math.log2(m / u), 2)
                if isinstance(m, (int, float)) and isinstance(u, (int, float)) and m > 0 and u > 0
                else None
            )
            records.append(
                dg.TableRecord(
                    {
                        "comparison": str(p.get("comparison", "")),
                        "level": str(p.get("level", "")),
                        "m (%)": _percent(m) if isinstance(m, (int, float)) else None,
                        "u (%)": _percent(u) if isinstance(u, (int, float)) else None,
                        "match weight": weight,
                    }
                )
            )
        out["model parameters (m: share among matches, u: among non-matches)"] = dg.MetadataValue.table(
            records=records,
            schema=dg.TableSchema(
                columns=[
                    dg.TableColumn("comparison", "string"),
                    dg.TableColumn("level", "string"),
                    dg.TableColumn("m (%)", "float"),
                    dg.TableColumn("u (%)", "float"),
                    dg.TableColumn("match weight", "float", description="log2(m / u)"),
                ]
            ),
        )
    return out
