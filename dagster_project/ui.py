"""`make ui`: the Dagster UI over the project's definitions, with the night's pages one click away.

    python -m dagster_project.ui [--config FILE] [--host 127.0.0.1] [--port 3000] [--files-only]

Starts the file server (dagster_project/file_server.py) at the config's `ui.files_url`, then
`dagster dev` on a workspace that names the code location after the project (`scv-warehouse`,
the location `scv run` records its runs in), with the Dagster home `scv run` uses. Ctrl-C stops
both. `--files-only` serves the pages without starting Dagster (for a UI started another way).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from dagster_project.file_server import start_file_server
from dagster_project.launch import CODE_LOCATION, DEFINITIONS_MODULE
from sources.config import ConfigError, load_config

__all__ = ["INSTANCE_SETTINGS", "main", "write_workspace"]

#: dagster.yaml for a new Dagster home: no telemetry, and no newsletter sign-up dialog on the
#: first visit (the UI runs without a network).
INSTANCE_SETTINGS = "telemetry:\n  enabled: false\nnux:\n  enabled: false\n"


def write_workspace(home: Path, working_directory: Path) -> Path:
    """A workspace file loading the definitions as the code location `scv-warehouse`."""
    path = Path(home) / "workspace.yaml"
    path.write_text(
        "load_from:\n"
        "  - python_module:\n"
        f"      module_name: {DEFINITIONS_MODULE}\n"
        f"      location_name: {CODE_LOCATION}\n"
        f"      working_directory: {Path(working_directory).resolve()}\n",
        encoding="utf-8",
    )
    return path


def prepare_home(home: Path) -> Path:
    """Create the Dagster home with `INSTANCE_SETTINGS` unless it has a dagster.yaml already."""
    home = Path(home).resolve()
    home.mkdir(parents=True, exist_ok=True)
    settings = home / "dagster.yaml"
    if not settings.exists():
        settings.write_text(INSTANCE_SETTINGS, encoding="utf-8")
    return home


def _wait(proc: subprocess.Popen, grace: float = 30) -> int:
    """Wait for `dagster dev`. Ctrl-C reaches it too (same terminal); `kill` of this process is
    passed on as SIGTERM, which Dagster treats as Ctrl-C. Killed after `grace` seconds."""
    stopping: list[float] = []

    def stop(*_) -> None:
        stopping.append(time.monotonic())
        proc.terminate()

    signal.signal(signal.SIGTERM, stop)
    while True:
        try:
            return proc.wait(timeout=1)
        except subprocess.TimeoutExpired:
            if stopping and time.monotonic() - stopping[0] > grace:
                proc.kill()
                return proc.wait()
        except KeyboardInterrupt:  # dagster dev got the same Ctrl-C: let it shut down
            stopping.append(time.monotonic())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dagster_project.ui", description=__doc__.split("\n")[0])
    parser.add_argument("--config", help="config file (default $SCV_CONFIG, else the demo config)")
    parser.add_argument("--host", default="127.0.0.1", help="the Dagster UI's host (default 127.0.0.1)")
    parser.add_argument("--port", default="3000", help="the Dagster UI's port (default 3000)")
    parser.add_argument("--files-only", action="store_true", help="serve the pages only")
    args = parser.parse_args(argv)
    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        print(f"ui: {exc}", file=sys.stderr)
        return 2
    home = prepare_home(Path(os.environ.get("DAGSTER_HOME") or cfg.dagster_home))
    try:
        files = start_file_server(cfg)
    except OSError as exc:
        print(f"ui: cannot serve the pages at {cfg.ui.files_url} ({exc.strerror or exc}): "
              "set ui.files_url in the config to a free port", file=sys.stderr)
        return 1
    print(f"run reports, Splink charts and Data Docs: {cfg.ui.files_url}/", flush=True)
    try:
        if args.files_only:
            files.thread.join()
            return 0
        env = {**os.environ, "DAGSTER_HOME": str(home), "SCV_CONFIG": str(cfg.config_path)}
        workspace = write_workspace(home, Path.cwd())
        dagster = Path(sys.executable).with_name("dagster")
        cmd = [str(dagster), "dev", "-w", str(workspace), "-h", args.host, "-p", args.port]
        with subprocess.Popen(cmd, env=env) as proc:
            return _wait(proc)
    except KeyboardInterrupt:
        return 0
    finally:
        files.stop()


if __name__ == "__main__":
    sys.exit(main())
