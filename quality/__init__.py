"""Quality gates: Great Expectations suites per source kind, quarantine, checks, Data Docs.

`validate_source` is the gate the pipeline calls per source; `field_findings` counts the
field-level problems of standardised persons; `safe_csv_frame` / `write_safe_csv` protect every
CSV the project writes from formula injection; `build_data_docs` renders GX Data Docs.
"""

from quality.csv_safety import neutralise_formula, safe_csv_frame, write_safe_csv
from quality.data_docs import build_data_docs
from quality.validate import (
    CheckOutcome,
    ExpectationConfigError,
    QualityGateError,
    ValidationOutcome,
    check_names,
    field_findings,
    validate_source,
)

__all__ = [
    "CheckOutcome",
    "ExpectationConfigError",
    "QualityGateError",
    "ValidationOutcome",
    "build_data_docs",
    "check_names",
    "field_findings",
    "neutralise_formula",
    "safe_csv_frame",
    "validate_source",
    "write_safe_csv",
]
