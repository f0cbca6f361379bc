"""The nightly run report: one self-contained HTML page per run, counts only.

`build_run_report` reads the just-built (staged) or published warehouse and returns the page and
a JSON-serialisable summary of the night's figures; the next night passes that summary back as
`previous` to show what changed. `write_run_report` stores both atomically under the reports
folder (`<run_id>.html`, `latest.html`, `summary-<run_id>.json`, `latest-summary.json`).

The page works offline and has no external reference of any kind: CSS is inline and the charts
are inline SVG drawn here. Its only links lead to the night's other pages beside it (Data Docs,
Splink charts), as relative paths (`pages`, see `relative_pages`). It never shows personal data: no names, emails, phones, not even
customer ids or source record ids, only counts, source and rule names, stage and segment names
and run ids. Quarantine `detail` and `raw` are never read, since they quote the rejected values.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup, escape

from transforms.rfm import SEGMENT_NAMES

__all__ = [
    "SUMMARY_VERSION",
    "build_run_report",
    "load_previous_summary",
    "relative_pages",
    "render_run_report",
    "write_run_report",
    "write_text_atomically",
]

log = logging.getLogger(__name__)

SUMMARY_VERSION = 1
TEMPLATES = Path(__file__).parent / "templates"

#: headline figures, in display order: (summary key, label, what it counts)
HEADLINE: tuple[tuple[str, str, str], ...] = (
    ("rows_in", "Rows read", "Source rows read this run, all sources."),
    ("rows_accepted", "Rows accepted", "Source rows that passed the row-level rules."),
    ("rows_quarantined", "Rows quarantined", "Source rows rejected into scv.quarantine."),
    ("person_records", "Person records", "Accepted person records (scv.customer_xref)."),
    ("customers", "People found", "Golden records: real people (scv.customer)."),
    ("duplicates_merged", "Duplicates merged", "Person records minus people found."),
    ("merges", "Id merges", "Customer ids absorbed into another id this run."),
    ("splits", "Id splits", "Customer ids split off this run."),
    ("rfm_customers", "Customers with orders", "Customers scored by RFM (>= 1 completed order)."),
    ("lifecycle_moves", "Lifecycle moves", "Lifecycle stage changes recorded on the as-of date."),
)

#: headline figures whose change is good or bad news (True: a rise is bad); others are neutral
WORSE_UP = {"rows_quarantined": True}

#: the published RFM segment map's names and the lifecycle stages, in their natural order
RFM_ORDER = SEGMENT_NAMES

STAGE_ORDER = ("prospect", "new", "active", "at_risk", "lost", "reactivated")
FIRST_SEEN = "(first seen)"
#: records per customer shown one by one up to this size, then as one "N+" bucket
CLUSTER_BUCKET_MAX = 10

_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


# ------------------------------------------------------------------------------- reading
def _scalar(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] = ()) -> Any:
    return con.execute(sql, list(params)).fetchall()[0][0]


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
    # fetched in full: a result left open on a shared connection blocks the next query
    return con.execute(sql, list(params)).fetchall()


def _scv_tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {
        r[0]
        for r in _rows(
            con,
            "SELECT table_name FROM duckdb_tables() "
            "WHERE schema_name = 'scv' AND database_name = current_database()",
        )
    }


def _ordered(counts: Mapping[str, int], order: Iterable[str]) -> list[tuple[str, int]]:
    """Known names in their natural order, then any others by count (largest first)."""
    known = [(k, counts[k]) for k in order if k in counts]
    rest = sorted(
        ((k, v) for k, v in counts.items() if k not in set(order)), key=lambda kv: (-kv[1], kv[0])
    )
    return known + rest


def _cluster_buckets(sizes: Sequence[tuple[int, int]]) -> list[dict[str, Any]]:
    buckets: dict[str, int] = {}
    for size, customers in sizes:
        key = str(size) if size < CLUSTER_BUCKET_MAX else f"{CLUSTER_BUCKET_MAX}+"
        buckets[key] = buckets.get(key, 0) + int(customers)
    return [{"records": k, "customers": v} for k, v in buckets.items()]


def _gather(con: duckdb.DuckDBPyConnection, run_id: str, as_of: date) -> dict[str, Any]:
    """Every figure of the night, read from the `scv` tables; missing tables count as empty."""
    tables = _scv_tables(con)
    has = tables.__contains__
    notes: list[str] = []

    # The run's start time ties its quarantine and id-history rows to it (the assets stamp all
    # three with the same run_at). A run id absent from source_run falls back to the latest run.
    run_at = None
    if has("source_run"):
        run_at = _scalar(con, "SELECT max(run_at) FROM scv.source_run WHERE run_id = ?", [run_id])
        if run_at is None:
            run_at = _scalar(con, "SELECT max(run_at) FROM scv.source_run")
            if run_at is not None:
                notes.append(
                    f"Run {run_id} is not in scv.source_run: source figures are those of the "
                    f"latest run recorded there (started {run_at:%Y-%m-%d %H:%M:%S} UTC)."
                )
    sources = []
    if has("source_run") and run_at is not None:
        sources = [
            {
                "source": s,
                "rows_in": int(i or 0),
                "rows_accepted": int(a or 0),
                "rows_quarantined": int(q or 0),
                "field_findings": int(f or 0),
            }
            for s, i, a, q, f in _rows(
                con,
                "SELECT source, sum(rows_in), sum(rows_accepted), sum(rows_quarantined), "
                "sum(field_findings) FROM scv.source_run WHERE run_at = ? "
                "GROUP BY source ORDER BY source",
                [run_at],
            )
        ]

    quarantine = []
    if has("quarantine"):
        q_run_at = run_at
        if q_run_at is None:
            q_run_at = _scalar(con, "SELECT max(run_at) FROM scv.quarantine")
        quarantine = [
            {"source": s, "rule": r or "(no rule)", "rows": int(n)}
            for s, r, n in _rows(
                con,
                "SELECT source, rule, count(*) AS n FROM scv.quarantine WHERE run_at = ? "
                "GROUP BY ALL ORDER BY n DESC, source, rule",
                [q_run_at],
            )
        ]

    customers = int(_scalar(con, "SELECT count(*) FROM scv.customer")) if has("customer") else 0
    records = (
        int(_scalar(con, "SELECT count(*) FROM scv.customer_xref")) if has("customer_xref") else 0
    )
    sizes: list[tuple[int, int]] = []
    if has("customer_xref"):
        sizes = [
            (int(n), int(c))
            for n, c in _rows(
                con,
                "SELECT n, count(*) FROM (SELECT count(*) AS n FROM scv.customer_xref "
                "GROUP BY customer_id) GROUP BY n ORDER BY n",
            )
        ]
    linked = sum(n * c for n, c in sizes if n > 1)

    changes = {"merge": 0, "split": 0}
    moved = {"merge": 0, "split": 0}
    history_run_at = None
    if has("customer_id_history"):
        history_run_at = run_at
        if history_run_at is None:
            history_run_at = _scalar(con, "SELECT max(run_at) FROM scv.customer_id_history")
        for change, n, m in _rows(
            con,
            "SELECT change, count(*), coalesce(sum(records_moved), 0) "
            "FROM scv.customer_id_history WHERE run_at = ? GROUP BY change",
            [history_run_at],
        ):
            changes[str(change)] = int(n)
            moved[str(change)] = int(m)

    stewardship: dict[str, Any] = {"review_queue": 0, "by_reason": {}}
    if has("review_queue"):
        by_reason = {
            str(r): int(n)
            for r, n in _rows(
                con, "SELECT reason, count(*) FROM scv.review_queue GROUP BY 1 ORDER BY 2 DESC, 1"
            )
        }
        stewardship = {"review_queue": sum(by_reason.values()), "by_reason": by_reason}
    state = _rows(
        con,
        "SELECT * FROM duckdb_tables() WHERE schema_name = 'stage' AND table_name = 'linkage_state'",
    )
    if state:
        cols = {
            r[0]
            for r in _rows(
                con,
                "SELECT column_name FROM duckdb_columns() WHERE schema_name = 'stage' "
                "AND table_name = 'linkage_state'",
            )
        }
        if {"overrides_must", "overrides_cannot", "overrides_stale"} <= cols:
            must, cannot, stale = _rows(
                con,
                "SELECT overrides_must, overrides_cannot, overrides_stale FROM stage.linkage_state",
            )[0]
            stewardship.update(
                overrides_must=int(must), overrides_cannot=int(cannot), overrides_stale=int(stale)
            )
    history_cols = {
        r[0]
        for r in _rows(
            con,
            "SELECT column_name FROM duckdb_columns() WHERE schema_name = 'scv' "
            "AND table_name = 'customer_id_history'",
        )
    }
    if "reason" in history_cols and history_run_at is not None:
        stewardship["changes_by_overrides"] = int(
            _scalar(
                con,
                "SELECT count(*) FROM scv.customer_id_history "
                "WHERE run_at = ? AND reason <> 'linkage'",
                [history_run_at],
            )
            or 0
        )

    segments: dict[str, int] = {}
    if has("rfm"):
        segments = {
            s if s is not None else "(no segment)": int(n)
            for s, n in _rows(con, "SELECT segment, count(*) FROM scv.rfm GROUP BY segment")
        }
    stages: dict[str, int] = {}
    if has("lifecycle"):
        stages = {
            s if s is not None else "(no stage)": int(n)
            for s, n in _rows(con, "SELECT stage, count(*) FROM scv.lifecycle GROUP BY stage")
        }
    moves = []
    if has("lifecycle_history"):
        moves = [
            {"from_stage": f if f is not None else FIRST_SEEN, "to_stage": t, "customers": int(n)}
            for f, t, n in _rows(
                con,
                "SELECT from_stage, to_stage, count(*) AS n FROM scv.lifecycle_history "
                "WHERE as_of_date = ? GROUP BY ALL ORDER BY n DESC, from_stage NULLS FIRST, to_stage",
                [as_of],
            )
        ]

    headline = {
        "rows_in": sum(s["rows_in"] for s in sources),
        "rows_accepted": sum(s["rows_accepted"] for s in sources),
        "rows_quarantined": sum(s["rows_quarantined"] for s in sources),
        "person_records": records,
        "customers": customers,
        "duplicates_merged": records - customers,
        "merges": changes.get("merge", 0),
        "splits": changes.get("split", 0),
        "rfm_customers": sum(segments.values()),
        "lifecycle_moves": sum(m["customers"] for m in moves),
    }
    return {
        "version": SUMMARY_VERSION,
        "run_id": run_id,
        "as_of": as_of.isoformat(),
        "run_at": run_at.isoformat(sep=" ") if run_at is not None else None,
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"),
        "headline": headline,
        "sources": sources,
        "quarantine": quarantine,
        "cluster_sizes": _cluster_buckets(sizes),
        "largest_cluster": max((n for n, _ in sizes), default=0),
        "linked_record_rate": (linked / records) if records else 0.0,
        "id_changes": {
            "merges": changes.get("merge", 0),
            "splits": changes.get("split", 0),
            "records_moved_by_merges": moved.get("merge", 0),
            "records_moved_by_splits": moved.get("split", 0),
            "other": {k: v for k, v in changes.items() if k not in ("merge", "split")},
        },
        "stewardship": stewardship,
        "rfm_segments": [{"segment": k, "customers": v} for k, v in _ordered(segments, RFM_ORDER)],
        "lifecycle_stages": [
            {"stage": k, "customers": v} for k, v in _ordered(stages, STAGE_ORDER)
        ],
        "lifecycle_moves": moves,
        "notes": notes,
    }


# ------------------------------------------------------------------------------- extra
def _plain(value: Any) -> Any:
    """A JSON-safe copy of `value`: mappings and sequences kept, anything else as text.

    Strings that look like links are withheld: the page must not point anywhere. Dagster
    metadata values (tuple-like records) are unwrapped to what they hold."""
    if type(value).__module__.startswith("dagster") and hasattr(value, "value"):
        return _plain(value.value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    text = str(value)
    if "://" in text or text.lower().startswith(("www.", "//")):
        return "(link withheld)"
    return text


def _display(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1e6 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, Mapping):
        return "; ".join(f"{k}: {_display(v)}" for k, v in value.items()) or "-"
    if isinstance(value, list):
        return ", ".join(_display(v) for v in value) or "-"
    return "-" if value is None else str(value)


def _split_extra(extra: Mapping[str, Any] | None) -> dict[str, Any]:
    """Linkage facts, stage timings and any other scalars the lead passes from Dagster."""
    plain = _plain(extra or {})
    linkage = plain.pop("linkage", None) or {}
    timings = plain.pop("timings", None) or {}
    if not isinstance(linkage, dict):
        linkage = {"linkage": linkage}
    if not isinstance(timings, dict):
        timings = {}
    rate = linkage.get("match_rate")
    linkage_rows = [
        (
            k.replace("_", " "),
            f"{rate:.1%}" if k == "match_rate" and isinstance(rate, float) else _display(v),
        )
        for k, v in linkage.items()
    ]
    timing_rows = []
    for stage, seconds in timings.items():
        try:
            timing_rows.append((stage, float(seconds)))
        except (TypeError, ValueError):
            continue
    return {
        "linkage": linkage_rows,
        "timings": timing_rows,
        "other": [(k.replace("_", " "), _display(v)) for k, v in plain.items()],
        "plain": {
            **plain,
            **({"linkage": linkage} if linkage else {}),
            **({"timings": timings} if timings else {}),
        },
    }


# ------------------------------------------------------------------------------- charts
def _fmt(n: float, decimals: int = 0) -> str:
    return f"{n:,.{decimals}f}"


def _label_width(labels: Sequence[str]) -> int:
    # 13px sans-serif averages about 7.2px per character; labels longer than 34 are cut
    longest = max((min(len(s), 34) for s in labels), default=4)
    return int(min(280, max(80, longest * 7.2 + 16)))


def _short(label: str, limit: int = 34) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "\u2026"


def bar_chart(
    title: str,
    rows: Sequence[tuple[str, Sequence[float]]],
    series: Sequence[str] = ("",),
    value_text: Sequence[str] | None = None,
    unit: str = "",
) -> Markup:
    """A horizontal (optionally stacked) bar chart as inline SVG, numbers printed at each bar.

    `rows` are (label, one value per series); `series` names the stacked parts (a legend is
    drawn when there is more than one); `value_text` overrides the number printed per row."""
    cid = "chart-" + (re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "bars")
    labels = [r[0] for r in rows]
    totals = [sum(v for v in r[1]) for r in rows]
    peak = max(totals, default=0) or 1
    texts = list(value_text) if value_text is not None else [_fmt(t) + unit for t in totals]
    label_w = _label_width(labels)
    value_w = max(60, int(max((len(t) for t in texts), default=4) * 7.2 + 14))
    width = 760
    bar_area = width - label_w - value_w - 8
    row_h, bar_h = 26, 18
    legend_h = 24 if len(series) > 1 else 0
    height = legend_h + row_h * len(rows) + 6
    desc = "; ".join(f"{label}: {text}" for label, text in zip(labels, texts))
    out = [
        (
            f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
            f'role="img" aria-labelledby="{cid}-t {cid}-d" preserveAspectRatio="xMinYMin meet">'
        ),
        f'<title id="{cid}-t">{escape(title)}</title>',
        f'<desc id="{cid}-d">{escape(desc)}</desc>',
    ]
    if legend_h:
        x = label_w
        for i, name in enumerate(series):
            out.append(f'<rect class="s{i}" x="{x}" y="5" width="12" height="12" rx="2"/>')
            out.append(f'<text x="{x + 17}" y="15.5" class="legend">{escape(name)}</text>')
            x += 30 + int(len(name) * 7.2)
    for i, ((label, values), text) in enumerate(zip(rows, texts)):
        y = legend_h + i * row_h + 4
        out.append(f"<g><title>{escape(label)}: {escape(text)}</title>")
        out.append(
            f'<text x="{label_w - 8}" y="{y + bar_h / 2 + 4.5:.1f}" text-anchor="end" '
            f'class="label">{escape(_short(label))}</text>'
        )
        x = float(label_w)
        for j, v in enumerate(values):
            w = bar_area * (v / peak) if v > 0 else 0.0
            if w > 0:
                out.append(
                    f'<rect class="s{j}" x="{x:.1f}" y="{y}" width="{max(w, 1.5):.1f}" '
                    f'height="{bar_h}" rx="2"/>'
                )
            x += w
        out.append(
            f'<text x="{x + 6:.1f}" y="{y + bar_h / 2 + 4.5:.1f}" class="value">{escape(text)}</text></g>'
        )
    out.append("</svg>")
    return Markup("".join(out))


# ------------------------------------------------------------------------------- deltas
def _delta(
    now: float | None, before: float | None, worse_up: bool | None = None
) -> dict[str, Any] | None:
    """The change from `before` to `now` as text; `worse_up` says whether a rise is bad news
    (True), good news (False) or neither (None), which only sets the colour."""
    if now is None or before is None:
        return None
    d = now - before
    sign = "+" if d > 0 else ("\u2212" if d < 0 else "\u00b1")
    pct = f" ({d / before:+.1%})".replace("(-", "(\u2212") if before else ""
    tone = "same"
    if d and worse_up is not None:
        tone = "worse" if (d > 0) == worse_up else "better"
    return {"value": d, "text": f"{sign}{_fmt(abs(d))}{pct}", "dir": tone}


def _previous_counts(
    previous: Mapping[str, Any] | None, key: str, name: str
) -> dict[str, int] | None:
    if not previous or not isinstance(previous.get(key), list):
        return None
    out: dict[str, int] = {}
    for row in previous[key]:
        n = row.get("customers") if isinstance(row, Mapping) else None
        if isinstance(n, int) and not isinstance(n, bool) and name in row:
            out[str(row[name])] = n
    return out


def _distribution(
    title: str,
    current: list[dict[str, Any]],
    name: str,
    previous: Mapping[str, Any] | None,
    key: str,
) -> dict[str, Any]:
    before = _previous_counts(previous, key, name)
    total = sum(r["customers"] for r in current) or 1
    rows = []
    names = [r[name] for r in current]
    for r in current:
        prev = before.get(r[name], 0) if before is not None else None
        rows.append(
            {
                "name": r[name],
                "customers": r["customers"],
                "share": r["customers"] / total,
                "delta": _delta(r["customers"], prev),
            }
        )
    # a segment or stage emptied since last night still deserves a row saying so
    for gone, n in (before or {}).items():
        if gone not in names and n:
            rows.append({"name": gone, "customers": 0, "share": 0.0, "delta": _delta(0, n)})
    chart = (
        bar_chart(
            title,
            [(r["name"], [r["customers"]]) for r in rows],
            value_text=[f"{_fmt(r['customers'])} ({r['share']:.0%})" for r in rows],
        )
        if any(r["customers"] for r in rows)
        else None
    )
    return {"rows": rows, "chart": chart, "compare": before is not None}


# ------------------------------------------------------------------------------- render
def _env() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = lambda n, d=0: _fmt(n, d)
    env.filters["pct"] = lambda x: f"{x:.1%}"
    return env


def render_run_report(
    summary: Mapping[str, Any],
    previous: Mapping[str, Any] | None,
    extra: Mapping[str, Any] | None = None,
    pages: Sequence[tuple[str, str]] | None = None,
) -> str:
    """The HTML page for a night's `summary` (as built by `build_run_report`), compared with
    `previous` (the previously published night's summary, or None on the first night), linking
    to `pages` ((label, relative href) pairs from `relative_pages`)."""
    head = summary["headline"]
    prev_head = previous.get("headline") if isinstance(previous, Mapping) else None
    if not isinstance(prev_head, Mapping):
        prev_head = None
    headline = []
    for key, label, help_ in HEADLINE:
        before = prev_head.get(key) if prev_head else None
        if isinstance(before, bool) or not isinstance(before, (int, float)):
            before = None
        headline.append(
            {
                "key": key,
                "label": label,
                "help": help_,
                "value": head[key],
                "previous": before,
                "delta": _delta(head[key], before, WORSE_UP.get(key)),
            }
        )

    sources = summary["sources"]
    source_chart = (
        bar_chart(
            "Rows per source: accepted and quarantined",
            [(s["source"], [s["rows_accepted"], s["rows_quarantined"]]) for s in sources],
            series=("accepted", "quarantined"),
            value_text=[
                f"{_fmt(s['rows_in'])} in, {_fmt(s['rows_quarantined'])} quarantined"
                for s in sources
            ],
        )
        if any(s["rows_in"] for s in sources)
        else None
    )
    quarantine = summary["quarantine"]
    quarantine_chart = (
        bar_chart(
            "Quarantined rows by source and rule",
            [(f"{q['source']} / {q['rule']}", [q["rows"]]) for q in quarantine],
        )
        if quarantine
        else None
    )
    clusters = summary["cluster_sizes"]
    cluster_chart = (
        bar_chart(
            "People by number of person records (cluster size)",
            [
                (f"{c['records']} record{'s' if c['records'] != '1' else ''}", [c["customers"]])
                for c in clusters
            ],
        )
        if clusters
        else None
    )
    moves = summary["lifecycle_moves"]
    moves_chart = (
        bar_chart(
            "Lifecycle moves on the as-of date",
            [(f"{m['from_stage']} \u2192 {m['to_stage']}", [m["customers"]]) for m in moves],
        )
        if moves
        else None
    )
    ex = _split_extra(extra)
    timings_chart = (
        bar_chart(
            "Seconds per stage",
            [(stage, [max(s, 0.0)]) for stage, s in ex["timings"]],
            value_text=[f"{s:,.1f} s" for _, s in ex["timings"]],
        )
        if ex["timings"]
        else None
    )
    prev_info = None
    if isinstance(previous, Mapping):
        prev_info = {
            "run_id": str(previous.get("run_id", "?")),
            "as_of": str(previous.get("as_of", "?")),
            "generated_at": str(previous.get("generated_at", "") or ""),
            "same_day": str(previous.get("as_of", "")) == str(summary.get("as_of", "")),
        }

    return (
        _env()
        .get_template("run_report.html")
        .render(
            s=summary,
            headline=headline,
            previous=prev_info,
            pages=[(label, href) for label, href in (pages or []) if _relative_href(href)],
            sources=sources,
            source_totals=summary["headline"],
            source_chart=source_chart,
            quarantine=quarantine,
            quarantine_chart=quarantine_chart,
            clusters=clusters,
            cluster_chart=cluster_chart,
            rfm=_distribution(
                "Customers per RFM segment",
                summary["rfm_segments"],
                "segment",
                previous,
                "rfm_segments",
            ),
            stages=_distribution(
                "Customers per lifecycle stage",
                summary["lifecycle_stages"],
                "stage",
                previous,
                "lifecycle_stages",
            ),
            moves=moves,
            moves_chart=moves_chart,
            linkage=ex["linkage"],
            timings=ex["timings"],
            timings_total=sum(s for _, s in ex["timings"]),
            timings_chart=timings_chart,
            other=ex["other"],
        )
    )


def build_run_report(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    as_of: date,
    previous: dict | None,
    extra: dict | None = None,
    pages: Sequence[tuple[str, str]] | None = None,
) -> tuple[str, dict]:
    """The run report of night `run_id` for `as_of`, read from the staged or published warehouse.

    Returns (html, summary). `summary` is JSON-serialisable; pass it back as `previous` next night
    to show the change since this night. `extra` may carry `linkage` (a mapping: match_rate,
    model_version, trained or reused, …), `timings` (stage name -> seconds) and other scalars to
    list; link-like strings in it are withheld so the page stays self-contained. `extra` must not
    carry personal data: it is shown as given. `pages` are the night's other pages, linked by
    relative path (`relative_pages`).
    """
    summary = _gather(con, run_id, as_of)
    ex = _split_extra(extra)
    if ex["plain"]:
        summary["extra"] = ex["plain"]
    html = render_run_report(summary, previous, extra, pages)
    json.dumps(summary)  # fail here, not next night, if anything is not JSON-serialisable
    return html, summary


def _relative_href(href: str) -> bool:
    """A link to a page beside the report: a relative path, no scheme, host or absolute path."""
    return bool(href) and "://" not in href and not href.startswith(("/", "\\")) and ":" not in href.split("/")[0]


def relative_pages(reports_dir: Path, pages: Iterable[tuple[str, Path]]) -> list[tuple[str, str]]:
    """(label, href) for each existing page, the href relative to `reports_dir` (where the run
    report and `latest.html` are written), so the links work from the files and from the file
    server alike."""
    out = []
    for label, path in pages:
        path = Path(path)
        if path.is_file():
            href = Path(os.path.relpath(path.resolve(), Path(reports_dir).resolve())).as_posix()
            out.append((label, href))
    return out


# ------------------------------------------------------------------------------- files
def write_text_atomically(path: Path, text: str) -> None:
    """Write `text` to `path` so that a reader sees the old file or the new one, never half."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def latest_report(reports_dir: Path) -> Path:
    """The copy of the latest run report (`latest.html`)."""
    return reports_dir / "latest.html"


def write_run_report(html: str, summary: dict, reports_dir: Path, run_id: str) -> Path:
    """Write `<run_id>.html`, `summary-<run_id>.json`, then `latest-summary.json` and
    `latest.html` under `reports_dir`, each replaced atomically; returns the run's HTML path."""
    if not _RUN_ID.match(run_id):
        raise ValueError(f"run id {run_id!r} is not usable as a file name (letters, digits, _ . -)")
    reports_dir = Path(reports_dir)
    reports_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(summary, indent=2, sort_keys=True)
    page = reports_dir / f"{run_id}.html"
    write_text_atomically(page, html)
    write_text_atomically(reports_dir / f"summary-{run_id}.json", text)
    write_text_atomically(reports_dir / "latest-summary.json", text)
    write_text_atomically(latest_report(reports_dir), html)
    return page


def _read_summary(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        log.warning("run report summary %s unreadable, ignored: %s", path, exc)
        return None
    return data if isinstance(data, dict) and isinstance(data.get("headline"), dict) else None


def load_previous_summary(
    reports_dir: Path,
    before: date | None = None,
    *,
    on_or_before: date | None = None,
    exclude_run: str | None = None,
) -> dict | None:
    """The latest night's summary under `reports_dir`, or None (first night, or unreadable).

    With `on_or_before` (and `exclude_run`, tonight's run id), the previously published night: the
    summary of another run published last (by report time) among those whose as-of date is not
    after that date, so a second run on the same day compares with the first (not "first
    night"), and a rerun of a past night never with a later night. With `before`, the latest
    night strictly earlier than that date."""
    reports_dir = Path(reports_dir)
    latest = reports_dir / "latest-summary.json"
    summary = _read_summary(latest) if latest.exists() else None

    def wanted(s: dict) -> bool:
        as_of = str(s.get("as_of", ""))
        if exclude_run is not None and str(s.get("run_id")) == exclude_run:
            return False
        if before is not None and not as_of < before.isoformat():
            return False
        return on_or_before is None or as_of <= on_or_before.isoformat()

    if summary is not None and wanted(summary):
        return summary
    if before is None and on_or_before is None and exclude_run is None:
        return summary
    best: tuple[str, str] | None = None
    chosen = None
    for path in reports_dir.glob("summary-*.json"):
        s = _read_summary(path)
        if s is None or not wanted(s):
            continue
        key = (str(s.get("as_of")), str(s.get("generated_at", "")))
        if on_or_before is not None or exclude_run is not None:
            key = key[::-1]  # the night published last
        if best is None or key > best:
            best, chosen = key, s
    return chosen
