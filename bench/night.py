"""A full night and incremental nights (1% of person records new or changed), end to end.

    .venv/bin/python bench/night.py [--people 100000] [--full-scale]

Generates the demo company under data/bench/night-<N>/, runs `scv run` twice in a subprocess
(a full night; an incremental night after changing 1% of the person records; the next night,
one day later, after changing another 1%; a full re-link) and prints one table: wall seconds per stage (the Dagster asset groups, from the run's step statistics), total
wall seconds and peak RSS of the run process; `--steps` adds seconds and peak RSS per step
(RSS sampled every 0.2 s and attributed by the steps' start and end times). `--full-scale` adds 1,000,000 people.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("sources", "quality", "identity", "warehouse", "analytics", "exports")
AS_OF = "2026-11-20"
NEXT_DAY = "2026-11-21"  # the night after: the as-of models (profile, RFM, lifecycle) move on


def stage_of(step_key: str) -> str:
    if step_key.startswith("landing__"):
        return "sources"
    if step_key.startswith("accepted__"):
        return "quality"
    if step_key in ("person_records", "linkage_model", "person_clusters"):
        return "identity"
    if step_key in ("rfm", "lifecycle", "customer_profile"):
        return "analytics"
    if step_key in ("published_warehouse", "bi_exports", "run_report"):
        return "exports"
    return "warehouse"


def run_night(config: Path, home: Path, *extra: str, as_of: str = AS_OF) -> dict:
    """Run one night in a subprocess; wall time, peak RSS (sampled) and seconds per stage."""
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    cmd = [sys.executable, "-m", "scv_cli", "run", "--config", str(config), "--as-of", as_of, *extra]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)
    ps = psutil.Process(proc.pid)
    peak = 0
    samples: list[tuple[float, int]] = []  # (unix time, RSS): attributed to steps below
    while proc.poll() is None:
        try:
            rss = ps.memory_info().rss + sum(c.memory_info().rss for c in ps.children(True))
            samples.append((time.time(), rss))
            peak = max(peak, rss)
        except psutil.Error:
            pass
        time.sleep(0.2)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"night failed: {proc.stderr.read().decode().strip()}")
    os.environ["DAGSTER_HOME"] = str(home)
    import dagster as dg

    with dg.DagsterInstance.get() as instance:
        run = instance.get_runs(limit=1)[0]
        stats = instance.get_run_step_stats(run.run_id)
    per_stage = dict.fromkeys(STAGES, 0.0)
    per_step, step_rss = {}, {}
    for s in stats:
        if s.start_time and s.end_time:
            per_stage[stage_of(s.step_key)] += s.end_time - s.start_time
            per_step[s.step_key] = s.end_time - s.start_time
            inside = [r for t, r in samples if s.start_time <= t <= s.end_time]
            step_rss[s.step_key] = max(inside, default=0) / 2**30
    return {
        "wall": wall,
        "peak_rss_gib": peak / 2**30,
        **per_stage,
        "steps": per_step,
        "step_rss": step_rss,
    }


def change_one_percent(sources: Path, seed: int = 1) -> int:
    """Change 1% of person records in place: a move (new street) in the CRM, a new email at the
    shop, and new CRM records for existing people. Returns the number of records touched."""
    rng = np.random.default_rng(seed)
    crm_path = sources / "crm_contacts.csv"
    crm = pd.read_csv(crm_path, dtype=str, keep_default_na=False)
    shop_path = sources / "shop_customers.parquet"
    shop = pd.read_parquet(shop_path)
    total = len(crm) + len(shop)
    n_move = max(1, int(0.004 * total))
    n_email = max(1, int(0.003 * total))
    n_new = max(1, int(0.003 * total))
    moved = rng.choice(len(crm), n_move, replace=False)
    crm.loc[moved, "Street"] = [f"{rng.integers(1, 200)} Bench Road" for _ in moved]
    emailed = rng.choice(len(shop), n_email, replace=False)
    col = shop.columns.get_loc("email")
    for i in emailed:
        shop.iat[i, col] = f"changed.{i}@example.org"
    new = crm.iloc[rng.choice(len(crm), n_new, replace=False)].copy()
    new["ContactId"] = [f"BENCH{seed}{i:07d}" for i in range(n_new)]  # unique across seeds
    pd.concat([crm, new]).to_csv(crm_path, index=False)
    shop.to_parquet(shop_path, index=False)
    return n_move + n_email + n_new


def bench(people: int) -> list[dict]:
    from sources.demo import generate_demo

    base = ROOT / "data" / "bench" / f"night-{people}"
    shutil.rmtree(base, ignore_errors=True)
    t = time.perf_counter()
    generate_demo(base / "sources", people=people, seed=42)
    print(f"# {people:,} people generated in {time.perf_counter() - t:.0f} s", flush=True)
    config, home = base / "sources" / "scv.yml", base / "dagster_home"
    home.mkdir(parents=True)
    full = run_night(config, home)
    records = pd.read_csv(base / "sources" / "truth.csv", dtype=str).shape[0]
    touched = change_one_percent(base / "sources")
    incremental = run_night(config, home)
    touched_next = change_one_percent(base / "sources", seed=2)
    next_day = run_night(config, home, as_of=NEXT_DAY)
    relink = run_night(config, home, "--full", as_of=NEXT_DAY)
    return [
        {"people": people, "night": "full (first, trains the model)", "records": records, **full},
        {"people": people, "night": f"incremental ({touched:,} records changed)", "records": records, **incremental},
        {"people": people, "night": f"next day (as-of + 1 day, {touched_next:,} more changed)", "records": records, **next_day},
        {"people": people, "night": "full re-link (--full, model reused)", "records": records, **relink},
    ]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--people", default="100000", help="comma-separated sizes")
    p.add_argument("--full-scale", action="store_true", help="also 1,000,000 people")
    p.add_argument("--steps", action="store_true", help="also print seconds per Dagster step")
    args = p.parse_args()
    sizes = [int(x) for x in args.people.split(",")] + ([1_000_000] if args.full_scale else [])
    rows = []
    for n in sizes:
        rows += bench(n)
    cols = ["people", "night", "records", *STAGES, "wall", "peak_rss_gib"]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        cells = [f"{r[c]:,.1f}" if isinstance(r[c], float) else f"{r[c]:,}" if isinstance(r[c], int) else r[c] for c in cols]
        print("| " + " | ".join(cells) + " |")
    if args.steps:
        keys = sorted({k for r in rows for k in r["steps"]}, key=lambda k: -max(r["steps"].get(k, 0) for r in rows))
        print()
        heads = [f"{r['people']:,} {r['night'].split(' ')[0]}" for r in rows]
        print("| step (seconds / peak RSS GiB) | " + " | ".join(heads) + " |")
        print("|---|" + "---|" * len(rows))
        for k in keys:
            cells = [f"{r['steps'].get(k, 0):.1f} / {r['step_rss'].get(k, 0):.1f}" for r in rows]
            print(f"| {k} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
