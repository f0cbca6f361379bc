"""Benchmark identity resolution on the demo company.

    python bench/linkage.py [--people 5000,100000] [--full]


For each size the demo company is generated into data/bench/demo_<people>/ (kept and reused),
its person sources are read, standardised and linked, and ONE table is printed comparing:

* `scv`       - this project: trained model, hard-conflict vetoes, chain splitting;
* `no guards` - the same model and edges, clustered without the guards (plain connected
                components at the threshold): what the guards buy;
* `baseline`  - plain Splink on the RAW source values (no standardisation), library comparisons,
                Splink's own u sampling and EM, connected components: what the whole design buys.

Rows: records, candidate pairs, blocking recall (share of true matching pairs that a blocking
rule generates), pairwise precision / recall / F1 against truth.csv, cluster precision / recall
/ F1 (B-cubed: per record, the share of its cluster that is its person and of its person that
is in its cluster, averaged), exact clusters (share of people whose records form exactly one
cluster), false merges among the hard negatives of hard_negatives.csv (pairs of distinct people
with records in one cluster / pairs listed), seconds per phase and peak RSS. Below the table:
false merges per kind and precision / recall / F1 at other thresholds (the curve the default
threshold is chosen from).

`--full` adds a ~1,000,000-record company (410,000 people). Each size runs in a child process,
so its peak memory is its own. Results are also written to bench/results/linkage_<people>.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data" / "bench"
RESULTS = ROOT / "bench" / "results"
FULL_PEOPLE = 410_000  # ~1.0M person records
SWEEP = (0.5, 0.8, 0.9, 0.95, 0.99)
BASELINE_MAX_RECORDS = 400_000


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _load(people: int, seed: int):
    """Demo company -> (standardised persons, truth, hard negatives, seconds to standardise)."""
    import pandas as pd

    from sources.config import load_config
    from sources.demo import generate_demo
    from sources.readers import read_source, to_canonical
    from transforms.standardise import standardise_persons

    out = DATA / f"demo_{people}"
    if not (out / "truth.csv").exists():
        generate_demo(out, people=people, seed=seed)
    cfg = load_config(out / "scv.yml")
    start = time.perf_counter()
    frames = []
    for src in cfg.person_sources().values():
        canon = to_canonical(read_source(src), src)
        ids = canon["source_record_id"]
        # The validation stage quarantines these rows; the benchmark simply drops them.
        canon = canon[ids.notna() & ~ids.duplicated(keep=False)]
        frames.append(standardise_persons(canon, src))
    persons = pd.concat(frames, ignore_index=True)
    seconds = time.perf_counter() - start
    truth = pd.read_csv(out / "truth.csv", dtype="string")
    hard = pd.read_csv(out / "hard_negatives.csv", dtype="string")
    return persons, truth, hard, seconds


def _accuracy(clusters, truth, hard) -> dict:
    from transforms.linkage.evaluation import (
        bcubed_metrics,
        hard_negative_merges,
        pairwise_metrics,
    )

    pw = pairwise_metrics(clusters, truth)
    b3 = bcubed_metrics(clusters, truth)
    hn = hard_negative_merges(clusters, truth, hard)
    return {
        "pairwise": {k: pw[k] for k in ("precision", "recall", "f1")},
        "cluster": b3,
        "hard_negatives": {r.kind: [int(r.merged), int(r.pairs)] for r in hn.itertuples()},
    }


def _baseline(persons, threshold: float, settings) -> dict:
    """Plain Splink, raw values, library comparisons, Splink's own training and clustering."""
    import splink.comparison_library as cl
    from splink import Linker, SettingsCreator, block_on
    from splink.clustering import cluster_pairwise_predictions_at_threshold

    from transforms.linkage.engine import make_db_api

    raw = persons[
        [
            "unique_id",
            "source",
            "source_record_id",
            "first_name",
            "last_name",
            "email",
            "phone",
            "date_of_birth",
            "address_line",
            "postcode",
            "city",
        ]
    ].copy()
    for c in raw.columns[3:]:
        raw[c] = raw[c].astype("string").str.strip().replace("", None)
    spec = SettingsCreator(
        link_type="dedupe_only",
        comparisons=[
            cl.NameComparison("first_name").configure(term_frequency_adjustments=True),
            cl.NameComparison("last_name").configure(term_frequency_adjustments=True),
            cl.DateOfBirthComparison("date_of_birth", input_is_string=True),
            cl.EmailComparison("email"),
            cl.ExactMatch("phone"),
            cl.LevenshteinAtThresholds("address_line", [2]),
            cl.ExactMatch("postcode").configure(term_frequency_adjustments=True),
            cl.ExactMatch("city").configure(term_frequency_adjustments=True),
        ],
        blocking_rules_to_generate_predictions=[
            block_on("first_name", "last_name"),
            block_on("email"),
            block_on("phone"),
            block_on("last_name", "date_of_birth"),
            block_on("postcode"),
        ],
        retain_matching_columns=False,
    )
    out: dict = {}
    db_api = make_db_api(settings)
    sdf = db_api.register(raw, dataset_display_name="raw_persons")
    linker = Linker(sdf, spec, log_level=None)
    t = time.perf_counter()
    linker.training.estimate_probability_two_random_records_match(
        [block_on("first_name", "last_name", "date_of_birth"), block_on("email")], recall=0.7
    )
    linker.training.estimate_u_using_random_sampling(
        max_pairs=settings.u_max_pairs, seed=settings.seed
    )
    for rule in (block_on("date_of_birth"), block_on("first_name", "last_name")):
        linker.training.estimate_parameters_using_expectation_maximisation(
            rule, max_pairs=settings.em_max_pairs
        )
    out["train"] = time.perf_counter() - t
    t = time.perf_counter()
    blocked = linker.inference.compute_blocked_pairs_for_predict()
    out["candidate_pairs"] = int(
        linker.misc.query_sql(f"SELECT count(*) AS n FROM {blocked.physical_name}", "pandas")["n"][
            0
        ]
    )
    pairs = linker.misc.query_sql(
        f"SELECT join_key_l AS unique_id_l, join_key_r AS unique_id_r FROM {blocked.physical_name}",
        "pandas",
    )
    preds = linker.inference.predict(threshold_match_probability=threshold, warning_mode="never")
    out["predict"] = time.perf_counter() - t
    t = time.perf_counter()
    cc = cluster_pairwise_predictions_at_threshold(
        raw[["unique_id"]],
        preds,
        db_api,
        node_id_column_name="unique_id",
        threshold_match_probability=threshold,
    ).as_pandas_dataframe()
    out["cluster"] = time.perf_counter() - t
    clusters = raw[["unique_id", "source", "source_record_id"]].merge(
        cc[["unique_id", "cluster_id"]].rename(columns={"cluster_id": "cluster_key"}),
        on="unique_id",
    )
    return {"clusters": clusters, "pairs": pairs, **out}


def _one(people: int, seed: int, threshold: float | None, baseline: bool) -> dict:
    """Runs in the child process: everything for one company size."""
    sys.path.insert(0, str(ROOT))
    logging.getLogger("splink").setLevel(logging.ERROR)
    from transforms.linkage import (
        LinkageSettings,
        cluster_edges,
        link_and_dedupe,
        train_model,
    )
    from transforms.linkage.evaluation import blocking_recall, true_pairs
    from transforms.linkage.predict import candidate_pairs

    settings = LinkageSettings() if threshold is None else LinkageSettings(threshold=threshold)
    persons, truth, hard, std_seconds = _load(people, seed)
    res: dict = {"people": people, "records": len(persons), "threshold": settings.threshold}
    t = time.perf_counter()
    model = train_model(persons, settings, created_at="bench")
    train_seconds = time.perf_counter() - t
    result = link_and_dedupe(persons, model, settings)
    scv_peak = _peak_mib()
    secs = result.metrics["seconds"]
    tp = true_pairs(truth, persons["unique_id"])
    cands = candidate_pairs(persons, model, settings)
    res["scv"] = {
        "candidate_pairs": result.metrics["candidate_pairs"],
        "blocking_recall": blocking_recall(cands, tp),
        **_accuracy(result.clusters, truth, hard),
        "seconds": {
            "standardise": std_seconds,
            "train": train_seconds,
            "predict": secs.get("prepare", 0) + secs.get("blocking", 0) + secs.get("predict", 0),
            "cluster": secs.get("cluster", 0),
        },
        "peak_rss_mib": scv_peak,
        "metrics": {k: v for k, v in result.metrics.items() if isinstance(v, (int, float))},
        "training": {
            k: model["scv"]["training"].get(k) for k in ("u_pairs", "u_method", "seconds")
        },
    }
    del cands
    t = time.perf_counter()
    loose = cluster_edges(persons, result.edges, settings.threshold, guards=False)
    res["no guards"] = {
        "candidate_pairs": result.metrics["candidate_pairs"],
        "blocking_recall": res["scv"]["blocking_recall"],
        **_accuracy(loose, truth, hard),
        "seconds": {**res["scv"]["seconds"], "cluster": time.perf_counter() - t},
    }
    res["sweep"] = {}
    for th in SWEEP:
        c = cluster_edges(persons, result.edges, th)
        acc = _accuracy(c, truth, hard)
        res["sweep"][str(th)] = {
            **acc["pairwise"],
            "hard_negative_merges": acc["hard_negatives"]["all"][0],
        }
    if baseline and len(persons) <= BASELINE_MAX_RECORDS:
        b = _baseline(persons, settings.threshold, settings)
        res["baseline"] = {
            "candidate_pairs": b["candidate_pairs"],
            "blocking_recall": blocking_recall(b["pairs"], tp),
            **_accuracy(b["clusters"], truth, hard),
            "seconds": {
                "standardise": 0.0,
                "train": b["train"],
                "predict": b["predict"],
                "cluster": b["cluster"],
            },
        }
    res["peak_rss_mib_all"] = _peak_mib()
    return res


def _fmt_table(r: dict) -> str:
    variants = [v for v in ("scv", "no guards", "baseline") if v in r]

    def row(label, fn):
        cells = []
        for v in variants:
            try:
                cells.append(fn(r[v]))
            except (KeyError, TypeError):
                cells.append("-")
        return f"| {label:<34} | " + " | ".join(f"{c:>14}" for c in cells) + " |"

    def hn(d: dict) -> str:
        merged, pairs = d["hard_negatives"]["all"]
        return f"{merged}/{pairs} ({merged / max(pairs, 1):.2%})"

    lines = [
        f"\n{r['people']:,} people, {r['records']:,} person records, threshold {r['threshold']}",
        f"| {'':<34} | " + " | ".join(f"{v:>14}" for v in variants) + " |",
        f"|{'-' * 36}|" + "|".join("-" * 16 for _ in variants) + "|",
        row("candidate pairs", lambda d: f"{d['candidate_pairs']:,}"),
        row("blocking recall", lambda d: f"{d['blocking_recall']:.4f}"),
        row("pairwise precision", lambda d: f"{d['pairwise']['precision']:.4f}"),
        row("pairwise recall", lambda d: f"{d['pairwise']['recall']:.4f}"),
        row("pairwise F1", lambda d: f"{d['pairwise']['f1']:.4f}"),
        row("cluster (B-cubed) precision", lambda d: f"{d['cluster']['precision']:.4f}"),
        row("cluster (B-cubed) recall", lambda d: f"{d['cluster']['recall']:.4f}"),
        row("cluster (B-cubed) F1", lambda d: f"{d['cluster']['f1']:.4f}"),
        row("exact clusters", lambda d: f"{d['cluster']['exact_clusters']:.4f}"),
        row("hard-negative false merges", hn),
        row("seconds: standardise", lambda d: f"{d['seconds']['standardise']:.1f}"),
        row("seconds: train", lambda d: f"{d['seconds']['train']:.1f}"),
        row("seconds: predict (block + score)", lambda d: f"{d['seconds']['predict']:.1f}"),
        row("seconds: cluster", lambda d: f"{d['seconds']['cluster']:.1f}"),
        row("peak RSS MiB", lambda d: f"{d['peak_rss_mib']:,.0f}"),
    ]
    kinds = r["scv"]["hard_negatives"]
    lines.append(
        "false merges by kind (scv | no guards): "
        + ", ".join(
            f"{k} {kinds[k][0]}|{r['no guards']['hard_negatives'][k][0]} of {kinds[k][1]}"
            for k in kinds
            if k != "all"
        )
    )
    lines.append(
        "threshold sweep (scv): "
        + "; ".join(
            f"{th}: P {s['precision']:.4f} R {s['recall']:.4f} F1 {s['f1']:.4f} "
            f"HN {s['hard_negative_merges']}"
            for th, s in r["sweep"].items()
        )
    )
    m = r["scv"]["metrics"]
    lines.append(
        f"guards (scv): {m.get('vetoed_edges', 0):,} edges vetoed, {m.get('split_clusters', 0):,} "
        f"clusters split, {m.get('isolated_ambiguous', 0):,} ambiguous records left alone; "
        f"training {r['scv']['training']['u_pairs']:,} u pairs"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--people", default="5000,100000", help="comma-separated company sizes")
    ap.add_argument(
        "--full", action="store_true", help=f"also run {FULL_PEOPLE:,} people (~1M records)"
    )
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument(
        "--threshold", type=float, help="match threshold (default: the project default)"
    )
    ap.add_argument("--no-baseline", action="store_true", help="skip the raw-Splink baseline")
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child is not None:
        res = _one(args.child, args.seed, args.threshold, not args.no_baseline)
        print(json.dumps(res, default=float))
        return 0
    sizes = [int(x) for x in args.people.split(",") if x.strip()]
    if args.full and FULL_PEOPLE not in sizes:
        sizes.append(FULL_PEOPLE)
    RESULTS.mkdir(parents=True, exist_ok=True)
    for people in sizes:
        cmd = [sys.executable, __file__, "--child", str(people), "--seed", str(args.seed)]
        if args.threshold is not None:
            cmd += ["--threshold", str(args.threshold)]
        if args.no_baseline:
            cmd.append("--no-baseline")
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        if proc.returncode != 0:
            print(f"{people:,} people: failed\n{proc.stderr[-3000:]}", file=sys.stderr)
            return 1
        res = json.loads(proc.stdout.strip().splitlines()[-1])
        (RESULTS / f"linkage_{people}.json").write_text(json.dumps(res, indent=2), encoding="utf-8")
        print(_fmt_table(res), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
