"""Every benchmark at its default scale, one after another; each prints its table.

    .venv/bin/python bench/run_all.py        (or: make bench)

Larger scales are flags of the individual scripts (`--full`, `--full-scale`, `--people`).
"""

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHES = [
    ["demo_generation.py"],
    ["standardise.py"],
    ["validation.py"],
    ["linkage.py", "--people", "5000"],
    ["accuracy.py"],
    ["night.py", "--people", "5000"],
    ["render_report.py"],
]


def main() -> int:
    failed = []
    for bench in BENCHES:
        print(f"\n## {' '.join(bench)}", flush=True)
        if subprocess.run([sys.executable, str(HERE / bench[0]), *bench[1:]]).returncode != 0:
            failed.append(bench[0])
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
