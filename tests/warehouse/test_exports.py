"""Issue 19 item 4: the warehouse and its exports move to tonight together, or neither does.

Before, `bi_exports` wrote the exports after the warehouse was published: an exports folder that
could not be written, or a kill just after the warehouse rename, left tonight's warehouse beside
last night's exports (customer_xref 2,514 vs 2,509 rows) with the night exiting 1."""

import json
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from warehouse.exports import (
    JOURNAL,
    ExportError,
    PreparedExports,
    finish_interrupted_publish,
)
from warehouse.schema import TABLES
from warehouse.store import Warehouse, write_frame


def make(tmp_path: Path) -> Warehouse:
    return Warehouse(
        published=tmp_path / "wh" / "warehouse.duckdb",
        staging=tmp_path / "staging" / "warehouse.staging.duckdb",
        exports=tmp_path / "exports",
    )


def xref(n: int) -> pd.DataFrame:
    ids = [f"C{i}" for i in range(n)]
    return pd.DataFrame(
        {
            "source": ["crm"] * n,
            "source_record_id": [f"r{i}" for i in range(n)],
            "customer_id": ids,
            "match_probability": [1.0] * n,
            "cluster_key": ids,
        }
    )


def night(wh: Warehouse, n: int, run_id: str) -> None:
    with wh.stage() as con:
        write_frame(con, "customer_xref", xref(n), schema="scv")
    wh.publish(run_id, "2026-11-20")


def published_rows(wh: Warehouse) -> int:
    with duckdb.connect(str(wh.published), read_only=True) as con:
        return con.execute("SELECT count(*) FROM scv.customer_xref").fetchall()[0][0]


def exported_rows(wh: Warehouse) -> int:
    return duckdb.sql(
        f"SELECT count(*) FROM read_parquet('{wh.exports}/customer_xref/*.parquet')"
    ).fetchall()[0][0]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_publish_moves_warehouse_and_exports_together(tmp_path):
    wh = make(tmp_path)
    night(wh, 5, "run-1")
    assert published_rows(wh) == exported_rows(wh) == 5
    manifest = json.loads((wh.exports / "manifest.json").read_text())
    assert manifest["run_id"] == "run-1" and manifest["tables"]["customer_xref"]["rows"] == 5
    for name in TABLES:
        assert [f.name for f in (wh.exports / name).glob("*.parquet")] == ["data.parquet"]
    assert not [p for p in wh.exports.rglob("*") if p.name.startswith(".")]


def test_an_export_that_cannot_be_written_publishes_nothing(tmp_path):
    wh = make(tmp_path)
    night(wh, 5, "run-1")
    warehouse_before = wh.published.read_bytes()
    # a folder that cannot be written: here a file where the table's folder goes (the tests
    # run as root, for whom permission bits are no obstacle)
    (wh.exports / "touchpoint" / "data.parquet").unlink()
    (wh.exports / "touchpoint").rmdir()
    (wh.exports / "touchpoint").write_text("not a folder")
    exports_before = snapshot(wh.exports)
    with wh.stage() as con:
        write_frame(con, "customer_xref", xref(7), schema="scv")
    with pytest.raises(ExportError) as info:
        wh.publish("run-2", "2026-11-21")
    message = str(info.value)
    assert "\n" not in message and "touchpoint" in message and "nothing published" in message
    assert wh.published.read_bytes() == warehouse_before  # neither moved
    assert snapshot(wh.exports) == exports_before
    assert published_rows(wh) == exported_rows(wh) == 5
    assert not wh.published.with_name(wh.published.name + ".publishing").exists()


def test_a_kill_after_the_warehouse_rename_is_finished_by_the_next_lock_holder(tmp_path, monkeypatch):
    wh = make(tmp_path)
    night(wh, 5, "run-1")

    def killed(self):  # the process dies here: nothing after the warehouse rename runs
        raise SystemExit(137)

    monkeypatch.setattr(PreparedExports, "commit", killed)
    with wh.stage() as con:
        write_frame(con, "customer_xref", xref(7), schema="scv")
    with pytest.raises(SystemExit):
        wh.publish("run-2", "2026-11-21")
    monkeypatch.undo()
    # the old behaviour's state: tonight's warehouse, last night's exports ...
    assert (published_rows(wh), exported_rows(wh)) == (7, 5)
    assert json.loads((wh.exports / "manifest.json").read_text())["run_id"] == "run-1"
    assert (wh.exports / JOURNAL).exists()  # ... but with the journal of what is left to do
    with wh.exclusive("the next night"):  # whoever takes the lock next finishes it first
        assert not (wh.exports / JOURNAL).exists()
        assert published_rows(wh) == exported_rows(wh) == 7
        assert json.loads((wh.exports / "manifest.json").read_text())["run_id"] == "run-2"
    assert not [p for p in wh.exports.rglob("*") if p.name.startswith(".")]


def test_a_kill_before_the_warehouse_rename_is_rolled_back(tmp_path):
    wh = make(tmp_path)
    night(wh, 5, "run-1")
    exports_before = snapshot(wh.exports)
    new_file = wh.published.with_name("warehouse.duckdb.publishing")
    new_file.write_bytes(wh.published.read_bytes())
    wh.prepare_swap(new_file, "run-2", "2026-11-21")  # exports written, journal recorded ...
    new_file.unlink()  # ... and the process died before the rename
    assert finish_interrupted_publish(wh.exports, wh.published) == "rolled back"
    assert snapshot(wh.exports) == exports_before
    assert finish_interrupted_publish(wh.exports, wh.published) is None
