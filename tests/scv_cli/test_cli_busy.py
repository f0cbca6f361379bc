"""A busy warehouse (issue 19, item 10). Before: a second `scv run` during a night said "run failed
(see the Dagster UI)". Now `scv run` and `scv forget` say in one line what holds the warehouse
(the run and what started it, pid, since when) and what to do, and change nothing."""

import fcntl
import os
import threading

import dagster as dg
import pytest

from dagster_project.resources import WarehouseResource, run_holder
from scv_cli.main import main
from scv_cli.night import first_failure
from sources.config import load_config
from warehouse.store import Warehouse, WarehouseBusy

CONFIG = """\
warehouse: data/warehouse/warehouse.duckdb
sources:
  crm:
    kind: person
    path: crm.csv
    id: id
"""


@pytest.fixture
def project(tmp_path):
    (tmp_path / "crm.csv").write_text("id,email\n1,a@x.com\n", encoding="utf-8")
    config = tmp_path / "scv.yml"
    config.write_text(CONFIG, encoding="utf-8")
    cfg = load_config(config)
    return config, Warehouse(cfg.warehouse, cfg.staging_warehouse, cfg.exports)


def run_count() -> int:
    with dg.DagsterInstance.get() as instance:
        return instance.get_runs_count()


def test_a_second_scv_run_names_the_night_holding_the_warehouse(project, capsys):
    config, store = project
    runs = run_count()
    with store.exclusive(run_holder("r-1", {"scv/trigger": "cli"})):
        assert main(["run", "--config", str(config), "--as-of", "2026-11-20"]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    assert err.startswith(
        "scv run: not started, another night is running: the warehouse is busy "
        f"(Dagster run r-1 started by `scv run`, pid {os.getpid()}, since 20"
    )
    assert "wait for it to finish, then try again" in err
    assert f"lock {store.lock_path}" in err and f"`kill {os.getpid()}`" in err
    assert "see the Dagster UI" not in err
    assert run_count() == runs  # refused before Dagster created a run
    assert not store.staging.exists() and not store.published.exists()


def test_scv_forget_during_a_night_names_it_and_says_what_to_do(project, capsys):
    config, store = project
    with store.exclusive(run_holder("r-2", {"dagster/schedule_name": "scv_nightly_schedule"})):
        assert main(["forget", "--config", str(config), "--email", "ann@example.com"]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "ann@example.com" not in err
    assert err.startswith(
        "scv forget: the warehouse is busy (Dagster run r-2 started by schedule "
        f"scv_nightly_schedule, pid {os.getpid()}, since 20"
    )
    assert "wait for it to finish, then try again" in err and "night.lock" in err
    assert not (store.published.parent.parent / "privacy").exists()


def test_scv_run_during_an_erasure_names_the_erasure(project, capsys):
    config, store = project
    with store.exclusive("scv forget"):
        assert main(["run", "--config", str(config), "--as-of", "2026-11-20"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"scv run: not started, the warehouse is busy (scv forget, pid {os.getpid()}")


@dg.asset
def probe(warehouse: WarehouseResource) -> int:
    return 1


def test_a_night_that_loses_the_race_for_the_lock_still_says_who_holds_it(tmp_path):
    """Taken between `scv run`'s check and the run's start, the lock fails the warehouse resource;
    the one-line reason is its message, not "run failed (see the Dagster UI)"."""
    wh = WarehouseResource(
        published=str(tmp_path / "wh" / "warehouse.duckdb"),
        staging=str(tmp_path / "staging" / "warehouse.staging.duckdb"),
        exports=str(tmp_path / "exports"),
    )
    with wh.store.exclusive("scv forget"):
        result = dg.materialize([probe], resources={"warehouse": wh}, raise_on_error=False)
    assert not result.success
    reason = first_failure(result)
    assert reason.startswith(f"not started: the warehouse is busy (scv forget, pid {os.getpid()}")
    assert "\n" not in reason


@pytest.mark.parametrize(
    ("tags", "holder"),
    [
        ({"scv/trigger": "cli"}, "Dagster run r started by `scv run`"),
        ({"dagster/schedule_name": "nightly"}, "Dagster run r started by schedule nightly"),
        ({"dagster/sensor_name": "files"}, "Dagster run r started by sensor files"),
        ({"dagster/backfill": "b1"}, "Dagster run r of backfill b1"),
        ({}, "Dagster run r"),
    ],
)
def test_the_lock_says_what_started_a_run(tags, holder):
    assert run_holder("r", tags) == holder


def test_checking_changes_nothing_and_does_not_fail_a_night_taking_the_lock(tmp_path):
    store = Warehouse(tmp_path / "w.duckdb", tmp_path / "staging" / "s.duckdb", tmp_path / "x")
    store.check_free()  # no lock file yet: free, and none is written
    assert not store.lock_path.exists()
    with store.exclusive("night A"):
        with pytest.raises(WarehouseBusy, match=r"busy \(night A, pid \d+") as busy:
            store.check_free()
        assert busy.value.pid == os.getpid() and busy.value.holder.startswith("night A")
    text = store.lock_path.read_text()
    store.check_free()
    assert store.lock_path.read_text() == text
    # a check holding its shared lock at the moment a night starts does not fail the night
    with open(store.lock_path, encoding="utf-8") as fh:
        fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
        threading.Timer(0.1, fcntl.flock, (fh, fcntl.LOCK_UN)).start()
        with store.exclusive("night B"):
            pass
