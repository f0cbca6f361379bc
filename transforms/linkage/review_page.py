"""The steward's review page: tonight's queue with both records side by side and Splink's
waterfall chart of every pair, as one self-contained HTML page (scripts inlined, opens offline).

It shows personal data: the caller writes it only to a private folder (see README,
"Stewardship"). Every value is HTML-escaped.
"""

from __future__ import annotations

import html
from typing import Any

import pandas as pd

from .charts import explaining_linker, score_record_pairs
from .model import splink_settings
from .settings import LinkageSettings

__all__ = ["REVIEW_FIELDS", "review_page_html"]

#: The original (as-written) fields shown side by side.
REVIEW_FIELDS = (
    "first_name",
    "last_name",
    "date_of_birth",
    "email",
    "phone",
    "address_line",
    "postcode",
    "city",
    "country",
)


def _esc(value: Any) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return '<span class="none">–</span>'
    return html.escape(str(value))


def review_page_html(
    persons: pd.DataFrame,
    model: dict[str, Any],
    queue: pd.DataFrame,
    *,
    settings: LinkageSettings | None = None,
    limit: int = 200,
    title: str = "Review queue",
    waterfall_file: str = "review_waterfall.html",
) -> tuple[str, str | None]:
    """The page for the first `limit` rows of `queue` (`scv.review_queue` columns) over the
    standardised `persons` frame (originals and match keys), and Splink's waterfall chart of
    the same pairs as a page of its own (None when the model has no comparisons), which the
    first shows in a frame from `waterfall_file` (write both into one folder)."""
    settings = settings or LinkageSettings()
    queue = queue.head(limit).reset_index(drop=True)
    by_id = persons.set_index(persons["unique_id"].astype(str), drop=False)
    rows_html = []
    for i, q in queue.iterrows():
        left, right = str(q["left_record"]), str(q["right_record"])
        cells = []
        for f in REVIEW_FIELDS:
            lv = by_id.at[left, f] if left in by_id.index and f in by_id.columns else None
            rv = by_id.at[right, f] if right in by_id.index and f in by_id.columns else None
            same = lv is not None and rv is not None and str(lv) == str(rv)
            cls = ' class="same"' if same else ""
            cells.append(f"<tr{cls}><th>{html.escape(f)}</th><td>{_esc(lv)}</td><td>{_esc(rv)}</td></tr>")
        rows_html.append(
            f'<section class="pair" id="pair-{_esc(q["pair_key"])}"><h3>#{i} · '
            f"{_esc(q['reason'])} · match probability {float(q['match_probability']):.4f}</h3>"
            f"<p>pair key <code>{_esc(q['pair_key'])}</code> · customers "
            f"{_esc(q.get('left_customer_id'))} / {_esc(q.get('right_customer_id'))}</p>"
            f"<table><thead><tr><th></th><th>{_esc(left)}</th><th>{_esc(right)}</th></tr></thead>"
            f"<tbody>{''.join(cells)}</tbody></table>"
            f"<p class='cmd'><code>scv link --must {_esc(left)} {_esc(right)}</code> or "
            f"<code>scv link --cannot {_esc(left)} {_esc(right)} --reason …</code></p></section>"
        )
    chart = _waterfall(persons, model, queue, settings)
    frame = (
        f"<iframe src='{html.escape(waterfall_file)}' title='waterfall charts' "
        "style='width:100%;height:520px;border:1px solid #ccc'></iframe>"
        if chart
        else "<p>No waterfall: the model has no comparisons.</p>"
    )
    page = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>"
        "body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222}"
        "table{border-collapse:collapse;margin:.3rem 0}td,th{border:1px solid #ccc;"
        "padding:.2rem .5rem;text-align:left}tr.same td{background:#eef7ee}"
        ".none{color:#999}.pair{margin:1.2rem 0;border-top:2px solid #ddd}.cmd{color:#555}"
        "</style></head><body>"
        f"<h1>{html.escape(title)}</h1>"
        f"<p>{len(queue):,} pair(s) shown. Green rows agree. The waterfall chart below "
        "explains each pair's score (choose the pair by its # with the slider).</p>"
        + frame
        + "".join(rows_html)
        + "</body></html>"
    )
    return page, chart


def _waterfall(
    persons: pd.DataFrame, model: dict[str, Any], queue: pd.DataFrame, settings: LinkageSettings
) -> str | None:
    if queue.empty or splink_settings(model) is None:
        return None
    wanted = [(str(a), str(b)) for a, b in zip(queue["left_record"], queue["right_record"], strict=True)]
    ids = {x for pair in wanted for x in pair}
    subset = persons[persons["unique_id"].astype(str).isin(ids)]
    if subset.empty:
        return None
    linker, frame = explaining_linker(subset, model, settings)
    records = score_record_pairs(linker, frame, wanted)
    if not records:
        return None
    chart = linker.visualisations.waterfall_chart(
        records, filter_nulls=True, remove_sensitive_data=False
    )
    return chart.to_html(inline=True)
