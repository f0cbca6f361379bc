"""The nightly run report: self-contained, right numbers, charts, deltas, no personal data."""

import json
import re
from datetime import date, datetime
from pathlib import Path

import pandas as pd
import pytest

from warehouse.report import (
    build_run_report,
    load_previous_summary,
    render_run_report,
    write_run_report,
)
from warehouse.store import Warehouse, write_frame

RUN = "2f1c9a7e-0b6d-4e52-9f3a-5d8c1e2b7a40"
RUN_AT = datetime(2025, 3, 14, 2, 0, 0)
EARLIER = datetime(2025, 3, 13, 2, 0, 0)
AS_OF = date(2025, 3, 14)

# personal data present in the warehouse that must never reach the report
EMAILS = ["ada.lovelace@example.org", "grace.hopper@example.net", "alan@turing.example.com"]
PHONES = ["+447700900123", "+447700900456", "07700 900789"]
NAMES = ["Lovelace", "Hopper", "Turing", "Augusta", "Grace"]
CUSTOMER_IDS = ["CUST-8f3a1c", "CUST-22b7d9", "CUST-c0ffee", "CUST-d15ea5"]
RECORD_IDS = ["crm-000417", "web-9931", "pos-ab12"]


def warehouse(tmp_path: Path) -> Warehouse:
    return Warehouse(
        published=tmp_path / "wh" / "warehouse.duckdb",
        staging=tmp_path / "staging" / "warehouse.staging.duckdb",
        exports=tmp_path / "exports",
    )


def fill(con) -> None:
    """A small night: 3 sources, 7 person records -> 4 customers (cluster sizes 3, 2, 1, 1)."""
    c1, c2, c3, c4 = CUSTOMER_IDS
    write_frame(
        con,
        "source_run",
        pd.DataFrame(
            {
                "run_at": [EARLIER, EARLIER, RUN_AT, RUN_AT, RUN_AT],
                "run_id": ["old-run", "old-run", RUN, RUN, RUN],
                "source": ["crm", "web", "crm", "web", "pos_orders"],
                "path": ["crm.csv", "web.jsonl", "crm.csv", "web.jsonl", "orders.parquet"],
                "fingerprint": ["a", "b", "c", "d", "e"],
                "rows_in": [90, 40, 1203, 517, 2048],
                "rows_accepted": [90, 40, 1190, 517, 2041],
                "rows_quarantined": [0, 0, 13, 0, 7],
                "field_findings": [0, 0, 5, 2, 0],
            }
        ),
        schema="scv",
    )
    q_rules = ["missing_id"] * 9 + ["duplicate_id"] * 4 + ["bad_amount"] * 7 + ["missing_id"] * 2
    q_sources = ["crm"] * 13 + ["pos_orders"] * 7 + ["crm"] * 2
    write_frame(
        con,
        "quarantine",
        pd.DataFrame(
            {
                "source": q_sources,
                "row_number": list(range(1, 23)),
                "source_record_id": [RECORD_IDS[i % 3] for i in range(22)],
                "rule": q_rules,
                "detail": [f"email {EMAILS[i % 3]} / phone {PHONES[i % 3]}" for i in range(22)],
                "raw": [
                    json.dumps({"name": NAMES[i % 5], "email": EMAILS[i % 3]}) for i in range(22)
                ],
                # the last two rows belong to an earlier run and must not be counted tonight
                "run_at": [RUN_AT] * 20 + [EARLIER] * 2,
            }
        ),
        schema="scv",
    )
    write_frame(
        con,
        "customer",
        pd.DataFrame(
            {
                "customer_id": CUSTOMER_IDS,
                "first_name": ["Augusta", "Grace", "Alan", None],
                "last_name": ["Lovelace", "Hopper", "Turing", None],
                "email": [EMAILS[0], EMAILS[1], EMAILS[2], None],
                "phone": [PHONES[0], PHONES[1], PHONES[2], None],
                "date_of_birth": [date(1815, 12, 10), date(1906, 12, 9), None, None],
                "address_line": ["12 St James's Square", None, None, None],
                "postcode": ["SW1Y 4JH", None, None, None],
                "city": ["London", None, None, None],
                "country": ["GB", "US", "GB", None],
                "first_seen_at": [RUN_AT] * 4,
                "last_seen_at": [RUN_AT] * 4,
                "record_count": [3, 2, 1, 1],
                "sources": [["crm", "web"], ["crm"], ["web"], ["crm"]],
            }
        ),
        schema="scv",
    )
    xref_ids = [c1, c1, c1, c2, c2, c3, c4]
    write_frame(
        con,
        "customer_xref",
        pd.DataFrame(
            {
                "source": ["crm", "web", "crm", "crm", "web", "web", "crm"],
                "source_record_id": [f"{RECORD_IDS[i % 3]}-{i}" for i in range(7)],
                "customer_id": xref_ids,
                "match_probability": [0.99, 0.98, 0.97, 0.95, 0.95, 1.0, 1.0],
                "cluster_key": xref_ids,
            }
        ),
        schema="scv",
    )
    write_frame(
        con,
        "customer_id_history",
        pd.DataFrame(
            {
                "run_at": [EARLIER, RUN_AT, RUN_AT, RUN_AT],
                "old_customer_id": ["CUST-0ld001", "CUST-0ld002", "CUST-0ld003", c1],
                "new_customer_id": [c2, c1, c1, c4],
                "change": ["merge", "merge", "merge", "split"],
                "records_moved": [1, 2, 1, 1],
                "reason": ["linkage", "linkage", "must-link override by ana", "linkage"],
            }
        ),
        schema="scv",
    )
    write_frame(
        con,
        "rfm",
        pd.DataFrame(
            {
                "customer_id": [c1, c2, c3],
                "as_of_date": [AS_OF] * 3,
                "recency_days": [3, 40, 400],
                "frequency": [9, 2, 1],
                "monetary": [830.5, 120.0, 19.99],
                "monetary_currency": ["GBP"] * 3,
                "r_score": [5, 3, 1],
                "f_score": [5, 3, 1],
                "m_score": [5, 3, 1],
                "segment": ["Champions", "Champions", "Hibernating"],
            }
        ),
        schema="scv",
    )
    write_frame(
        con,
        "lifecycle",
        pd.DataFrame(
            {
                "customer_id": CUSTOMER_IDS,
                "as_of_date": [AS_OF] * 4,
                "stage": ["active", "active", "lost", "prospect"],
                "stage_since": [AS_OF] * 4,
            }
        ),
        schema="scv",
    )
    write_frame(
        con,
        "lifecycle_history",
        pd.DataFrame(
            {
                "customer_id": [c1, c2, c3, c4, c1],
                "as_of_date": [AS_OF, AS_OF, AS_OF, AS_OF, date(2025, 1, 2)],
                "from_stage": ["new", "new", "at_risk", None, None],
                "to_stage": ["active", "active", "lost", "prospect", "new"],
            }
        ),
        schema="scv",
    )


@pytest.fixture(scope="module")
def night(tmp_path_factory):
    """One staged warehouse for the module: the report only reads it."""
    wh = warehouse(tmp_path_factory.mktemp("night"))
    with wh.stage() as con:
        fill(con)
        yield con


def text_of(html: str) -> str:
    """Visible text, tags removed and whitespace squeezed, for asserting on figures."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def section(html: str, anchor: str) -> str:
    start = html.index(f'<section id="{anchor}"')
    return html[start : html.index("</section>", start)]


def test_report_is_self_contained(night):
    html, _ = build_run_report(night, RUN, AS_OF, None, extra={"linkage": {"match_rate": 0.42}})
    assert html.lstrip().startswith("<!DOCTYPE html>")
    lowered = html.lower()
    for forbidden in (
        "http://",
        "https://",
        "//cdn",
        "<script",
        "<link",
        "<img",
        "@import",
        "url(",
    ):
        assert forbidden not in lowered, forbidden
    # every href stays inside the page
    assert all(h.startswith("#") for h in re.findall(r'href="([^"]*)"', html))


def test_summary_figures(night):
    _, s = build_run_report(night, RUN, AS_OF, None)
    assert s["run_at"] == "2025-03-14 02:00:00"
    assert s["headline"] == {
        "rows_in": 1203 + 517 + 2048,
        "rows_accepted": 1190 + 517 + 2041,
        "rows_quarantined": 20,
        "person_records": 7,
        "customers": 4,
        "duplicates_merged": 3,
        "merges": 2,
        "splits": 1,
        "rfm_customers": 3,
        "lifecycle_moves": 4,
    }
    assert [r["source"] for r in s["sources"]] == ["crm", "pos_orders", "web"]
    assert s["quarantine"] == [
        {"source": "crm", "rule": "missing_id", "rows": 9},
        {"source": "pos_orders", "rule": "bad_amount", "rows": 7},
        {"source": "crm", "rule": "duplicate_id", "rows": 4},
    ]
    assert s["cluster_sizes"] == [
        {"records": "1", "customers": 2},
        {"records": "2", "customers": 1},
        {"records": "3", "customers": 1},
    ]
    assert s["largest_cluster"] == 3
    assert s["linked_record_rate"] == pytest.approx(5 / 7)
    assert s["id_changes"]["records_moved_by_merges"] == 3
    assert s["stewardship"]["changes_by_overrides"] == 1  # this run's rows only
    assert s["stewardship"]["review_queue"] == 0
    assert s["rfm_segments"] == [
        {"segment": "Champions", "customers": 2},
        {"segment": "Hibernating", "customers": 1},
    ]
    assert [r["stage"] for r in s["lifecycle_stages"]] == ["prospect", "active", "lost"]
    assert {(m["from_stage"], m["to_stage"]): m["customers"] for m in s["lifecycle_moves"]} == {
        ("new", "active"): 2,
        ("at_risk", "lost"): 1,
        ("(first seen)", "prospect"): 1,
    }
    json.dumps(s)  # serialisable as it is


def test_sections_show_the_numbers(night):
    html, _ = build_run_report(night, RUN, AS_OF, None)
    sources = text_of(section(html, "sources"))
    assert "crm 1,203 1,190 13 1.1% 5" in sources
    assert "pos_orders 2,048 2,041 7 0.3% 0" in sources
    assert "all sources 3,768 3,748 20" in sources
    quarantine = text_of(section(html, "quarantine"))
    assert "crm missing_id 9" in quarantine and "pos_orders bad_amount 7" in quarantine
    people = text_of(section(html, "people"))
    assert "person records 7" in people
    assert "people found (customers) 4" in people
    assert "duplicates merged 3" in people
    ids = text_of(section(html, "ids"))
    assert (
        "merges (id absorbed into another) 2" in ids
        and "splits (records moved to a new id) 1" in ids
    )
    assert "Champions 2 66.7%" in text_of(section(html, "rfm"))
    assert "active 2 50.0%" in text_of(section(html, "lifecycle"))
    moves = text_of(section(html, "moves"))
    assert "new active 2" in moves and "(first seen) prospect 1" in moves
    assert "First night" in text_of(section(html, "change"))


def test_charts_are_inline_accessible_svg(night):
    html, _ = build_run_report(night, RUN, AS_OF, None, extra={"timings": {"link": 12.5}})
    svgs = re.findall(r"<svg\b.*?</svg>", html, flags=re.DOTALL)
    # sources, quarantine, cluster sizes, RFM, lifecycle, moves, timings
    assert len(svgs) == 7
    for svg in svgs:
        assert 'role="img"' in svg and "<title" in svg and "<desc" in svg and "<rect" in svg
    titles = re.findall(r'<title id="[^"]+">([^<]+)</title>', html)
    assert "Customers per RFM segment" in titles and "Customers per lifecycle stage" in titles
    rfm_svg = next(s for s in svgs if "Customers per RFM segment" in s)
    # numbers printed next to the bars, not only in the table
    assert ">2 (67%)</text>" in rfm_svg and ">1 (33%)</text>" in rfm_svg
    assert "12.5 s" in section(html, "run")


def test_change_since_previous_night(night):
    previous = {
        "run_id": "old-run",
        "as_of": "2025-03-13",
        "headline": {"customers": 3, "person_records": 7, "rows_quarantined": 25, "merges": 2},
        "rfm_segments": [
            {"segment": "Champions", "customers": 1},
            {"segment": "At Risk", "customers": 4},
        ],
    }
    html, s = build_run_report(night, RUN, AS_OF, previous)
    change = text_of(section(html, "change"))
    assert "2025-03-13" in change and "old-run" in change
    assert "People found 3 4 +1 (+33.3%)" in change
    assert "Person records 7 7 \u00b10" in change
    assert "Rows quarantined 25 20 \u22125 (\u221220.0%)" in change
    # figures the previous night did not record show no change rather than a wrong one
    assert "Id splits - 1 -" in change
    rfm = text_of(section(html, "rfm"))
    assert "Champions 2 66.7% +1" in rfm
    assert "At Risk 0 0.0% \u22124" in rfm  # a segment emptied since last night keeps a row
    # the summary round-trips: tomorrow compares with tonight
    html2, _ = build_run_report(night, "next-run", date(2025, 3, 15), json.loads(json.dumps(s)))
    assert "People found 4 4 \u00b10" in text_of(section(html2, "change"))


def test_no_personal_data(night):
    html, s = build_run_report(night, RUN, AS_OF, None, extra={"linkage": {"match_rate": 0.71}})
    dumped = json.dumps(s)
    for secret in (
        EMAILS + PHONES + NAMES + CUSTOMER_IDS + RECORD_IDS + ["CUST-0ld00", "SW1Y", "London"]
    ):
        assert secret.lower() not in html.lower(), secret
        assert secret.lower() not in dumped.lower(), secret
    assert not re.search(r"[\w.+-]+@[\w-]+\.\w+", html), "something shaped like an email"
    assert not re.search(r"\+\d{9,}", html), "something shaped like a phone number"


def test_extra_linkage_and_timings(night):
    extra = {
        "linkage": {
            "match_rate": 0.4213,
            "model_version": "2025-03-01T02:00",
            "trained_this_run": False,
        },
        "timings": {"read sources": 3.25, "link": 41.0, "publish": "n/a"},
        "charts": "https://example.com/splink.html",
    }
    html, s = build_run_report(night, RUN, AS_OF, None, extra=extra)
    run = text_of(section(html, "run"))
    assert "match rate 42.1%" in run
    assert "model version 2025-03-01T02:00" in run and "trained this run no" in run
    assert "read sources 3.2" in run and "link 41.0" in run and "total 44.2 s" in run
    assert "example.com" not in html and "(link withheld)" in run
    assert s["extra"]["linkage"]["model_version"] == "2025-03-01T02:00"
    # without extra there is no such section
    html, s = build_run_report(night, RUN, AS_OF, None)
    assert 'id="run"' not in html and "extra" not in s


def test_unknown_run_id_falls_back_to_latest_run_with_a_note(night):
    html, s = build_run_report(night, "not-recorded", AS_OF, None)
    assert s["headline"]["rows_in"] == 3768
    assert "not-recorded is not in scv.source_run" in html


def test_empty_warehouse_first_night(tmp_path):
    with warehouse(tmp_path).stage() as con:
        html, s = build_run_report(con, RUN, AS_OF, None)
    assert all(v == 0 for v in s["headline"].values())
    assert s["run_at"] is None and s["cluster_sizes"] == [] and s["rfm_segments"] == []
    assert "<svg" not in html
    assert "First night" in html
    assert "No rows quarantined" in html and "nobody to score" in html
    # a night with sources read but no orders yet still renders, with the source chart only
    with warehouse(tmp_path).stage() as con:
        write_frame(
            con,
            "source_run",
            pd.DataFrame(
                {
                    "run_at": [RUN_AT],
                    "run_id": [RUN],
                    "source": ["crm"],
                    "path": ["crm.csv"],
                    "fingerprint": ["x"],
                    "rows_in": [10],
                    "rows_accepted": [10],
                    "rows_quarantined": [0],
                    "field_findings": [0],
                }
            ),
            schema="scv",
        )
        html, s = build_run_report(con, RUN, AS_OF, s)
    assert html.count("<svg") == 1 and s["headline"]["rows_in"] == 10
    assert "Rows read 0 10 +10" in text_of(section(html, "change"))


def test_render_from_summary_alone(night):
    _, s = build_run_report(night, RUN, AS_OF, None)
    previous = {
        "headline": {"customers": "garbage", "merges": 1},
        "run_id": "x",
        "rfm_segments": [7, {"segment": "Lost"}],
    }
    html = render_run_report(s, previous=previous)
    change = text_of(section(html, "change"))
    # a malformed previous summary degrades to "no delta" figure by figure
    assert "People found - 4 -" in change and "Id merges 1 2 +1" in change


def test_write_and_load_round_trip(night, tmp_path):
    reports = tmp_path / "reports"
    assert load_previous_summary(reports) is None
    html, s = build_run_report(night, RUN, AS_OF, None)
    page = write_run_report(html, s, reports, RUN)
    assert page == reports / f"{RUN}.html"
    assert page.read_text(encoding="utf-8") == html
    assert (reports / "latest.html").read_text(encoding="utf-8") == html
    assert json.loads((reports / f"summary-{RUN}.json").read_text()) == s
    assert load_previous_summary(reports) == s
    assert not [p for p in reports.iterdir() if p.name.startswith(".")], (
        "temporary files left behind"
    )

    # the next night replaces latest.* and keeps tonight's files
    html2, s2 = build_run_report(night, "run-2", date(2025, 3, 15), s)
    write_run_report(html2, s2, reports, "run-2")
    assert load_previous_summary(reports)["run_id"] == "run-2"
    assert (reports / f"{RUN}.html").exists() and (reports / "latest.html").read_text() == html2
    # a rerun of 2025-03-15 compares with the night before it, not with its own first attempt
    assert load_previous_summary(reports, before=date(2025, 3, 15))["run_id"] == RUN
    assert load_previous_summary(reports, before=date(2025, 3, 14)) is None


def test_corrupt_previous_summary_is_ignored(tmp_path):
    (tmp_path / "latest-summary.json").write_text("{not json")
    assert load_previous_summary(tmp_path) is None


@pytest.mark.parametrize("bad", ["../escape", "a/b", "", ".hidden"])
def test_write_refuses_unsafe_run_ids(tmp_path, bad):
    with pytest.raises(ValueError, match="file name"):
        write_run_report("<html></html>", {"headline": {}}, tmp_path, bad)


def test_extra_accepts_dagster_metadata_values(night):
    import dagster as dg

    extra = {
        "linkage": {
            "match_rate": dg.MetadataValue.float(0.5),
            "model": dg.MetadataValue.url("https://example.com/model"),
        },
        "timings": {"link": dg.MetadataValue.float(2.0)},
    }
    html, s = build_run_report(night, RUN, AS_OF, None, extra=extra)
    run = text_of(section(html, "run"))
    assert "match rate 50.0%" in run and "model (link withheld)" in run and "2.0 s" in html
    assert s["extra"]["timings"] == {"link": 2.0}


HOSTILE = "<script>alert(1)</script>"


def _hostile(value):
    """`value` with every string in it prefixed by a script tag (keys of mappings too)."""
    if isinstance(value, str):
        return HOSTILE + value
    if isinstance(value, list):
        return [_hostile(v) for v in value]
    if isinstance(value, dict):
        return {k: _hostile(v) for k, v in value.items()}
    return value


def test_every_text_in_the_report_is_escaped(night):
    """Issue 19 item 8: whatever text reaches the run report (source names, rules, segment and
    stage names, run ids, linkage figures and step names) is shown as text, never as markup."""
    _, s = build_run_report(night, RUN, AS_OF, None)
    s = _hostile(s)
    previous = _hostile(json.loads(json.dumps(s)))
    extra = {"linkage": {HOSTILE: HOSTILE, "match_rate": 0.5}, "timings": {HOSTILE: 1.5}}
    html = render_run_report(s, previous, extra)
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


# --------------------------------------------------------------------- issue 20
def test_a_second_run_on_the_same_day_compares_with_the_first(night, tmp_path):
    """A same-day rerun said 'first night': it now compares with the previously published
    night, here the earlier run of the same date, and says so."""
    from warehouse.report import load_previous_summary as previous_of

    reports = tmp_path / "reports"
    html, first = build_run_report(night, RUN, AS_OF, None)
    write_run_report(html, first, reports, RUN)
    previous = previous_of(reports, on_or_before=AS_OF, exclude_run="run-again")
    assert previous is not None and previous["run_id"] == RUN
    html2, _ = build_run_report(night, "run-again", AS_OF, previous)
    assert "first night" not in text_of(html2).lower()
    change = text_of(section(html2, "change"))
    assert "previously published night" in change and "an earlier run for the same date" in change

    # a report built again for its own run never compares with itself
    assert previous_of(reports, on_or_before=AS_OF, exclude_run=RUN) is None
    # a rerun of an earlier date does not compare with a later night
    assert previous_of(reports, on_or_before=date(2025, 3, 13), exclude_run="x") is None
    write_run_report(*build_run_report(night, "run-2", date(2025, 3, 15), first), reports, "run-2")
    assert previous_of(reports, on_or_before=AS_OF, exclude_run="x")["run_id"] == RUN
    assert previous_of(reports, on_or_before=date(2025, 3, 15), exclude_run="x")["run_id"] == "run-2"


def test_the_report_links_the_nights_other_pages_by_relative_path(night, tmp_path):
    from warehouse.report import relative_pages

    reports = tmp_path / "data" / "reports"
    chart = reports / "linkage" / "run-1" / "match_weights.html"
    docs = tmp_path / "data" / "quality" / "docs" / "crm" / "index.html"
    for page in (chart, docs):
        page.parent.mkdir(parents=True)
        page.write_text("<html></html>")
    pages = relative_pages(
        reports,
        [("Splink: match weights", chart), ("Data Docs: crm", docs), ("missing", reports / "nope.html")],
    )
    assert pages == [
        ("Splink: match weights", "linkage/run-1/match_weights.html"),
        ("Data Docs: crm", "../quality/docs/crm/index.html"),
    ]
    # an absolute or remote link is never rendered: the page stays self-contained
    html, _ = build_run_report(
        night, RUN, AS_OF, None, pages=[*pages, ("remote", "https://example.com/x"), ("abs", "/etc/passwd")]
    )
    hrefs = [h for h in re.findall(r'href="([^"]*)"', html) if not h.startswith("#")]
    assert hrefs == ["linkage/run-1/match_weights.html", "../quality/docs/crm/index.html"]
    assert "https://" not in html.lower()
