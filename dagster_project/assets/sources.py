"""Per-source assets, made by factories from the config: no module per source.

`landing/<source>`: the file as read, landed as Parquet. `accepted/<source>`: the rows that pass
the quality gates (persons standardised), the rest quarantined with a reason.
"""


import hashlib
import json
import os
from importlib.metadata import version
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd

from dagster_project import constants as C
from dagster_project.assets.common import file_link, night
from dagster_project.assets.erasure import privacy_gate
from dagster_project.file_server import page_link
from dagster_project.metadata import readable
from dagster_project.resources import WarehouseResource
from quality.data_docs import build_data_docs
from quality.suites import warm_up
from quality.validate import field_findings, findings_from_counts, validate_source
from sources.config import Config, SourceConfig
from sources.rates import RatesError, conversion_for, rates_fingerprint
from sources.readers import SourceReadError, file_fingerprint, read_source, to_canonical
from transforms.standardise import PERSON_STD_TYPES, standardise_persons
from transforms.standardise.reuse import reuse_plan, write_reusing
from warehouse.models import STAGE_TABLE_OF_KIND, STAGE_TABLES, documented_types
from warehouse.privacy import (
    ERASED_RULE,
    erased_quarantine,
    landed_erased,
    read_key,
    redact_erased_quarantine,
    split_erased,
    split_erased_activity,
    split_erased_raw,
    write_landed_erased,
)
from warehouse.store import fetch_frame, relation_names, write_frame

__version__ = version("scv-warehouse")
TRANSIENT_RETRY = dg.RetryPolicy(max_retries=2, delay=2, backoff=dg.Backoff.EXPONENTIAL)


def landing_key(name: str) -> dg.AssetKey:
    return dg.AssetKey(["landing", name])


def accepted_key(name: str) -> dg.AssetKey:
    return dg.AssetKey(["accepted", name])


def landing_path(cfg: Config, name: str) -> Path:
    return cfg.landing_dir / name / f"{name}.parquet"


def _write_parquet_atomically(df: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    df.to_parquet(tmp, index=False)
    os.replace(tmp, path)


def _state_path(cfg: Config, name: str) -> Path:
    return cfg.landing_dir / name / "landing.json"


def read_landing_state(cfg: Config, name: str) -> dict:
    p = _state_path(cfg, name)
    return json.loads(p.read_text()) if p.exists() else {}


def build_landing_asset(cfg: Config, src: SourceConfig, partitions) -> dg.AssetsDefinition:
    name = src.name
    location = f"{src.path}" + (f" table {src.table}" if src.table else "")

    @dg.asset(
        key=landing_key(name),
        group_name=C.GROUP_SOURCES,
        partitions_def=partitions,
        retry_policy=TRANSIENT_RETRY,
        kinds={"parquet"},
        # an activity source's rows of erased people are known once its person source is read
        deps=[landing_key(src.person.source)] if src.person is not None else None,
        description=f"One row per row of the {src.kind} source `{name}` ({location}), as read: "
        "original columns as text plus `_row_number`; rows of erased people held back.",
    )
    def _landing(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        out = landing_path(cfg, name)
        suppressed, key = privacy_gate(cfg, name)  # before anything is read
        try:
            fingerprint = file_fingerprint(src.path)
            reading = read_key(cfg, src, suppressed)
            previous = read_landing_state(cfg, name)
            if previous.get("fingerprint") == fingerprint and previous.get("read_key") == reading and out.exists():
                # Incremental night: the export did not change, so neither does its landing.
                context.log.info(f"{name}: source unchanged since last extraction, not re-read")
                return dg.MaterializeResult(
                    metadata=readable({**previous["metadata"], "unchanged": True, "path": file_link(out)})
                )
            warm_up()  # the changed source is validated next: import GX while it is read
            raw = read_source(src)
        except SourceReadError as exc:
            raise dg.Failure(
                description=str(exc),
                metadata={"source": name, "file": str(src.path)},
                allow_retries=False,
            ) from None
        rows_read = len(raw)
        raw, erased = split_erased_raw(raw, cfg, src, suppressed, key)
        write_landed_erased(cfg, name, erased)
        _write_parquet_atomically(raw, out)
        meta = {
            "rows": rows_read,
            "rows_erased": len(erased),
            "columns": [c for c in raw.columns if c != "_row_number"],
            "format": src.resolved_format,
            "source_file": str(src.path),
            "fingerprint": fingerprint,
        }
        state = {
            "fingerprint": fingerprint,
            "read_key": reading,
            "metadata": meta,
            # what the schema-drift check compares tonight's columns with
            "previous_columns": previous.get("metadata", {}).get("columns"),
        }
        _state_path(cfg, name).write_text(json.dumps(state))
        context.log.info(
            f"{name}: landed {len(raw):,} rows from {src.path.name}"
            + (f" ({len(erased):,} rows of erased people held back)" if len(erased) else "")
        )
        return dg.MaterializeResult(
            metadata=readable({
                **meta,
                "dagster/row_count": len(raw),
                "unchanged": False,
                "path": file_link(out),
            })
        )

    return _landing


def _accepted_checks(name: str) -> list[dg.AssetCheckSpec]:
    key = accepted_key(name)
    return [
        dg.AssetCheckSpec(
            C.CHECK_FILE_LEVEL,
            asset=key,
            blocking=True,
            description="The delivery is usable: not empty, not shrunk past the configured share "
            "against the last good run, columns as before.",
        ),
        dg.AssetCheckSpec(
            C.CHECK_CONSERVATION,
            asset=key,
            blocking=True,
            description="Nothing lost: rows_in = rows_accepted + rows_quarantined.",
        ),
        dg.AssetCheckSpec(
            C.CHECK_QUARANTINE_SHARE,
            asset=key,
            description=f"At most {C.QUARANTINE_WARN_SHARE:.0%} of rows quarantined.",
        ),
        dg.AssetCheckSpec(
            C.CHECK_EXPECTATIONS,
            asset=key,
            description="Great Expectations suite for the source kind (failing rows quarantined).",
        ),
        dg.AssetCheckSpec(
            C.CHECK_FIELD_FINDINGS,
            asset=key,
            description="Optional person fields that were invalid and treated as missing.",
        ),
    ]


def previous_source_run(warehouse: WarehouseResource, name: str) -> dict | None:
    runs = warehouse.store.previous("source_run")
    runs = runs[runs["source"] == name]
    if runs.empty:
        return None
    return runs.sort_values("run_at").iloc[-1].to_dict()


def _validation_state_path(cfg: Config, name: str) -> Path:
    return cfg.landing_dir / name / "accepted.json"


def _known_ids_digest(con, ref: str) -> str:
    """A digest of the person ids an activity source is checked against: the ids the referenced
    person source accepted tonight and those it quarantined as erased. A change of addresses or
    emails in the person file leaves it alone, so the activity rows need no re-validation."""
    tables = relation_names(con, "stage")
    if not {f"accepted_{ref}", f"quarantine_{ref}"} <= tables:
        return "none"
    row = con.execute(
        f"""
        WITH ids AS (
            SELECT 'a' AS k, source_record_id FROM stage.accepted_{ref}
            UNION ALL
            SELECT 'e', source_record_id FROM stage.quarantine_{ref}
            WHERE rule = ? AND source_record_id IS NOT NULL
        )
        SELECT count(*), bit_xor(hash(k, source_record_id)),
               sum(hash(k || source_record_id)::HUGEINT) % 18446744073709551557
        FROM ids
        """,
        [ERASED_RULE],
    ).fetchall()[0]
    return ":".join(str(v) for v in row)


def _validation_key(cfg: Config, src: SourceConfig, suppressed: set[str], con) -> str:
    """What a validation result depends on, besides the as-of date: the landed file, the source's
    config, the rules shared by all sources, the set of ids the referenced person source accepted
    (not its other fields), the suppression list and this code's version."""
    ref = _known_ids_digest(con, src.person.source) if src.person is not None else ""
    parts = {
        "landing": read_landing_state(cfg, src.name).get("fingerprint"),
        "source": src.model_dump(mode="json"),
        "currency": rates_fingerprint(cfg.currency) if src.kind == "order" else None,
        "plausible": [cfg.quality.max_amount, cfg.quality.min_date.isoformat()],
        "max_row_drop": cfg.quality.max_row_drop,
        "ref": ref,
        "suppressed": sorted(suppressed),
        "code": __version__,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _standardise_key(src: SourceConfig) -> str:
    """What a person source's standardised rows depend on besides their own canonical values
    (and the as-of date, which `standardise_persons_reusing` checks): the settings
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


def _previous_standardised(con, name: str, key: str) -> tuple[str | None, str | None]:
    """(table of last validation's standardised rows of `name`, table of their input hashes),
    when they were made under the same config and code; (None, None) otherwise."""
    tables = relation_names(con, "stage")
    if not {f"accepted_{name}", f"std_inputs_{name}", f"std_key_{name}"} <= tables:
        return None, None
    if con.execute(f"SELECT key FROM stage.std_key_{name}").fetchall() != [(key,)]:
        return None, None
    return f"stage.accepted_{name}", f"stage.std_inputs_{name}"


def _reusable(state: dict, key: str, as_of, con, name: str) -> bool:
    """Last night's validation still holds: same inputs, the as-of date has not gone back (a date
    that was not in the future then is not now), and its staging tables are still there."""
    if state.get("key") != key or state.get("future_date_rows", 1) != 0:
        return False
    if state.get("as_of", "9999-12-31") > as_of.isoformat():
        return False
    tables = relation_names(con, "stage")
    return {f"accepted_{name}", f"quarantine_{name}"} <= tables


def build_accepted_asset(cfg: Config, src: SourceConfig, partitions) -> dg.AssetsDefinition:
    name = src.name
    deps = [landing_key(name)]
    if src.person is not None:
        deps.append(accepted_key(src.person.source))

    @dg.asset(
        key=accepted_key(name),
        group_name=C.GROUP_QUALITY,
        partitions_def=partitions,
        deps=deps,
        check_specs=_accepted_checks(name),
        kinds={"duckdb", "great_expectations"},
        description=f"One row per accepted row of `{name}` ({src.kind}), typed"
        + (" and standardised" if src.kind == "person" else "")
        + "; rejected rows go to scv.quarantine with the rule that failed.",
    )
    def _accepted(
        context: dg.AssetExecutionContext, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:
        n = night(context)
        # Without the list's own key the hashes match nobody, and erased people would come back.
        suppressed, key = privacy_gate(cfg, name)
        state_path = _validation_state_path(cfg, name)
        state = json.loads(state_path.read_text()) if state_path.exists() else {}
        with warehouse.store.stage() as con:
            vkey = _validation_key(cfg, src, suppressed, con)
            reuse = _reusable(state, vkey, n.as_of, con, name)
        if reuse:
            context.log.info(f"{name}: landed file and rules unchanged, last validation reused")
            summary = state["summary"]
            checks = [
                dg.AssetCheckResult(
                    **{k: v for k, v in c.items() if k not in ("severity", "metadata")},
                    severity=dg.AssetCheckSeverity[c["severity"]],
                    metadata=readable(c.get("metadata") or {}),
                )
                for c in state["checks"]
            ]
        else:
            summary, checks, future_rows = _validate(context, n, warehouse, suppressed, key)
            state_path.write_text(
                json.dumps(
                    {
                        "key": vkey,
                        "as_of": n.as_of.isoformat(),
                        "future_date_rows": future_rows,
                        "summary": summary,
                        "checks": [_check_state(c) for c in checks],
                    },
                    default=str,
                )
            )
        source_run = pd.DataFrame(
            [
                {
                    "run_at": n.run_at,
                    "run_id": n.run_id,
                    "source": name,
                    "path": str(src.path),
                    "fingerprint": read_landing_state(cfg, name).get("fingerprint"),
                    "rows_in": summary["rows_in"],
                    "rows_accepted": summary["rows_accepted"],
                    "rows_quarantined": summary["rows_quarantined"],
                    "field_findings": summary["field_findings"],
                }
            ]
        )
        with warehouse.store.stage() as con:
            write_frame(con, f"source_run_{name}", source_run, types=documented_types("source_run"))
        return dg.MaterializeResult(
            metadata=readable({
                **{k: v for k, v in summary.items() if k != "data_docs"},
                "dagster/row_count": summary["rows_accepted"],
                "revalidated": not reuse,
                **({"data_docs": page_link(cfg, Path(summary["data_docs"]))} if summary.get("data_docs") else {}),
            }),
            check_results=checks,
        )

    def _validate(context, n, warehouse, suppressed: set[str], key: str | None):
        raw = pd.read_parquet(landing_path(cfg, name))
        held_back = erased_quarantine(landed_erased(cfg, name), name)  # erased as it was read
        canon = to_canonical(raw, src)
        known = erased_refs = None
        if src.person is not None:
            with warehouse.store.stage() as con:
                ref = src.person.source
                known = set(
                    con.execute(f"SELECT source_record_id FROM stage.accepted_{ref}").df()[
                        "source_record_id"
                    ]
                )
                erased_refs = set(
                    con.execute(
                        f"SELECT source_record_id FROM stage.quarantine_{ref} WHERE rule = ?",
                        [ERASED_RULE],
                    ).df()["source_record_id"].dropna()
                )
        prev = previous_source_run(warehouse, name)
        landing = read_landing_state(cfg, name)
        try:
            conversion = conversion_for(cfg.currency) if src.kind == "order" else None
        except RatesError as exc:
            raise dg.Failure(description=f"source {name}: {exc}", allow_retries=False) from None
        outcome = validate_source(
            raw,
            canon,
            src,
            as_of=n.as_of,
            # rows of an erased person are told apart from rows of unknown people below
            known_person_ids=(known | erased_refs) if known is not None else None,
            conversion=conversion,
            max_amount=cfg.quality.max_amount,
            min_date=cfg.quality.min_date,
            previous_rows=int(prev["rows_in"]) if prev else None,
            previous_columns=landing.get("previous_columns"),
            max_row_drop=src.max_row_drop if src.max_row_drop is not None else cfg.quality.max_row_drop,
        )
        accepted = outcome.accepted
        quarantine = redact_erased_quarantine(
            outcome.quarantine, src, suppressed, key, erased_refs or set()
        )
        erased = _empty_like(quarantine)
        reused = pd.DataFrame()
        if src.kind == "person":
            std_key = _standardise_key(src)
            erased_parts = []
            with warehouse.store.stage() as con:
                prev_table, prev_inputs = _previous_standardised(con, name, std_key)
                hashes, reused = reuse_plan(con, accepted, prev_table, prev_inputs, n.as_of)
                if suppressed and len(reused):
                    # rows kept last night may name a person erased since
                    kept, gone = split_erased(_reused_identifiers(con, prev_table, reused), suppressed, key)
                    reused = reused[reused["_row_number"].isin(kept["_row_number"])]
                    erased_parts.append(gone)
            std_inputs = pd.DataFrame({"_row_number": accepted["_row_number"].to_numpy(dtype="int64"), "input_hash": hashes})
            fresh = standardise_persons(
                accepted[~accepted["_row_number"].isin(reused["_row_number"])], src, n.as_of
            )
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
        quarantine = quarantine.sort_values("row_number", kind="stable").assign(run_at=n.run_at)
        with warehouse.store.stage() as con:
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
                write_frame(con, f"std_key_{name}", pd.DataFrame({"key": [std_key]}))
                findings = findings_from_counts(
                    dict(
                        con.execute(
                            f"SELECT issue, count(*) FROM (SELECT unnest(field_issues) AS issue "
                            f"FROM stage.accepted_{name}) GROUP BY issue"
                        ).fetchall()
                    )
                )
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
            docs = build_data_docs([outcome], cfg.quality_dir / "docs" / name, run_name=n.run_id)
        except Exception as exc:  # Data Docs are a view of the results, not a gate
            context.log.warning(f"{name}: Data Docs not written: {exc}")
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
            "field_findings_by_rule": {
                f"{r.field}:{r.rule}": int(r.count) for r in findings.itertuples(index=False)
            },
            "data_docs": str(docs) if docs else None,
        }
        blocking = outcome.blocking_failures
        reason = lambda c: c.metadata.get("reason", c.description)  # noqa: E731
        checks = [
            dg.AssetCheckResult(
                check_name=C.CHECK_FILE_LEVEL,
                passed=not blocking,
                severity=dg.AssetCheckSeverity.ERROR,
                description=(
                    f"source {name}: {src.path}: " + "; ".join(reason(c) for c in blocking)
                    if blocking
                    else "file usable"
                ),
                metadata={"rows_in": rows_in, **({"previous_rows_in": int(prev["rows_in"])} if prev else {})},
            ),
            dg.AssetCheckResult(
                check_name=C.CHECK_CONSERVATION,
                passed=rows_in == rows_ok + rows_q,
                severity=dg.AssetCheckSeverity.ERROR,
                metadata={"rows_in": rows_in, "rows_accepted": rows_ok, "rows_quarantined": rows_q},
            ),
            dg.AssetCheckResult(
                check_name=C.CHECK_QUARANTINE_SHARE,
                passed=rows_q <= C.QUARANTINE_WARN_SHARE * max(rows_in, 1),
                severity=dg.AssetCheckSeverity.WARN,
                description=f"{rows_q:,} of {rows_in:,} rows quarantined ({rows_q / max(rows_in, 1):.1%}; "
                f"a human should look above {C.QUARANTINE_WARN_SHARE:.0%})",
                metadata=readable({"share": rows_q / max(rows_in, 1), "quarantined_by_rule": by_rule}),
            ),
            expectations_check(name, outcome.checks),
            field_findings_check(rows_ok, findings),
        ]
        context.log.info(
            f"{name}: {rows_in:,} in, {rows_ok:,} accepted, {rows_q:,} quarantined "
            f"({', '.join(f'{k}={v}' for k, v in by_rule.items()) or 'none'}); "
            f"{n_findings:,} optional fields treated as missing"
        )
        return summary, checks, int(by_rule.get("future_date", 0))

    return _accepted


def expectations_check(name: str, outcomes) -> dg.AssetCheckResult:
    """The GX suite as one WARN check that fires only when a human has something to do: an
    expectation failed whose rows were not quarantined (a `warn` expectation, a file-level
    warning) or that could not run. Failing rows that went to quarantine are already handled,
    and counted by the quarantine-share check, so they leave this check passing: it fired on
    every demo night (one duplicate id in a source) and meant nothing."""
    failed = [c for c in outcomes if not c.passed and not c.blocking]
    handled = [c for c in failed if c.metadata.get("rule") and "exception" not in c.metadata]
    open_ = [c for c in failed if c not in handled]

    def why(c) -> str:
        return c.metadata.get("exception") or c.metadata.get("reason", c.description)

    if open_:
        description = "; ".join(f"{c.name}: {why(c)}" for c in open_)[:2000]
    elif handled:
        description = f"{len(outcomes)} expectations; failing rows quarantined: " + ", ".join(
            f"{c.name} ({c.metadata.get('rows_quarantined', c.metadata.get('rows_failing', '?'))})"
            for c in handled
        )
    else:
        description = f"all {len(outcomes)} expectations passed"
    return dg.AssetCheckResult(
        check_name=C.CHECK_EXPECTATIONS,
        passed=not open_,
        severity=dg.AssetCheckSeverity.WARN,
        description=description,
        metadata={
            "expectations run": len(outcomes),
            "failed, rows quarantined": len(handled),
            "failed, not handled (needs a look)": len(open_),
        },
    )


def field_findings_check(rows: int, findings: pd.DataFrame) -> dg.AssetCheckResult:
    """Optional person fields that were invalid and treated as missing: a WARN when one field is
    invalid in more than `FIELD_INVALID_WARN_SHARE` of the accepted rows (a systematic problem:
    a wrong date_format or default_country, a column mapped to the wrong field). A few
    placeholders (`test@test.com`) are ordinary and handled: they no longer fire every night."""
    per_field = findings.groupby("field")["count"].sum().to_dict() if len(findings) else {}
    limit = C.FIELD_INVALID_WARN_SHARE
    worst = {f: n / max(rows, 1) for f, n in per_field.items()}
    over = sorted((f for f, share in worst.items() if share > limit), key=lambda f: -worst[f])
    described = ", ".join(f"{f} {worst[f]:.1%}" for f in (over or sorted(worst, key=lambda f: -worst[f])[:3]))
    return dg.AssetCheckResult(
        check_name=C.CHECK_FIELD_FINDINGS,
        passed=not over,
        severity=dg.AssetCheckSeverity.WARN,
        description=(
            f"invalid in more than {limit:.0%} of {rows:,} rows: {described} (check the source's "
            "date_format, default_country and column mapping)"
            if over
            else f"no field invalid in more than {limit:.0%} of {rows:,} rows"
            + (f" (highest: {described})" if described else "")
        ),
        metadata=readable(
            {
                "invalid_by_field": {f: round(100 * worst[f], 2) for f in sorted(worst)},
                "field_findings_by_rule": {
                    f"{r.field}: {r.rule}": int(r.count) for r in findings.itertuples(index=False)
                },
            }
        ),
    )


def _reused_identifiers(con, table: str, reused: pd.DataFrame) -> pd.DataFrame:
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


def _empty_like(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.iloc[0:0]


def _check_state(check: dg.AssetCheckResult) -> dict:
    """A check result as JSON, to report again on a night that reuses the validation."""
    return {
        "check_name": check.check_name,
        "passed": check.passed,
        "severity": check.severity.name,
        "description": check.description,
        "metadata": {k: _plain_metadata(v) for k, v in check.metadata.items()},
    }


def _plain_metadata(value):
    """A metadata value as JSON: a two-column table as {category: value}, which `readable`
    turns back into the table."""
    if isinstance(value, dg.TableMetadataValue) and value.schema and len(value.schema.columns) == 2:
        first, second = (c.name for c in value.schema.columns)
        return {r.data[first]: r.data[second] for r in value.records}
    return getattr(value, "value", value)
