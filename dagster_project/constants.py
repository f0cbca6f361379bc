"""Names shared by assets, checks, jobs and the CLI."""

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
CHECK_FILE_LEVEL = "file_is_usable"  # ERROR: empty, shrunk or drifted file
CHECK_CONSERVATION = "rows_conserved"  # ERROR: rows_in = accepted + quarantined
CHECK_QUARANTINE_SHARE = "quarantine_share_below_limit"  # WARN
CHECK_FIELD_FINDINGS = "optional_fields_valid"  # WARN
CHECK_EXPECTATIONS = "great_expectations_suite"  # WARN (row failures are quarantined)
CHECK_XREF_COMPLETE = "every_person_record_linked_once"  # ERROR
CHECK_IDS_UNIQUE = "customer_ids_unique"  # ERROR
CHECK_WAREHOUSE_AUDIT = "staged_warehouse_passes_audit"  # ERROR: nothing published otherwise
CHECK_MONETARY_ONE_CURRENCY = "monetary_in_one_currency"  # WARN: mixed currencies, no reporting one

#: Share of quarantined rows above which a human should look (WARN check)
QUARANTINE_WARN_SHARE = 0.05
#: Share of accepted rows with one optional field invalid above which a human should look
#: (WARN check): a few placeholders are ordinary, a field mostly invalid is a mapping problem
FIELD_INVALID_WARN_SHARE = 0.10
