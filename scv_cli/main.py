"""`scv`: the command line (CONTRACT §2). Exit 0 on success; otherwise one line on stderr."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from datetime import date, datetime, timezone
from pathlib import Path

from sources.config import Config, ConfigError, load_config

__all__ = ["main"]


class CliError(Exception):
    """A failure reported to the user as one line."""


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
    import duckdb

    con = duckdb.connect(str(cfg.warehouse), read_only=True)
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


# ----------------------------------------------------------------------------------- sql
def cmd_sql(args: argparse.Namespace) -> int:
    """Read-only SQL on the published warehouse, unqualified names in `scv`: DuckDB's own
    switches stop file access, and statements other than queries are refused in one line
    (warehouse/analyst_sql.py)."""
    import duckdb

    from warehouse.analyst_sql import (
        ReadOnlyRefusal,
        check_read_only,
        connect_read_only,
        one_line_error,
        refusal,
    )

    cfg = load_config(args.config)
    if not cfg.warehouse.exists():
        raise CliError(f"{cfg.warehouse}: no warehouse yet (run `scv run` first)")
    out = Path(args.out).resolve() if args.out else None
    if out is not None:
        _check_result_path(cfg, out)
    with connect_read_only(cfg.warehouse) as con:
        try:
            check_read_only(con, args.query)
            rel = con.sql(args.query)
            if rel is None:
                return 0
            if out is not None or args.csv:
                _write_result(rel, out, csv_stdout=args.csv)
            else:
                rows = args.max_rows if args.max_rows is not None else max(len(rel), 1)
                rel.show(max_rows=rows, max_width=10_000)
        except ReadOnlyRefusal as exc:
            raise CliError(str(exc)) from None
        except duckdb.PermissionException as exc:  # a file outside the warehouse
            raise CliError(f"{refusal('file access')} ({one_line_error(exc)})") from None
        except duckdb.Error as exc:
            raise CliError(one_line_error(exc)) from None
    return 0


def _check_result_path(cfg: Config, out: Path) -> None:
    """`scv sql --out` writes the analyst's result, never over the warehouse's own files."""
    if out.suffix.lower() not in (".csv", ".parquet"):
        raise CliError(f"--out {out}: write a .csv or a .parquet file")
    for guarded in (cfg.exports, cfg.warehouse.parent, cfg.staging_dir, cfg.data_dir / "landing"):
        if out.is_relative_to(guarded.resolve()):
            raise CliError(
                f"--out {out}: inside {guarded}, which the night writes; choose another folder"
            )


def _write_result(rel, out: Path | None, *, csv_stdout: bool) -> None:
    """The query result as CSV on stdout (`--csv`) or into `out` (CSV or Parquet by its
    extension). CSV cells a spreadsheet would run as formulas are neutralised."""
    from quality.csv_safety import safe_csv_frame

    frame = rel.df()
    if out is None or csv_stdout:
        safe_csv_frame(frame).to_csv(sys.stdout, index=False)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.tmp")
        if out.suffix.lower() == ".parquet":
            frame.to_parquet(tmp, index=False)
        else:
            safe_csv_frame(frame).to_csv(tmp, index=False)
        os.replace(tmp, out)
        print(f"{len(frame):,} rows written to {out}", file=sys.stderr)


# ----------------------------------------------------------------------------------- evaluate
#: Where the nightly run keeps the trained model (dagster_project.assets.identity.MODEL_FILE;
#: not imported from there: importing dagster_project builds the definitions from a config).
MODEL_FILE = "linkage_model.json"


def cmd_evaluate(args: argparse.Namespace) -> int:
    """P/R/F1 of the warehouse's decisions and of the model's scores over labelled pairs, and
    Splink's threshold chart as HTML next to the run report (README: `scv evaluate`)."""
    import json

    from transforms.linkage.engine import EngineUnavailableError
    from transforms.linkage.label_evaluation import (
        decided_counts,
        evaluation_page,
        model_columns,
        score_labels,
        usable_labels,
    )
    from transforms.linkage.model import (
        LabelsError,
        model_meta,
        read_labels,
        splink_settings,
    )
    from transforms.linkage.settings import LinkageSettings
    from warehouse.label_evaluation import (
        EvaluationUnavailable,
        read_evaluation_inputs,
        write_evaluation_page,
    )
    from warehouse.store import Warehouse, WarehouseBusy

    cfg = load_config(args.config)
    labels_path = Path(args.labels)
    try:
        labels = read_labels(labels_path)
    except LabelsError as exc:
        raise CliError(str(exc)) from None
    if labels.empty:
        raise CliError(f"{labels_path}: no labelled pairs")
    if not cfg.warehouse.exists():
        raise CliError(f"{cfg.warehouse}: no warehouse yet (run `scv run` first)")
    model_file = cfg.model_dir / MODEL_FILE
    if not model_file.exists():
        raise CliError(f"{model_file}: no linkage model yet (run `scv run` first)")
    try:
        model = json.loads(model_file.read_text(encoding="utf-8"))
        version = model_meta(model).get("version")
    except (OSError, ValueError) as exc:
        raise CliError(f"{model_file}: cannot use the linkage model: {exc}") from None
    if splink_settings(model) is None:
        raise CliError(
            f"{model_file}: the linkage model compares no field, so there is no score to evaluate"
        )
    settings = LinkageSettings.from_config(
        cfg.linkage, temp_directory=cfg.data_dir / "tmp" / "linkage"
    )
    store = Warehouse(cfg.warehouse, cfg.staging_warehouse, cfg.exports)
    try:
        inputs = read_evaluation_inputs(store, model_columns(model))
    except (WarehouseBusy, EvaluationUnavailable) as exc:
        raise CliError(str(exc)) from None

    try:
        decided_set = usable_labels(labels, inputs.xref["unique_id"], source=str(labels_path))
    except LabelsError as exc:
        raise CliError(str(exc)) from None

    def warn(message: str) -> None:  # a note on stderr; the command goes on
        print(f"scv {args.command}: {message}", file=sys.stderr)

    if decided_set.self_pairs or decided_set.duplicates:
        warn(
            f"{decided_set.self_pairs:,} row(s) pairing a record with itself and "
            f"{decided_set.duplicates:,} repeated pair(s) left out"
        )
    if decided_set.unknown_ids:
        warn(
            f"{decided_set.unknown_pairs:,} labelled pair(s) left out: "
            f"{len(decided_set.unknown_ids):,} record id(s) not in the warehouse "
            f"({_few(decided_set.unknown_ids)})"
        )
    if decided_set.pairs.empty:
        raise CliError(f"{labels_path}: no labelled pair names two records of the warehouse")
    decided = decided_counts(decided_set.pairs, inputs.xref)

    if inputs.persons is None:
        raise CliError(
            f"{cfg.staging_warehouse}: the standardised person records of the last night are not "
            "there (cleared by `scv forget`, or no night has run): run `scv run` first"
        )
    staged = set(inputs.persons["unique_id"].astype("string"))
    differ = len(staged.symmetric_difference(inputs.xref["unique_id"].astype("string")))
    if differ:
        warn(
            f"the standardised records in staging differ from the published warehouse by "
            f"{differ:,} record(s) (a later night did not publish): the model is scored on "
            "staging's"
        )
    pairs = decided_set.pairs
    scored_pairs = pairs[
        pairs["unique_id_l"].isin(staged) & pairs["unique_id_r"].isin(staged)
    ].reset_index(drop=True)
    if len(scored_pairs) < len(pairs):
        warn(
            f"{len(pairs) - len(scored_pairs):,} labelled pair(s) not scored: "
            "their records are missing from staging"
        )
    if scored_pairs.empty:
        raise CliError(f"{labels_path}: no labelled pair names two standardised records to score")
    try:
        scored = score_labels(inputs.persons, model, scored_pairs, settings)
    except EngineUnavailableError as exc:
        raise CliError(str(exc)) from None

    threshold = settings.threshold
    unblocked_matches, unblocked_non_matches = scored.not_compared
    rows = [
        ("warehouse: same customer_id", decided),
        (f"model: match_probability >= {threshold:g}", scored.counts),
    ]
    notes = [
        (
            f"Labels: {labels_path.name}, {len(labels):,} row(s); {decided.pairs:,} pair(s) of two "
            f"warehouse records ({decided.matches:,} labelled matches, {decided.non_matches:,} "
            f"non-matches). Threshold (linkage.threshold): {threshold:g}. Model version {version}."
        ),
        (
            "warehouse: a labelled pair counts as predicted a match when both records have the "
            "same customer_id in scv.customer_xref: whatever decided the customer_id counts "
            "(blocking, model, guards, clustering)."
        ),
        (
            "model: Splink scores each labelled pair with the saved model (a pair no blocking "
            "rule generates counts as scored zero, as it is never compared on a night); "
            "predicted a match at or above the threshold. The chart below is Splink's, over the "
            "same pairs."
        ),
        (
            f"Labelled pairs no blocking rule generates: {unblocked_matches:,} match(es), "
            f"{unblocked_non_matches:,} non-match(es)."
        ),
    ]
    if scored.chart is None:
        notes.append(
            "No chart: it needs labelled matches and non-matches, and pairs the blocking rules "
            "compare."
        )
    chart_html = scored.chart.to_html(inline=True) if scored.chart is not None else None
    page = evaluation_page(chart_html, rows, notes)
    path = write_evaluation_page(cfg.reports_dir, page)

    print(
        f"scv evaluate: {decided.pairs:,} labelled pairs ({decided.matches:,} matches, "
        f"{decided.non_matches:,} non-matches), threshold {threshold:g}"
    )
    print(
        f"{'':<36}{'pairs':>7}{'TP':>7}{'FP':>7}{'FN':>7}{'TN':>7}"
        f"{'precision':>11}{'recall':>9}{'F1':>9}"
    )
    for label, c in rows:
        print(
            f"{label:<36}{c.pairs:>7,}{c.tp:>7,}{c.fp:>7,}{c.fn:>7,}{c.tn:>7,}"
            f"{_rate(c.precision):>11}{_rate(c.recall):>9}{_rate(c.f1):>9}"
        )
    print(f"labelled matches no blocking rule generates (scored 0): {unblocked_matches:,}")
    no_chart = " (figures only: no chart for these labels)" if chart_html is None else ""
    print(f"chart: {path}{no_chart}")
    return 0


def _rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _few(ids: list[str], n: int = 5) -> str:
    shown = ", ".join(ids[:n])
    return shown + (f", … {len(ids) - n:,} more" if len(ids) > n else "")


# ----------------------------------------------------------------------------------- link
def cmd_link(args: argparse.Namespace) -> int:
    """Append a steward's must-link / cannot-link to the overrides file; it applies from the
    next night on, over every re-link and retraining."""
    import getpass

    from transforms.linkage.overrides import OverrideError, append_override

    cfg = load_config(args.config)
    decision, pair = ("must", args.must) if args.must else ("cannot", args.cannot)
    who = args.who or os.environ.get("SCV_STEWARD") or getpass.getuser()
    try:
        row = append_override(
            cfg.linkage.overrides, decision, pair[0], pair[1], who=who, why=args.reason or ""
        )
    except OverrideError as exc:
        raise CliError(str(exc)) from None
    print(
        f"{decision}-link {row['record_a']} / {row['record_b']} recorded in "
        f"{cfg.linkage.overrides} by {who}; it applies from the next night (`scv run`)"
    )
    return 0


# ----------------------------------------------------------------------------------- main
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="scv", description="Single customer view warehouse.")
    p.add_argument("--config", help="config file (default: $SCV_CONFIG, else data/sources/scv.yml)")
    sub = p.add_subparsers(dest="command", required=True)

    def add(name: str, help: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help)
        sp.add_argument("--config", default=argparse.SUPPRESS, help="config file")
        return sp

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

    q = add("sql", "run read-only SQL on the published warehouse")
    q.add_argument("query")
    q.add_argument("--max-rows", type=int, default=None, help="print at most N rows (default: all)")
    q.add_argument("--csv", action="store_true", help="print the result as CSV instead of a table")
    q.add_argument("--out", help="write the result to FILE (.csv or .parquet) instead of printing it")
    q.set_defaults(func=cmd_sql)

    e = add("evaluate", "precision/recall of the matching on labelled pairs, and a threshold chart")
    e.add_argument(
        "--labels",
        required=True,
        help="CSV of unique_id_l, unique_id_r, is_match (ids as SOURCE:SOURCE_RECORD_ID)",
    )
    e.set_defaults(func=cmd_evaluate)

    lk = add("link", "a steward's override: two records are (--must) or are not (--cannot) one person")
    which = lk.add_mutually_exclusive_group(required=True)
    which.add_argument("--must", nargs=2, metavar=("RECORD", "RECORD"), help="SOURCE:SOURCE_RECORD_ID twice")
    which.add_argument("--cannot", nargs=2, metavar=("RECORD", "RECORD"), help="SOURCE:SOURCE_RECORD_ID twice")
    lk.add_argument("--reason", help="why (kept with the decision)")
    lk.add_argument("--who", help="who decided (default: $SCV_STEWARD, else the login name)")
    lk.set_defaults(func=cmd_link)

    try:
        from sources import privacy_cli
    except ImportError:
        privacy_cli = None
    if privacy_cli is not None:
        privacy_cli.register(add)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (CliError, ConfigError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"scv {args.command}: {first}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"scv {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`scv sql … | head`): not an error of ours.
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - Python flushes stdout at exit
        return 0


if __name__ == "__main__":
    sys.exit(main())
