"""Per-source assets, made by factories from the config: no module per source.

`landing/<source>`: the file as read, landed as Parquet. `accepted/<source>`: the rows that pass
the quality gates (persons standardised), the rest quarantined with a reason. The work is
`warehouse.landing.land_source` and `warehouse.accepted.accept_source`.
"""


from pathlib import Path

import dagster as dg

from dagster_project import constants as C
from dagster_project.assets.common import file_link, night
from dagster_project.assets.erasure import privacy_gate
from dagster_project.checks import check_result
from dagster_project.file_server import page_link
from dagster_project.metadata import readable
from dagster_project.resources import WarehouseResource
from sources.config import Config, SourceConfig
from sources.rates import RatesError
from sources.readers import SourceReadError
from warehouse.accepted import accept_source
from warehouse.landing import land_source

TRANSIENT_RETRY = dg.RetryPolicy(max_retries=2, delay=2, backoff=dg.Backoff.EXPONENTIAL)


def landing_key(name: str) -> dg.AssetKey:
    return dg.AssetKey(["landing", name])


def accepted_key(name: str) -> dg.AssetKey:
    return dg.AssetKey(["accepted", name])


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
        suppressed, key = privacy_gate(cfg, name)  # before anything is read
        try:
            landed = land_source(cfg, src, suppressed, key, context.log)
        except SourceReadError as exc:
            raise dg.Failure(
                description=str(exc),
                metadata={"source": name, "file": str(src.path)},
                allow_retries=False,
            ) from None
        if landed.unchanged:
            return dg.MaterializeResult(
                metadata=readable({**landed.metadata, "unchanged": True, "path": file_link(landed.path)})
            )
        return dg.MaterializeResult(
            metadata=readable({
                **landed.metadata,
                "dagster/row_count": landed.rows,
                "unchanged": False,
                "path": file_link(landed.path),
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
        try:
            done = accept_source(
                cfg, src, warehouse.store, n.as_of, n.run_id, n.run_at, suppressed, key, context.log
            )
        except RatesError as exc:
            raise dg.Failure(description=str(exc), allow_retries=False) from None
        summary = done.summary
        return dg.MaterializeResult(
            metadata=readable({
                **{k: v for k, v in summary.items() if k != "data_docs"},
                "dagster/row_count": summary["rows_accepted"],
                "revalidated": done.revalidated,
                **({"data_docs": page_link(cfg, Path(summary["data_docs"]))} if summary.get("data_docs") else {}),
            }),
            check_results=[check_result(c) for c in done.checks],
        )

    return _accepted
