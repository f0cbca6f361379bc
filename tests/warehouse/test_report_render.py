"""The run report renders: headless Chromium screenshots it and the picture is a real page.

Needs a Chromium binary. Outside CI the Chromium tests skip when there is none; with CI=true they
fail instead (.ci/run installs Debian's `chromium`), so CI can never go green without rendering.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from tests_support import RENDER_TIMEOUT_S, require_chromium

from warehouse.report_render import (
    WINDOW,
    check_png,
    decode_png,
    find_chromium,
    screenshot,
    synthetic_report,
    verdict,
)


@pytest.fixture(scope="session")  # session: resolved before the session-scoped demo_run
def chromium() -> str:
    return require_chromium()


def render(chromium: str, html: Path, png: Path) -> dict[str, object]:
    screenshot(chromium, html, png, WINDOW, timeout=RENDER_TIMEOUT_S)
    return check_png(png)


# --------------------------------------------------------------------- the no-Chromium policy
def test_without_chromium_outside_ci_the_render_tests_skip(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no chromium to find
    monkeypatch.delenv("CI", raising=False)
    assert find_chromium() is None
    with pytest.raises(pytest.skip.Exception):
        require_chromium()


@pytest.mark.parametrize("ci", ["true", "TRUE", "1"])
def test_without_chromium_in_ci_the_render_tests_fail(monkeypatch, tmp_path, ci):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.fail.Exception, match="Chromium not found"):
        require_chromium()


# --------------------------------------------------------------------- the checker (no Chromium)
def _png(pixels: np.ndarray) -> bytes:
    """A minimal RGB PNG (filter 0 on every row)."""
    h, w, _ = pixels.shape

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + body))
        return struct.pack(">I", len(body)) + kind + body + crc

    raw = b"".join(b"\x00" + pixels[y].tobytes() for y in range(h))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def test_check_png_measures_a_known_picture(tmp_path):
    pixels = np.full((40, 30, 3), 255, dtype=np.uint8)
    pixels[5:15, 0:30] = (200, 30, 30)  # 10 of 40 rows inked in one colour
    pixels[20, 3] = (0, 0, 0)
    png = tmp_path / "known.png"
    png.write_bytes(_png(pixels))
    assert (decode_png(png) == pixels).all()
    stats = check_png(png)
    assert (stats["width"], stats["height"]) == (30, 40)
    assert stats["colours"] == 3
    assert stats["ink_share"] == pytest.approx((10 * 30 + 1) / (40 * 30))
    assert stats["last_inked_row"] == 20
    ok = verdict(stats, (30, 40))
    assert ok["size"] and ok["ink"]
    assert not ok["colours"] and not ok["bytes"]  # 3 colours, a few hundred bytes: not a page


# --------------------------------------------------------------------- real renders
def test_synthetic_report_renders_as_a_real_page(chromium, tmp_path):
    html = synthetic_report(tmp_path / "reports")
    stats = render(chromium, html, tmp_path / "shot.png")
    ok = verdict(stats)
    assert all(ok.values()), (ok, stats)
    # the page is long: content reaches well down the window, not just a header
    assert stats["last_inked_row"] > WINDOW[1] // 2, stats


def test_the_check_rejects_a_blank_page(chromium, tmp_path):
    """The checker can fail: a page that renders nothing must not pass."""
    html = tmp_path / "blank.html"
    html.write_text("<!doctype html><html><head><title>blank</title></head><body></body></html>")
    stats = render(chromium, html, tmp_path / "blank.png")
    ok = verdict(stats)
    assert ok["size"], stats  # a real screenshot of the window ...
    assert not ok["colours"] and not ok["ink"], stats  # ... of nothing
    assert not all(ok.values())
    assert stats["last_inked_row"] == -1


@pytest.mark.slow
def test_report_of_the_demo_run_renders(chromium, demo_run, tmp_path):
    from sources.config import load_config

    html = load_config(demo_run).reports_dir / "latest.html"
    assert html.is_file(), f"the demo run wrote no report at {html}"
    stats = render(chromium, html, tmp_path / "demo.png")  # screenshot outside the shared run
    ok = verdict(stats)
    assert all(ok.values()), (ok, stats)
