"""The night's as-of date is the run tag `scv/as_of` (the assets are not partitioned, issue 20)."""

from __future__ import annotations

from datetime import date, datetime

import dagster as dg
import pytest

from dagster_project.assets.common import TAG_AS_OF, as_of_from_tags, as_of_tags
from dagster_project.launch import CODE_LOCATION
from dagster_project.ui import INSTANCE_SETTINGS, write_workspace

CREATED = datetime(2026, 11, 20, 23, 59, 30)


def test_the_tag_names_the_night():
    assert as_of_tags(date(2026, 6, 30)) == {TAG_AS_OF: "2026-06-30"}
    assert as_of_from_tags({TAG_AS_OF: "2026-06-30"}, CREATED) == date(2026, 6, 30)


def test_a_run_recorded_while_partitioned_keeps_its_night():
    """Re-executing a run of the partitioned days copies its dagster/partition tag."""
    assert as_of_from_tags({"dagster/partition": "2026-11-19"}, CREATED) == date(2026, 11, 19)
    both = {"dagster/partition": "2026-11-19", TAG_AS_OF: "2026-11-18"}
    assert as_of_from_tags(both, CREATED) == date(2026, 11, 18)


def test_without_a_tag_the_night_is_the_day_the_run_was_created():
    assert as_of_from_tags({}, CREATED) == date(2026, 11, 20)


def test_a_tag_that_is_not_a_date_fails_naming_it():
    with pytest.raises(dg.Failure, match=r"run tag scv/as_of: expected an as-of date YYYY-MM-DD, got '30/06/2026'"):
        as_of_from_tags({TAG_AS_OF: "30/06/2026"}, CREATED)


def test_the_ui_workspace_names_the_code_location_after_the_project(tmp_path):
    text = write_workspace(tmp_path, tmp_path).read_text()
    assert f"location_name: {CODE_LOCATION}" in text and CODE_LOCATION == "scv-warehouse"
    assert "module_name: dagster_project.definitions" in text
    assert "nux:\n  enabled: false" in INSTANCE_SETTINGS  # no newsletter dialog offline
