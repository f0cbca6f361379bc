"""Time the demo company generator: `python bench/demo_generation.py [--full] [--people N ...]`.

Generates 5k and 100k people (and 1M with --full) into a temporary folder, each size in a fresh
child process so its peak memory is its own, and prints people, rows written, seconds and peak
RSS.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _one(people: int, seed: int) -> dict:
    """Run inside the child: generate once and report."""
    sys.path.insert(0, str(ROOT))
    from sources.demo import generate_demo

    with tempfile.TemporaryDirectory(prefix="scv-demo-bench-") as tmp:
        start = time.perf_counter()
        summary = generate_demo(Path(tmp), people=people, seed=seed)
        seconds = time.perf_counter() - start
        size = sum(p.stat().st_size for p in Path(tmp).iterdir())
    # ru_maxrss is KiB on Linux
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "people": people,
        "rows": summary.total_rows,
        "person_records": sum(summary.person_records.values()),
        "seconds": round(seconds, 2),
        "peak_rss_mib": round(peak),
        "mib_written": round(size / 2**20),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true", help="also run 1,000,000 people")
    ap.add_argument("--people", type=int, nargs="*", help="sizes to run instead of the default")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(_one(args.child, args.seed)))
        return 0
    sizes = args.people or ([5_000, 100_000] + ([1_000_000] if args.full else []))
    header = f"{'people':>10} {'rows written':>13} {'person recs':>12} {'seconds':>8} {'peak RSS MiB':>13} {'MiB on disk':>12}"
    print(header)
    print("-" * len(header))
    for n in sizes:
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(n), "--seed", str(args.seed)],
            check=True,
            capture_output=True,
            text=True,
        )
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(
            f"{r['people']:>10,} {r['rows']:>13,} {r['person_records']:>12,} {r['seconds']:>8.1f} "
            f"{r['peak_rss_mib']:>13,} {r['mib_written']:>12,}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
