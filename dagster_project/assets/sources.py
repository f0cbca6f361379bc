"""Per-source assets, made by factories from the config: no module per source.

`landing/<source>`: the file as read, landed as Parquet. `accepted/<source>`: the rows that pass
the quality gates (persons standardised), the rest quarantined with a reason.
"""


import json
import os
from pathlib import Path

import dagster as dg
import pandas as pd

from dagster_project import constants as C
from dagster_project.assets.common import file_link, night
from dagster_project.resources import WarehouseResource
from quality.validate import field_findings, validate_source
from sources.config import Config, SourceConfig
from sources.readers import SourceReadError, file_fingerprint, read_source, to_canonical
from transforms.standardise import standardise_persons
from warehouse.store import write_frame

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
        description=f"One row per row of the {src.kind} source `{name}` ({location}), as read: "
        "original columns as text plus `_row_number`.",
    )
    def _landing(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        out = landing_path(cfg, name)
        try:
            fingerprint = file_fingerprint(src.path)
            previous = read_landing_state(cfg, name)
            if previous.get("fingerprint") == fingerprint and out.exists():
                # Incremental night: the export did not change, so neither does its landing.
                context.log.info(f"{name}: source unchanged since last extraction, not re-read")
                return dg.MaterializeResult(
                    metadata={**previous["metadata"], "unchanged": True, "path": file_link(out)}
                )
            raw = read_source(src)
        except SourceReadError as exc:
            raise dg.Failure(
                description=str(exc),
                metadata={"source": name, "file": str(src.path)},
                allow_retries=False,
            ) from None
        _write_parquet_atomically(raw, out)
        meta = {
            "rows": len(raw),
            "columns": [c for c in raw.columns if c != "_row_number"],
            "format": src.resolved_format,
            "source_file": str(src.path),
            "fingerprint": fingerprint,
        }
        _state_path(cfg, name).write_text(json.dumps({"fingerprint": fingerprint, "metadata": meta}))
        context.log.info(f"{name}: landed {len(raw):,} rows from {src.path.name}")
        return dg.MaterializeResult(
            metadata={
                **meta,
                "dagster/row_count": len(raw),
                "unchanged": False,
                "path": file_link(out),
            }
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
        raw = pd.read_parquet(landing_path(cfg, name))
        canon = to_canonical(raw, src)
        known = None
        if src.person is not None:
            with warehouse.store.stage() as con:
                known = set(
                    con.execute(
                        f"SELECT source_record_id FROM stage.accepted_{src.person.source}"
                    ).df()["source_record_id"]
                )
        prev = previous_source_run(warehouse, name)
        outcome = validate_source(
            raw,
            canon,
            src,
            as_of=n.as_of,
            known_person_ids=known,
            currency_rates=cfg.currency.rates,
            previous_rows=int(prev["rows_in"]) if prev else None,
            max_row_drop=src.max_row_drop
            if src.max_row_drop is not None
            else cfg.quality.max_row_drop,
        )
        accepted = outcome.accepted
        findings = pd.DataFrame(columns=["field", "rule", "count"])
        if src.kind == "person":
            accepted = standardise_persons(accepted, src, as_of=n.as_of)
            findings = field_findings(accepted)
            accepted = accepted.assign(field_issues=accepted["field_issues"].map(list))
        else:
            accepted = accepted.assign(person_source=src.person.source)
            if src.kind == "order":
                rates = cfg.currency.rates
                accepted = accepted.assign(
                    amount_reporting=accepted["amount"] * accepted["currency"].map(rates)
                )
        quarantine = outcome.quarantine.assign(run_at=n.run_at)
        rows_in, rows_ok, rows_q = len(raw), len(accepted), len(quarantine)
        n_findings = int(findings["count"].sum()) if len(findings) else 0
        source_run = pd.DataFrame(
            [
                {
                    "run_at": n.run_at,
                    "run_id": n.run_id,
                    "source": name,
                    "path": str(src.path),
                    "fingerprint": read_landing_state(cfg, name).get("fingerprint"),
                    "rows_in": rows_in,
                    "rows_accepted": rows_ok,
                    "rows_quarantined": rows_q,
                    "field_findings": n_findings,
                }
            ]
        )
        with warehouse.store.stage() as con:
            write_frame(con, f"accepted_{name}", accepted)
            write_frame(con, f"quarantine_{name}", quarantine)
            write_frame(con, f"source_run_{name}", source_run)

        by_rule = (
            quarantine.groupby("rule").size().sort_values(ascending=False).to_dict()
            if rows_q
            else {}
        )
        blocking = [c for c in outcome.checks if c.severity == "ERROR" and not c.passed]
        expectation_fails = [c for c in outcome.checks if c.severity != "ERROR" and not c.passed]
        conserved = rows_in == rows_ok + rows_q
        checks = [
            dg.AssetCheckResult(
                check_name=C.CHECK_FILE_LEVEL,
                passed=not blocking,
                severity=dg.AssetCheckSeverity.ERROR,
                description="; ".join(c.description for c in blocking) or "file usable",
                metadata={"rows_in": rows_in, "previous_rows_in": prev["rows_in"] if prev else -1},
            ),
            dg.AssetCheckResult(
                check_name=C.CHECK_CONSERVATION,
                passed=conserved,
                severity=dg.AssetCheckSeverity.ERROR,
                metadata={"rows_in": rows_in, "rows_accepted": rows_ok, "rows_quarantined": rows_q},
            ),
            dg.AssetCheckResult(
                check_name=C.CHECK_QUARANTINE_SHARE,
                passed=rows_q <= C.QUARANTINE_WARN_SHARE * max(rows_in, 1),
                severity=dg.AssetCheckSeverity.WARN,
                metadata={"share": rows_q / max(rows_in, 1), **{f"rule:{k}": int(v) for k, v in by_rule.items()}},
            ),
            dg.AssetCheckResult(
                check_name=C.CHECK_EXPECTATIONS,
                passed=not expectation_fails,
                severity=dg.AssetCheckSeverity.WARN,
                description="; ".join(c.description for c in expectation_fails)[:2000] or "all passed",
                metadata={
                    "expectations_failed": len(expectation_fails),
                    "expectations_run": len(outcome.checks),
                },
            ),
            dg.AssetCheckResult(
                check_name=C.CHECK_FIELD_FINDINGS,
                passed=n_findings == 0,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={
                    f"{r.field}:{r.rule}": int(r.count) for r in findings.itertuples(index=False)
                }
                or {"findings": 0},
            ),
        ]
        context.log.info(
            f"{name}: {rows_in:,} in, {rows_ok:,} accepted, {rows_q:,} quarantined "
            f"({', '.join(f'{k}={v}' for k, v in by_rule.items()) or 'none'})"
        )
        docs = getattr(outcome, "docs_path", None)
        return dg.MaterializeResult(
            metadata={
                "rows_in": rows_in,
                "rows_accepted": rows_ok,
                "rows_quarantined": rows_q,
                "dagster/row_count": rows_ok,
                "quarantined_by_rule": by_rule,
                "field_findings": n_findings,
                **({"data_docs": file_link(Path(docs))} if docs else {}),
            },
            check_results=checks,
        )

    return _accepted
