"""Great Expectations Data Docs (static HTML) for one night's validation results.

`build_data_docs(results, docs_dir)` renders the suite results that `validate_source` returned
(``outcome.gx_results``, or the outcomes themselves) into ``docs_dir/index.html`` plus one page
per source suite. It is optional and cheap: results are slimmed to GX's SUMMARY shape first (20
sample failing values, no full row lists), so a million-row night renders in about a second.
Each build shows that night only; pages from earlier builds are removed.

GX's page templates do not escape every value they show: the sample failing values are put in
table cells as they are, so a source id `<script>…</script>` ran as script in the page. Every
sample value is HTML-escaped here before GX renders it (`_escaped`); the values GX passes through
its string templates (column names, expectation arguments) GX escapes itself.

GX's pages load Bootstrap, jQuery, bootstrap-table and the rest from CDNs, so offline the index
(a table bootstrap-table fills in the browser) stayed blank. `_make_offline` copies the same
versions, vendored in `quality/vendor/` with their licences (vega from the Splink package), into
the site's `static/vendor/` and points every page at them; a page that would still load anything
from the network makes the build fail, naming the URL (`OfflineDocsError`).
"""

from __future__ import annotations

import datetime as _dt
import html
import os
import re
import shutil
from collections.abc import Iterable
from importlib.resources import files
from pathlib import Path
from typing import Any

__all__ = ["OfflineDocsError", "build_data_docs", "remote_loads"]

SITE_NAME = "scv"
# Full per-row lists stay in the quarantine table; docs keep the samples GX shows anyway.
_HEAVY_KEYS = ("unexpected_list", "unexpected_index_list", "unexpected_index_query")
# Result values GX renders verbatim into HTML table cells: sample values and observed values
# (e.g. the file's column names) from the data.
_SAMPLE_KEYS = (
    "partial_unexpected_list",
    "partial_unexpected_counts",
    "partial_unexpected_index_list",
    "observed_value",
)


#: The vendored copies of what GX's templates load from CDNs (see quality/vendor/README.md).
VENDOR = Path(__file__).parent / "vendor"
#: (URL GX's pages load, its replacement under `static/vendor/`; None drops the tag). Patterns
#: are exact versions: a GX upgrade asking for others fails the build until they are vendored.
_CDN: tuple[tuple[str, str | None], ...] = (
    (r"https://maxcdn\.bootstrapcdn\.com/bootstrap/4\.3\.1/css/bootstrap\.min\.css", "bootstrap-4.3.1/bootstrap.min.css"),
    (r"https://stackpath\.bootstrapcdn\.com/bootstrap/4\.3\.1/js/bootstrap\.min\.js", "bootstrap-4.3.1/bootstrap.min.js"),
    (r"https://code\.jquery\.com/jquery-3\.7\.1\.min\.js", "jquery-3.7.1/jquery.min.js"),
    (r"https://cdnjs\.cloudflare\.com/ajax/libs/popper\.js/1\.12\.9/umd/popper\.min\.js", "popper.js-1.12.9/popper.min.js"),
    (r"https://unpkg\.com/bootstrap-table@1\.19\.1/dist/bootstrap-table\.min\.css", "bootstrap-table-1.19.1/bootstrap-table.min.css"),
    (r"https://unpkg\.com/bootstrap-table@1\.19\.1/dist/bootstrap-table\.min\.js", "bootstrap-table-1.19.1/bootstrap-table.min.js"),
    # GX asks for the filter-control stylesheet of 1.19.0 (minified or not): 1.19.1's is the same
    (
        r"https://unpkg\.com/bootstrap-table@1\.19\.[01]/dist/extensions/filter-control/bootstrap-table-filter-control(?:\.min)?\.css",
        "bootstrap-table-1.19.1/bootstrap-table-filter-control.min.css",
    ),
    (
        r"https://unpkg\.com/bootstrap-table@1\.19\.1/dist/extensions/filter-control/bootstrap-table-filter-control\.min\.js",
        "bootstrap-table-1.19.1/bootstrap-table-filter-control.min.js",
    ),
    (
        r"https://cdnjs\.cloudflare\.com/ajax/libs/bootstrap-datepicker/1\.9\.0/css/bootstrap-datepicker\.min\.css",
        "bootstrap-datepicker-1.9.0/bootstrap-datepicker.min.css",
    ),
    (
        r"https://cdnjs\.cloudflare\.com/ajax/libs/bootstrap-datepicker/1\.9\.0/js/bootstrap-datepicker\.min\.js",
        "bootstrap-datepicker-1.9.0/bootstrap-datepicker.min.js",
    ),
    (r"https://cdnjs\.cloudflare\.com/ajax/libs/font-awesome/6\.6\.0/css/all\.min\.css", "fontawesome-free-6.6.0/css/all.min.css"),
    (r"https://cdn\.jsdelivr\.net/npm/vega@5", "vega/vega.min.js"),
    (r"https://cdn\.jsdelivr\.net/npm/vega-lite@5", "vega/vega-lite.min.js"),
    (r"https://cdn\.jsdelivr\.net/npm/vega-embed@6", "vega/vega-embed.min.js"),
    # the dark theme is not vendored (150 KB): offline pages are light only
    (r"https://cdn\.jsdelivr\.net/npm/@forevolve/bootstrap-dark@1\.1\.0/dist/css/bootstrap-prefers-dark\.css", None),
)
#: GX's logo, drawn from its web-assets bucket: the copy GX ships in each site's static/images.
_GX_LOGO = re.compile(r"https://great-expectations-web-assets\.s3[.\w-]*\.amazonaws\.com/[\w.-]+\.png(?:\?[^'\")\s]*)?")
#: Splink's vendored chart libraries (name prefix -> file under static/vendor/vega/).
_SPLINK_JS = {"vega@": "vega.min.js", "vega-lite@": "vega-lite.min.js", "vega-embed@": "vega-embed.min.js"}
#: A tag (or CSS url) that makes the browser fetch something: <script src>, <link href>,
#: <img src>, url(...). Links a reader clicks (<a href>) are not loads.
_LOADS = re.compile(
    r"<(?:script|img|iframe|source)\b[^>]*?\bsrc\s*=\s*[\"']([^\"']*)[\"']"
    r"|<link\b[^>]*?\bhref\s*=\s*[\"']([^\"']*)[\"']"
    r"|url\(\s*[\"']?([^\"')]*)",
    re.IGNORECASE,
)


class OfflineDocsError(RuntimeError):
    """A Data Docs page would load something from the network."""


def remote_loads(page_html: str) -> list[str]:
    """The URLs a page would fetch from another host (scheme or protocol-relative)."""
    found = []
    for m in _LOADS.finditer(page_html):
        url = next(g for g in m.groups() if g is not None).strip()
        if re.match(r"^(?:[a-z][a-z0-9+.-]*:)?//", url, re.IGNORECASE) and not url.lower().startswith("file:"):
            found.append(url)
    return found


def _copy_vendor(docs_dir: Path) -> Path:
    """Put the vendored files into `docs_dir/static/vendor/` (unchanged files are not copied
    again); returns that folder."""
    target = docs_dir / "static" / "vendor"
    sources = [(p, target / p.relative_to(VENDOR)) for p in VENDOR.rglob("*") if p.is_file()]
    splink_js = files("splink").joinpath("internals", "files", "external_js")
    for entry in splink_js.iterdir():
        for prefix, name in _SPLINK_JS.items():
            if entry.name.startswith(prefix) and entry.name[len(prefix):][:1].isdigit():
                sources.append((Path(str(entry)), target / "vega" / name))
    sources.append((Path(str(files("splink").joinpath("internals", "files", "DEPENDENCY_LICENSES.txt"))), target / "vega" / "LICENSES.txt"))
    for src, dst in sources:
        if dst.exists() and dst.stat().st_size == src.stat().st_size and dst.stat().st_mtime >= src.stat().st_mtime:
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst)
    return target


def _offline_page(text: str, page: Path, docs_dir: Path) -> str:
    """`text` (the HTML of `page`) loading the vendored copies instead of the CDNs."""
    vendor = Path(os.path.relpath(docs_dir / "static" / "vendor", page.parent)).as_posix()
    logo = Path(os.path.relpath(docs_dir / "static" / "images" / "logo-long.png", page.parent)).as_posix()
    for pattern, local in _CDN:
        if local is None:  # the whole <link> goes
            text = re.sub(r"<link\b[^>]*?href\s*=\s*[\"']" + pattern + r"[\"'][^>]*>[ \t]*\n?", "", text)
        else:
            text = re.sub(r"(?<=[\"'])" + pattern + r"(?=[\"'])", f"{vendor}/{local}", text)
    # SRI hashes and CORS mode were for the CDN copies: a file:// page cannot load with CORS.
    # (Values from the data are HTML-escaped, so no sample value can hold such an attribute.)
    text = re.sub(r"\s(?:integrity|crossorigin)\s*=\s*[\"'][^\"']*[\"']", "", text)
    return _GX_LOGO.sub(logo, text)


def _make_offline(docs_dir: Path) -> None:
    """Rewrite every page under `docs_dir` to load only local files; raise OfflineDocsError
    naming a page and URL that would still be fetched from the network."""
    _copy_vendor(docs_dir)
    for page in sorted(docs_dir.rglob("*.html")):
        text = page.read_text(encoding="utf-8")
        new = _offline_page(text, page, docs_dir)
        remote = remote_loads(new)
        if remote:
            raise OfflineDocsError(
                f"{page}: would load {remote[0]} from the network (and {len(remote) - 1} more); "
                "vendor it in quality/vendor/ and add it to quality.data_docs._CDN"
            )
        if new != text:
            page.write_text(new, encoding="utf-8")


def _escaped(value: Any) -> Any:
    """`value` with every string in it HTML-escaped (lists and dicts walked), others as they are."""
    if isinstance(value, str):
        return html.escape(value, quote=True)
    if isinstance(value, list):
        return [_escaped(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_escaped(v) for v in value)
    if isinstance(value, dict):
        return {k: _escaped(v) for k, v in value.items()}
    return value


def _suite_results(results: Iterable[Any]) -> list[Any]:
    out = []
    for item in results:
        gx_results = getattr(item, "gx_results", None)
        if gx_results is not None:  # a ValidationOutcome
            out.extend(gx_results)
        else:
            out.append(item)
    return out


def _slim(result: Any, run_id: Any) -> Any:
    from great_expectations.core.expectation_validation_result import (
        ExpectationSuiteValidationResult,
        ExpectationValidationResult,
    )

    slim_results = []
    for r in result.results:
        body = {
            k: _escaped(v) if k in _SAMPLE_KEYS else v
            for k, v in (r.result or {}).items()
            if k not in _HEAVY_KEYS
        }
        slim_results.append(
            ExpectationValidationResult(
                success=r.success,
                expectation_config=r.expectation_config,
                result=body,
                meta=r.meta,
                exception_info=r.exception_info,
            )
        )
    meta = dict(result.meta or {})
    meta["run_id"] = run_id
    meta["validation_time"] = run_id.run_time
    return ExpectationSuiteValidationResult(
        success=result.success,
        results=slim_results,
        suite_name=result.suite_name,
        suite_parameters=result.suite_parameters,
        statistics=result.statistics,
        meta=meta,
        batch_id=result.batch_id,
    )


def build_data_docs(
    results: Iterable[Any],
    docs_dir: str | Path,
    *,
    run_name: str = "scv",
    run_time: _dt.datetime | None = None,
) -> Path:
    """Write GX Data Docs for `results` under `docs_dir`; return the path of ``index.html``.

    `results`: ``ExpectationSuiteValidationResult``s and/or `ValidationOutcome`s. `run_name` and
    `run_time` (default now, UTC) label the run in the pages.
    """
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    from quality.suites import ephemeral_context

    docs_dir = Path(docs_dir).resolve()
    docs_dir.mkdir(parents=True, exist_ok=True)
    for stale in ("validations", "expectations"):
        shutil.rmtree(docs_dir / stale, ignore_errors=True)
    run_id = RunIdentifier(
        run_name=run_name, run_time=run_time or _dt.datetime.now(_dt.UTC)
    )
    site = {
        "class_name": "SiteBuilder",
        "show_how_to_buttons": False,
        "store_backend": {
            "class_name": "TupleFilesystemStoreBackend",
            "base_directory": str(docs_dir),
        },
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
    }
    context = ephemeral_context(data_docs_sites={SITE_NAME: site})
    for i, result in enumerate(_suite_results(results)):
        key = ValidationResultIdentifier(
            ExpectationSuiteIdentifier(name=result.suite_name), run_id, f"batch_{i}"
        )
        context.validation_results_store.set(key, _slim(result, run_id))
    context.build_data_docs(site_names=[SITE_NAME])
    _make_offline(docs_dir)
    return docs_dir / "index.html"
