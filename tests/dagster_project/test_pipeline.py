"""Tier 2: the real Dagster assets materialised into a real DuckDB file in a temp dir, on a small
demo company. One shared run (conftest `demo_run`); tests that change things copy it first."""

import hashlib
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from scv_cli.main import main
from sources.config import load_config
from sources.readers import read_source
from tests_support import copy_project, run_scv
from warehouse.schema import TABLES

pytestmark = pytest.mark.slow

AS_OF = "2026-11-20"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def query(config: Path, sql: str, params=None) -> list[tuple]:
    cfg = load_config(config)
    con = duckdb.connect(str(cfg.warehouse), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def test_landed_parquet_holds_every_source_row(demo_run):
    cfg = load_config(demo_run)
    for name, src in cfg.sources.items():
        landed = pd.read_parquet(cfg.landing_dir / name / f"{name}.parquet")
        source = read_source(src)
        assert len(landed) == len(source) > 0, name
        assert landed[src.id].fillna("").tolist() == source[src.id].fillna("").tolist(), name
        assert landed["_row_number"].tolist() == list(range(1, len(landed) + 1))


def test_rows_are_conserved_for_every_source(demo_run):
    cfg = load_config(demo_run)
    rows = query(
        demo_run,
        "SELECT source, rows_in, rows_accepted, rows_quarantined FROM scv.source_run",
    )
    assert {r[0] for r in rows} == set(cfg.sources)
    for source, n_in, n_ok, n_q in rows:
        assert n_in == n_ok + n_q, source
        quarantined = query(
            demo_run, "SELECT count(*) FROM scv.quarantine WHERE source = ?", [source]
        )[0][0]
        assert quarantined == n_q, source
    xref = query(demo_run, "SELECT count(*) FROM scv.customer_xref")[0][0]
    accepted_people = sum(r[2] for r in rows if cfg.sources[r[0]].kind == "person")
    assert xref == accepted_people


def test_demo_defects_land_in_quarantine_with_their_rules(demo_run):
    stats = json.loads((demo_run.parent / "demo_stats.json").read_text())
    rules = dict(query(demo_run, "SELECT rule, count(*) FROM scv.quarantine GROUP BY ALL"))
    # every kind of defect the demo injects is caught by a row-level rule
    for rule in ("missing_id", "duplicate_id", "unparseable_date", "negative_amount",
                 "unknown_person", "unknown_currency"):
        assert rules.get(rule, 0) > 0, (rule, rules, stats.get("defects"))
    raw = query(demo_run, "SELECT raw FROM scv.quarantine WHERE rule = 'negative_amount' LIMIT 1")
    assert json.loads(raw[0][0])  # the raw row is kept as JSON


def test_every_table_is_filled_documented_and_exported(demo_run):
    cfg = load_config(demo_run)
    for name, table in TABLES.items():
        cols = query(
            demo_run,
            "SELECT column_name, comment FROM duckdb_columns() "
            "WHERE schema_name = 'scv' AND table_name = ? ORDER BY column_index",
            [name],
        )
        assert [c for c, _ in cols] == table.column_names, name
        assert all(comment for _, comment in cols), name
        exported = duckdb.sql(
            f"SELECT count(*) FROM read_parquet('{cfg.exports}/{name}/*.parquet')"
        ).fetchall()[0][0]
        published = query(demo_run, f"SELECT count(*) FROM scv.{name}")[0][0]
        assert exported == published, name
    for name in ("customer", "customer_xref", "touchpoint", "consent", "customer_profile",
                 "rfm", "lifecycle", "lifecycle_history", "quarantine", "source_run"):
        assert query(demo_run, f"SELECT count(*) FROM scv.{name}")[0][0] > 0, name
    manifest = json.loads((cfg.exports / "manifest.json").read_text())
    assert manifest["as_of_date"] == AS_OF


def test_exports_are_flat_and_describe_themselves(demo_run):
    """BI tools read no MAP, LIST or STRUCT; descriptions travel inside each Parquet file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    cfg = load_config(demo_run)
    manifest = json.loads((cfg.exports / "manifest.json").read_text())
    for name in TABLES:
        path = cfg.exports / name / "data.parquet"
        schema = pq.read_schema(path)
        nested = [f.name for f in schema if pa.types.is_nested(f.type)]
        assert not nested, (name, nested)
        meta = {k.decode(): v.decode() for k, v in (schema.metadata or {}).items()}
        assert meta["table"] == TABLES[name].comment
        for field in schema:
            assert meta[f"column.{field.name}"], (name, field.name)
        assert [c["name"] for c in manifest["tables"][name]["columns"]] == schema.names
    profile = pq.read_table(cfg.exports / "customer_profile" / "data.parquet")
    flat = [c for c in profile.column_names if c.startswith("consent_")]
    assert flat and "consent" not in profile.column_names
    purposes = {r[0] for r in query(demo_run, "SELECT DISTINCT purpose FROM scv.consent")}
    assert {f"consent_{p}" for p in purposes} <= set(flat)
    # The flat value is the warehouse's: one purpose checked row by row.
    purpose = sorted(purposes)[0]
    got = dict(zip(profile["customer_id"].to_pylist(), profile[f"consent_{purpose}"].to_pylist(), strict=True))
    want = dict(query(demo_run, f"SELECT customer_id, consent['{purpose}'] FROM scv.customer_profile"))
    assert got == want
    customer = pq.read_table(cfg.exports / "customer" / "data.parquet")
    assert pa.types.is_string(customer.schema.field("sources").type)


def test_linkage_merges_duplicates_but_not_everyone(demo_run):
    records, customers = query(
        demo_run, "SELECT count(*), count(DISTINCT customer_id) FROM scv.customer_xref"
    )[0]
    truth = pd.read_csv(demo_run.parent / "truth.csv", dtype=str)
    people = truth["person_id"].nunique()
    assert customers < records
    assert abs(customers - people) / people < 0.15


def test_rerun_and_full_relink_keep_every_customer_id(demo_run, tmp_path):
    config = copy_project(demo_run, tmp_path)
    before = query(config, "SELECT source, source_record_id, customer_id FROM scv.customer_xref ORDER BY 1, 2")
    assert run_scv("run", "--config", config, "--as-of", AS_OF) == 0  # incremental night
    after = query(config, "SELECT source, source_record_id, customer_id FROM scv.customer_xref ORDER BY 1, 2")
    assert after == before
    assert run_scv("run", "--config", config, "--as-of", AS_OF, "--full") == 0
    full = query(config, "SELECT source, source_record_id, customer_id FROM scv.customer_xref ORDER BY 1, 2")
    assert full == before
    assert query(config, "SELECT count(*) FROM scv.customer_id_history")[0][0] == 0


def change_people(sources: Path) -> dict[str, set[str]]:
    """A night's worth of real changes in the CRM export: some people move, some change email,
    some records are new (copies of existing people under new ids), some are deleted."""
    path = sources / "crm_contacts.csv"
    crm = pd.read_csv(path, dtype=str, keep_default_na=False)
    n = max(4, len(crm) // 50)
    moved, emailed, deleted = crm.index[0:n], crm.index[n : 2 * n], crm.index[2 * n : 2 * n + n // 2]
    crm.loc[moved, "Street"] = [f"{i + 1} Incremental Road" for i in range(len(moved))]
    crm.loc[emailed, "Email"] = [f"changed.{i}@example.org" for i in range(len(emailed))]
    new = crm.loc[crm.index[3 * n : 4 * n]].copy()
    new["ContactId"] = [f"NEW{i:05d}" for i in range(len(new))]
    gone = set(crm.loc[deleted, "ContactId"])
    pd.concat([crm.drop(index=deleted), new]).to_csv(path, index=False)
    return {"deleted": gone, "new": set(new["ContactId"])}


def materialization(asset: str) -> dict:
    """Metadata of the asset's materialisation in the latest run."""
    import dagster as dg

    with dg.DagsterInstance.get() as instance:
        run_id = instance.get_runs(limit=1)[0].run_id
        event = instance.get_latest_materialization_event(dg.AssetKey(asset.split("/")))
    assert event is not None and event.run_id == run_id
    return {k: getattr(v, "value", v) for k, v in event.asset_materialization.metadata.items()}


GOLDEN_SNAPSHOT = {
    "customer_xref": "SELECT source, source_record_id, customer_id FROM scv.customer_xref ORDER BY 1, 2",
    "customer": "SELECT * FROM scv.customer ORDER BY customer_id",
    "customer_field_provenance": "SELECT * FROM scv.customer_field_provenance ORDER BY customer_id, field",
    "person_record": "SELECT * FROM scv.person_record ORDER BY source, source_record_id",
    "touchpoint": "SELECT * FROM scv.touchpoint ORDER BY touchpoint_id",
}


def test_incremental_night_after_changes_equals_a_full_rebuild(demo_run, tmp_path):
    """Moves, new emails, new and deleted records: the incremental night rescoring only those
    records and deciding only the touched customers gives the same ids, golden records,
    provenance and person records as `--full` (re-link and rebuild everything) on the same data."""
    config = copy_project(demo_run, tmp_path)
    changes = change_people(config.parent)
    assert run_scv("run", "--config", config, "--as-of", AS_OF) == 0
    clusters, golden = materialization("person_clusters"), materialization("customer")
    assert clusters["mode"] == "incremental"
    assert 0 < clusters["records_rescored"] < clusters["records"] / 5
    assert clusters["records_deleted"] == len(changes["deleted"])
    assert golden["mode"] == "incremental"
    assert 0 < golden["customers_decided_tonight"] < golden["dagster/row_count"] / 5
    # the build file still held last night's tables: changed in place, compared below with a full build
    assert golden["written"] == "in place"
    assert materialization("person_record")["written"] == "in place"
    incremental = {t: query(config, sql) for t, sql in GOLDEN_SNAPSHOT.items()}
    ids = {(s, r) for s, r, _ in incremental["customer_xref"]}
    assert not {("crm", r) for r in changes["deleted"]} & ids
    assert {("crm", r) for r in changes["new"]} <= ids

    assert materialization("accepted/crm")["rows_standardisation_reused"] > 0
    assert materialization("customer_xref")["mode"] == "incremental (relink scope)"
    assert materialization("customer_xref")["written"] == "in place"
    written = materialization("touchpoint")["written"]
    assert written.startswith("in place (") and written != "in place (0 touchpoints changed)"
    assert 0 < materialization("customer_xref")["records_assigned_tonight"] < clusters["records"] / 5

    # Without the staging file the full night validates and standardises every row afresh.
    shutil.rmtree(load_config(config).data_dir / "staging")
    assert run_scv("run", "--config", config, "--as-of", AS_OF, "--full") == 0
    assert materialization("accepted/crm")["rows_standardisation_reused"] == 0
    assert materialization("person_clusters")["mode"] == "full (requested)"
    assert materialization("customer")["mode"] == "full (requested)"
    assert materialization("customer")["written"] == "rewritten"
    assert materialization("touchpoint")["written"] == "rewritten"
    full = {t: query(config, sql) for t, sql in GOLDEN_SNAPSHOT.items()}
    for table in GOLDEN_SNAPSHOT:
        assert incremental[table] == full[table], table


def test_broken_file_stops_the_night_and_keeps_the_published_warehouse(demo_run, tmp_path, capsys):
    config = copy_project(demo_run, tmp_path)
    cfg = load_config(config)
    published = sha256(cfg.warehouse)
    exports = sha256(cfg.exports / "customer" / "data.parquet")
    crm = cfg.sources["crm"].path
    text = crm.read_text(encoding="utf-8")
    crm.write_text(text[: len(text) // 2] + '"unterminated', encoding="utf-8")  # truncated mid-row
    assert run_scv("run", "--config", config, "--as-of", AS_OF) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "crm" in err[0] and crm.name in err[0]
    assert sha256(cfg.warehouse) == published
    assert sha256(cfg.exports / "customer" / "data.parquet") == exports
    assert query(config, "SELECT count(*) FROM scv.customer")[0][0] > 0


def test_killed_run_leaves_published_warehouse_and_next_run_recovers(demo_run, tmp_path):
    config = copy_project(demo_run, tmp_path)
    cfg = load_config(config)
    published = sha256(cfg.warehouse)
    proc = subprocess.Popen(
        [sys.executable, "-m", "scv_cli", "run", "--config", str(config), "--as-of", AS_OF, "--full"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    # kill it once it is writing the staging warehouse, i.e. mid-night
    deadline = time.time() + 120
    staging = cfg.staging_warehouse
    start_mtime = staging.stat().st_mtime if staging.exists() else 0
    while time.time() < deadline and proc.poll() is None:
        if staging.exists() and staging.stat().st_mtime > start_mtime:
            break
        time.sleep(0.05)
    time.sleep(1.0)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.kill()
    proc.wait()
    assert sha256(cfg.warehouse) == published
    assert query(config, "SELECT count(*) FROM scv.customer")[0][0] > 0
    assert run_scv("run", "--config", config, "--as-of", AS_OF) == 0


def test_scv_sql_prints_a_table_and_refuses_writes(demo_run, capsys):
    assert main(["sql", "--config", str(demo_run), "SELECT count(*) AS n FROM scv.customer"]) == 0
    assert "n" in capsys.readouterr().out
    assert main(["sql", "--config", str(demo_run), "DELETE FROM scv.customer"]) == 1
    assert "read-only" in capsys.readouterr().err.lower()


def test_cli_runs_are_recorded_as_the_ui_code_locations_job(demo_run):
    """`scv run` records its run in the persistent instance as the job of the `scv-warehouse`
    code location (the name `make ui` and pyproject.toml give it), so the UI shows it and can
    re-execute it from a failure; the as-of date is the run's `scv/as_of` tag."""
    import dagster as dg

    with dg.DagsterInstance.get() as instance:
        runs = instance.get_runs(limit=50)
    ours = [r for r in runs if r.tags.get("scv/as_of") == AS_OF]
    assert ours
    run = ours[-1]
    assert run.job_name == "scv_nightly"
    assert run.remote_job_origin.location_name == "scv-warehouse"
    assert "dagster/partition" not in run.tags  # the assets are not partitioned
    assert run.remote_job_origin.repository_origin.repository_name == "__repository__"
