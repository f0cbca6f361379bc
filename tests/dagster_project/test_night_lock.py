"""A run holds the warehouse's lock for its whole length; a second one meanwhile stops clearly."""

import dagster as dg
import pytest

from dagster_project.resources import WarehouseResource
from warehouse.store import WarehouseBusy


@dg.asset
def probe(warehouse: WarehouseResource) -> int:
    # while the run is going, nobody else gets the lock
    with pytest.raises(WarehouseBusy, match="Dagster run"), warehouse.store.exclusive("probe"):
        pass
    return 1


def resource(tmp_path) -> WarehouseResource:
    return WarehouseResource(
        published=str(tmp_path / "wh" / "warehouse.duckdb"),
        staging=str(tmp_path / "staging" / "warehouse.staging.duckdb"),
        exports=str(tmp_path / "exports"),
    )


def test_a_run_holds_the_lock_and_lets_go_at_the_end(tmp_path):
    wh = resource(tmp_path)
    assert dg.materialize([probe], resources={"warehouse": wh}).success
    with wh.store.exclusive("after the run"):  # released at teardown
        pass


def test_a_run_started_during_another_stops_with_the_holder_named(tmp_path):
    wh = resource(tmp_path)
    with wh.store.exclusive("scv forget"):
        result = dg.materialize([probe], resources={"warehouse": wh}, raise_on_error=False)
    assert not result.success
    failures = [e for e in result.all_events if e.is_failure]
    assert failures and "the warehouse is busy (scv forget, pid" in str(failures[0].event_specific_data)
