"""An analyst's ordinary `duckdb.connect(path)` (read-write by default) holds DuckDB's lock on
the published file: the night then says so in one line, naming the holder and the fix, before
it starts. A read-only connection shares the file with the night."""

import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from warehouse.store import PublishedLocked, Warehouse

HOLD = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1], read_only=sys.argv[2] == "ro")
con.execute("SELECT 1").fetchall()
print("ready", flush=True)
time.sleep(60)
"""


@pytest.fixture
def published(tmp_path) -> Path:
    path = tmp_path / "warehouse" / "warehouse.duckdb"
    path.parent.mkdir()
    con = duckdb.connect(str(path))
    con.execute("CREATE SCHEMA scv; CREATE TABLE scv.customer AS SELECT 1 AS n")
    con.close()
    return path


def _hold(path: Path, mode: str) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path), mode], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "ready"
    return proc


def test_a_read_write_connection_elsewhere_is_named_with_the_fix(published, tmp_path):
    store = Warehouse(published, tmp_path / "staging" / "s.duckdb", tmp_path / "exports")
    holder = _hold(published, "rw")
    try:
        with pytest.raises(PublishedLocked) as err:
            store.check_published_readable()
    finally:
        holder.kill()
        holder.wait()
    text = str(err.value)
    assert f"pid {holder.pid}" in text and "read_only=True" in text and "\n" not in text
    store.check_published_readable()  # closed: nothing to say


def test_a_read_only_connection_does_not_stop_the_night(published, tmp_path):
    store = Warehouse(published, tmp_path / "staging" / "s.duckdb", tmp_path / "exports")
    holder = _hold(published, "ro")
    try:
        store.check_published_readable()
    finally:
        holder.kill()
        holder.wait()
