"""The overrides file: one-line errors naming file, row and field; contradictions found before
a night; overrides as labels; a cannot-link and a must-link in clustering."""

import pandas as pd
import pytest

from transforms.linkage import cluster_edges
from transforms.linkage.overrides import (
    OverrideConflictError,
    OverrideError,
    OverrideSet,
    append_override,
    as_labels,
    read_overrides,
    resolve_overrides,
)


def test_missing_file_means_no_overrides(tmp_path):
    assert read_overrides(tmp_path / "none.csv").empty
    assert len(resolve_overrides(tmp_path / "none.csv")) == 0


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("maybe,crm:1,shop:2", "row 1: field 'decision'"),
        ("must,crm1,shop:2", "row 1: field 'record_a'"),
        ("must,crm:1,", "row 1: field 'record_b' is empty"),
        ("cannot,crm:1,crm:1", "row 1: record_a and record_b are the same record"),
    ],
)
def test_bad_rows_name_file_row_and_field(tmp_path, row, message):
    path = tmp_path / "overrides.csv"
    path.write_text(f"decision,record_a,record_b\n{row}\n", encoding="utf-8")
    with pytest.raises(OverrideError, match=message) as err:
        read_overrides(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_append_refuses_a_contradiction_and_keeps_the_file(tmp_path):
    path = tmp_path / "overrides.csv"
    append_override(path, "must", "crm:1", "shop:2", who="ana", why="called")
    append_override(path, "must", "shop:2", "pos:3", who="ana")
    before = path.read_bytes()
    with pytest.raises(OverrideConflictError, match="row 3 .*contradicts.*1, 2"):
        append_override(path, "cannot", "pos:3", "crm:1")
    assert path.read_bytes() == before
    frame = read_overrides(path)
    assert frame["who"].tolist() == ["ana", "ana"] and frame["why"].tolist()[0] == "called"


def test_stale_overrides_are_set_aside():
    frame = pd.DataFrame(
        {"decision": ["must", "cannot"], "record_a": ["a:1", "a:1"], "record_b": ["b:2", "c:3"],
         "who": ["", ""], "why": ["", ""], "at": ["", ""], "row": [1, 2]}
    )
    got = OverrideSet.from_frame(frame, known={"a:1", "b:2"})
    assert got.stale == (2,) and len(got.must) == 1 and not got.cannot


def test_overrides_as_labels():
    frame = pd.DataFrame({"decision": ["must", "cannot"], "record_a": ["a:1", "a:1"],
                          "record_b": ["b:2", "c:3"]})
    labels = as_labels(frame)
    assert labels.to_dict("list") == {
        "unique_id_l": ["a:1", "a:1"], "unique_id_r": ["b:2", "c:3"], "is_match": [True, False]
    }


def _nodes():
    return pd.DataFrame(
        {"unique_id": ["a:1", "b:2", "c:3"], "first_name_std": ["ann", "ann", "bo"],
         "last_name_std": ["k", "k", "k"], "dob": ["1990-01-01", "1990-01-01", None]}
    ).astype("string")


def test_cannot_and_must_win_over_the_score_and_the_guards():
    edges = pd.DataFrame({"unique_id_l": ["a:1"], "unique_id_r": ["b:2"],
                          "match_probability": [0.999], "match_weight": [12.0]})
    frame = pd.DataFrame(
        {"decision": ["cannot", "must"], "record_a": ["a:1", "b:2"], "record_b": ["b:2", "c:3"],
         "who": ["", ""], "why": ["", ""], "at": ["", ""], "row": [1, 2]}
    )
    out = cluster_edges(_nodes(), edges, 0.9, overrides=OverrideSet.from_frame(frame))
    key = dict(zip(out["unique_id"], out["cluster_key"], strict=True))
    assert key["a:1"] != key["b:2"]  # the model's link, vetoed by the cannot-link
    assert key["b:2"] == key["c:3"]  # no scored link, first names differ: joined by the must-link
    assert out.attrs["metrics"]["vetoed_by_override"] == 1
