"""The exports move with the warehouse: both to tonight's night, or neither (issue 19, item 4).

A night (and `scv forget`) first writes every export as a hidden file beside its final name
(`exports/<table>/.data.<run>.tmp`, and `.manifest.<run>.tmp`), from the very file about to be
published. Only when all of them are written does it record a journal
(`exports/.publishing.json`: the moves to make and the identity of the new warehouse file),
rename the new file over the published warehouse, rename every export into place, and delete
the journal. So:

- an export that cannot be written (folder not writable, disk full) stops the night before
  anything is published: the warehouse and every export stay at the last night's;
- a process killed between the warehouse rename and the last export rename leaves the journal:
  whoever takes the warehouse's lock next (the next night, `scv forget`, `scv evaluate`)
  finishes the renames first (`finish_interrupted_publish`), or, if the warehouse was not
  renamed after all, drops the hidden files. Renames take milliseconds; outside that window
  the manifest's `run_id` is always the published night's.

Readers never see half a file: each rename is atomic, and the hidden names match no
`*.parquet` glob.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "JOURNAL",
    "LIST_SEPARATOR",
    "ExportError",
    "PreparedExports",
    "finish_interrupted_publish",
    "flat_export",
    "fsync_dir",
    "parquet_metadata",
    "write_journal",
]

#: The journal of a publish under way, in the exports folder (a dot-name: no reader's glob).
JOURNAL = ".publishing.json"


class ExportError(RuntimeError):
    """An export could not be written; the message is one line naming it."""


def _identity(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_ino, st.st_size, st.st_mtime_ns]


def fsync_dir(path: Path) -> None:
    """Make a rename inside `path` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass
class PreparedExports:
    """Every export of one night written to its hidden file, not yet in place: `moves` are
    (hidden file, final name) pairs, the manifest's last."""

    exports: Path
    manifest: dict
    moves: list[tuple[Path, Path]] = field(default_factory=list)

    def discard(self) -> None:
        """Delete the hidden files (nothing was published)."""
        for tmp, _ in self.moves:
            tmp.unlink(missing_ok=True)

    def commit(self) -> None:
        """Rename every hidden file into place (each atomic; one already moved is skipped),
        and delete the other Parquet files of each table's folder."""
        folders: set[Path] = set()
        for tmp, final in self.moves:
            if tmp.exists():
                os.replace(tmp, final)
            folders.add(final.parent)
            if final.suffix == ".parquet":
                for stale in final.parent.glob("*.parquet"):
                    if stale.name != final.name:
                        stale.unlink()
        for folder in folders:
            fsync_dir(folder)


def write_journal(prepared: PreparedExports, new_file: Path) -> None:
    """Record, before the warehouse rename, what to finish if the process dies after it."""
    entry = {
        "run_id": prepared.manifest.get("run_id"),
        "new_warehouse": _identity(new_file),
        # relative to the exports folder ("../state/…" for the nightly state's manifest)
        "moves": [
            [os.path.relpath(t, prepared.exports), os.path.relpath(f, prepared.exports)]
            for t, f in prepared.moves
        ],
    }
    path = prepared.exports / JOURNAL
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(entry, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fsync_dir(prepared.exports)


def clear_journal(exports: Path) -> None:
    (exports / JOURNAL).unlink(missing_ok=True)


def finish_interrupted_publish(exports: Path, published: Path) -> str | None:
    """Finish a publish that died half way (call with the warehouse's lock held): when the
    published file is the one the journal names, move the exports into place ("rolled
    forward"); otherwise the warehouse was never replaced, so drop the hidden files ("rolled
    back"). None when there was nothing to finish."""
    path = exports / JOURNAL
    if not path.exists():
        return None
    try:
        entry = json.loads(path.read_text(encoding="utf-8"))
        moves = [(exports / t, exports / f) for t, f in entry["moves"]]
        expected = entry["new_warehouse"]
    except (ValueError, KeyError, TypeError):
        path.unlink()  # a journal cut short was written before the rename: nothing moved
        return "rolled back"
    prepared = PreparedExports(exports, {"run_id": entry.get("run_id")}, moves)
    try:
        current = _identity(published)
    except FileNotFoundError:
        current = None
    if current == expected:
        prepared.commit()
        outcome = "rolled forward"
    else:
        prepared.discard()
        outcome = "rolled back"
    path.unlink()
    return outcome


# ------------------------------------------------------------------------------ flat columns
#: Separator of a list column's items in its flat export (`sources`: "crm; shop_customers").
LIST_SEPARATOR = "; "


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _quote_text(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def flat_export(con, schema: str, table) -> tuple[str, list[dict[str, str]]]:
    """The SELECT that exports `schema.<table>` with flat columns only (CONTRACT §5: BI tools
    read no MAP, LIST or STRUCT), and the exported columns (`name`, `type`, `description`).

    A `VARCHAR[]` column becomes text, its items joined by `LIST_SEPARATOR` in their stored
    order; a `MAP(VARCHAR, BOOLEAN)` column such as `consent` becomes one BOOLEAN column per
    key found in the table, `<column>_<key>` (keys folded to [a-z0-9_], sorted), NULL where
    the row has no entry. Other columns are exported as they are."""
    select: list[str] = []
    columns: list[dict[str, str]] = []
    for c in table.columns:
        col = _quote_ident(c.name)
        kind = c.type.upper().replace(" ", "")
        if kind.endswith("[]"):
            select.append(f"array_to_string({col}, {_quote_text(LIST_SEPARATOR)}) AS {col}")
            columns.append(
                {
                    "name": c.name,
                    "type": "VARCHAR",
                    "description": f"{c.comment} Items separated by '{LIST_SEPARATOR}'.",
                }
            )
        elif kind.startswith("MAP("):
            value_type = kind[4:-1].split(",", 1)[1]
            keys = [
                r[0]
                for r in con.execute(
                    f"SELECT DISTINCT unnest(map_keys({col})) AS k FROM {schema}.{table.name} "
                    "ORDER BY k"
                ).fetchall()
                if r[0] is not None
            ]
            for key in keys:
                flat = f"{c.name}_{_fold(key)}"
                select.append(f"{col}[{_quote_text(key)}] AS {_quote_ident(flat)}")
                columns.append(
                    {
                        "name": flat,
                        "type": value_type,
                        "description": f"{c.comment} Entry '{key}' (NULL: none recorded).",
                    }
                )
        else:
            select.append(col)
            columns.append({"name": c.name, "type": c.type, "description": c.comment})
    return f"SELECT {', '.join(select)} FROM {schema}.{table.name}", columns


def _fold(key: str) -> str:
    out = "".join(ch if ch.isascii() and ch.isalnum() else "_" for ch in key.lower()).strip("_")
    return out or "value"


def parquet_metadata(table, columns: list[dict[str, str]]) -> str:
    """DuckDB's `KV_METADATA` option text: the table's and every column's description inside
    the Parquet file (`table`, `column.<name>`), for tools that read no manifest."""
    pairs = [("table", table.comment)] + [(f"column.{c['name']}", c["description"]) for c in columns]
    return "{" + ", ".join(f"{_quote_text(k)}: {_quote_text(v or '')}" for k, v in pairs) + "}"
