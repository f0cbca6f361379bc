"""The linkage stage on DuckDB, on Spark `local[2]` and on a Spark standalone cluster, side by side.

    .venv/bin/python bench/spark_linkage.py [--people 100000] [--engines duckdb,local,standalone]

The demo company of `--people` people is generated (data/bench/demo_<people>/, reused), its
person sources read and standardised as `bench/linkage.py` does, and written once as Parquet.
Then, each engine in a child process of its own (so its memory is its own), the whole linkage
stage runs through its seam (`transforms.linkage.linkage_stage`): `train` (u sampling, EM,
the guards' evidence) and a full night's `link` (preparation, scoring, clustering with the
guards). The standalone cluster is one master and one worker (2 cores, 4 GiB) started on
127.0.0.1 from the pyspark package (tests/spark_support.py), and stopped at the end.

One table: seconds per phase (train; the link's phases as the stage reports them; the whole
link), peak RSS of the driver (the Python process and, for Spark, its JVM) and of the
standalone cluster's executors, pairwise precision / recall / F1 against truth.csv, and the
agreement of each engine's customers with DuckDB's (pairwise F1 of one engine's same-customer
pairs against the other's: 1.0 means the same customers).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data" / "bench"
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))


def _settings(engine: str, master: str | None, work: Path):
    from transforms.linkage import LinkageSettings

    if engine == "duckdb":
        return LinkageSettings(temp_directory=work / "tmp")
    return LinkageSettings(
        engine="spark",
        spark_master=master,
        spark_conf={"spark.sql.shuffle.partitions": "8", "spark.driver.memory": "4g"},
        temp_directory=work / "tmp",
    )


def child(engine: str, master: str | None, persons: Path, work: Path) -> dict:
    """One engine's train + full link, in this (child) process; returns figures."""
    import logging

    from transforms.linkage import OverrideSet, linkage_stage
    from transforms.linkage.stage import LinkageFiles, LinkageJob

    logging.basicConfig(level=logging.WARNING)
    log = logging.getLogger("bench")
    stage = linkage_stage(_settings(engine, master, work))
    t0 = time.perf_counter()
    model = stage.train(persons, created_at=datetime.now(timezone.utc))
    train_s = time.perf_counter() - t0
    out = LinkageFiles(*(work / f"{n}.parquet" for n in ("clusters", "edges", "fingerprints", "review")))
    t0 = time.perf_counter()
    run = stage.link(LinkageJob(persons, model, OverrideSet(), out, clustering="bench"), log)
    link_s = time.perf_counter() - t0
    seconds = run.metrics.get("seconds", {}) if isinstance(run.metrics.get("seconds"), dict) else {}
    return {"train": train_s, "link": link_s, "phases": seconds, "clusters": str(out.clusters)}


def _tree_rss(pid: int) -> int:
    try:
        p = psutil.Process(pid)
        return p.memory_info().rss + sum(c.memory_info().rss for c in p.children(recursive=True))
    except psutil.Error:
        return 0


def _executor_rss() -> int:
    total = 0
    for p in psutil.process_iter(["cmdline"]):
        try:
            if any("CoarseGrainedExecutorBackend" in part for part in (p.info["cmdline"] or [])):
                total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def run_engine(name: str, engine: str, master: str | None, persons: Path, work: Path) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    result_file = work / "result.json"
    code = (
        "import json, sys; sys.path.insert(0, %r); from spark_linkage import child; "
        "from pathlib import Path; "
        "json.dump(child(%r, %r, Path(%r), Path(%r)), open(%r, 'w'))"
    ) % (str(ROOT / "bench"), engine, master, str(persons), str(work), str(result_file))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, cwd=ROOT)
    peak_driver = peak_exec = 0
    while proc.poll() is None:
        peak_driver = max(peak_driver, _tree_rss(proc.pid))
        peak_exec = max(peak_exec, _executor_rss())
        time.sleep(0.2)
    if proc.returncode != 0:
        raise SystemExit(f"{name}: the child failed (exit {proc.returncode})")
    figures = json.loads(result_file.read_text())
    figures.update(
        name=name,
        wall=time.perf_counter() - start,
        driver_gib=peak_driver / 2**30,
        executors_gib=peak_exec / 2**30,
    )
    return figures


def _pairs(clusters_file: str) -> set[tuple[str, str]]:
    import itertools

    import pandas as pd

    clusters = pd.read_parquet(clusters_file, columns=["unique_id", "cluster_key"])
    pairs = set()
    for members in clusters.groupby("cluster_key")["unique_id"]:
        ids = sorted(members[1].astype(str))
        if len(ids) > 1:
            pairs.update(itertools.combinations(ids, 2))
    return pairs


def _agreement(a: set, b: set) -> float:
    return 1.0 if not a and not b else 2 * len(a & b) / (len(a) + len(b))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--people", type=int, default=100_000)
    p.add_argument("--engines", default="duckdb,local,standalone")
    args = p.parse_args()
    engines = args.engines.split(",")

    import pandas as pd
    from linkage import _load

    from transforms.linkage.evaluation import pairwise_metrics

    base = DATA / f"spark_{args.people}"
    persons_file = base / "persons.parquet"
    persons, truth, _, _ = _load(args.people, seed=42)
    base.mkdir(parents=True, exist_ok=True)
    persons.to_parquet(persons_file)
    print(f"# {len(persons):,} person records of {args.people:,} people", flush=True)
    del persons

    rows = []
    for name in engines:
        work = base / name
        if name == "duckdb":
            rows.append(run_engine(name, "duckdb", None, persons_file, work))
        elif name == "local":
            rows.append(run_engine("spark local[2]", "spark", "local[2]", persons_file, work))
        elif name == "standalone":
            from spark_support import standalone_cluster

            with tempfile.TemporaryDirectory() as tmp:
                with standalone_cluster(Path(tmp), cores=2, memory="4g") as master:
                    rows.append(run_engine("spark standalone", "spark", master, persons_file, work))
        print(f"# {rows[-1]['name']}: {rows[-1]['wall']:.0f} s", flush=True)

    duck = next((r for r in rows if r["name"] == "duckdb"), None)
    duck_pairs = _pairs(duck["clusters"]) if duck else None
    print("| engine | train s | link s | link phases (s) | wall s | driver peak GiB | executors peak GiB "
          "| precision | recall | F1 | agreement with DuckDB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        clusters = pd.read_parquet(r["clusters"])
        pw = pairwise_metrics(clusters, truth)
        agree = _agreement(_pairs(r["clusters"]), duck_pairs) if duck_pairs is not None else float("nan")
        phases = ", ".join(f"{k} {v:.1f}" for k, v in r["phases"].items()) or "-"
        print(
            f"| {r['name']} | {r['train']:.1f} | {r['link']:.1f} | {phases} | {r['wall']:.1f} "
            f"| {r['driver_gib']:.2f} | {r['executors_gib']:.2f} | {pw['precision']:.4f} "
            f"| {pw['recall']:.4f} | {pw['f1']:.4f} | {agree:.4f} |"
        )


if __name__ == "__main__":
    main()
