"""Render check of the nightly run report in headless Chromium.

    python bench/render_report.py [REPORT.html] [--out SHOT.png]

Opens the report (or, with no argument, one built from a small synthetic warehouse) in headless
Chromium with networking features off, saves a screenshot next to the report (or to --out) and
checks it is a real picture: a PNG of the window size holding more than a handful of colours and
enough non-background pixels. Prints a table; exit 0 when the check passes, 1 when it fails,
2 when Chromium is missing. The logic lives in warehouse/report_render.py, which the test suite
(tests/warehouse/test_report_render.py) uses too.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from warehouse.report_render import (
    MIN_BYTES,
    MIN_COLOURS,
    MIN_INK_SHARE,
    WINDOW,
    check_png,
    find_chromium,
    screenshot,
    synthetic_report,
    verdict,
)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "report", nargs="?", type=Path, help="report HTML (default: build a synthetic one)"
    )
    ap.add_argument("--out", type=Path, help="screenshot path (default: next to the report)")
    ap.add_argument(
        "--height",
        type=int,
        default=WINDOW[1],
        help="window height in pixels (to see a long page whole)",
    )
    args = ap.parse_args(argv)

    chromium = find_chromium()
    if chromium is None:
        print(
            "render check: Chromium not found. Install it with\n"
            "  sudo apt-get update && sudo apt-get install -y chromium\n"
            "(Debian/Ubuntu package `chromium`, binary /usr/bin/chromium).",
            file=sys.stderr,
        )
        return 2

    if args.report is None:
        out_dir = ROOT / "data" / "reports" / "render-check"
        out_dir.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        html = synthetic_report(out_dir)
        built = time.perf_counter() - t0
    else:
        html, built = args.report, None
        if not html.is_file():
            print(f"render check: {html}: no such file", file=sys.stderr)
            return 1
    png = args.out or html.with_suffix(".png")
    window = (WINDOW[0], args.height)
    try:
        shot = screenshot(chromium, html, png, window)
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        print(f"render check: {exc}", file=sys.stderr)
        return 1
    t0 = time.perf_counter()
    stats = check_png(png)
    decoded = time.perf_counter() - t0

    ok = verdict(stats, window)
    rows = [
        ("report", str(html), ""),
        ("screenshot", str(png), ""),
        ("report size", f"{html.stat().st_size:,} B", ""),
        ("build report (s)", f"{built:.2f}" if built is not None else "-", ""),
        ("chromium screenshot (s)", f"{shot:.2f}", ""),
        ("decode PNG (s)", f"{decoded:.2f}", ""),
        (
            "PNG size",
            f"{stats['bytes']:,} B",
            f">= {MIN_BYTES:,}" + (" ok" if ok["bytes"] else " FAIL"),
        ),
        (
            "PNG dimensions",
            f"{stats['width']}x{stats['height']}",
            f"= {window[0]}x{window[1]}" + (" ok" if ok["size"] else " FAIL"),
        ),
        (
            "distinct colours",
            f"{stats['colours']:,}",
            f">= {MIN_COLOURS}" + (" ok" if ok["colours"] else " FAIL"),
        ),
        (
            "non-background pixels",
            f"{stats['ink_share']:.1%}",
            f">= {MIN_INK_SHARE:.0%}" + (" ok" if ok["ink"] else " FAIL"),
        ),
        ("content reaches row", f"{stats['last_inked_row']}", f"of {stats['height']}"),
    ]
    width = max(len(r[0]) for r in rows)
    for name, value, mark in rows:
        print(f"{name:<{width}}  {value}  {mark}".rstrip())
    passed = all(ok.values())
    print("render check: " + ("PASS" if passed else "FAIL"))
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
