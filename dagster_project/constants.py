"""Names shared by assets, checks, jobs and the CLI."""

# The checks of every accepted source (file usable, rows conserved, quarantine share, optional
# fields, GX suite) and their limits are made with the validation (quality/source_checks.py).
from quality.source_checks import (  # noqa: F401
    CHECK_CONSERVATION,
    CHECK_EXPECTATIONS,
    CHECK_FIELD_FINDINGS,
    CHECK_FILE_LEVEL,
    CHECK_QUARANTINE_SHARE,
    FIELD_INVALID_WARN_SHARE,
    QUARANTINE_WARN_SHARE,
)

GROUP_SOURCES = "sources"
GROUP_QUALITY = "quality"
GROUP_IDENTITY = "identity"
GROUP_WAREHOUSE = "warehouse"
GROUP_ANALYTICS = "analytics"
GROUP_EXPORTS = "exports"

JOB_NIGHTLY = "scv_nightly"
SCHEDULE_NIGHTLY = "scv_nightly_schedule"
SENSOR_SOURCE_FILES = "scv_source_files_sensor"

# Asset checks (severity chosen deliberately: ERROR blocks downstream, WARN asks a human)
CHECK_XREF_COMPLETE = "every_person_record_linked_once"  # ERROR
CHECK_IDS_UNIQUE = "customer_ids_unique"  # ERROR
CHECK_WAREHOUSE_AUDIT = "staged_warehouse_passes_audit"  # ERROR: nothing published otherwise
CHECK_MONETARY_ONE_CURRENCY = "monetary_in_one_currency"  # WARN: mixed currencies, no reporting one
