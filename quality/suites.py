"""Running Great Expectations 1.x suites on pandas frames, and reading back the failing rows.

GX does the evaluating; this module only builds suites, runs them on an in-memory (ephemeral)
context with progress bars and analytics off, and turns each expectation result's
``unexpected_index_list`` (COMPLETE result format) into a boolean row mask.

Every expectation built here carries ``meta={"check": <check name>, ...}`` so a result can be
traced back to the check (and quarantine rule) it serves.
"""

from __future__ import annotations

import logging
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "ExpectationConfigError",
    "ExpectationRun",
    "SuiteRun",
    "build_expectation",
    "run_suite",
]

RESULT_FORMAT = {
    "result_format": "COMPLETE",
    # The index query is a string listing every failing index: large and unused here.
    "return_unexpected_index_query": False,
    "partial_unexpected_count": 20,
}

_lock = threading.Lock()


class ExpectationConfigError(ValueError):
    """A declared expectation (``expectations:`` in a source's config) that cannot be built."""


@dataclass
class ExpectationRun:
    """One expectation's outcome: GX's result plus the rows it flagged (positional mask)."""

    expectation_type: str
    meta: dict[str, Any]
    success: bool
    unexpected: np.ndarray | None  # bool per row, None for table-level expectations
    result: Any  # great_expectations ExpectationValidationResult
    exception: str | None = None

    @property
    def unexpected_count(self) -> int:
        if self.unexpected is not None:
            return int(self.unexpected.sum())
        return int((self.result.result or {}).get("unexpected_count") or 0)


@dataclass
class SuiteRun:
    """A suite's outcome: the GX suite validation result and one `ExpectationRun` each."""

    suite_name: str
    result: Any  # great_expectations ExpectationSuiteValidationResult
    expectations: list[ExpectationRun] = field(default_factory=list)

    def by_check(self, check: str) -> list[ExpectationRun]:
        return [e for e in self.expectations if e.meta.get("check") == check]


def _gx():
    import great_expectations as gx
    from great_expectations.execution_engine import pandas_execution_engine

    # GX logs a line per context creation at INFO/WARNING; pipelines log their own summary.
    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    # GX hashes every in-memory frame (twice per suite) for a batch "fingerprint" marker we never
    # read: about a second per million rows. Frames here are validated once, so skip it.
    pandas_execution_engine.HASH_THRESHOLD = 0
    return gx


_warm_lock = threading.Lock()
_warm_thread: threading.Thread | None = None


def warm_up() -> None:
    """Start importing Great Expectations in a background thread, once per process.

    The import takes 3-6 s, most of it loading scipy. A night that is about to read a changed
    source calls this first: the import then overlaps the read (which spends its time outside
    the GIL, in Arrow and DuckDB) instead of delaying the validation. Python's import lock makes
    a later `import great_expectations` wait for the thread's import to finish; a failure here
    is left for that later import to raise."""
    global _warm_thread
    with _warm_lock:
        if _warm_thread is None:
            # SQLAlchemy is imported here, in the calling thread, before the background one
            # starts: GX imports it too, and Dagster's storage may import parts of it at the
            # same moment; two threads importing its circular modules at once once failed with
            # "partially initialized module 'sqlalchemy.orm.exc'". Dagster has loaded most of
            # it already, so this costs little.
            import sqlalchemy.orm  # noqa: F401

            _warm_thread = threading.Thread(target=_warm, name="gx-import", daemon=True)
            _warm_thread.start()


def _warm() -> None:
    try:
        _gx()
    except Exception:  # noqa: BLE001, S110 - raised again, with its traceback, by the validation's import
        pass


def ephemeral_context(data_docs_sites: dict[str, Any] | None = None):
    """A fresh in-memory GX context with progress bars and analytics switched off."""
    gx = _gx()
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
        data_docs_sites=data_docs_sites or {},
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def build_expectation(name: str, kwargs: dict[str, Any], meta: dict[str, Any], where: str) -> Any:
    """Instantiate the GX expectation called `name` (snake case, e.g. ``expect_column_…``).

    `where` prefixes error messages (e.g. ``source crm: expectations[0]``).
    """
    _gx()
    from great_expectations.exceptions import ExpectationNotFoundError
    from great_expectations.expectations.registry import get_expectation_impl

    try:
        cls = get_expectation_impl(name)
    except ExpectationNotFoundError:
        raise ExpectationConfigError(
            f"{where}: unknown Great Expectations expectation {name!r}"
        ) from None
    description = meta.get("description")
    try:
        return cls(**kwargs, meta=meta, **({"description": description} if description else {}))
    except (ValueError, TypeError) as exc:  # pydantic errors: name the entry, not the traceback
        first = str(exc).strip().splitlines()
        detail = "; ".join(line.strip() for line in first[:3])
        raise ExpectationConfigError(f"{where}: invalid kwargs for {name}: {detail}") from None


def run_suite(frame: pd.DataFrame, suite_name: str, expectations: list[Any]) -> SuiteRun:
    """Validate `frame` against `expectations` with GX and return per-expectation row masks.

    The frame is re-indexed 0..n-1 so GX's ``unexpected_index_list`` is positional.
    """
    gx = _gx()
    frame = frame.reset_index(drop=True)
    n = len(frame)
    with _lock:  # GX's registries and metric caches are not built for concurrent runs
        context = ephemeral_context()
        asset = context.data_sources.add_pandas(f"scv_{uuid.uuid4().hex[:8]}").add_dataframe_asset(
            suite_name
        )
        batch = asset.add_batch_definition_whole_dataframe("whole").get_batch(
            batch_parameters={"dataframe": frame}
        )
        suite = gx.ExpectationSuite(name=suite_name, expectations=list(expectations))
        result = batch.validate(suite, result_format=dict(RESULT_FORMAT))
    runs = []
    for res in result.results:
        config = res.expectation_config
        info = res.exception_info or {}
        exception = info.get("exception_message") if info.get("raised_exception") else None
        body = res.result or {}
        mask = None
        if "unexpected_index_list" in body:
            mask = np.zeros(n, dtype=bool)
            index = body.get("unexpected_index_list") or []
            if index and isinstance(index[0], dict):  # when index column names were requested
                index = [next(iter(d.values())) for d in index]
            if index:
                mask[np.asarray(index, dtype=np.int64)] = True
        runs.append(
            ExpectationRun(
                expectation_type=config.type,
                meta=dict(config.meta or {}),
                success=bool(res.success),
                unexpected=mask,
                result=res,
                exception=exception,
            )
        )
    return SuiteRun(suite_name=suite_name, result=result, expectations=runs)
