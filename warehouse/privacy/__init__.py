"""Privacy by design: erased people kept out of every night, erasure and access on the warehouse.

- `erased_rows`: pure. Keyed hashes (HMAC-SHA256) of identifiers, and the rows of erased people
  found in a frame as a source is read, accepted or quarantined.
- `suppression`: the suppression list and the erasure log under `<data_dir>/privacy/`, and the
  check that the night's key is the one the list was written with.
- `landing`: the rows of erased people held back as a source is landed (`landing/<source>/`).
- `subject`: who a person is in the published warehouse (`find_subject`).
- `erasure`: `forget`, a person erased from the warehouse, exports, staging and landing.
- `access`: `access_document`, everything held about a person.

Audience files (consent, the ad platforms' normalised identifiers) are `transforms.audience` and
`warehouse.audience`. docs/privacy.md tells the whole story.
"""

from warehouse.privacy.access import access_document
from warehouse.privacy.erased_rows import (
    ERASED_RULE,
    HASH_PREFIX,
    HASHED_FIELDS,
    KEY_VERIFIER_KIND,
    QUARANTINE_COLUMNS,
    erased_detail,
    erased_source_rows,
    hash_identifier,
    key_verifier,
    raw_mentions,
    record_identifier,
    redact_erased_quarantine,
    split_erased,
    split_erased_activity,
    subject_hashes,
)
from warehouse.privacy.erasure import ErasureResult, forget
from warehouse.privacy.landing import (
    ERASED_FILE,
    erased_quarantine,
    landed_erased,
    read_key,
    split_erased_raw,
    write_landed_erased,
)
from warehouse.privacy.subject import Lookup, SourceHints, Subject, find_subject
from warehouse.privacy.suppression import (
    ERASURE_LOG,
    PRIVACY_DIR,
    SUPPRESSION_FILE,
    PrivacyError,
    add_to_suppression,
    check_privacy_key,
    load_suppression,
    read_erasure_log,
    suppression_key_verifier,
)

__all__ = [
    "ERASED_FILE",
    "ERASED_RULE",
    "ERASURE_LOG",
    "HASHED_FIELDS",
    "HASH_PREFIX",
    "KEY_VERIFIER_KIND",
    "PRIVACY_DIR",
    "QUARANTINE_COLUMNS",
    "SUPPRESSION_FILE",
    "ErasureResult",
    "Lookup",
    "PrivacyError",
    "SourceHints",
    "Subject",
    "access_document",
    "add_to_suppression",
    "check_privacy_key",
    "erased_detail",
    "erased_quarantine",
    "erased_source_rows",
    "find_subject",
    "forget",
    "hash_identifier",
    "key_verifier",
    "landed_erased",
    "load_suppression",
    "raw_mentions",
    "read_erasure_log",
    "read_key",
    "record_identifier",
    "redact_erased_quarantine",
    "split_erased",
    "split_erased_activity",
    "split_erased_raw",
    "subject_hashes",
    "suppression_key_verifier",
    "write_landed_erased",
]
