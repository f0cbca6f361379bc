"""The pages a night writes, served over HTTP so that the Dagster UI's links open them.

The Dagster UI cannot open `file://` paths (a browser refuses them from an http page), and its
webserver has no place for extra routes. `make ui` therefore starts this small server beside
`dagster dev`, at `ui.files_url` (default http://127.0.0.1:3001), and the assets record their
pages as URLs under it (`page_link`).

It serves only the folders meant to be read in a browser, under the same paths they have below
the data folder, so the relative links between them (run report -> Splink charts, Data Docs)
work the same from the server and from the files:

- `/reports/...`       run reports, Splink charts (`reports/linkage/<run>/`), `evaluation.html`
- `/quality/docs/...`  Great Expectations Data Docs, one site per source

Nothing else: not the warehouse, landing, exports, state, the Dagster home or `private/` (the
steward's review page holds personal data). Hidden files (`.x.tmp` while a page is written)
and paths that leave those folders (`..`, symlinks) are refused with 404. `/` lists what there is.
"""

from __future__ import annotations

import html
import io
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import dagster as dg

from sources.config import Config

__all__ = [
    "SERVED",
    "FileServer",
    "night_pages",
    "page_link",
    "page_url",
    "pages_markdown",
    "served_folders",
    "start_file_server",
]

#: URL prefix -> folder below the data folder. The run report links to the others relatively.
SERVED = ("reports", "quality/docs")


def served_folders(cfg: Config) -> dict[str, Path]:
    """The folders the server exposes, by URL prefix."""
    return {"reports": cfg.reports_dir, "quality/docs": cfg.quality_dir / "docs"}


def page_url(cfg: Config, path: Path) -> str | None:
    """The URL of `path` on the file server, or None when it lies outside the served folders."""
    path = Path(path).resolve()
    for prefix, folder in served_folders(cfg).items():
        try:
            rel = path.relative_to(Path(folder).resolve())
        except ValueError:
            continue
        return f"{cfg.ui.files_url}/{prefix}/{rel.as_posix()}" if rel.parts else f"{cfg.ui.files_url}/{prefix}/"
    return None


def page_link(cfg: Config, path: Path) -> dg.MetadataValue:
    """Dagster metadata that opens `path` from the UI: its URL on the file server, or the plain
    path for files the server does not serve."""
    url = page_url(cfg, path)
    return dg.MetadataValue.url(url) if url else dg.MetadataValue.path(str(path))


#: Splink chart files (transforms/linkage/charts.py) and how the run report names them.
CHART_LABELS = {
    "match_weights.html": "Splink: match weights",
    "m_u_parameters.html": "Splink: m and u parameters",
    "cluster_sizes.html": "Splink: cluster sizes",
    "waterfall.html": "Splink: waterfall of sample links",
}


def night_pages(cfg: Config) -> list[tuple[str, Path]]:
    """The pages beside a night's run report, as (label, file): the Splink charts of the last
    night that drew them (a full link; incremental nights reuse its model) and each enabled
    source's Data Docs. Only files that exist."""
    pages: list[tuple[str, Path]] = []
    charts = cfg.reports_dir / "linkage"
    folders = [d for d in charts.iterdir() if d.is_dir()] if charts.is_dir() else []
    if folders:
        latest = max(folders, key=lambda d: d.stat().st_mtime)
        pages += [(label, latest / name) for name, label in CHART_LABELS.items() if (latest / name).is_file()]
    for name, src in sorted(cfg.sources.items()):
        index = cfg.quality_dir / "docs" / name / "index.html"
        if src.enabled and index.is_file():
            pages.append((f"Data Docs: {name}", index))
    return pages


def pages_markdown(cfg: Config, pages: list[tuple[str, Path]]) -> dg.MetadataValue:
    """Markdown metadata linking each page on the file server (ui.files_url)."""
    lines = []
    for label, path in pages:
        url = page_url(cfg, path)
        lines.append(f"- [{label}]({url})" if url else f"- {label}: `{path}`")
    return dg.MetadataValue.md("\n".join(lines) or "(no pages)")


class _Handler(SimpleHTTPRequestHandler):
    """GET/HEAD of files inside the served folders only; a listing at `/`."""

    server_version = "scv-files"

    def __init__(self, *args, folders: dict[str, Path], **kwargs) -> None:
        self.folders = {k: Path(v).resolve() for k, v in folders.items()}
        super().__init__(*args, directory=str(Path.cwd()), **kwargs)

    def log_message(self, format: str, *args) -> None:  # quiet: the UI's terminal is busy enough
        pass

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        super().end_headers()

    def _resolve(self, url_path: str) -> Path | None:
        """The file (or folder) a URL path names inside a served folder, else None."""
        parts = [p for p in unquote(urlsplit(url_path).path).split("/") if p]
        if any(p.startswith(".") for p in parts):
            return None
        for prefix, folder in self.folders.items():
            head = prefix.split("/")
            if parts[: len(head)] != head:
                continue
            target = folder.joinpath(*parts[len(head):]).resolve()
            if target == folder or folder in target.parents:
                return target
        return None

    def translate_path(self, path: str) -> str:
        target = self._resolve(path)
        # a path that cannot exist: SimpleHTTPRequestHandler answers 404 for it
        return str(target) if target is not None else "/nonexistent/scv-files/refused"

    def list_directory(self, path):  # no folder listings: pages link to each other
        self.send_error(404, "No listing")

    def send_head(self):
        if urlsplit(self.path).path in ("", "/"):
            return self._index()
        return super().send_head()

    def _index(self):
        items = []
        for prefix, folder in self.folders.items():
            if not folder.is_dir():
                continue
            pages = sorted(
                p for p in folder.rglob("*.html") if not any(s.startswith(".") for s in p.parts)
            )
            if prefix == "quality/docs":
                pages = [p for p in pages if p.parent.parent == folder and p.name == "index.html"]
            elif prefix == "reports":
                pages = [p for p in pages if p.parent == folder and p.name in ("latest.html", "evaluation.html")]
            for p in pages:
                rel = p.relative_to(folder).as_posix()
                label = f"{prefix}/{rel}"
                items.append(f'<li><a href="/{html.escape(prefix)}/{html.escape(rel)}">{html.escape(label)}</a></li>')
        body = (
            "<!doctype html><html><head><meta charset='utf-8'><title>SCV pages</title></head>"
            "<body style='font-family:sans-serif;margin:2em'><h1>SCV warehouse: pages</h1><ul>"
            + "".join(items)
            + "</ul></body></html>"
        ).encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        return io.BytesIO(body)


class FileServer:
    """A running file server (a daemon thread); `stop()` shuts it down."""

    def __init__(self, httpd: ThreadingHTTPServer, thread: threading.Thread) -> None:
        self.httpd = httpd
        self.thread = thread

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


def start_file_server(cfg: Config, host: str | None = None, port: int | None = None) -> FileServer:
    """Serve the config's pages at `ui.files_url` (or `host`/`port`) in a background thread."""
    url = urlsplit(cfg.ui.files_url)
    bind = (host or url.hostname or "127.0.0.1", port if port is not None else (url.port or 80))
    handler = partial(_Handler, folders=served_folders(cfg))
    httpd = ThreadingHTTPServer(bind, handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, name="scv-file-server", daemon=True)
    thread.start()
    return FileServer(httpd, thread)
