"""HTML charts of a linkage model and run, for the asset metadata and the run report.

Splink draws the model charts (match weights, m and u per level) and the waterfall charts
explaining individual merges; the cluster-size distribution is a small inline SVG of our own.
Every file is self-contained (scripts inlined) so it opens offline. Waterfall charts show
match weights only unless `include_values=True`: they are linked from places where personal
data should not appear by default.
"""

from __future__ import annotations

import hashlib
import html
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from .engine import make_db_api
from .fields import prepare_frame
from .model import splink_settings
from .predict import LinkageResult, _check_model, _linker
from .settings import LinkageSettings

__all__ = [
    "cluster_size_html",
    "explaining_linker",
    "score_record_pairs",
    "size_counts_html",
    "write_charts",
]


def write_charts(
    persons: pd.DataFrame,
    model: dict[str, Any],
    result: LinkageResult,
    out_dir: Path,
    sample: int = 20,
    *,
    settings: LinkageSettings | None = None,
    include_values: bool = False,
) -> dict[str, Path]:
    """Write the charts into `out_dir` (created if needed); return {chart name: file}.

    Charts: `match_weights`, `m_u_parameters` (Splink's), `cluster_sizes` (records per
    cluster), and `waterfall` (one Splink waterfall page over up to `sample` accepted links,
    picked deterministically). A model without comparisons only gets `cluster_sizes`.
    """
    _check_model(model)
    settings = settings or LinkageSettings()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}

    path = out_dir / "cluster_sizes.html"
    path.write_text(cluster_size_html(result.clusters), encoding="utf-8")
    written["cluster_sizes"] = path
    if splink_settings(model) is None or len(persons) < 2:
        return written

    linker, frame = explaining_linker(persons, model, settings)
    charts = {
        "match_weights": linker.visualisations.match_weights_chart(),
        "m_u_parameters": linker.visualisations.m_u_parameters_chart(),
    }
    records = _waterfall_records(linker, frame, result, sample)
    if records:
        charts["waterfall"] = linker.visualisations.waterfall_chart(
            records, filter_nulls=True, remove_sensitive_data=not include_values
        )
    for name, chart in charts.items():
        path = out_dir / f"{name}.html"
        path.write_text(chart.to_html(inline=True), encoding="utf-8")
        written[name] = path
    return written


def _waterfall_records(
    linker: Any, frame: pd.DataFrame, result: LinkageResult, sample: int
) -> list[dict[str, Any]]:
    """Scored comparison records (with intermediate columns) for a sample of merges."""
    if sample <= 0 or result.edges.empty:
        return []
    c = result.clusters
    key = dict(zip(c["unique_id"].astype(str), c["cluster_key"].astype(str), strict=True))
    e = result.edges
    left, right = e["unique_id_l"].astype(str), e["unique_id_r"].astype(str)
    merged = e[[key.get(a) == key.get(b) for a, b in zip(left, right, strict=True)]]
    if merged.empty:
        return []
    # Deterministic "random" sample: order by a hash of the pair.
    digest = [
        hashlib.sha1(f"{a}|{b}".encode()).hexdigest()
        for a, b in zip(
            merged["unique_id_l"].astype(str), merged["unique_id_r"].astype(str), strict=True
        )
    ]
    picked = merged.assign(_h=digest).sort_values("_h").head(sample)
    wanted = list(
        zip(picked["unique_id_l"].astype(str), picked["unique_id_r"].astype(str), strict=True)
    )
    return score_record_pairs(linker, frame, wanted)


def explaining_linker(
    persons: pd.DataFrame, model: dict[str, Any], settings: LinkageSettings
) -> tuple[Any, pd.DataFrame]:
    """A Splink linker over `persons` that keeps the columns a waterfall chart shows, and the
    frame it was built on."""
    meta = _check_model(model)
    frame = prepare_frame(persons, meta["fields"], meta["blocking_keys"])
    linker = _linker(
        frame,
        model,
        make_db_api(settings),
        retain_matching_columns=True,
        retain_intermediate_calculation_columns=True,
    )
    return linker, frame


def score_record_pairs(
    linker: Any, frame: pd.DataFrame, wanted: list[tuple[str, str]]
) -> list[dict[str, Any]]:
    """Splink's scored comparison records (intermediate columns kept) for the pairs `wanted`,
    in their order, whichever way round Splink puts them; pairs naming a record not in
    `frame` are left out."""
    rows = frame.set_index("unique_id", drop=False)
    present = [(a, b) for a, b in wanted if a in rows.index and b in rows.index]
    if not present:
        return []
    lefts = _unique([_record(rows.loc[a]) for a, _ in present])
    rights = _unique([_record(rows.loc[b]) for _, b in present])
    by_pair: dict[tuple[str, str], dict[str, Any]] = {}
    for r in linker.inference.score_pairs(lefts, rights).as_record_list():
        a, b = str(r["unique_id_l"]), str(r["unique_id_r"])
        by_pair[(a, b)] = by_pair[(b, a)] = r
    return [by_pair[pair] for pair in present if pair in by_pair]


def _record(row: pd.Series) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in row.items():
        if v is None or (not isinstance(v, str) and pd.isna(v)):
            out[k] = None
        elif hasattr(v, "item"):  # numpy scalars -> plain Python for Splink's record input
            out[k] = v.item()
        else:
            out[k] = v
    return out


def _unique(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for r in records:
        seen.setdefault(str(r["unique_id"]), r)
    return list(seen.values())


def cluster_size_html(clusters: pd.DataFrame, max_bar: int = 20) -> str:
    """A self-contained HTML page: how many clusters have 1, 2, 3 … records (no personal
    data: counts only). Sizes above `max_bar` share one bar."""
    sizes = clusters.groupby("cluster_key").size() if len(clusters) else pd.Series(dtype=int)
    return size_counts_html(sizes.value_counts().to_dict(), max_bar)


def size_counts_html(clusters_per_size: Mapping[int, int], max_bar: int = 20) -> str:
    """`cluster_size_html` from how many clusters have each size (an engine counts them)."""
    per_size = pd.Series(
        {int(k): int(v) for k, v in clusters_per_size.items() if v}, dtype="int64"
    )
    sizes = pd.Series(per_size.index, dtype="int64")
    counts = per_size.groupby(per_size.index.to_series().clip(upper=max_bar).to_numpy()).sum()
    counts = counts.sort_index()
    bars = []
    width, height, pad = 640, 240, 30
    n = max(len(counts), 1)
    top = max(int(counts.max()) if len(counts) else 1, 1)
    bw = (width - 2 * pad) / n
    for i, (size, count) in enumerate(counts.items()):
        h = (height - 2 * pad) * count / top
        x = pad + i * bw
        y = height - pad - h
        label = f"{size}+" if size == max_bar and (sizes > max_bar).any() else str(size)
        bars.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{bw * 0.8:.1f}" height="{h:.1f}" fill="#4c78a8">'
            f"<title>{html.escape(label)} records: {count} clusters</title></rect>"
            f'<text x="{x + bw * 0.4:.1f}" y="{height - pad + 14}" font-size="11" '
            f'text-anchor="middle">{html.escape(label)}</text>'
        )
    total = int(per_size.sum())
    records = int((per_size.index.to_numpy() * per_size.to_numpy()).sum()) if total else 0
    alone = int(per_size.get(1, 0))
    largest = int(sizes.max()) if total else 0
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Cluster sizes</title></head>"
        "<body style='font-family:sans-serif'>"
        f"<h2>Records per customer</h2><p>{records} records in {total} clusters "
        f"({alone} on their own, largest {largest}).</p>"
        f"<svg width='{width}' height='{height}' role='img' aria-label='cluster size distribution'>"
        + "".join(bars)
        + "</svg></body></html>"
    )
