"""A data steward's overrides: must-link and cannot-link decisions that win over the model.

Overrides live in one CSV file (`linkage.overrides`, default `overrides.csv` beside the config),
appended to by `scv link --must A B` / `scv link --cannot A B`, one decision per row:

    decision,record_a,record_b,who,why,at
    must,crm:CT0100001,shop_customers:100417,ana,"same person: phoned in",2026-12-03T10:00:00Z

A record is named `SOURCE:SOURCE_RECORD_ID`, as in `scv.customer_xref`. Every night, full or
incremental, after any retraining, clustering applies them (`cluster_edges(..., overrides=)`):
a must-link joins the two records' clusters whatever the score or the guards say; a cannot-link
keeps them apart as a hard conflict does (never linked directly, the cluster holding both split).
An override naming a record that no longer exists is reported, not applied. Overrides that
contradict each other (a cannot-link between two records that must-links join, directly or
through others) stop the night with the rows named: the machine cannot pick a side.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

__all__ = [
    "DECISIONS",
    "OVERRIDE_COLUMNS",
    "OverrideConflictError",
    "OverrideError",
    "OverrideSet",
    "append_override",
    "as_labels",
    "empty_overrides",
    "explain_history",
    "pair_key",
    "read_overrides",
    "resolve_overrides",
    "review_queue",
]

DECISIONS = ("must", "cannot")
OVERRIDE_COLUMNS = ["decision", "record_a", "record_b", "who", "why", "at"]


class OverrideError(ValueError):
    """An overrides file or command that cannot be used; names the file, row and field."""


class OverrideConflictError(OverrideError):
    """Overrides that contradict each other (the night stops)."""


def _check_record(value: str, where: str, fld: str) -> str:
    text = (value or "").strip()
    if not text:
        raise OverrideError(f"{where}: field '{fld}' is empty")
    source, sep, rid = text.partition(":")
    if not sep or not source or not rid:
        raise OverrideError(
            f"{where}: field '{fld}': {text!r} is not a record name (SOURCE:SOURCE_RECORD_ID)"
        )
    return text


def empty_overrides() -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series([], dtype="string") for c in OVERRIDE_COLUMNS})
    frame["row"] = pd.Series([], dtype="int64")
    return frame


def read_overrides(path: Path | None) -> pd.DataFrame:
    """The overrides file as a frame (`OVERRIDE_COLUMNS` + `row`, 1 = first data row); an
    empty frame when there is no file. Errors name the file, the row and the field."""
    if path is None or not Path(path).exists():
        return empty_overrides()
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise OverrideError(f"{path}: cannot read overrides: {exc}") from None
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in ("decision", "record_a", "record_b") if c not in (reader.fieldnames or [])]
    if missing:
        raise OverrideError(f"{path}: missing column(s) {missing}")
    rows = []
    for i, raw in enumerate(reader, start=1):
        where = f"{path}: row {i}"
        decision = (raw.get("decision") or "").strip().lower()
        if decision not in DECISIONS:
            raise OverrideError(f"{where}: field 'decision' must be 'must' or 'cannot'")
        a = _check_record(raw.get("record_a") or "", where, "record_a")
        b = _check_record(raw.get("record_b") or "", where, "record_b")
        if a == b:
            raise OverrideError(f"{where}: record_a and record_b are the same record")
        rows.append(
            {
                "decision": decision,
                "record_a": a,
                "record_b": b,
                "who": (raw.get("who") or "").strip(),
                "why": (raw.get("why") or "").strip(),
                "at": (raw.get("at") or "").strip(),
                "row": i,
            }
        )
    if not rows:
        return empty_overrides()
    frame = pd.DataFrame(rows)
    for c in OVERRIDE_COLUMNS:
        frame[c] = frame[c].astype("string")
    return frame


def append_override(
    path: Path,
    decision: str,
    record_a: str,
    record_b: str,
    *,
    who: str = "",
    why: str = "",
    at: datetime | None = None,
) -> dict[str, str]:
    """Append one decision to the overrides file (created with its header when missing) and
    return the row written. The file is re-read first, so a decision that would contradict the
    file's others is refused here, not at night."""
    if decision not in DECISIONS:
        raise OverrideError(f"decision must be 'must' or 'cannot', got {decision!r}")
    a = _check_record(record_a, "scv link", "record_a")
    b = _check_record(record_b, "scv link", "record_b")
    if a == b:
        raise OverrideError("scv link: the two records are the same record")
    when = (at or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    row = {"decision": decision, "record_a": a, "record_b": b, "who": who, "why": why, "at": when}
    existing = read_overrides(path)
    candidate = pd.concat(
        [existing, pd.DataFrame([{**row, "row": len(existing) + 1}])], ignore_index=True
    )
    OverrideSet.from_frame(candidate, path=path)  # raises on a contradiction
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    new_file = not path.exists() or path.stat().st_size == 0
    with open(path, "a", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=OVERRIDE_COLUMNS)
        if new_file:
            writer.writeheader()
        writer.writerow(row)
        fh.flush()
        os.fsync(fh.fileno())
    return row


@dataclass(frozen=True)
class OverrideSet:
    """Overrides ready for clustering: pairs of unique ids (`source:source_record_id`).

    `must` and `cannot` are tuples of (record, record, row) with the smaller id first;
    `group_of` maps every must-linked record to the smallest record of its must-linked group;
    `stale` lists the rows naming a record that does not exist tonight (not applied).
    """

    must: tuple[tuple[str, str, int], ...] = ()
    cannot: tuple[tuple[str, str, int], ...] = ()
    group_of: dict[str, str] = field(default_factory=dict)
    stale: tuple[int, ...] = ()
    rows: pd.DataFrame | None = None

    def __len__(self) -> int:
        return len(self.must) + len(self.cannot)

    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame,
        known: Iterable[str] | None = None,
        *,
        path: Path | str = "overrides",
    ) -> OverrideSet:
        """Check `frame` (from `read_overrides`) against tonight's records (`known`; None: all
        records exist) and build the set; raises `OverrideConflictError` on a contradiction."""
        known_set = None if known is None else set(known)
        must: list[tuple[str, str, int]] = []
        cannot: list[tuple[str, str, int]] = []
        stale: list[int] = []
        for r in frame.itertuples(index=False):
            a, b = sorted((str(r.record_a), str(r.record_b)))
            if known_set is not None and (a not in known_set or b not in known_set):
                stale.append(int(r.row))
                continue
            (must if r.decision == "must" else cannot).append((a, b, int(r.row)))
        parent: dict[str, str] = {}

        def find(x: str) -> str:
            parent.setdefault(x, x)
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        for a, b, _ in must:
            ra, rb = find(a), find(b)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
        group_of = {x: find(x) for x in parent}
        for a, b, row in cannot:
            if a in group_of and b in group_of and group_of[a] == group_of[b]:
                joined = sorted(
                    r for x, y, r in must if group_of.get(x) == group_of[a]
                )
                raise OverrideConflictError(
                    f"{path}: row {row} (cannot-link {a} / {b}) contradicts the must-link "
                    f"row(s) {', '.join(map(str, joined))}, which join them: remove one"
                )
        return cls(
            must=tuple(must),
            cannot=tuple(cannot),
            group_of=group_of,
            stale=tuple(stale),
            rows=frame,
        )

    def fingerprint(self) -> str:
        """Changes whenever the applied overrides change (part of the clustering key)."""
        blob = "|".join(f"m:{a}:{b}" for a, b, _ in sorted(self.must))
        blob += "|" + "|".join(f"c:{a}:{b}" for a, b, _ in sorted(self.cannot))
        return hashlib.sha256(blob.encode()).hexdigest()[:16] if len(self) else "none"

    def describe(self, row: int) -> str:
        """'must-link by ana: same person' for the override at file row `row`."""
        if self.rows is None or not len(self.rows):
            return "override"
        r = self.rows[self.rows["row"] == row]
        if r.empty:
            return "override"
        r = r.iloc[0]
        text = f"{r['decision']}-link override"
        if r["who"]:
            text += f" by {r['who']}"
        if r["why"]:
            text += f": {r['why']}"
        return text


def resolve_overrides(path: Path | None, known: Iterable[str] | None = None) -> OverrideSet:
    """`read_overrides` + `OverrideSet.from_frame`: tonight's overrides."""
    return OverrideSet.from_frame(read_overrides(path), known, path=path or "overrides")


def explain_history(
    history: pd.DataFrame,
    previous_xref: pd.DataFrame | None,
    xref: pd.DataFrame,
    overrides: OverrideSet,
) -> pd.DataFrame:
    """`history` (this night's `scv.customer_id_history` rows) with `reason` naming the
    override that made a merge or split, where one did: a must-link whose two records had
    different customers last night and share one tonight explains the merge between those
    ids; a cannot-link whose records shared a customer last night and no longer do explains
    the split of that id. Other rows keep their reason ('linkage')."""
    if history.empty or not len(overrides) or previous_xref is None or previous_xref.empty:
        return history

    def ids(frame: pd.DataFrame) -> dict[str, str]:
        name = frame["source"].astype(str) + ":" + frame["source_record_id"].astype(str)
        return dict(zip(name, frame["customer_id"].astype(str), strict=True))

    before, after = ids(previous_xref), ids(xref)
    reasons: dict[tuple[str, str], str] = {}
    for a, b, row in overrides.must:
        pa, pb, ca, cb = before.get(a), before.get(b), after.get(a), after.get(b)
        if pa and pb and pa != pb and ca and ca == cb:
            for old in (pa, pb):
                if old != ca:
                    reasons.setdefault((old, ca), overrides.describe(row))
    for a, b, row in overrides.cannot:
        pa, pb, ca, cb = before.get(a), before.get(b), after.get(a), after.get(b)
        if pa and pa == pb and ca and cb and ca != cb:
            for new in (ca, cb):
                if new != pa:
                    reasons.setdefault((pa, new), overrides.describe(row))
    if not reasons:
        return history
    out = history.copy()
    keys = list(zip(out["old_customer_id"].astype(str), out["new_customer_id"].astype(str), strict=True))
    out["reason"] = [reasons.get(k, r) for k, r in zip(keys, out["reason"], strict=True)]
    return out


def pair_key(left: str, right: str) -> str:
    """A stable key for an unordered pair of record names."""
    a, b = sorted((left, right))
    return hashlib.sha256(f"{a}\x1f{b}".encode()).hexdigest()[:16]


def review_queue(
    review: pd.DataFrame, xref: pd.DataFrame, run_at: datetime
) -> pd.DataFrame:
    """The `scv.review_queue` rows from clustering's review pairs (`unique_id_l, unique_id_r,
    match_probability, reason`, ids as SOURCE:SOURCE_RECORD_ID) and tonight's xref."""
    cid = dict(
        zip(
            xref["source"].astype(str) + ":" + xref["source_record_id"].astype(str),
            xref["customer_id"].astype(str),
            strict=True,
        )
    )
    left = review["unique_id_l"].astype(str).tolist()
    right = review["unique_id_r"].astype(str).tolist()
    lo = [min(a, b) for a, b in zip(left, right, strict=True)]
    hi = [max(a, b) for a, b in zip(left, right, strict=True)]
    naive = run_at.astimezone(UTC).replace(tzinfo=None) if run_at.tzinfo else run_at
    return pd.DataFrame(
        {
            "pair_key": [pair_key(a, b) for a, b in zip(lo, hi, strict=True)],
            "left_record": lo,
            "right_record": hi,
            "left_customer_id": [cid.get(a) for a in lo],
            "right_customer_id": [cid.get(b) for b in hi],
            "match_probability": review["match_probability"].astype("float64").to_numpy(),
            "reason": review["reason"].astype(str).tolist(),
            "run_at": pd.Series([naive] * len(lo), dtype="datetime64[us]"),
        }
    ).sort_values(["reason", "match_probability", "pair_key"], ascending=[True, False, True])


def as_labels(overrides: pd.DataFrame) -> pd.DataFrame:
    """Overrides as clerical labels (`unique_id_l, unique_id_r, is_match`) for training m
    (`linkage.overrides_as_labels`)."""
    return pd.DataFrame(
        {
            "unique_id_l": overrides["record_a"].astype(str).to_numpy(),
            "unique_id_r": overrides["record_b"].astype(str).to_numpy(),
            "is_match": (overrides["decision"] == "must").to_numpy(dtype=bool),
        }
    )
