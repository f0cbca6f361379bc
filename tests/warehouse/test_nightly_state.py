"""The nightly state: staged sections count only once committed with the warehouse."""

import json
import os

import pandas as pd
import pytest

from warehouse.exports import PreparedExports, finish_interrupted_publish, write_journal
from warehouse.nightly import STATE_FORMAT, NightlyState


def _parquet(path, rows):
    pd.DataFrame({"unique_id": [str(i) for i in range(rows)]}).to_parquet(path)
    return path


def test_a_staged_section_counts_only_after_the_commit(tmp_path):
    state = NightlyState(tmp_path / "state")
    edges = _parquet(tmp_path / "edges.parquet", 3)
    state.stage_section("linkage", {"model_version": "a"}, {"edges": edges})
    assert state.published("linkage") is None
    assert state.pending("linkage").values == {"model_version": "a"}
    state.commit_now("run1", "2026-11-20")
    section = state.published("linkage")
    assert section.values == {"model_version": "a"}
    assert len(pd.read_parquet(section.file("edges"))) == 3
    assert not state.pending_dir.exists()
    assert json.loads(state.manifest_path.read_text())["format"] == STATE_FORMAT


def test_a_section_not_written_tonight_is_carried_and_old_nights_are_swept(tmp_path):
    state = NightlyState(tmp_path / "state")
    state.stage_section("linkage", {"v": 1}, {"edges": _parquet(tmp_path / "e.parquet", 2)})
    state.stage_section("golden", {"v": 1}, {"records": _parquet(tmp_path / "g.parquet", 2)})
    state.commit_now("run1")
    state.stage_section("golden", {"v": 2}, {"records": _parquet(tmp_path / "g.parquet", 5)})
    state.commit_now("run2")
    assert state.published("linkage").values == {"v": 1}
    assert state.published("golden").values == {"v": 2}
    assert len(pd.read_parquet(state.published("golden").file("records"))) == 5
    # run1's folder still holds the linkage files; its golden folder is gone with nothing else
    assert (state.root / "nights" / "run1" / "linkage").exists()
    state.stage_section("linkage", {"v": 3}, {"edges": _parquet(tmp_path / "e.parquet", 1)})
    state.commit_now("run3")
    assert not (state.root / "nights" / "run1").exists()


def test_a_manifest_of_another_format_is_no_state(tmp_path):
    state = NightlyState(tmp_path / "state")
    state.stage_section("linkage", {"v": 1})
    state.commit_now("run1")
    data = json.loads(state.manifest_path.read_text())
    data["format"] = STATE_FORMAT + 1
    state.manifest_path.write_text(json.dumps(data))
    assert state.published("linkage") is None


def test_a_section_name_with_a_slash_is_refused(tmp_path):
    with pytest.raises(ValueError, match="section name"):
        NightlyState(tmp_path).stage_section("landing/crm", {})


def test_the_manifest_rolls_forward_with_the_exports_after_a_kill(tmp_path):
    """The manifest's rename is in the publish journal: a process killed after the warehouse
    rename leaves it to the next night's `finish_interrupted_publish`."""
    exports, published = tmp_path / "exports", tmp_path / "warehouse.duckdb"
    exports.mkdir()
    state = NightlyState(tmp_path / "state")
    state.stage_section("golden", {"v": 1}, {"records": _parquet(tmp_path / "g.parquet", 2)})
    hidden, final = state.prepare_commit("run1", None)
    new_file = tmp_path / "warehouse.duckdb.publishing"
    new_file.write_bytes(b"new warehouse")
    write_journal(PreparedExports(exports, {"run_id": "run1"}, [(hidden, final)]), new_file)
    os.replace(new_file, published)  # ... and the process dies here
    assert state.published("golden") is None
    assert finish_interrupted_publish(exports, published) == "rolled forward"
    assert state.published("golden").values == {"v": 1}


def test_a_publish_that_never_swapped_rolls_the_manifest_back(tmp_path):
    exports, published = tmp_path / "exports", tmp_path / "warehouse.duckdb"
    exports.mkdir()
    published.write_bytes(b"old warehouse")
    state = NightlyState(tmp_path / "state")
    state.stage_section("golden", {"v": 1})
    hidden, final = state.prepare_commit("run1", None)
    new_file = tmp_path / "warehouse.duckdb.publishing"
    new_file.write_bytes(b"new warehouse")
    write_journal(PreparedExports(exports, {"run_id": "run1"}, [(hidden, final)]), new_file)
    assert finish_interrupted_publish(exports, published) == "rolled back"
    assert state.published("golden") is None and not hidden.exists()


def test_the_linkage_mode_says_why_a_night_is_full(tmp_path):
    from warehouse.nightly.linkage import linkage_mode

    state = NightlyState(tmp_path / "state")
    assert linkage_mode(None, "m1", "duckdb-hash-v1", False) == "full (no stored edges)"
    state.stage_section("linkage", {"model_version": "m1", "clustering": "k", "fingerprint": "duckdb-hash-v1"})
    state.commit_now("run1")
    section = state.published("linkage")
    assert linkage_mode(section, "m1", "duckdb-hash-v1", False) == "incremental"
    assert linkage_mode(section, "m1", "duckdb-hash-v1", True) == "full (requested)"
    assert linkage_mode(section, "m2", "duckdb-hash-v1", False) == "full (model changed)"
    # fingerprints of another engine (Spark's xxhash64) cannot be compared with DuckDB's hash
    assert linkage_mode(section, "m1", "spark-xxhash64-v1", False).startswith("full (stored state from")
