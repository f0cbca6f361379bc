"""A landed source validated: the accepted rows typed (persons standardised) in
`stage.accepted_<source>`, the rejected ones with the rule that failed in
`stage.quarantine_<source>`, the night's counts in `stage.source_run_<source>`.

Last night's validation is reused while its inputs stay the same (`warehouse.nightly.sources`);
a person row whose canonical values did not change keeps its standardised row
(`transforms.standardise.reuse`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import duckdb
import pandas as pd

from quality.data_docs import build_data_docs
from quality.source_checks import (
    check_from_state,
    check_state,
    conservation_check,
    expectations_check,
    field_findings_check,
    file_level_check,
    quarantine_share_check,
)
from quality.validate import (
    CheckOutcome,
    field_findings,
    findings_from_counts,
    validate_source,
)
from sources.config import Config, SourceConfig
from sources.rates import RatesError, conversion_for
from sources.readers import to_canonical
from transforms.standardise import PERSON_STD_TYPES, standardise_persons
from transforms.standardise.reuse import reuse_plan, write_reusing
from warehouse.landing import landing_path
from warehouse.models import STAGE_TABLE_OF_KIND, STAGE_TABLES, documented_types
from warehouse.nightly.sources import (
    landing_state,
    previous_standardised,
    reusable_validation,
    save_validation,
    stage_standardise_key,
    standardise_key,
    validation_key,
)
from warehouse.privacy import (
    ERASED_RULE,
    erased_quarantine,
    landed_erased,
    redact_erased_quarantine,
    split_erased,
    split_erased_activity,
)
from warehouse.store import Warehouse, fetch_frame, write_frame

__all__ = ["Accepted", "accept_source", "previous_source_run"]

#: A logger with `.info` and `.warning` (`logging.Logger`, or a Dagster step's `context.log`).
Log = Any


@dataclass(frozen=True)
class Accepted:
    """One source's validation tonight: its summary (counts, quarantined by rule, field
    findings, Data Docs page), its five checks, and whether it ran tonight or was reused."""

    summary: dict[str, Any]
    checks: list[CheckOutcome]
    revalidated: bool


def previous_source_run(store: Warehouse, name: str) -> dict | None:
    """The published night's `scv.source_run` row of source `name`, or None."""
    runs = store.previous("source_run")
    runs = runs[runs["source"] == name]
    if runs.empty:
        return None
    return runs.sort_values("run_at").iloc[-1].to_dict()


def accept_source(
    cfg: Config,
    src: SourceConfig,
    store: Warehouse,
    as_of: date,
    run_id: str,
    run_at: datetime,
    suppressed: set[str],
    key: str | None,
    log: Log,
) -> Accepted:
    """Validate the landed rows of `src` (or reuse last night's validation when its inputs are
    the same), write its staging tables and its `stage.source_run_<source>` row. Raises
    RatesError naming the source when its currency rates cannot be used."""
    name = src.name
    with store.stage() as con:
        vkey = validation_key(cfg, src, suppressed, con)
        state = reusable_validation(cfg, name, vkey, as_of, con)
    if state is not None:
        log.info(f"{name}: landed file and rules unchanged, last validation reused")
        summary, checks = state["summary"], [check_from_state(c) for c in state["checks"]]
    else:
        summary, checks, future_rows = _validate(cfg, src, store, as_of, run_id, run_at, suppressed, key, log)
        save_validation(cfg, name, vkey, as_of, future_rows, summary, [check_state(c) for c in checks])
    source_run = pd.DataFrame(
        [
            {
                "run_at": run_at,
                "run_id": run_id,
                "source": name,
                "path": str(src.path),
                "fingerprint": landing_state(cfg, name).fingerprint,
                "rows_in": summary["rows_in"],
                "rows_accepted": summary["rows_accepted"],
                "rows_quarantined": summary["rows_quarantined"],
                "field_findings": summary["field_findings"],
            }
        ]
    )
    with store.stage() as con:
        write_frame(con, f"source_run_{name}", source_run, types=documented_types("source_run"))
    return Accepted(summary, checks, revalidated=state is None)


def _known_person_ids(con: duckdb.DuckDBPyConnection, ref: str) -> tuple[set, set]:
    """(ids person source `ref` accepted tonight, ids it quarantined as erased)."""
    known = set(con.execute(f"SELECT source_record_id FROM stage.accepted_{ref}").df()["source_record_id"])
    erased = set(
        con.execute(
            f"SELECT source_record_id FROM stage.quarantine_{ref} WHERE rule = ?", [ERASED_RULE]
        ).df()["source_record_id"].dropna()
    )
    return known, erased


def _field_issue_counts_sql(name: str) -> str:
    return (
        f"SELECT issue, count(*) FROM (SELECT unnest(field_issues) AS issue "
        f"FROM stage.accepted_{name}) GROUP BY issue"
    )


def _validate(
    cfg: Config,
    src: SourceConfig,
    store: Warehouse,
    as_of: date,
    run_id: str,
    run_at: datetime,
    suppressed: set[str],
    key: str | None,
    log: Log,
) -> tuple[dict[str, Any], list[CheckOutcome], int]:
    """Validate tonight's landing of `src`: (summary, checks, rows quarantined for a future date)."""
    name = src.name
    raw = pd.read_parquet(landing_path(cfg, name))
    held_back = erased_quarantine(landed_erased(cfg, name), name)  # erased as it was read
    canon = to_canonical(raw, src)
    known = erased_refs = None
    if src.person is not None:
        with store.stage() as con:
            known, erased_refs = _known_person_ids(con, src.person.source)
    prev = previous_source_run(store, name)
    try:
        conversion = conversion_for(cfg.currency) if src.kind == "order" else None
    except RatesError as exc:
        raise RatesError(f"source {name}: {exc}") from None
    outcome = validate_source(
        raw,
        canon,
        src,
        as_of=as_of,
        # rows of an erased person are told apart from rows of unknown people below
        known_person_ids=(known | erased_refs) if known is not None else None,
        conversion=conversion,
        max_amount=cfg.quality.max_amount,
        min_date=cfg.quality.min_date,
        previous_rows=int(prev["rows_in"]) if prev else None,
        previous_columns=landing_state(cfg, name).previous_columns,
        max_row_drop=src.max_row_drop if src.max_row_drop is not None else cfg.quality.max_row_drop,
    )
    accepted = outcome.accepted
    quarantine = redact_erased_quarantine(outcome.quarantine, src, suppressed, key, erased_refs or set())
    erased = quarantine.iloc[0:0]
    reused = pd.DataFrame()
    if src.kind == "person":
        std_key = standardise_key(src)
        erased_parts = []
        with store.stage() as con:
            prev_table, prev_inputs = previous_standardised(con, name, std_key)
            hashes, reused = reuse_plan(con, accepted, prev_table, prev_inputs, as_of)
            if suppressed and len(reused):
                # rows kept last night may name a person erased since
                kept, gone = split_erased(_reused_identifiers(con, prev_table, reused), suppressed, key)
                reused = reused[reused["_row_number"].isin(kept["_row_number"])]
                erased_parts.append(gone)
        std_inputs = pd.DataFrame(
            {"_row_number": accepted["_row_number"].to_numpy(dtype="int64"), "input_hash": hashes}
        )
        fresh = standardise_persons(accepted[~accepted["_row_number"].isin(reused["_row_number"])], src, as_of)
        n_standardised = len(fresh)
        if suppressed:
            fresh, gone = split_erased(fresh, suppressed, key)
            erased_parts.insert(0, gone)
        if erased_parts:
            erased = pd.concat(erased_parts, ignore_index=True)
        accepted = fresh.assign(field_issues=fresh["field_issues"].map(list))
    else:
        findings = field_findings(pd.DataFrame({"field_issues": []}))
        if erased_refs:
            accepted, erased = split_erased_activity(accepted, erased_refs, name)
        accepted = accepted.assign(person_source=src.person.source)
    quarantine = pd.concat([q for q in (quarantine, erased, held_back) if len(q)] or [quarantine], ignore_index=True)
    quarantine = quarantine.sort_values("row_number", kind="stable").assign(run_at=run_at)
    with store.stage() as con:
        con.execute("BEGIN TRANSACTION")
        if src.kind == "person":
            # the rows and what they were standardised from, together or not at all
            rows_ok = write_reusing(
                con,
                accepted,
                reused,
                std_inputs,
                f"stage.accepted_{name}",
                f"stage.std_inputs_{name}",
                PERSON_STD_TYPES,
            )
            stage_standardise_key(con, name, std_key)
            findings = findings_from_counts(dict(con.execute(_field_issue_counts_sql(name)).fetchall()))
        else:
            rows_ok = write_frame(
                con, f"accepted_{name}", accepted, types=STAGE_TABLES[STAGE_TABLE_OF_KIND[src.kind]]
            )
        write_frame(con, f"quarantine_{name}", quarantine, types=documented_types("quarantine"))
        con.execute("COMMIT")

    rows_in, rows_q = len(raw) + len(held_back), len(quarantine)
    by_rule = quarantine["rule"].value_counts().to_dict() if rows_q else {}
    n_findings = int(findings["count"].sum()) if len(findings) else 0
    docs = None
    try:
        docs = build_data_docs([outcome], cfg.quality_dir / "docs" / name, run_name=run_id)
    except Exception as exc:  # noqa: BLE001  (Data Docs are a view of the results, not a gate)
        log.warning(f"{name}: Data Docs not written: {exc}")
    summary = {
        "rows_in": rows_in,
        "rows_accepted": rows_ok,
        "rows_quarantined": rows_q,
        "quarantined_by_rule": {k: int(v) for k, v in by_rule.items()},
        "field_findings": n_findings,
        **(
            {"rows_standardised": n_standardised, "rows_standardisation_reused": len(reused)}
            if src.kind == "person"
            else {}
        ),
        "field_findings_by_rule": {f"{r.field}:{r.rule}": int(r.count) for r in findings.itertuples(index=False)},
        "data_docs": str(docs) if docs else None,
    }
    checks = [
        file_level_check(
            name, src.path, outcome.blocking_failures, rows_in, int(prev["rows_in"]) if prev else None
        ),
        conservation_check(rows_in, rows_ok, rows_q),
        quarantine_share_check(rows_in, rows_q, by_rule),
        expectations_check(name, outcome.checks),
        field_findings_check(rows_ok, findings),
    ]
    log.info(
        f"{name}: {rows_in:,} in, {rows_ok:,} accepted, {rows_q:,} quarantined "
        f"({', '.join(f'{k}={v}' for k, v in by_rule.items()) or 'none'}); "
        f"{n_findings:,} optional fields treated as missing"
    )
    return summary, checks, int(by_rule.get("future_date", 0))


def _reused_identifiers(con: duckdb.DuckDBPyConnection, table: str, reused: pd.DataFrame) -> pd.DataFrame:
    """What `split_erased` reads of the rows to be reused, under tonight's row numbers."""
    con.register("_reused_rows", reused)
    try:
        return fetch_frame(
            con,
            f"SELECT r._row_number, a.source, a.source_record_id, a.unique_id, a.email_key, a.phone_e164 "
            f"FROM {table} a JOIN _reused_rows r ON a._row_number = r.prev_row_number ORDER BY r._row_number",
        )
    finally:
        con.unregister("_reused_rows")
