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
