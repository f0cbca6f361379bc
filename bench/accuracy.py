"""Accuracy of identity resolution on labelled data sets, this project beside plain Splink.

    make bench-deps && .venv/bin/python bench/accuracy.py [--sets demo,febrl1,...] [--threshold T]

One table: for every data set (`bench/datasets.py`: the demo, FEBRL 1-4, pseudopeople) and
every method, pairwise precision / recall / F1, B-cubed F1, hard-negative merges (where the set
lists them: pairs of different people of one household merged / pairs listed) and wall time
(standardise + train + score + cluster). Methods, all with the same defaults on every set:

* `scv adaptive`: this project as shipped (`linkage.guards: adaptive`);
* `scv strict`, `scv off`: the same model and scored pairs, clustered with every conflict
  vetoing / without guards (what the policy trades);
* `plain Splink`: Splink 5 with its library comparisons (names with term frequencies, date of
  birth, street line, postcode, city, email, phone: those the set has), its own u sampling
  and EM, connected components at the same threshold, on the same records (raw values; dates
  parsed with the source's configured format, as the project does).

Each data set runs in a child process (its own memory). Results also go to
bench/results/accuracy.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
SETS = ("demo", "febrl1", "febrl2", "febrl3", "febrl4", "pseudopeople")
METHODS = ("scv adaptive", "scv strict", "scv off", "plain Splink")


def _accuracy(clusters, ds) -> dict:
    from transforms.linkage.evaluation import (
        bcubed_metrics,
        hard_negative_merges,
        pairwise_metrics,
    )

    pw = pairwise_metrics(clusters, ds.truth)
    out = {
        "precision": pw["precision"],
        "recall": pw["recall"],
        "f1": pw["f1"],
        "bcubed_f1": bcubed_metrics(clusters, ds.truth)["f1"],
        "true_pairs": pw["true_pairs"],
    }
    if ds.hard_negatives is not None:
        hn = hard_negative_merges(clusters, ds.truth, ds.hard_negatives)
        total = hn[hn["kind"] == "all"].iloc[0]
        out["hard_negatives"] = [int(total["merged"]), int(total["pairs"])]
        out["hard_negatives_by_kind"] = {
            r.kind: [int(r.merged), int(r.pairs)] for r in hn.itertuples() if r.kind != "all"
        }
    return out


def _plain_splink(persons, ds, threshold: float, settings) -> tuple:
    """Plain Splink 5 on the raw values of the fields the set has."""
    import pandas as pd
    import splink.comparison_library as cl
    from splink import Linker, SettingsCreator, block_on
    from splink.clustering import cluster_pairwise_predictions_at_threshold
    from splink.internals.exceptions import EMTrainingException

    from transforms.linkage.engine import make_db_api

    raw_cols = {
        "first_name": "first_name",
        "last_name": "last_name",
        "dob": "dob",
        "email": "email",
        "phone": "phone",
        "address_line": "address_line",
        "postcode": "postcode",
        "city": "city",
    }
    raw = pd.DataFrame({"unique_id": persons["unique_id"].astype("string")})
    for out_col, col in raw_cols.items():
        if col in persons.columns:
            s = persons[col].astype("string").str.strip().str.lower()
            raw[out_col] = s.mask(s == "")
    # Dates as the source's configured format reads them (the project parses them the same way).
    raw["dob"] = persons["dob"].astype("string") if "dob" in persons.columns else None
    present = [c for c in raw.columns[1:] if raw[c].notna().mean() >= 0.01]
    comps, rules = [], []
    if "first_name" in present:
        comps.append(cl.NameComparison("first_name").configure(term_frequency_adjustments=True))
    if "last_name" in present:
        comps.append(cl.NameComparison("last_name").configure(term_frequency_adjustments=True))
    if "dob" in present:
        comps.append(
            cl.DateOfBirthComparison("dob", input_is_string=True, datetime_format="%Y-%m-%d")
        )
    if "email" in present:
        comps.append(cl.EmailComparison("email"))
    if "phone" in present:
        comps.append(cl.ExactMatch("phone").configure(term_frequency_adjustments=True))
    if "address_line" in present:
        comps.append(cl.LevenshteinAtThresholds("address_line", [1, 3]))
    if "postcode" in present:
        comps.append(cl.ExactMatch("postcode").configure(term_frequency_adjustments=True))
    if "city" in present:
        comps.append(cl.ExactMatch("city").configure(term_frequency_adjustments=True))
    for cand in (
        ("first_name", "last_name"),
        ("last_name", "dob"),
        ("first_name", "dob"),
        ("email",),
        ("phone",),
        ("postcode", "first_name"),
        ("postcode", "last_name"),
        ("address_line",),
    ):
        if set(cand) <= set(present):
            rules.append(block_on(*cand))
    raw = raw[["unique_id", *present]]
    t = time.perf_counter()
    db_api = make_db_api(settings)
    spec = SettingsCreator(
        link_type="dedupe_only",
        comparisons=comps,
        blocking_rules_to_generate_predictions=rules,
        retain_matching_columns=False,
    )
    linker = Linker(db_api.register(raw, dataset_display_name="raw"), spec, log_level=None)
    det = [
        block_on(*c)
        for c in (("first_name", "last_name", "dob"), ("email",), ("first_name", "last_name"))
        if set(c) <= set(present)
    ][:2]
    try:
        linker.training.estimate_probability_two_random_records_match(det, recall=0.7)
    except ValueError as exc:  # a tiny set: keep Splink's default prior
        logging.getLogger(__name__).warning("plain Splink prior: %s", exc)
    linker.training.estimate_u_using_random_sampling(max_pairs=settings.u_max_pairs, seed=1)
    for rule in (("dob",), ("first_name", "last_name"), ("postcode",)):
        if set(rule) <= set(present):
            try:
                linker.training.estimate_parameters_using_expectation_maximisation(
                    block_on(*rule), max_pairs=settings.em_max_pairs
                )
            except EMTrainingException as exc:  # EM cannot run on this block
                logging.getLogger(__name__).warning("plain Splink EM %s: %s", rule, exc)
    preds = linker.inference.predict(threshold_match_probability=threshold, warning_mode="never")
    cc = cluster_pairwise_predictions_at_threshold(
        raw[["unique_id"]],
        preds,
        db_api,
        node_id_column_name="unique_id",
        threshold_match_probability=threshold,
    ).as_pandas_dataframe()
    seconds = time.perf_counter() - t
    clusters = persons[["unique_id", "source", "source_record_id"]].merge(
        cc[["unique_id", "cluster_id"]].rename(columns={"cluster_id": "cluster_key"}),
        on="unique_id",
    )
    return clusters, seconds


def _one(name: str, threshold: float | None) -> dict:
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "bench"))
    logging.getLogger("splink").setLevel(logging.ERROR)
    import pandas as pd
    from datasets import load

    from transforms.linkage import (
        LinkageSettings,
        cluster_edges,
        link_and_dedupe,
        train_model,
    )
    from transforms.linkage.model import guard_policy
    from transforms.standardise import standardise_persons

    ds = load(name)
    settings = LinkageSettings() if threshold is None else LinkageSettings(threshold=threshold)
    res: dict = {"set": name, "description": ds.description, "threshold": settings.threshold}
    t = time.perf_counter()
    persons = pd.concat(
        [standardise_persons(frame, src) for src, frame in ds.sources], ignore_index=True
    )
    t_std = time.perf_counter() - t
    res["records"] = len(persons)
    t = time.perf_counter()
    model = train_model(persons, settings, created_at="bench")
    result = link_and_dedupe(persons, model, settings)
    scv_seconds = t_std + time.perf_counter() - t
    res["guards"] = guard_policy(model, "adaptive").describe()
    res["guard_evidence"] = model["scv"].get("guards")
    res["methods"] = {}
    for mode in ("adaptive", "strict", "off"):
        t = time.perf_counter()
        clusters = (
            result.clusters
            if mode == settings.guards
            else cluster_edges(persons, result.edges, settings.threshold, guards=guard_policy(model, mode))
        )
        extra = 0.0 if mode == settings.guards else time.perf_counter() - t
        res["methods"][f"scv {mode}"] = {
            **_accuracy(clusters, ds),
            "seconds": scv_seconds + extra,
        }
    clusters, seconds = _plain_splink(persons, ds, settings.threshold, settings)
    res["methods"]["plain Splink"] = {**_accuracy(clusters, ds), "seconds": seconds}
    return res


def _table(results: list[dict]) -> str:
    head = (
        "| data set | records | true pairs | method | precision | recall | F1 | B-cubed F1 "
        "| hard negatives merged | seconds |"
    )
    lines = [head, "|" + "---|" * 10]
    for r in results:
        for i, (method, m) in enumerate(r["methods"].items()):
            hn = m.get("hard_negatives")
            hn_text = f"{hn[0]:,} / {hn[1]:,}" if hn else "-"
            lines.append(
                f"| {r['set'] if i == 0 else ''} | {r['records']:,} | {m['true_pairs']:,} "
                f"| {method} | {m['precision']:.4f} | {m['recall']:.4f} | {m['f1']:.4f} "
                f"| {m['bcubed_f1']:.4f} | {hn_text} | {m['seconds']:.1f} |"
            )
    lines.append("")
    for r in results:
        lines.append(f"- {r['set']}: {r['guards']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", default=",".join(SETS), help="comma-separated data sets")
    ap.add_argument("--threshold", type=float, help="match threshold (default: the project's)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(_one(args.child, args.threshold), default=float))
        return 0
    results = []
    for name in [s.strip() for s in args.sets.split(",") if s.strip()]:
        cmd = [sys.executable, __file__, "--child", name]
        if args.threshold is not None:
            cmd += ["--threshold", str(args.threshold)]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        if proc.returncode != 0:
            print(f"{name}: failed\n{proc.stderr[-3000:]}", file=sys.stderr)
            return 1
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(f"{name}: done", file=sys.stderr, flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "accuracy.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(_table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
