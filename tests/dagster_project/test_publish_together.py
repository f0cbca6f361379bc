"""Issue 19 item 4, end to end: `scv run` moves the warehouse and the exports to tonight together.

Before: an exports folder that could not be written, or a kill just after the warehouse rename,
exited 1 after tonight's warehouse was published, and the warehouse and the exports disagreed
(customer_xref 2,514 vs 2,509 rows)."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest
import yaml
from tests_support import copy_project, run_scv

from sources.config import load_config
from warehouse.exports import JOURNAL
from warehouse.schema import TABLES

pytestmark = pytest.mark.slow

NEXT = "2026-11-21"


def _grow_crm(config: Path) -> None:
    """Tomorrow's CRM export has a few more people, so tonight's xref differs from last night's."""
    cfg = load_config(config)
    crm = cfg.sources["crm"].path
    lines = crm.read_text(encoding="utf-8").splitlines(keepends=True)
    head, rows = lines[0], lines[1:]
    settings = yaml.safe_load(config.read_text(encoding="utf-8"))
    id_col = settings["sources"]["crm"]["id"]
    idx = head.rstrip("\r\n").split(",").index(id_col)
    extra = []
    for i, row in enumerate(rows[:5]):
        fields = row.rstrip("\r\n").split(",")
        if len(fields) != len(head.split(",")):
            continue
        fields[idx] = f"NEW{i}"
        extra.append(",".join(fields) + "\n")
    assert extra
    crm.write_text("".join(lines) + "".join(extra), encoding="utf-8")


def _counts(cfg) -> tuple[dict[str, int], dict[str, int]]:
    con = duckdb.connect(str(cfg.warehouse), read_only=True)
    try:
        published = {t: con.execute(f"SELECT count(*) FROM scv.{t}").fetchall()[0][0] for t in TABLES}
        exported = {
            t: con.execute(
                f"SELECT count(*) FROM read_parquet('{cfg.exports / t / 'data.parquet'}')"
            ).fetchall()[0][0]
            for t in TABLES
        }
    finally:
        con.close()
    return published, exported


def _manifest_run(cfg) -> str:
    return json.loads((cfg.exports / "manifest.json").read_text())["run_id"]


def test_unwritable_export_publishes_neither(demo_run, tmp_path, capsys):
    config = copy_project(demo_run, tmp_path / "project")
    cfg = load_config(config)
    _grow_crm(config)
    warehouse_before = cfg.warehouse.read_bytes()
    folder = cfg.exports / "customer_xref"
    (folder / "data.parquet").unlink()
    folder.rmdir()
    folder.write_text("a file where the export folder goes: it cannot be written")
    assert run_scv("run", "--config", config, "--as-of", NEXT) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "published_warehouse" in err[0] and "customer_xref" in err[0] and "nothing published" in err[0]
    assert cfg.warehouse.read_bytes() == warehouse_before


def test_kill_after_the_warehouse_rename_then_the_next_run_agrees(demo_run, tmp_path):
    config = copy_project(demo_run, tmp_path / "project")
    cfg = load_config(config)
    _grow_crm(config)
    before = _counts(cfg)[0]["customer_xref"]
    # a real kill (os._exit: no cleanup runs) right after the warehouse file is renamed
    script = textwrap.dedent(
        f"""
        import os, sys
        import warehouse.store as store
        real = os.replace
        class Os:
            def __getattr__(self, name):
                return getattr(os, name)
            def replace(self, src, dst):
                real(src, dst)
                if str(dst) == {str(cfg.warehouse)!r}:
                    os._exit(137)
        store.os = Os()
        from scv_cli.main import main
        sys.exit(main(["run", "--config", {str(config)!r}, "--as-of", {NEXT!r}]))
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=600, check=False)
    assert proc.returncode == 137, proc.stderr.decode()[-2000:]
    published, exported = _counts(cfg)
    assert published["customer_xref"] == before + 5  # tonight's warehouse is out ...
    assert exported["customer_xref"] == before  # ... beside last night's exports
    assert (cfg.exports / JOURNAL).exists()  # and what is left to do is recorded

    assert run_scv("run", "--config", config, "--as-of", NEXT) == 0
    published, exported = _counts(cfg)
    assert published == exported
    assert published["customer_xref"] == before + 5
    assert not (cfg.exports / JOURNAL).exists()
    assert not [p for p in cfg.exports.rglob("*") if p.name.startswith(".")]
