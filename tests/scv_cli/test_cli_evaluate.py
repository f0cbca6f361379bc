"""`scv evaluate --labels FILE`: P/R/F1 of the warehouse and of the model on labelled pairs, and
Splink's threshold chart next to the run report."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from tests_support import copy_project

from scv_cli.main import main
from sources.config import load_config

THRESHOLD_ROW = "model: match_probability >= "


def write_labels(path: Path, rows: list[tuple[str, str, object]]) -> Path:
    pd.DataFrame(rows, columns=["unique_id_l", "unique_id_r", "is_match"]).to_csv(path, index=False)
    return path


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize(
    ("text", "where"),
    [
        (
            "unique_id_l,unique_id_r,is_match\ncrm:1,crm:2,1\ncrm:3,crm:4,perhaps\n",
            "row 2: field 'is_match'",
        ),
        ("unique_id_l,unique_id_r,is_match\n,crm:2,0\n", "row 1: field 'unique_id_l' is empty"),
        ("left,right,is_match\ncrm:1,crm:2,1\n", "missing column(s)"),
    ],
)
def test_a_bad_labels_file_is_one_line_naming_file_row_and_field(
    demo_sources, tmp_path, capsys, text, where
):
    labels = tmp_path / "labels.csv"
    labels.write_text(text)
    code = main(["evaluate", "--config", str(demo_sources / "scv.yml"), "--labels", str(labels)])
    assert code == 1
    line = one_line(capsys.readouterr().err)
    assert line.startswith(f"scv evaluate: {labels}: ")
    assert where in line


def test_a_missing_labels_file_or_warehouse_is_one_line(demo_sources, tmp_path, capsys):
    config = str(demo_sources / "scv.yml")
    assert main(["evaluate", "--config", config, "--labels", str(tmp_path / "nope.csv")]) == 1
    assert "cannot read labels CSV" in one_line(capsys.readouterr().err)
    labels = write_labels(tmp_path / "labels.csv", [("crm:CT0100001", "crm:CT0100002", 0)])
    assert main(["evaluate", "--config", config, "--labels", str(labels)]) == 1
    line = one_line(capsys.readouterr().err)
    assert "no warehouse yet (run `scv run` first)" in line


# ------------------------------------------------------------------------ on a real warehouse
def demo_labels(sources: Path, known: set[str], seed: int = 3) -> pd.DataFrame:
    """Labels from the demo's truth over the `known` records (those the warehouse accepted):
    120 true pairs, 60 random non-pairs and up to 60 pairs of the demo's hard negatives (twins,
    parent and child, household: distinct people who look alike); each pair once."""
    truth = pd.read_csv(sources / "truth.csv", dtype=str)
    truth["uid"] = truth["source"] + ":" + truth["source_record_id"]
    truth = truth[truth["uid"].isin(known)].drop_duplicates("uid")
    rng = np.random.default_rng(seed)
    same = truth.merge(truth, on="person_id")
    same = same[same["uid_x"] < same["uid_y"]]
    pos = same.iloc[rng.choice(len(same), size=120, replace=False)]
    rows = [(a, b, 1) for a, b in zip(pos["uid_x"], pos["uid_y"], strict=True)]
    person = dict(zip(truth["uid"], truth["person_id"], strict=True))
    ids = truth["uid"].to_numpy()
    while len(rows) < 180:
        a, b = rng.choice(ids, size=2, replace=False)
        if person[a] != person[b]:
            rows.append((a, b, 0))
    first = truth.groupby("person_id")["uid"].first()
    hard = pd.read_csv(sources / "hard_negatives.csv", dtype=str)
    hard = hard[hard["person_id_a"].isin(first.index) & hard["person_id_b"].isin(first.index)]
    for a, b in zip(hard["person_id_a"].head(60), hard["person_id_b"].head(60), strict=True):
        rows.append((first[a], first[b], "no"))
    out = pd.DataFrame(rows, columns=["unique_id_l", "unique_id_r", "is_match"])
    pair = out[["unique_id_l", "unique_id_r"]].apply(lambda r: tuple(sorted(r)), axis=1)
    return out[~pair.duplicated()].reset_index(drop=True)


def _rate(text: str) -> float | None:
    return None if text == "n/a" else float(text)


def figures(out: str) -> dict[str, dict[str, float | int | None]]:
    """The two rows of the printed table, by the start of their label."""
    got = {}
    for line in out.splitlines():
        for key in ("warehouse: same customer_id", THRESHOLD_ROW):
            if line.startswith(key):
                pairs, tp, fp, fn, tn, p, r, f1 = line.split()[-8:]
                got[key] = {
                    "pairs": int(pairs.replace(",", "")),
                    "tp": int(tp.replace(",", "")),
                    "fp": int(fp.replace(",", "")),
                    "fn": int(fn.replace(",", "")),
                    "tn": int(tn.replace(",", "")),
                    "precision": _rate(p),
                    "recall": _rate(r),
                    "f1": _rate(f1),
                }
    return got


def expected_from(tp: int, fp: int, fn: int, tn: int) -> dict:
    return {
        "pairs": tp + fp + fn + tn,
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
        "precision": round(tp / (tp + fp), 3) if tp + fp else None,
        "recall": round(tp / (tp + fn), 3) if tp + fn else None,
        "f1": round(2 * tp / (2 * tp + fp + fn), 3) if 2 * tp + fp + fn else None,
    }


def decided_independently(cfg, labels: pd.DataFrame) -> dict:
    con = duckdb.connect(str(cfg.warehouse), read_only=True)
    try:
        con.register("labels", labels.assign(is_match=labels["is_match"].isin([1, "1", "yes"])))
        tp, fp, fn, tn = con.execute(
            """
            WITH x AS (SELECT source || ':' || source_record_id AS uid, customer_id FROM scv.customer_xref),
            j AS (
                SELECT l.is_match, xl.customer_id = xr.customer_id AS same
                FROM labels l JOIN x xl ON xl.uid = l.unique_id_l JOIN x xr ON xr.uid = l.unique_id_r
            )
            SELECT count(*) FILTER (is_match AND same), count(*) FILTER (NOT is_match AND same),
                   count(*) FILTER (is_match AND NOT same), count(*) FILTER (NOT is_match AND NOT same)
            FROM j
            """
        ).fetchall()[0]
    finally:
        con.close()
    return expected_from(tp, fp, fn, tn)


def scored_independently(cfg, labels: pd.DataFrame) -> dict:
    """Each labelled pair scored on its own through Splink's `score_pairs`, over the staged
    standardised records; a pair no blocking rule generates counts as not predicted."""
    from splink import Linker

    from transforms.linkage.engine import make_db_api
    from transforms.linkage.fields import prepare_frame
    from transforms.linkage.model import model_meta, splink_settings
    from warehouse.identity import linkage_settings

    model = json.loads((cfg.model_dir / "linkage_model.json").read_text())
    meta = model_meta(model)
    con = duckdb.connect()
    try:
        con.execute(f"ATTACH '{cfg.staging_warehouse}' AS stage (READ_ONLY)")
        persons = con.sql("SELECT * EXCLUDE (field_issues) FROM stage.person_records").df()
    finally:
        con.close()
    frame = prepare_frame(persons, meta["fields"], meta["blocking_keys"])
    settings = linkage_settings(cfg)
    db = make_db_api(settings)
    spec = splink_settings(model)
    linker = Linker(db.register(frame, dataset_display_name="persons"), spec, log_level=None)
    tf = {
        lv.get("tf_adjustment_column") for c in spec["comparisons"] for lv in c["comparison_levels"]
    }
    for col in sorted(tf - {None}):
        linker.table_management.compute_tf_table(col)
    labels = labels.assign(is_match=labels["is_match"].isin([1, "1", "yes"]))
    known = set(frame["unique_id"])
    labels = labels[labels["unique_id_l"].isin(known) & labels["unique_id_r"].isin(known)]
    by_id = frame.set_index("unique_id", drop=False)
    left = db.register(
        by_id.loc[sorted(set(labels["unique_id_l"]))].reset_index(drop=True),
        dataset_display_name="l",
    )
    right = db.register(
        by_id.loc[sorted(set(labels["unique_id_r"]))].reset_index(drop=True),
        dataset_display_name="r",
    )
    scored = linker.inference.score_pairs(
        left, right, include_found_by_blocking_rules=True
    ).as_pandas_dataframe()
    j = labels.merge(scored, on=["unique_id_l", "unique_id_r"], how="left")
    assert j["match_probability"].notna().all()
    pred = (j["match_probability"] >= settings.threshold) & j["found_by_blocking_rules"].astype(
        bool
    )
    m = j["is_match"].astype(bool)
    return expected_from(
        int((pred & m).sum()),
        int((pred & ~m).sum()),
        int((~pred & m).sum()),
        int((~pred & ~m).sum()),
    )


@pytest.mark.slow
def test_evaluate_on_a_demo_warehouse(demo_run, tmp_path, capsys):
    config = copy_project(demo_run, tmp_path / "project")
    cfg = load_config(config)
    con = duckdb.connect(str(cfg.warehouse), read_only=True)
    try:
        known = {
            r[0]
            for r in con.execute(
                "SELECT source || ':' || source_record_id FROM scv.customer_xref"
            ).fetchall()
        }
    finally:
        con.close()
    labels = demo_labels(config.parent, known)
    # Two pairs naming records the warehouse does not hold: reported, not fatal.
    unknown = [
        ("crm:NOT-A-RECORD", labels.iloc[0]["unique_id_l"], 0),
        ("nowhere:1", "nowhere:2", 1),
    ]
    path = write_labels(
        tmp_path / "labels.csv", [*labels.itertuples(index=False, name=None), *unknown]
    )
    capsys.readouterr()

    assert main(["evaluate", "--config", str(config), "--labels", str(path)]) == 0
    out, err = capsys.readouterr()
    assert "2 labelled pair(s) left out: 3 record id(s) not in the warehouse" in err
    assert "crm:NOT-A-RECORD" in err and "nowhere:1" in err

    got = figures(out)
    decided = decided_independently(cfg, labels)
    scored = scored_independently(cfg, labels)
    assert got["warehouse: same customer_id"] == decided
    assert got[THRESHOLD_ROW] == scored
    assert decided["pairs"] == scored["pairs"] >= 200  # every labelled pair of known records
    # The demo's matching is good and the figures say so.
    assert decided["precision"] >= 0.95 and decided["recall"] >= 0.85
    assert scored["precision"] >= 0.95 and scored["recall"] >= 0.75

    page = cfg.reports_dir / "evaluation.html"
    assert f"chart: {page}" in out
    html = page.read_text(encoding="utf-8")
    assert "vegaEmbed" in html and "How far to trust the matching" in html
    lowered = html.lower()
    for cdn in ("cdn.jsdelivr", "unpkg.com", "cdnjs", "<script src"):
        assert cdn not in lowered, cdn
    assert len(list(cfg.reports_dir.glob("evaluation-*.html"))) == 1
    # No personal data on the page or in the output: not one labelled record's email.
    con = duckdb.connect(str(cfg.warehouse), read_only=True)
    try:
        emails = [
            r[0]
            for r in con.execute(
                "SELECT DISTINCT email FROM scv.person_record WHERE email LIKE '%@%.%' "
                "AND source || ':' || source_record_id IN (SELECT unnest(?))",
                [sorted(set(labels["unique_id_l"]) | set(labels["unique_id_r"]))],
            ).fetchall()
        ]
    finally:
        con.close()
    assert len(emails) > 20
    assert not [e for e in emails if e in html or e in out or e in err]


@pytest.mark.slow
def test_evaluate_while_the_warehouse_is_busy_or_unlabelled(demo_run, tmp_path, capsys):
    from warehouse.store import Warehouse

    config = copy_project(demo_run, tmp_path / "project")
    cfg = load_config(config)
    unknown = write_labels(
        tmp_path / "unknown.csv", [("crm:X1", "crm:X2", 1), ("crm:X3", "crm:X4", 0)]
    )
    capsys.readouterr()
    assert main(["evaluate", "--config", str(config), "--labels", str(unknown)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert (
        err[-1] == f"scv evaluate: {unknown}: no labelled pair names two records of the warehouse"
    )

    store = Warehouse(cfg.warehouse, cfg.staging_warehouse, cfg.exports)
    with store.exclusive("a test night"):
        assert main(["evaluate", "--config", str(config), "--labels", str(unknown)]) == 1
    line = one_line(capsys.readouterr().err)
    assert "the warehouse is busy (a test night" in line

    (cfg.model_dir / "linkage_model.json").unlink()
    assert main(["evaluate", "--config", str(config), "--labels", str(unknown)]) == 1
    assert "no linkage model yet (run `scv run` first)" in one_line(capsys.readouterr().err)
    assert not (cfg.reports_dir / "evaluation.html").exists()
