"""A data steward's overrides on the real pipeline: they win over the model on every night
after (incremental, `--full`, `--retrain`), their merges and splits are explained in the id
history, stale ones are reported and contradictory ones stop the night."""

from pathlib import Path

import duckdb
import pytest
from tests_support import copy_project, run_scv

from sources.config import load_config

pytestmark = pytest.mark.slow

AS_OF = "2026-11-20"


def query(config: Path, sql: str, params=None) -> list[tuple]:
    con = duckdb.connect(str(load_config(config).warehouse), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def customer_of(config: Path, record: str) -> str:
    source, rid = record.split(":", 1)
    rows = query(
        config,
        "SELECT customer_id FROM scv.customer_xref WHERE source = ? AND source_record_id = ?",
        [source, rid],
    )
    assert rows, record
    return rows[0][0]


def merged_pair(config: Path) -> tuple[str, str]:
    """Two records of different sources that the model put in one customer."""
    rows = query(
        config,
        """
        SELECT a.source || ':' || a.source_record_id, b.source || ':' || b.source_record_id
        FROM scv.customer_xref a JOIN scv.customer_xref b USING (customer_id)
        WHERE a.source < b.source
        ORDER BY 1, 2 LIMIT 1
        """,
    )
    return rows[0]


def separate_pair(config: Path) -> tuple[str, str]:
    """Two records (each alone in its customer) that the model keeps apart."""
    rows = query(
        config,
        """
        SELECT source || ':' || source_record_id FROM scv.customer_xref
        WHERE customer_id IN (
            SELECT customer_id FROM scv.customer_xref GROUP BY 1 HAVING count(*) = 1)
        ORDER BY 1 LIMIT 2
        """,
    )
    return rows[0][0], rows[1][0]


def test_cannot_link_holds_across_incremental_full_and_retrain(demo_run, tmp_path, capsys):
    config = copy_project(demo_run, tmp_path)
    a, b = merged_pair(config)
    assert customer_of(config, a) == customer_of(config, b)
    old_id = customer_of(config, a)
    assert run_scv("link", "--config", config, "--cannot", a, b, "--reason", "twins", "--who", "ana") == 0
    assert "cannot-link" in capsys.readouterr().out

    assert run_scv("run", "--config", config, "--as-of", AS_OF) == 0  # incremental
    assert customer_of(config, a) != customer_of(config, b)
    reasons = query(
        config,
        "SELECT change, reason FROM scv.customer_id_history WHERE old_customer_id = ?",
        [old_id],
    )
    assert ("split", "cannot-link override by ana: twins") in reasons
    queue = query(
        config,
        "SELECT reason FROM scv.review_queue WHERE left_record = ? AND right_record = ?",
        sorted([a, b]),
    )
    assert queue and "cannot-link override" in queue[0][0]

    assert run_scv("run", "--config", config, "--as-of", AS_OF, "--full") == 0
    assert customer_of(config, a) != customer_of(config, b)
    assert run_scv("run", "--config", config, "--as-of", AS_OF, "--retrain") == 0
    assert customer_of(config, a) != customer_of(config, b)


def test_must_link_joins_records_the_model_keeps_apart(demo_run, tmp_path):
    config = copy_project(demo_run, tmp_path)
    a, b = separate_pair(config)
    before = {customer_of(config, a), customer_of(config, b)}
    assert len(before) == 2
    assert run_scv("link", "--config", config, "--must", a, b, "--who", "bo", "--reason", "called in") == 0
    assert run_scv("run", "--config", config, "--as-of", AS_OF) == 0
    after = customer_of(config, a)
    assert after == customer_of(config, b)
    history = query(
        config,
        "SELECT old_customer_id, change, reason FROM scv.customer_id_history WHERE new_customer_id = ?",
        [after],
    )
    assert any(r[1] == "merge" and r[2] == "must-link override by bo: called in" for r in history)
    assert run_scv("run", "--config", config, "--as-of", AS_OF, "--full") == 0
    assert customer_of(config, a) == customer_of(config, b)


def test_stale_override_is_reported_not_fatal(demo_run, tmp_path):
    config = copy_project(demo_run, tmp_path)
    a, b = separate_pair(config)
    assert run_scv("link", "--config", config, "--must", a, "crm:NO-SUCH-RECORD") == 0
    assert run_scv("run", "--config", config, "--as-of", AS_OF) == 0
    assert customer_of(config, a) != customer_of(config, b)


def test_contradictory_overrides_stop_the_night_naming_the_rows(demo_run, tmp_path, capsys):
    config = copy_project(demo_run, tmp_path)
    cfg = load_config(config)
    a, b = merged_pair(config)
    c, _ = separate_pair(config)
    published = query(config, "SELECT count(*) FROM scv.customer_xref")
    # `scv link` refuses a contradiction, so write the file by hand, as an editor would.
    cfg.linkage.overrides.write_text(
        "decision,record_a,record_b,who,why,at\n"
        f"must,{a},{c},ana,,\n"
        f"must,{c},{b},ana,,\n"
        f"cannot,{a},{b},bo,,\n",
        encoding="utf-8",
    )
    assert run_scv("run", "--config", config, "--as-of", AS_OF) != 0
    err = capsys.readouterr().err
    assert "row 3" in err and "contradicts" in err and "1, 2" in err
    assert query(config, "SELECT count(*) FROM scv.customer_xref") == published
    assert run_scv("link", "--config", config, "--cannot", c, a) != 0  # refused up front too


def test_review_page_is_private_and_renders(demo_run, tmp_path):
    import os
    import stat

    from tests_support import RENDER_TIMEOUT_S, require_chromium

    from warehouse.report_render import WINDOW, check_png, screenshot, verdict

    chromium = require_chromium()
    config = copy_project(demo_run, tmp_path)
    a, b = merged_pair(config)
    assert run_scv("link", "--config", config, "--cannot", a, b, "--reason", "<b>twins</b>") == 0
    assert run_scv("run", "--config", config, "--as-of", AS_OF) == 0
    cfg = load_config(config)
    page = cfg.private_dir / "review" / "review_queue.html"
    text = page.read_text(encoding="utf-8")
    assert stat.S_IMODE(os.stat(page).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(page.parent).st_mode) == 0o700
    assert a in text and b in text and "cannot-link override" in text
    assert "<b>twins</b>" not in text  # the steward's text is escaped
    assert "http://" not in text and "https://" not in text  # opens offline
    waterfall = (page.parent / "review_waterfall.html").read_text(encoding="utf-8")
    assert "vega" in waterfall and "cdn.jsdelivr" not in waterfall
    queue = query(config, "SELECT count(*) FROM scv.review_queue")[0][0]
    assert queue >= 1
    png = tmp_path / "review.png"
    screenshot(chromium, page, png, WINDOW, timeout=RENDER_TIMEOUT_S)
    stats = check_png(png)
    assert all(verdict(stats).values()), stats
