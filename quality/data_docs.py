"""Great Expectations Data Docs (static HTML) for one night's validation results.

`build_data_docs(results, docs_dir)` renders the suite results that `validate_source` returned
(``outcome.gx_results``, or the outcomes themselves) into ``docs_dir/index.html`` plus one page
per source suite. It is optional and cheap: results are slimmed to GX's SUMMARY shape first (20
sample failing values, no full row lists), so a million-row night renders in about a second.
Each build shows that night only; pages from earlier builds are removed.

GX's page templates do not escape every value they show: the sample failing values are put in
table cells as they are, so a source id `<script>…</script>` ran as script in the page. Every
sample value is HTML-escaped here before GX renders it (`_escaped`); the values GX passes through
its string templates (column names, expectation arguments) GX escapes itself.
"""

from __future__ import annotations

import datetime as _dt
import html
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["build_data_docs"]

SITE_NAME = "scv"
# Full per-row lists stay in the quarantine table; docs keep the samples GX shows anyway.
_HEAVY_KEYS = ("unexpected_list", "unexpected_index_list", "unexpected_index_query")
# Result values GX renders verbatim into HTML table cells: sample values and observed values
# (e.g. the file's column names) from the data.
_SAMPLE_KEYS = (
    "partial_unexpected_list",
    "partial_unexpected_counts",
    "partial_unexpected_index_list",
    "observed_value",
)


def _escaped(value: Any) -> Any:
    """`value` with every string in it HTML-escaped (lists and dicts walked), others as they are."""
    if isinstance(value, str):
        return html.escape(value, quote=True)
    if isinstance(value, list):
        return [_escaped(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_escaped(v) for v in value)
    if isinstance(value, dict):
        return {k: _escaped(v) for k, v in value.items()}
    return value


def _suite_results(results: Iterable[Any]) -> list[Any]:
    out = []
    for item in results:
        gx_results = getattr(item, "gx_results", None)
        if gx_results is not None:  # a ValidationOutcome
            out.extend(gx_results)
        else:
            out.append(item)
    return out


def _slim(result: Any, run_id: Any) -> Any:
    from great_expectations.core.expectation_validation_result import (
        ExpectationSuiteValidationResult,
        ExpectationValidationResult,
    )

    slim_results = []
    for r in result.results:
        body = {
            k: _escaped(v) if k in _SAMPLE_KEYS else v
            for k, v in (r.result or {}).items()
            if k not in _HEAVY_KEYS
        }
        slim_results.append(
            ExpectationValidationResult(
                success=r.success,
                expectation_config=r.expectation_config,
                result=body,
                meta=r.meta,
                exception_info=r.exception_info,
            )
        )
    meta = dict(result.meta or {})
    meta["run_id"] = run_id
    meta["validation_time"] = run_id.run_time
    return ExpectationSuiteValidationResult(
        success=result.success,
        results=slim_results,
        suite_name=result.suite_name,
        suite_parameters=result.suite_parameters,
        statistics=result.statistics,
        meta=meta,
        batch_id=result.batch_id,
    )


def build_data_docs(
    results: Iterable[Any],
    docs_dir: str | Path,
    *,
    run_name: str = "scv",
    run_time: _dt.datetime | None = None,
) -> Path:
    """Write GX Data Docs for `results` under `docs_dir`; return the path of ``index.html``.

    `results`: ``ExpectationSuiteValidationResult``s and/or `ValidationOutcome`s. `run_name` and
    `run_time` (default now, UTC) label the run in the pages.
    """
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    from quality.suites import ephemeral_context

    docs_dir = Path(docs_dir).resolve()
    docs_dir.mkdir(parents=True, exist_ok=True)
    for stale in ("validations", "expectations"):
        shutil.rmtree(docs_dir / stale, ignore_errors=True)
    run_id = RunIdentifier(
        run_name=run_name, run_time=run_time or _dt.datetime.now(_dt.UTC)
    )
    site = {
        "class_name": "SiteBuilder",
        "show_how_to_buttons": False,
        "store_backend": {
            "class_name": "TupleFilesystemStoreBackend",
            "base_directory": str(docs_dir),
        },
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
    }
    context = ephemeral_context(data_docs_sites={SITE_NAME: site})
    for i, result in enumerate(_suite_results(results)):
        key = ValidationResultIdentifier(
            ExpectationSuiteIdentifier(name=result.suite_name), run_id, f"batch_{i}"
        )
        context.validation_results_store.set(key, _slim(result, run_id))
    context.build_data_docs(site_names=[SITE_NAME])
    return docs_dir / "index.html"
