"""The warehouse store: documented tables only, atomic publish, atomic exports, previous state."""

import json
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from warehouse.schema import TABLES
from warehouse.store import Warehouse, write_frame


def make(tmp_path: Path) -> Warehouse:
    return Warehouse(
        published=tmp_path / "wh" / "warehouse.duckdb",
        staging=tmp_path / "staging" / "warehouse.staging.duckdb",
        exports=tmp_path / "exports",
    )


def xref(ids: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "source": ["crm"] * len(ids),
            "source_record_id": [f"r{i}" for i in range(len(ids))],
            "customer_id": ids,
            "match_probability": [1.0] * len(ids),
            "cluster_key": ids,
        }
    )


def test_write_frame_refuses_undocumented_columns(tmp_path):
    wh = make(tmp_path)
    with wh.stage() as con:
        with pytest.raises(ValueError, match="unexpected \\['colour'\\]"):
            write_frame(con, "customer_xref", xref(["C1"]).assign(colour="red"), schema="scv")
        with pytest.raises(ValueError, match="missing \\['cluster_key'\\]"):
            write_frame(con, "customer_xref", xref(["C1"]).drop(columns="cluster_key"), schema="scv")


def test_write_frame_casts_and_comments(tmp_path):
    wh = make(tmp_path)
    with wh.stage() as con:
        assert write_frame(con, "customer_xref", xref(["C1", "C2"]), schema="scv") == 2
        types = dict(
            con.execute(
                "SELECT column_name, data_type FROM duckdb_columns() "
                "WHERE schema_name='scv' AND table_name='customer_xref'"
            ).fetchall()
        )
        assert types["match_probability"] == "DOUBLE"
        comment = con.execute(
            "SELECT comment FROM duckdb_tables() WHERE schema_name='scv' AND table_name='customer_xref'"
        ).fetchall()[0][0]
        assert comment == TABLES["customer_xref"].comment


def test_publish_swaps_whole_file_and_old_readers_keep_their_snapshot(tmp_path):
    wh = make(tmp_path)
    with wh.stage() as con:
        write_frame(con, "customer_xref", xref(["C1"]), schema="scv")
        write_frame(con, "secret_intermediate", pd.DataFrame({"a": [1]}))
    counts = wh.publish()
    assert counts["customer_xref"] == 1
    reader = duckdb.connect(str(wh.published), read_only=True)
    # the published file holds the documented scv tables and nothing from staging
    schemas = {r[0] for r in reader.execute("SELECT DISTINCT schema_name FROM duckdb_tables()").fetchall()}
    assert schemas == {"scv"}
    assert {r[0] for r in reader.execute("SELECT table_name FROM duckdb_tables()").fetchall()} == set(TABLES)
    with wh.stage() as con:
        write_frame(con, "customer_xref", xref(["C1", "C2", "C3"]), schema="scv")
    wh.publish()
    # the analyst's open connection still reads the night it opened, whole
    assert reader.execute("SELECT count(*) FROM scv.customer_xref").fetchall()[0][0] == 1
    reader.close()
    fresh = duckdb.connect(str(wh.published), read_only=True)
    assert fresh.execute("SELECT count(*) FROM scv.customer_xref").fetchall()[0][0] == 3
    assert fresh.execute(
        "SELECT comment FROM duckdb_columns() WHERE table_name='customer_xref' AND column_name='customer_id'"
    ).fetchall()[0][0]
    fresh.close()
    assert not list(wh.published.parent.glob("*.publishing*"))


def test_previous_reads_published_not_staging(tmp_path):
    wh = make(tmp_path)
    assert list(wh.previous("customer_xref").columns) == TABLES["customer_xref"].column_names
    assert wh.previous("customer_xref").empty
    with wh.stage() as con:
        write_frame(con, "customer_xref", xref(["C1"]), schema="scv")
    assert wh.previous("customer_xref").empty  # staged, not published
    wh.publish()
    assert list(wh.previous("customer_xref")["customer_id"]) == ["C1"]
    with wh.stage() as con:
        wh.stage_previous(con, ["customer_xref", "lifecycle"])
        assert con.execute("SELECT customer_id FROM prev.customer_xref").fetchall() == [("C1",)]
        assert con.execute("SELECT count(*) FROM prev.lifecycle").fetchall()[0][0] == 0


def test_exports_one_parquet_per_table_and_manifest(tmp_path):
    wh = make(tmp_path)
    with wh.stage() as con:
        write_frame(con, "customer_xref", xref(["C1", "C2"]), schema="scv")
    wh.publish()
    manifest = wh.export_parquet("run-1", "2026-11-20")
    for name in TABLES:
        files = list((wh.exports / name).glob("*.parquet"))
        assert [f.name for f in files] == ["data.parquet"]
    got = duckdb.sql(
        f"SELECT count(*) FROM read_parquet('{wh.exports}/customer_xref/*.parquet')"
    ).fetchall()[0][0]
    assert got == 2
    on_disk = json.loads((wh.exports / "manifest.json").read_text())
    assert on_disk["run_id"] == "run-1" and on_disk["as_of_date"] == "2026-11-20"
    assert on_disk["tables"]["customer_xref"]["rows"] == 2
    assert manifest["tables"]["customer"]["columns"][0]["name"] == "customer_id"
    assert not [p for p in wh.exports.rglob("*") if p.name.startswith(".")]


def test_publish_leaves_out_prev_and_strays_and_refuses_drifted_columns(tmp_path):
    wh = make(tmp_path)
    with wh.stage() as con:
        write_frame(con, "customer_xref", xref(["C1"]), schema="scv")
        wh.stage_previous(con, ["lifecycle"])
        con.execute("CREATE TABLE scv.scratch AS SELECT 1 AS a")
        con.execute("CREATE TABLE main.scratch AS SELECT 1 AS a")
    wh.publish()
    with duckdb.connect(str(wh.published), read_only=True) as reader:
        tables = set(reader.execute("SELECT schema_name, table_name FROM duckdb_tables()").fetchall())
        assert tables == {("scv", name) for name in TABLES}
    # the intermediate tables stay in staging, out of the published file
    with wh.stage() as con:
        con.execute("ALTER TABLE scv.customer_xref ADD COLUMN colour VARCHAR")
    before = wh.published.read_bytes()
    with pytest.raises(ValueError, match="scv.customer_xref: columns .* differ"):
        wh.publish()
    assert wh.published.read_bytes() == before


def test_a_table_is_as_published_until_written_or_the_published_file_changes(tmp_path):
    from warehouse.store import change_in_place

    wh = make(tmp_path)
    with wh.stage() as con:
        assert not wh.as_published(con, ["customer_xref"])  # nothing published yet
        write_frame(con, "customer_xref", xref(["C1", "C2"]), schema="scv")
    wh.publish()
    with wh.stage() as con:
        assert wh.as_published(con, ["customer_xref", "customer"])
        rows = change_in_place(
            con, "customer_xref", "customer_id = 'C1'",
            "SELECT 'crm' AS source, 'r9' AS source_record_id, 'C9' AS customer_id, "
            "0.5 AS match_probability, 'C9' AS cluster_key",
        )
        assert rows == 2
        assert sorted(r[0] for r in con.execute("SELECT customer_id FROM scv.customer_xref").fetchall()) == ["C2", "C9"]
        assert not wh.as_published(con, ["customer_xref"]) and wh.as_published(con, ["customer"])
        write_frame(con, "customer", pd.DataFrame({c: [] for c in TABLES["customer"].column_names}), schema="scv")
        assert not wh.as_published(con, ["customer"])
    wh.publish()
    with wh.stage() as con:
        assert wh.as_published(con, ["customer_xref", "customer"])
    # a published file rewritten behind the build file's back (as `forget` does) is not trusted
    wh.published.write_bytes(wh.published.read_bytes())
    with wh.stage() as con:
        assert not wh.as_published(con, ["customer_xref"])


def test_change_to_match_changes_only_the_rows_that_differ(tmp_path):
    from warehouse.store import change_to_match

    wh = make(tmp_path)
    rows = [("crm", f"r{i}", f"C{i}", 1.0, f"C{i}") for i in range(5)]
    with wh.stage() as con:
        write_frame(con, "customer_xref", pd.DataFrame(rows, columns=list(xref([]).columns)), schema="scv")
    wh.publish()
    # tonight: r1 moves to C0, r3 is gone, r5 is new, r0 is the same except its probability
    tonight = [rows[0][:3] + (0.9, "C0"), ("crm", "r1", "C0", 1.0, "C0"), rows[2], rows[4], ("crm", "r5", "C5", 1.0, "C5")]
    query = "SELECT * FROM (VALUES " + ", ".join(str(r) for r in tonight) + ") v(" + ", ".join(xref([]).columns) + ")"
    with wh.stage() as con:
        assert change_to_match(con, "customer_xref", query, "source_record_id") == (5, 4)  # r0 r1 r3 r5
        got = con.execute("SELECT * FROM scv.customer_xref ORDER BY source_record_id").fetchall()
        assert got == sorted(tonight, key=lambda r: r[1])
        assert not wh.as_published(con, ["customer_xref"])
    wh.publish()
    with wh.stage() as con:
        assert change_to_match(con, "customer_xref", query, "source_record_id") == (5, 0)
        assert wh.as_published(con, ["customer_xref"])  # nothing differed, nothing written
        with pytest.raises(ValueError, match="differ from warehouse/schema.py"):
            change_to_match(con, "customer_xref", "SELECT 1 AS source", "source")


def test_the_lock_names_its_holder_and_dies_with_it(tmp_path):
    import subprocess
    import sys

    from warehouse.store import WarehouseBusy

    wh = make(tmp_path)
    held = pytest.raises(WarehouseBusy, match=r"busy \(night A, pid \d+")
    with wh.exclusive("night A"), held, wh.exclusive("night B"):
        pass
    with wh.exclusive("night B"):  # released on exit
        pass
    # a holder killed mid-night: the OS drops its lock, nothing to clean up
    script = (
        "import time; from pathlib import Path; from warehouse.store import Warehouse; "
        f"wh = Warehouse(Path({str(wh.published)!r}), Path({str(wh.staging)!r}), Path({str(wh.exports)!r})); "
        "ctx = wh.exclusive('killed night'); ctx.__enter__(); print('held', flush=True); time.sleep(60)"
    )
    holder = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(WarehouseBusy, match="killed night"), wh.exclusive("night C"):
            pass
    finally:
        holder.kill()
        holder.wait()
    with wh.exclusive("night C"):
        pass


def test_reset_staging_drops_the_files_kept_next_to_the_staging_file(tmp_path):
    wh = make(tmp_path)
    with wh.stage() as con:
        write_frame(con, "customer_xref", xref(["C1"]), schema="scv")
    kept = wh.staged_file("golden_records.parquet")
    kept.write_bytes(b"state")
    other = wh.staging.parent / "notes.parquet"  # not ours: left alone
    other.write_bytes(b"x")
    wh.reset_staging()
    assert not kept.exists() and not wh.staging.exists() and not wh.build.exists()
    assert other.exists()
