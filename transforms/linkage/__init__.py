"""Probabilistic identity resolution with Splink: which source records are the same person.

The assets call a small surface: `available_fields`, `train_model`, `model_covers`,
`link_and_dedupe`, `predict_incremental`, `cluster_edges`, `write_charts`, with
`LinkageSettings` built from the config's `linkage:` block. Internals live in the submodules:
`fields` (match fields, blocking keys), `comparisons` (the Splink specification), `model`
(training, the model document), `guards` (hard conflicts), `clustering`, `predict`, `charts`,
`engine` (the one place a Splink database API is built); `guard_policy(model, mode)` gives
the hard-conflict policy the data's evidence supports and `evaluation` (accuracy metrics
for the benchmark).
"""

from transforms.incremental import MATCH_COLUMNS as INCREMENTAL_MATCH_COLUMNS

from .charts import write_charts
from .clustering import (
    CLUSTER_COLUMNS,
    REVIEW_COLUMNS,
    cluster_edges,
    cluster_with_review,
)
from .comparisons import COUNTED_COLUMNS
from .fields import (
    GUARD_COLUMNS,
    MATCH_FIELDS,
    available_fields,
    count_not_blank,
    fields_filled_enough,
)
from .guards import GUARD_MODES, GuardPolicy, guard_evidence
from .model import guard_policy, model_covers, model_meta, read_labels, train_model
from .overrides import (
    OverrideConflictError,
    OverrideError,
    OverrideSet,
    append_override,
    explain_history,
    read_overrides,
    resolve_overrides,
    review_queue,
)
from .predict import (
    LinkageResult,
    empty_edges,
    link_and_dedupe,
    predict_changed,
    predict_incremental,
)
from .settings import LinkageSettings
from .stage import LinkageStage


def linkage_stage(settings: LinkageSettings) -> LinkageStage:
    """The linkage stage of the configured engine (`linkage.engine`): `DuckDBLinkageStage`, or
    `SparkLinkageStage` (pyspark is imported only then)."""
    if settings.engine == "spark":
        from .spark_stage import SparkLinkageStage

        return SparkLinkageStage(settings)
    from .stage import DuckDBLinkageStage

    return DuckDBLinkageStage(settings)


#: The column each match field is judged present by (what `available_fields` reads).
MATCH_FIELD_COLUMNS: tuple[str, ...] = ("unique_id", *(cols[0] for cols in MATCH_FIELDS.values()))

#: Every standardised column linkage reads (scoring, blocking, guards, change detection): the
#: rest of a person record is not loaded for it.
LINKAGE_COLUMNS: tuple[str, ...] = tuple(
    dict.fromkeys(
        (
            "unique_id",
            "source",
            "source_record_id",
            *(c for cols in MATCH_FIELDS.values() for c in cols),
            *GUARD_COLUMNS,
            *COUNTED_COLUMNS,
            *INCREMENTAL_MATCH_COLUMNS,
        )
    )
)

__all__ = [
    "CLUSTER_COLUMNS",
    "GUARD_MODES",
    "LINKAGE_COLUMNS",
    "MATCH_FIELD_COLUMNS",
    "REVIEW_COLUMNS",
    "GuardPolicy",
    "LinkageResult",
    "LinkageSettings",
    "LinkageStage",
    "OverrideConflictError",
    "OverrideError",
    "OverrideSet",
    "append_override",
    "available_fields",
    "cluster_edges",
    "cluster_with_review",
    "count_not_blank",
    "empty_edges",
    "explain_history",
    "fields_filled_enough",
    "guard_evidence",
    "guard_policy",
    "link_and_dedupe",
    "linkage_stage",
    "model_covers",
    "model_meta",
    "predict_changed",
    "predict_incremental",
    "read_labels",
    "read_overrides",
    "resolve_overrides",
    "review_queue",
    "train_model",
    "write_charts",
]
