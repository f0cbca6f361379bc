"""Spark for tests: the CI rule for a missing pyspark / Java, and a standalone cluster on 127.0.0.1.

Importable without pyspark (tests/ is on sys.path through its conftest).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

#: A standalone master and worker were ready in ~25 s here (STACK_NOTES); bounded generously.
CLUSTER_START_TIMEOUT_S = 90


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1")


def require_spark() -> None:
    """pyspark and a Java 17+ runtime, or skip outside CI / fail in CI (the Spark tests must run)."""
    from transforms.linkage.engine import EngineUnavailableError
    from transforms.linkage.spark_session import find_java

    try:
        import pyspark  # noqa: F401

        find_java()
    except (ImportError, EngineUnavailableError) as exc:
        reason = (
            str(exc) if isinstance(exc, EngineUnavailableError) else "pyspark is not installed"
        )
        if _in_ci():
            pytest.fail(
                f"{reason}, but CI is set: the Spark tests must run in CI. `make test` installs "
                "pyspark (.[spark]) and .ci/run installs default-jre-headless; check those ran.",
                pytrace=False,
            )
        pytest.skip(f"{reason} (make test installs pyspark; CI installs Java and runs this)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _alive_workers(webui_port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{webui_port}/json", timeout=2) as resp:
            state = json.load(resp)
    except (OSError, ValueError):
        return 0
    return sum(1 for w in state.get("workers", []) if w.get("state") == "ALIVE")


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM the process group (spark-class execs java in it), SIGKILL after 15 s."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=15)
    except ProcessLookupError:
        pass


@contextmanager
def standalone_cluster(
    workdir: Path, *, cores: int = 2, memory: str = "2g", timeout: float = CLUSTER_START_TIMEOUT_S
) -> Iterator[str]:
    """A Spark standalone master and one worker on 127.0.0.1, started from the installed pyspark
    package's `bin/spark-class` (its wheel ships no start-master.sh), on free ports, logs and work
    folders under `workdir`. Yields the master URL once the worker has registered (read from the
    master's web UI JSON); always stops both, even when the body fails."""
    import pyspark

    spark_home = Path(pyspark.__file__).parent
    spark_class = spark_home / "bin" / "spark-class"
    logs = workdir / "logs"
    for d in (logs, workdir / "pids", workdir / "work", workdir / "local"):
        d.mkdir(parents=True, exist_ok=True)
    env = dict(
        os.environ,
        SPARK_HOME=str(spark_home),
        SPARK_LOG_DIR=str(logs),
        SPARK_PID_DIR=str(workdir / "pids"),
        SPARK_WORKER_DIR=str(workdir / "work"),
        SPARK_LOCAL_DIRS=str(workdir / "local"),
        SPARK_LOCAL_IP="127.0.0.1",
    )
    port, webui, worker_port, worker_webui = (free_port() for _ in range(4))
    url = f"spark://127.0.0.1:{port}"
    procs: list[tuple[subprocess.Popen, Path]] = []

    def start(name: str, *args: str) -> None:
        log = logs / f"{name}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [str(spark_class), *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,  # its own process group: one killpg stops java too
            )
        procs.append((proc, log))

    try:
        start(
            "master", "org.apache.spark.deploy.master.Master",
            "--host", "127.0.0.1", "--port", str(port), "--webui-port", str(webui),
        )
        start(
            "worker", "org.apache.spark.deploy.worker.Worker",
            "--host", "127.0.0.1", "--port", str(worker_port), "--webui-port", str(worker_webui),
            "--cores", str(cores), "--memory", memory, "--work-dir", str(workdir / "work"), url,
        )
        deadline = time.monotonic() + timeout
        while _alive_workers(webui) < 1:
            for proc, log in procs:
                if proc.poll() is not None:
                    raise RuntimeError(
                        f"Spark {log.stem} exited with {proc.returncode}:\n{_tail(log)}"
                    )
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"no Spark worker registered with {url} within {timeout:.0f} s:\n"
                    + "\n".join(f"--- {log.stem}\n{_tail(log)}" for _, log in procs)
                )
            time.sleep(0.5)
        yield url
    finally:
        for proc, _ in reversed(procs):  # worker first, then the master
            _stop(proc)


def standalone_settings(master: str, temp_directory: Path):
    """LinkageSettings for the 2-core, 1 GiB standalone cluster `standalone_cluster` starts."""
    from transforms.linkage.settings import LinkageSettings

    return LinkageSettings(
        engine="spark",
        spark_master=master,
        spark_conf={
            "spark.sql.shuffle.partitions": "4",
            "spark.default.parallelism": "4",
            "spark.executor.memory": "1g",
            "spark.cores.max": "2",
        },
        temp_directory=temp_directory,
    )
