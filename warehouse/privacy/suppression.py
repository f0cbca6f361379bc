"""The suppression list of erased people and the erasure log, under `<data_dir>/privacy/`.

`suppression.csv` holds keyed hashes of erased people's identifiers (erased_rows.py says which)
and a verifier of the key they were hashed with; `erasure_log.jsonl` one line per erasure. No
personal data in either. Every night checks the key against the list before it reads a source.
"""

from __future__ import annotations

import csv
import io
import json
import os
import uuid
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from warehouse.privacy.erased_rows import KEY_VERIFIER_KIND, key_verifier

__all__ = [
    "ERASURE_LOG",
    "PRIVACY_DIR",
    "SUPPRESSION_FILE",
    "PrivacyError",
    "add_to_suppression",
    "append_erasure_log",
    "check_privacy_key",
    "load_suppression",
    "read_erasure_log",
    "suppression_key_verifier",
]

PRIVACY_DIR = "privacy"
SUPPRESSION_FILE = "suppression.csv"
ERASURE_LOG = "erasure_log.jsonl"
SUPPRESSION_COLUMNS = ("hash", "kind", "subject", "added_at")


class PrivacyError(Exception):
    """A privacy operation that cannot be done; the message is one line without personal data."""


def _privacy_dir(data_dir: Path) -> Path:
    return Path(data_dir) / PRIVACY_DIR


def _suppression_rows(data_dir: Path) -> list[dict[str, str]]:
    path = _privacy_dir(data_dir) / SUPPRESSION_FILE
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def load_suppression(data_dir: Path) -> set[str]:
    """Every keyed hash of an identifier in `<data_dir>/privacy/suppression.csv` (empty before
    the first erasure); the key verifier is not one."""
    return {
        row["hash"]
        for row in _suppression_rows(data_dir)
        if row.get("hash") and row.get("kind") != KEY_VERIFIER_KIND
    }


def suppression_key_verifier(data_dir: Path) -> str | None:
    """The verifier of the key the suppression list was written with, or None (no list yet, or
    one written before lists recorded it)."""
    for row in _suppression_rows(data_dir):
        if row.get("kind") == KEY_VERIFIER_KIND and row.get("hash"):
            return row["hash"]
    return None


def check_privacy_key(data_dir: Path, key: str | None, key_env: str = "SCV_PRIVACY_KEY") -> None:
    """Raise PrivacyError (one line: the reason and the fix) when the suppression list of erased
    people cannot be matched with `key`: it is not empty and there is no key, or it records
    the verifier of another key. Hashes under another key match nobody, so a night going on
    would let every erased person back. A list without a verifier (written before lists recorded
    one) cannot be checked and passes; the next `scv forget` adds the verifier."""
    rows = _suppression_rows(data_dir)
    if not rows:
        return
    path = _privacy_dir(data_dir) / SUPPRESSION_FILE
    if not key:
        raise PrivacyError(
            f"{path} lists erased people but no privacy key is set: set ${key_env} (or "
            "privacy.key) to the key `scv forget` used, or erased people would come back"
        )
    recorded = next(
        (r["hash"] for r in rows if r.get("kind") == KEY_VERIFIER_KIND and r.get("hash")), None
    )
    if recorded is not None and recorded != key_verifier(key):
        raise PrivacyError(
            f"${key_env} is not the privacy key {path} was written with: set ${key_env} (or "
            "privacy.key) back to the key `scv forget` used; with another key erased people "
            "would come back, so nothing was read or published"
        )


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def add_to_suppression(
    data_dir: Path,
    hashes: Mapping[str, str],
    subject: str,
    when: datetime,
    verifier: str | None = None,
) -> int:
    """Add `hash -> kind` entries (kind: record, email_key, email_std, phone_e164) for one
    subject, and the key's `verifier` (`erased_rows.key_verifier`) when the list has
    none yet; the file is rewritten whole and renamed into place. Returns how many identifier
    hashes were new."""
    path = _privacy_dir(data_dir) / SUPPRESSION_FILE
    rows = _suppression_rows(data_dir)
    if verifier and not any(r.get("kind") == KEY_VERIFIER_KIND for r in rows):
        rows.insert(0, {"hash": verifier, "kind": KEY_VERIFIER_KIND, "subject": "", "added_at": when.isoformat()})
    known = {r["hash"] for r in rows}
    added = 0
    for h, kind in sorted(hashes.items(), key=lambda kv: (kv[1], kv[0])):
        if h in known:
            continue
        rows.append({"hash": h, "kind": kind, "subject": subject, "added_at": when.isoformat()})
        known.add(h)
        added += 1
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(SUPPRESSION_COLUMNS), lineterminator="\n")
    writer.writeheader()
    writer.writerows({c: r.get(c, "") for c in SUPPRESSION_COLUMNS} for r in rows)
    _write_atomically(path, buf.getvalue())
    return added


def append_erasure_log(data_dir: Path, entry: Mapping[str, Any]) -> None:
    path = _privacy_dir(data_dir) / ERASURE_LOG
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(entry, sort_keys=False, ensure_ascii=True) + "\n"
    # One write of one line to a file opened for appending: concurrent appenders never
    # interleave inside a line, and a crash loses at most this line.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)


def read_erasure_log(data_dir: Path) -> list[dict[str, Any]]:
    """The erasure log, oldest first (an empty list before the first erasure)."""
    path = _privacy_dir(data_dir) / ERASURE_LOG
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
