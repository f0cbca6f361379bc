"""Screenshots of the Dagster UI and the pages it links to, taken offline, and checked.

    python -m dagster_project.ui_check [--config FILE] [--out DIR]

After a night (`scv run`), starts `dagster-webserver` on 127.0.0.1 (a free port) over the same
Dagster home and workspace as `make ui`, and the file server at the config's `ui.files_url`
(the address the night's metadata links to), then screenshots in headless Chromium, with every
host but 127.0.0.1 unresolvable:

- `asset_graph`: the identity group's lineage (every asset materialized, no partitions);
- `asset_page`: `person_clusters` (metadata as tables and percentages);
- `run_page`: the night's run;
- `run_report`: the run report at the URL the `run_report` asset's metadata gives in the UI;
- `data_docs`: one source's Great Expectations Data Docs, at the URL its `accepted/<source>`
  asset's metadata gives.

Each PNG is checked like the run report (`warehouse.report_render.check_png` / `verdict`) and
the page's text (Chromium's DOM after scripts ran) must show what the page is for (`PAGES`), so
an error page or a blank app shell cannot pass. The servers are always stopped. Prints a table
and exits 1 when a page fails. The test tests/dagster_project/test_ui_screenshots.py runs
`check_ui` after a real small night.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from dagster_project.launch import CODE_LOCATION
from warehouse.report_render import run_chromium

__all__ = ["PAGES", "PageCheck", "check_ui", "main", "running_ui", "screenshot_url"]

#: The window the UI pages are shot in.
WINDOW = (1600, 1000)
#: Chromium runs the page's scripts for this much virtual time before the picture is taken.
BUDGET_MS = 20_000
#: What a page's text must contain (all of them) and must not (any of them).
PAGES: dict[str, dict[str, tuple[str, ...]]] = {
    "asset_graph": {
        "must": ("person_records", "linkage_model", "person_clusters", "review_page"),
        "must_not": ("% filled", "Join the Dagster community"),
    },
    "asset_page": {
        "must": ("person_clusters", "people by number of records", "records in a multi-record person (%)"),
        "must_not": ("0% filled", "Join the Dagster community"),
    },
    "run_page": {"must": ("scv_nightly", "Success", "run_report"), "must_not": ("Join the Dagster community",)},
    "run_report": {
        "must": ("Single customer view: nightly run report", "Data Docs: crm", "Splink: match weights"),
        "must_not": (),
    },
    # "Showing 1 to …" is written by bootstrap-table in the browser: the vendored scripts ran
    "data_docs": {"must": ("Validation Results", "crm.rules", "Showing 1 to"), "must_not": ()},
}
#: The source whose Data Docs are shot.
DOCS_SOURCE = "crm"


@dataclass
class PageCheck:
    """One page: where it was, the PNG, its figures, and what passed."""

    name: str
    url: str
    png: Path
    stats: dict[str, object] = field(default_factory=dict)
    verdict: dict[str, bool] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    unwanted: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return bool(self.verdict) and all(self.verdict.values()) and not self.missing and not self.unwanted


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, data: bytes | None = None, timeout: float = 5) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""
    except (urllib.error.URLError, OSError):
        return 0, b""


def _location_loaded(base: str) -> bool:
    query = json.dumps(
        {"query": "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }"}
    ).encode()
    status, body = _get(f"{base}/graphql", data=query)
    if status != 200:
        return False
    entries = json.loads(body).get("data", {}).get("workspaceOrError", {}).get("locationEntries") or []
    return any(e.get("name") == CODE_LOCATION and e.get("loadStatus") == "LOADED" for e in entries)


def _stop(proc: subprocess.Popen) -> None:
    """Stop the webserver and its code server (one process group)."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    except ProcessLookupError:
        pass


@contextmanager
def running_ui(cfg, home: Path, *, timeout: float = 60) -> Iterator[str]:
    """`dagster-webserver` on a free port of 127.0.0.1 over `home` and the `make ui` workspace,
    and the file server at `cfg.ui.files_url`; yields the UI's base URL. Both are stopped on
    exit, whatever happens. (A file server already answering there, `make ui`'s, is used.)"""
    from dagster_project.file_server import start_file_server
    from dagster_project.ui import prepare_home, write_workspace

    home = prepare_home(home)
    workspace = write_workspace(home, Path.cwd())
    files = None
    try:
        files = start_file_server(cfg)
    except OSError:  # the port is taken: `make ui`'s server serves the same folders
        if _get(f"{cfg.ui.files_url}/")[0] != 200:
            raise
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "DAGSTER_HOME": str(home), "SCV_CONFIG": str(cfg.config_path)}
    proc = None
    with tempfile.TemporaryFile() as log:
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "dagster_webserver", "-w", str(workspace), "-h", "127.0.0.1", "-p", str(port)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: its code server stops with it
            )
            deadline = time.monotonic() + timeout
            while not (_get(f"{base}/server_info")[0] == 200 and _location_loaded(base)):
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    tail = log.read().decode("utf-8", "replace").strip().splitlines()[-8:]
                    raise RuntimeError(
                        f"dagster-webserver did not serve {CODE_LOCATION} at {base} within "
                        f"{timeout:.0f} s (exit code {proc.poll()}):\n" + "\n".join(tail)
                    )
                time.sleep(0.5)
            yield base
        finally:
            if proc is not None:
                _stop(proc)
            if files is not None:
                files.stop()


def screenshot_url(
    chromium: str,
    url: str,
    png: Path,
    window: tuple[int, int] = WINDOW,
    budget_ms: int = BUDGET_MS,
    timeout: float = 90,
) -> tuple[str, float]:
    """Screenshot `url` (scripts run for `budget_ms` of virtual time) with a fresh profile and
    no name but 127.0.0.1 resolving; returns (the page's text after its scripts ran, seconds)."""
    dom, elapsed = run_chromium(
        chromium,
        url,
        png,
        window,
        timeout,
        resolve_local=True,
        extra=(f"--virtual-time-budget={budget_ms}", "--dump-dom"),
    )
    return page_text(dom), elapsed


def page_text(dom: str) -> str:
    """The visible text of a DOM dump: scripts and styles dropped, tags removed, spaces squeezed."""
    dom = re.sub(r"<(script|style)\b.*?</\1>", " ", dom, flags=re.DOTALL | re.IGNORECASE)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", dom)).split())


def ui_urls(base: str, instance, run_id: str | None = None) -> dict[str, str]:
    """The pages to shoot: the UI's own, and the report and Data Docs at the URLs the UI links
    to (the metadata of the `run_report` and `accepted/<source>` materializations)."""
    import dagster as dg

    def link(key: list[str], name: str) -> str:
        event = instance.get_latest_materialization_event(dg.AssetKey(key))
        if event is None or name not in event.asset_materialization.metadata:
            raise RuntimeError(f"no {name!r} link in the metadata of {'/'.join(key)}: run a night first")
        url = str(event.asset_materialization.metadata[name].value)
        if urlsplit(url).scheme not in ("http", "https"):
            raise RuntimeError(f"{'/'.join(key)}: {name} is {url!r}, not a link the UI can open")
        return url

    if run_id is None:
        runs = instance.get_runs(filters=dg.RunsFilter(job_name="scv_nightly"), limit=1)
        if not runs:
            raise RuntimeError("no run of scv_nightly in this Dagster home: run a night first")
        run_id = runs[0].run_id
    return {
        "asset_graph": f"{base}/locations/{CODE_LOCATION}/asset-groups/identity",
        "asset_page": f"{base}/assets/person_clusters",
        "run_page": f"{base}/runs/{run_id}",
        "run_report": link(["run_report"], "latest"),
        "data_docs": link(["accepted", DOCS_SOURCE], "data_docs"),
    }


def check_ui(chromium: str, cfg, home: Path, out_dir: Path, run_id: str | None = None) -> list[PageCheck]:
    """Start the UI over `home`, shoot `PAGES` into `out_dir`, check each; servers stopped after."""
    import dagster as dg

    from warehouse.report_render import check_png, verdict

    results = []
    with running_ui(cfg, home) as base, dg.DagsterInstance.from_config(str(home)) as instance:
        for name, url in ui_urls(base, instance, run_id).items():
            check = PageCheck(name, url, Path(out_dir) / f"{name}.png")
            text, check.seconds = screenshot_url(chromium, url, check.png)
            check.stats = check_png(check.png)
            check.verdict = verdict(check.stats, WINDOW)
            check.missing = [w for w in PAGES[name]["must"] if w not in text]
            check.unwanted = [w for w in PAGES[name]["must_not"] if w in text]
            results.append(check)
    return results


def main(argv: list[str] | None = None) -> int:
    from sources.config import load_config
    from warehouse.report_render import find_chromium

    parser = argparse.ArgumentParser(prog="python -m dagster_project.ui_check", description=__doc__.split("\n")[0])
    parser.add_argument("--config", help="config file (default $SCV_CONFIG, else the demo config)")
    parser.add_argument("--out", default=None, help="folder for the PNGs (default <data_dir>/ui_check)")
    args = parser.parse_args(argv)
    cfg = load_config(args.config)
    chromium = find_chromium()
    if chromium is None:
        print("ui_check: Chromium not found (apt-get install chromium)", file=sys.stderr)
        return 2
    home = Path(os.environ.get("DAGSTER_HOME") or cfg.dagster_home)
    out = Path(args.out) if args.out else cfg.data_dir / "ui_check"
    results = check_ui(chromium, cfg, home, out)
    print(f"{'page':<12}{'ok':>4}{'KB':>7}{'colours':>9}{'ink':>7}{'s':>6}  png / problem")
    for r in results:
        problem = ", ".join(
            [k for k, v in r.verdict.items() if not v]
            + [f"missing {w!r}" for w in r.missing]
            + [f"shows {w!r}" for w in r.unwanted]
        )
        print(
            f"{r.name:<12}{'yes' if r.passed else 'NO':>4}{int(r.stats['bytes']) // 1024:>7}"
            f"{r.stats['colours']:>9}{r.stats['ink_share']:>7.2f}{r.seconds:>6.1f}  {r.png}"
            + (f"  ({problem})" if problem else "")
        )
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
