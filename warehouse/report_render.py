"""Render check of the nightly run report: screenshot it in headless Chromium and check the PNG.

`find_chromium` finds a Chromium binary on PATH, `screenshot` saves a PNG of an HTML page with a
fresh profile and networking off, `check_png` measures the picture (size, distinct colours, share
of non-background pixels) and `verdict` says which of the thresholds it meets. `synthetic_report`
builds a report from a small synthetic warehouse. Used by `bench/render_report.py` (`make
report-check`) and by tests/warehouse/test_report_render.py.
"""

from __future__ import annotations

import random
import shutil
import subprocess
import tempfile
import time
import zlib
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from transforms.rfm import SEGMENT_NAMES
from warehouse.report import build_run_report, write_run_report
from warehouse.schema import TABLES
from warehouse.store import Warehouse, write_frame

WINDOW = (1280, 2000)
CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
MIN_BYTES = 20_000
MIN_COLOURS = 16
MIN_INK_SHARE = 0.01


# ------------------------------------------------------------------------ synthetic night
def synthetic_report(out_dir: Path, people: int = 400, seed: int = 7) -> Path:
    """Build a small synthetic warehouse, render its run report with a previous night to
    compare against, write it under `out_dir` and return the HTML path."""
    rng = random.Random(seed)
    as_of = date(2025, 3, 14)
    run_at = datetime(2025, 3, 14, 2, 0)
    run_id = "render-check-run"
    wh = Warehouse(out_dir / "wh.duckdb", out_dir / "staging.duckdb", out_dir / "exports")
    wh.reset_staging()
    with wh.stage() as con:
        sources = {
            "crm": 0.02,
            "web_shop": 0.004,
            "pos": 0.01,
            "email_marketing": 0.0,
            "support": 0.03,
        }
        runs, quarantine = [], []
        rules = ["missing_id", "duplicate_id", "bad_date", "unknown_person", "bad_amount"]
        for s, q_share in sources.items():
            rows_in = rng.randint(300, 2500)
            q = int(rows_in * q_share)
            runs.append(
                (
                    run_at,
                    run_id,
                    s,
                    f"{s}.csv",
                    "0" * 64,
                    rows_in,
                    rows_in - q,
                    q,
                    rng.randint(0, 30),
                )
            )
            for i in range(q):
                quarantine.append(
                    (s, i + 1, None, rng.choice(rules[: 2 + len(s) % 3]), "synthetic", "{}", run_at)
                )
        cols = [
            "run_at",
            "run_id",
            "source",
            "path",
            "fingerprint",
            "rows_in",
            "rows_accepted",
            "rows_quarantined",
            "field_findings",
        ]
        write_frame(con, "source_run", pd.DataFrame(runs, columns=cols), schema="scv")
        write_frame(
            con,
            "quarantine",
            pd.DataFrame(
                quarantine,
                columns=[
                    "source",
                    "row_number",
                    "source_record_id",
                    "rule",
                    "detail",
                    "raw",
                    "run_at",
                ],
            ),
            schema="scv",
        )
        ids = [f"c{i:05d}" for i in range(people)]
        sizes = [rng.choices([1, 2, 3, 4, 5, 8, 12], [50, 25, 12, 6, 3, 1, 0.3])[0] for _ in ids]
        xref = [
            ("crm", f"r{cid}-{k}", cid, 0.97, cid) for cid, n in zip(ids, sizes) for k in range(n)
        ]
        write_frame(
            con,
            "customer_xref",
            pd.DataFrame(
                xref,
                columns=[
                    "source",
                    "source_record_id",
                    "customer_id",
                    "match_probability",
                    "cluster_key",
                ],
            ),
            schema="scv",
        )
        customer = pd.DataFrame({"customer_id": ids, "record_count": sizes})
        for c in TABLES["customer"].column_names:
            if c not in customer:
                customer[c] = None
        write_frame(con, "customer", customer, schema="scv")
        history = [
            (run_at, f"old{i}", rng.choice(ids), "merge", rng.randint(1, 3), "linkage")
            for i in range(9)
        ]
        history += [(run_at, rng.choice(ids), f"new{i}", "split", 1, "linkage") for i in range(2)]
        write_frame(
            con,
            "customer_id_history",
            pd.DataFrame(
                history,
                columns=[
                    "run_at", "old_customer_id", "new_customer_id", "change", "records_moved",
                    "reason",
                ],
            ),
            schema="scv",
        )
        segments = list(SEGMENT_NAMES)
        buyers = ids[: int(people * 0.7)]
        rfm = pd.DataFrame(
            {
                "customer_id": buyers,
                "as_of_date": as_of,
                "recency_days": [rng.randint(0, 700) for _ in buyers],
                "frequency": [rng.randint(1, 20) for _ in buyers],
                "monetary": [round(rng.uniform(5, 2000), 2) for _ in buyers],
                "monetary_currency": "GBP",
                "r_score": 3,
                "f_score": 3,
                "m_score": 3,
                "segment": [
                    rng.choices(segments, [8, 10, 9, 5, 4, 7, 6, 9, 2, 12, 14])[0] for _ in buyers
                ],
            }
        )
        write_frame(con, "rfm", rfm, schema="scv")
        stages = ["prospect", "new", "active", "at_risk", "lost", "reactivated"]
        stage_of = {
            c: (
                "prospect"
                if c not in set(buyers)
                else rng.choices(stages[1:], [6, 30, 15, 20, 4])[0]
            )
            for c in ids
        }
        write_frame(
            con,
            "lifecycle",
            pd.DataFrame(
                {
                    "customer_id": ids,
                    "as_of_date": as_of,
                    "stage": [stage_of[c] for c in ids],
                    "stage_since": as_of - timedelta(days=30),
                }
            ),
            schema="scv",
        )
        before = {"new": "active", "active": "at_risk", "at_risk": "lost", "lost": "reactivated"}
        moved = [c for c in ids if rng.random() < 0.08]
        moves = [
            (c, as_of, next((k for k, v in before.items() if v == stage_of[c]), None), stage_of[c])
            for c in moved
        ]
        write_frame(
            con,
            "lifecycle_history",
            pd.DataFrame(moves, columns=["customer_id", "as_of_date", "from_stage", "to_stage"]),
            schema="scv",
        )
        previous = {
            "run_id": "render-check-previous",
            "as_of": (as_of - timedelta(days=1)).isoformat(),
            "headline": {
                "rows_in": 5200,
                "rows_accepted": 5120,
                "rows_quarantined": 80,
                "person_records": len(xref) - 25,
                "customers": people - 6,
                "duplicates_merged": len(xref) - 25 - people + 6,
                "merges": 4,
                "splits": 0,
                "rfm_customers": len(buyers) - 12,
                "lifecycle_moves": 41,
            },
            "rfm_segments": [{"segment": s, "customers": 20} for s in segments[:10]],
        }
        extra = {
            "linkage": {
                "match_rate": 0.512,
                "model_version": "2025-03-01T02:00:00",
                "trained_this_run": False,
                "reason": "reused",
            },
            "timings": {
                "read + validate sources": 6.4,
                "standardise": 2.1,
                "link (Splink)": 18.7,
                "golden records": 3.3,
                "SQL models": 1.9,
                "publish + exports": 2.6,
            },
        }
        html, summary = build_run_report(con, run_id, as_of, previous, extra)
    wh.reset_staging()
    return write_run_report(html, summary, out_dir, run_id)


# ------------------------------------------------------------------------ screenshot
def find_chromium() -> str | None:
    for name in CHROMIUM_CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


def run_chromium(
    chromium: str,
    url: str,
    png: Path,
    window: tuple[int, int] = WINDOW,
    timeout: float = 120,
    *,
    resolve_local: bool = False,
    extra: tuple[str, ...] = (),
) -> tuple[str, float]:
    """Screenshot `url` in headless Chromium with a fresh profile, no background networking and
    no name resolving (but 127.0.0.1 when `resolve_local`), so a page that needed the network
    shows it; `extra` adds switches (`--dump-dom`, a virtual-time budget). Returns (stdout,
    seconds). Raises RuntimeError when Chromium fails and subprocess.TimeoutExpired after
    `timeout` s."""
    png.parent.mkdir(parents=True, exist_ok=True)
    png.unlink(missing_ok=True)
    rules = "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1" if resolve_local else "MAP * ~NOTFOUND"
    with tempfile.TemporaryDirectory(prefix="scv-chromium-") as profile:
        cmd = [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--host-resolver-rules={rules}",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            f"--screenshot={png}",
            f"--window-size={window[0]},{window[1]}",
            *extra,
            url,
        ]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        elapsed = time.perf_counter() - t0
    if proc.returncode != 0 or not png.exists():
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        raise RuntimeError(f"chromium exited {proc.returncode} without a screenshot of {url}:\n{tail}")
    return proc.stdout, elapsed


def screenshot(
    chromium: str,
    html: Path,
    png: Path,
    window: tuple[int, int] = WINDOW,
    timeout: float = 120,
) -> float:
    """Screenshot the file `html` (`run_chromium`); returns seconds."""
    return run_chromium(chromium, html.resolve().as_uri(), png, window, timeout)[1]


# ------------------------------------------------------------------------ PNG check
def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else (b if pb <= pc else c)


def decode_png(path: Path) -> np.ndarray:
    """Pixels of an 8-bit RGB/RGBA/grey PNG (non-interlaced) as an (h, w, channels) array,
    with zlib and numpy only (Pillow is not a dependency)."""
    data = path.read_bytes()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path}: not a PNG")
    pos, idat, ihdr = 8, [], None
    while pos < len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            ihdr = body
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
        pos += 12 + length
    if ihdr is None:
        raise ValueError(f"{path}: no IHDR chunk")
    w, h = int.from_bytes(ihdr[0:4], "big"), int.from_bytes(ihdr[4:8], "big")
    depth, colour, interlace = ihdr[8], ihdr[9], ihdr[12]
    channels = {0: 1, 2: 3, 4: 2, 6: 4}.get(colour)
    if depth != 8 or channels is None or interlace:
        raise ValueError(
            f"{path}: unsupported PNG (depth {depth}, colour type {colour}, interlace {interlace})"
        )
    raw = np.frombuffer(zlib.decompress(b"".join(idat)), dtype=np.uint8)
    stride = w * channels
    rows = raw.reshape(h, stride + 1)
    out = np.zeros((h, stride), dtype=np.uint8)
    prev = np.zeros(stride, dtype=np.uint8)
    for y in range(h):
        f, line = rows[y, 0], rows[y, 1:]
        if f == 0:
            cur = line.copy()
        elif f == 1:  # Sub: running sum along the row, per channel, modulo 256
            cur = np.cumsum(line.reshape(w, channels), axis=0, dtype=np.uint8).reshape(stride)
        elif f == 2:
            cur = line + prev
        else:  # Average and Paeth depend on the pixel just decoded: byte by byte
            cur = bytearray(stride)
            lb, pb = line.tolist(), prev.tolist()
            for i in range(stride):
                a = cur[i - channels] if i >= channels else 0
                b = pb[i]
                if f == 3:
                    cur[i] = (lb[i] + ((a + b) >> 1)) & 0xFF
                else:
                    c = pb[i - channels] if i >= channels else 0
                    cur[i] = (lb[i] + _paeth(a, b, c)) & 0xFF
            cur = np.frombuffer(bytes(cur), dtype=np.uint8)
        out[y] = cur
        prev = cur
    return out.reshape(h, w, channels)


def check_png(path: Path) -> dict[str, object]:
    """Figures saying whether the screenshot shows a page: size, colours, non-background share."""
    pixels = decode_png(path)
    h, w, ch = pixels.shape
    rgb = pixels[..., :3] if ch >= 3 else np.repeat(pixels[..., :1], 3, axis=2)
    packed = (
        (rgb[..., 0].astype(np.uint32) << 16) | (rgb[..., 1].astype(np.uint32) << 8) | rgb[..., 2]
    )
    values, counts = np.unique(packed, return_counts=True)
    background = values[counts.argmax()]
    ink = float((packed != background).mean())
    # rows holding anything but background: how far down the page content reaches
    inked_rows = np.nonzero((packed != background).any(axis=1))[0]
    return {
        "bytes": path.stat().st_size,
        "width": w,
        "height": h,
        "colours": int(values.size),
        "ink_share": ink,
        "last_inked_row": int(inked_rows[-1]) if inked_rows.size else -1,
    }


def verdict(stats: dict[str, object], window: tuple[int, int] = WINDOW) -> dict[str, bool]:
    """Which thresholds the `check_png` figures meet; the check passes when all are True."""
    return {
        "bytes": stats["bytes"] >= MIN_BYTES,
        "size": (stats["width"], stats["height"]) == window,
        "colours": stats["colours"] >= MIN_COLOURS,
        "ink": stats["ink_share"] >= MIN_INK_SHARE,
    }
