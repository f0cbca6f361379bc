"""quality.data_docs: GX Data Docs rendered from validation outcomes."""

from __future__ import annotations

from datetime import date

from quality.data_docs import build_data_docs
from quality.validate import validate_source
from sources.config import SourceConfig
from sources.readers import read_source, to_canonical


def test_build_data_docs_from_outcomes(tmp_path):
    path = tmp_path / "crm.csv"
    path.write_text("id,email\nC1,a@x.io\nC1,b@x.io\n,c@x.io\n", encoding="utf-8")
    src = SourceConfig(name="crm", kind="person", path=path, id="id", columns={"email": "email"})
    raw = read_source(src)
    outcome = validate_source(raw, to_canonical(raw, src), src, as_of=date(2024, 6, 1))

    docs = tmp_path / "quality" / "docs"
    stale = docs / "validations" / "old" / "page.html"
    stale.parent.mkdir(parents=True)
    stale.write_text("old")
    index = build_data_docs([outcome], docs, run_name="nightly")

    assert index == docs.resolve() / "index.html"
    html = index.read_text(encoding="utf-8")
    assert "crm.rules" in html and "crm.file" in html
    pages = list((docs / "validations").rglob("*.html"))
    assert len(pages) == 2 and not stale.exists()
    rules_page = next(p for p in pages if "rules" in p.parts).read_text(encoding="utf-8")
    assert "values must be unique" in rules_page
    assert "nightly" in rules_page


HOSTILE = "<script>alert(1)</script>"


def _script_free(docs) -> list[str]:
    """Pages of `docs` holding a live `<script>alert` or `<img` from the data."""
    return [
        str(p)
        for p in docs.rglob("*.html")
        if "<script>alert" in p.read_text(encoding="utf-8")
        or "<img src=x" in p.read_text(encoding="utf-8")
    ]


def test_data_docs_escape_values_from_the_data(tmp_path):
    """Issue 19 item 8: a source id `<script>alert(1)</script>` (duplicated, so GX shows it as a
    failing sample) was written into the Data Docs page as live script. Every value from the
    data (ids, statuses, currencies, column names) is now shown as text, and no row is lost."""
    people = tmp_path / "crm.csv"
    people.write_text(
        f"id,email\n{HOSTILE},a@x.io\n{HOSTILE},b@x.io\nC3,c@x.io\n", encoding="utf-8"
    )
    crm = SourceConfig(name="crm", kind="person", path=people, id="id", columns={"email": "email"})
    orders = tmp_path / "orders.csv"
    orders.write_text(
        "order_id,cust,day,total,cur,state,<img src=x onerror=alert(2)>\n"
        f"O1,C3,2024-05-01,10,<img src=x onerror=alert(3)>,{HOSTILE},x\n"
        f"O2,C3,2024-05-02,oops {HOSTILE},GBP,completed,y\n",
        encoding="utf-8",
    )
    shop = SourceConfig(
        name="shop",
        kind="order",
        path=orders,
        id="order_id",
        person={"source": "crm", "key": "cust"},
        columns={"order_date": "day", "amount": "total", "currency": "cur", "status": "state"},
    )
    outcomes = []
    for src, extra in (
        (crm, {}),
        (shop, {"known_person_ids": {"C3"}, "currency_rates": {"GBP": 1.0}, "previous_columns": ["order_id", "cust"]}),
    ):
        raw = read_source(src)
        outcome = validate_source(raw, to_canonical(raw, src), src, as_of=date(2024, 6, 1), **extra)
        assert len(outcome.accepted) + len(outcome.quarantine) == len(raw)
        outcomes.append(outcome)

    docs = tmp_path / "docs"
    build_data_docs(outcomes, docs, run_name="nightly")

    assert _script_free(docs) == []
    pages = "".join(p.read_text(encoding="utf-8") for p in docs.rglob("*.html"))
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in pages  # shown, as text


# --------------------------------------------------------------------- offline (issue 20)
def _crm_docs(tmp_path):
    path = tmp_path / "crm.csv"
    path.write_text("id,email\nC1,a@x.io\nC1,b@x.io\n,c@x.io\n", encoding="utf-8")
    src = SourceConfig(name="crm", kind="person", path=path, id="id", columns={"email": "email"})
    raw = read_source(src)
    outcome = validate_source(raw, to_canonical(raw, src), src, as_of=date(2024, 6, 1))
    docs = tmp_path / "docs"
    return build_data_docs([outcome], docs, run_name="nightly"), docs


def test_data_docs_load_nothing_from_the_network(tmp_path):
    """GX's pages loaded Bootstrap, jQuery and bootstrap-table from CDNs: offline the index was
    blank. Every page now loads the vendored copies, by relative path, and they are there."""
    import re

    from quality.data_docs import remote_loads

    index, docs = _crm_docs(tmp_path)
    pages = sorted(docs.rglob("*.html"))
    assert len(pages) == 3
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert remote_loads(text) == [], page
        assert "integrity=" not in text and "crossorigin=" not in text
        # every vendored script and stylesheet the page names exists at its relative path
        # (GX's own favicon link is one level short on result pages: GX's, and harmless)
        local = re.findall(r'<(?:script|link)\b[^>]*?(?:src|href)="([^"]*static/vendor/[^"]+)"', text)
        assert any("jquery.min.js" in u for u in local) and any("bootstrap.min.css" in u for u in local)
        for url in local:
            assert (page.parent / url).is_file(), (page, url)
    vendor = docs / "static" / "vendor"
    for licence in ("bootstrap-4.3.1/LICENSE", "jquery-3.7.1/LICENSE.txt", "popper.js-1.12.9/LICENSE",
                    "bootstrap-table-1.19.1/LICENSE", "bootstrap-datepicker-1.9.0/LICENSE",
                    "fontawesome-free-6.6.0/LICENSE.txt", "vega/LICENSES.txt"):
        assert (vendor / licence).stat().st_size > 500, licence
    # the logo GX drew from its web-assets bucket is GX's own local copy
    assert "amazonaws" not in index.read_text(encoding="utf-8")
    assert (docs / "static" / "images" / "logo-long.png").is_file()


def test_remote_loads_finds_what_a_browser_would_fetch():
    from quality.data_docs import remote_loads

    page = (
        '<link rel="stylesheet" href="https://cdn.example/x.css"><script src="//cdn.example/y.js"></script>'
        "<style>a{background:url('https://s3.example/logo.png')}</style><img src='local.png'>"
        '<a href="https://greatexpectations.io">a link, not a load</a><script src="static/z.js"></script>'
    )
    assert remote_loads(page) == [
        "https://cdn.example/x.css",
        "//cdn.example/y.js",
        "https://s3.example/logo.png",
    ]


def test_an_unknown_cdn_url_fails_the_build(tmp_path, monkeypatch):
    """A GX upgrade asking for another version must not silently bring the CDN back."""
    import pytest

    import quality.data_docs as dd

    monkeypatch.setattr(dd, "_CDN", tuple(c for c in dd._CDN if "jquery" not in c[0]))
    with pytest.raises(dd.OfflineDocsError, match=r"jquery-3\.7\.1\.min\.js"):
        _crm_docs(tmp_path)
