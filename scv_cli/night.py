"""`scv demo` and `scv run`: write the demo company, and run the night through the Dagster
definitions the UI shows (the only commands that reach `dagster_project`)."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from datetime import date, datetime, timezone
from pathlib import Path

from scv_cli.errors import CliError
from sources.config import Config, load_config

__all__ = ["first_failure", "preflight", "prepare_dagster_home", "print_summary", "register"]


def _as_of(text: str | None) -> date:
    if not text:
        return datetime.now(timezone.utc).date()
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CliError(f"--as-of: expected YYYY-MM-DD, got {text!r}") from None


def prepare_dagster_home(cfg: Config) -> Path:
    """The persistent Dagster instance shared by `scv run` and `dagster dev` ($DAGSTER_HOME if
    set, else <data_dir>/dagster_home)."""
    home = Path(os.environ.get("DAGSTER_HOME") or cfg.dagster_home).resolve()
    home.mkdir(parents=True, exist_ok=True)
    settings = home / "dagster.yaml"
    if not settings.exists():
        # as dagster_project.ui.INSTANCE_SETTINGS: no telemetry, no newsletter dialog in the UI
        settings.write_text("telemetry:\n  enabled: false\nnux:\n  enabled: false\n")
    os.environ["DAGSTER_HOME"] = str(home)
    return home


# ----------------------------------------------------------------------------------- demo
def cmd_demo(args: argparse.Namespace) -> int:
    from sources.demo import generate_demo

    out = Path(args.out)
    summary = generate_demo(out, people=args.people, seed=args.seed)
    print(f"demo company written to {out}/ ({args.people:,} people, seed {args.seed})")
    for name, rows in summary.rows.items():
        print(f"  {name:<28}{rows:>10,} rows")
    defects = sum(sum(d.values()) for d in summary.defects.values())
    print(f"  defective rows injected for the quality gates: {defects:,} (see demo_stats.json)")
    print(f"config: {out / 'scv.yml'}   truth: {out / 'truth.csv'}")
    return 0


# ----------------------------------------------------------------------------------- run
def cmd_run(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    as_of = _as_of(args.as_of)
    if as_of < cfg.start_date:
        raise CliError(f"--as-of {as_of} is before start_date {cfg.start_date} in {cfg.config_path}")
    preflight(cfg)
    prepare_dagster_home(cfg)
    os.environ["SCV_CONFIG"] = str(cfg.config_path)

    import dagster as dg

    from dagster_project.launch import run_nightly_job

    # INFO keeps the progress lines of long steps and drops Dagster's per-event DEBUG chatter.
    run_config: dict = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}
    if args.retrain:
        run_config["ops"] = {"linkage_model": {"config": {"retrain": True}}}
    tags = {"scv/as_of": as_of.isoformat(), "scv/trigger": "cli"}
    if args.full:
        tags["scv/full"] = "true"
    print(f"scv run: as of {as_of}, config {cfg.config_path}", flush=True)
    # Dagster's log lines go to stdout: stderr carries only the one-line reason of a failure.
    with dg.DagsterInstance.get() as instance, contextlib.redirect_stderr(sys.stdout):
        result = run_nightly_job(instance, run_config, tags)
        if not result.success:
            raise CliError(first_failure(result))
        run_id = result.run_id
    print_summary(cfg, run_id)
    return 0


def preflight(cfg: Config) -> None:
    """What can be known before Dagster starts a run, said in one line: a source file or
    database table that cannot be read (sources/preflight.py), or a night or an erasure holding
    the warehouse (its lock names it)."""
    from sources.preflight import check_inputs
    from warehouse.store import PublishedLocked, Warehouse, WarehouseBusy

    check_inputs(cfg)
    store = Warehouse(cfg.warehouse, cfg.staging_warehouse, cfg.exports)
    try:
        store.check_free()
        store.check_published_readable()
    except WarehouseBusy as exc:
        night = "another night is running: " if exc.holder.startswith("Dagster run") else ""
        raise CliError(f"not started, {night}{exc}") from None
    except PublishedLocked as exc:
        raise CliError(f"not started: {exc}") from None


def first_failure(result) -> str:
    """One line saying what stopped the run: the failing step and its message."""
    import dagster as dg

    for event in result.all_events:
        if event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            data = event.event_specific_data
            if not data.passed and data.severity == dg.AssetCheckSeverity.ERROR:
                desc = data.description or data.check_name
                return f"{data.asset_key.to_user_string()}: check {data.check_name} failed: {desc}"
    for event in result.all_events:
        if event.event_type == dg.DagsterEventType.STEP_FAILURE:
            err = event.event_specific_data.error
            while err.cause is not None:  # the user's own exception, not Dagster's wrapper
                err = err.cause
            msg = (err.message or "").strip().splitlines()
            text = msg[0] if msg else "failed"
            # Dagster prefixes user failures with their class name; keep the useful part.
            for prefix in ("dagster._core.definitions.events.Failure: ", "Failure: "):
                text = text.removeprefix(prefix)
            return f"{event.step_key}: {text}"
    for event in result.all_events:
        # A resource that could not start (the warehouse's lock held by another night, taken
        # between `preflight` and the run) fails the run before any step.
        if event.event_type == dg.DagsterEventType.RESOURCE_INIT_FAILURE:
            err = event.event_specific_data.error
            while err is not None and err.cause is not None:
                err = err.cause
            msg = ((err.message if err is not None else "") or "").strip().splitlines()
            if msg:
                text = msg[0]
                for prefix in ("dagster._core.definitions.events.Failure: ", "Failure: "):
                    text = text.removeprefix(prefix)
                return f"not started: {text}"
    return "run failed (see the Dagster UI for the run's logs)"


def print_summary(cfg: Config, run_id: str) -> None:
    from warehouse.store import connect

    con = connect(cfg.warehouse, read_only=True)
    try:
        runs = con.execute(
            "SELECT source, rows_in, rows_accepted, rows_quarantined FROM scv.source_run "
            "WHERE run_id = ? ORDER BY source",
            [run_id],
        ).fetchall()
        rules = con.execute(
            "SELECT rule, count(*), string_agg(DISTINCT source, ', ' ORDER BY source) "
            "FROM scv.quarantine GROUP BY ALL ORDER BY 2 DESC"
        ).fetchall()
        records, customers = con.execute(
            "SELECT count(*), count(DISTINCT customer_id) FROM scv.customer_xref"
        ).fetchall()[0]
        segments = con.execute(
            "SELECT segment, count(*) FROM scv.rfm GROUP BY ALL ORDER BY 2 DESC"
        ).fetchall()
        stages = con.execute(
            "SELECT stage, count(*) FROM scv.lifecycle GROUP BY ALL ORDER BY 2 DESC"
        ).fetchall()
    finally:
        con.close()
    print(f"{'source':<22}{'rows in':>10}{'accepted':>10}{'quarantined':>13}")
    for s, n_in, n_ok, n_q in runs:
        print(f"{s:<22}{n_in:>10,}{n_ok:>10,}{n_q:>13,}")
    if rules:
        print("quarantined by rule:")
        for rule, n, where in rules:
            print(f"  {rule:<20}{n:>8,}  ({where})")
    print(
        f"person records: {records:,}  customers (people found): {customers:,}  "
        f"duplicates merged: {records - customers:,}"
    )
    if segments:
        print("RFM segments: " + ", ".join(f"{s}={n}" for s, n in segments))
    if stages:
        print("lifecycle stages: " + ", ".join(f"{s}={n}" for s, n in stages))
    print(f"warehouse: {cfg.warehouse}")
    print(f"exports:   {cfg.exports}")
    report = cfg.reports_dir / "latest.html"
    if report.exists():
        print(f"report:    {report}")


def register(add) -> None:
    """Add `demo` and `run` to the `scv` parser (`add(name, help)` → subparser)."""
    d = add("demo", "write the demo company's source files, scv.yml and truth.csv")
    d.add_argument("--out", default="data/sources")
    d.add_argument("--people", type=int, default=5000)
    d.add_argument("--seed", type=int, default=42)
    d.set_defaults(func=cmd_demo)

    r = add("run", "run the whole pipeline through the Dagster definitions")
    r.add_argument("--as-of", help="as-of date YYYY-MM-DD (default: today, UTC)")
    r.add_argument("--retrain", action="store_true", help="retrain the linkage model")
    r.add_argument("--full", action="store_true", help="re-link every record (not incremental)")
    r.set_defaults(func=cmd_run)
