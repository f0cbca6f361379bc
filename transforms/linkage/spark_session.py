"""Spark sessions for the linkage stage (`linkage.engine: spark`): one clean session per job.

One base SparkSession per process (per master and settings) holds the JVM, the SparkContext and
Splink's similarity UDF jar; each linkage job gets its own `newSession()` of it, so Splink's
temporary views and registered functions of one job are invisible to the next, and its own
checkpoint folder, which is deleted when the job ends (Splink writes its intermediate tables
there as Parquet and never cleans them up).

    with spark_job(settings, "train") as job:
        db_api = job.db_api()                      # Splink's SparkAPI, JARO_WINKLER & co. loaded
        with job.phase("estimate u"):              # one log line: time, Spark jobs, stages, tasks
            ...
        # write results (Parquet) before leaving: the job's views and checkpoints are dropped

Folders: checkpoints and Spark's spill (`spark.local.dir`) live under `temp_directory / "spark"`
of the settings (the night passes `data/tmp/linkage`); on a real cluster set
`spark.checkpoint.dir` in `linkage.spark.conf` to shared storage (HDFS, S3, a shared mount).
pyspark is imported only when a job starts; a missing pyspark or Java runtime is one line
(`EngineUnavailableError`), not a Py4J stack trace.
"""

from __future__ import annotations

import atexit
import itertools
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from .errors import EngineUnavailableError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from .settings import LinkageSettings

__all__ = [
    "MIN_JAVA",
    "SPARK_DEFAULTS",
    "SparkJob",
    "find_java",
    "open_spark_job",
    "session_conf",
    "spark_job",
    "stop_spark",
]

log = logging.getLogger(__name__)

#: Spark 4 runs on Java 17 or later.
MIN_JAVA = 17

#: Our defaults; anything in `linkage.spark.conf` wins. Few partitions: Splink repartitions its
#: big tables to half of `spark.sql.shuffle.partitions`, and Spark's default of 200 was 3.3x
#: slower on the demo's sizes (STACK_NOTES); raise both on a real cluster.
SPARK_DEFAULTS: dict[str, str] = {
    "spark.app.name": "scv-linkage",
    "spark.sql.shuffle.partitions": "8",
    "spark.default.parallelism": "8",
    # Dates and timestamps mean the same as in the DuckDB warehouse, and Parquet written here
    # reads back in DuckDB as TIMESTAMP (not the legacy INT96).
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    # A nightly batch: no web UI on a random port, no progress bars on stderr, plain log lines.
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.log.structuredLogging.enabled": "false",
}

#: Spark's JVM logs WARN and above to stderr, one short line each; the start-up chatter and the
#: messages that repeat on every run without anyone being able to act on them are raised to ERROR.
#: Failed queries reach Python as exceptions, so the SQL context logger's copy is off.
LOG4J2_PROPERTIES = """\
rootLogger.level = warn
rootLogger.appenderRef.stderr.ref = stderr
appender.console.type = Console
appender.console.name = stderr
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = spark %p %c{1}: %m%n%ex
logger.utils.name = org.apache.spark.util.Utils
logger.utils.level = error
logger.native.name = org.apache.hadoop.util.NativeCodeLoader
logger.native.level = error
logger.sqlcontext.name = SQLQueryContextLogger
logger.sqlcontext.level = off
logger.cache.name = org.apache.spark.sql.execution.CacheManager
logger.cache.level = error
logger.window.name = org.apache.spark.sql.execution.window
logger.window.level = error
logger.strings.name = org.apache.spark.sql.catalyst.util.SparkStringUtils
logger.strings.level = error
logger.shutdown.name = org.apache.spark.util.ShutdownHookManager
logger.shutdown.level = error
# "spark.local.dir will be overridden by the cluster manager" on every start (we set it for the
# driver and local[*]); this also hides SparkConf's deprecation notes for keys in linkage.spark.conf.
logger.sparkconf.name = org.apache.spark.SparkConf
logger.sparkconf.level = error
# Splink's intermediate tables are Parquet folders named __splink__…; Spark treats names starting
# with '_' as hidden and warns "All paths were ignored" on every read (it reads them all the same).
logger.datasource.name = org.apache.spark.sql.execution.datasources.DataSource
logger.datasource.level = error
"""

_NO_JAVA = (
    "linkage.engine is 'spark' but no Java runtime was found; install a JRE {min}+ "
    "(Debian: apt install default-jre-headless) or set linkage.engine: duckdb"
)
_NO_PYSPARK = (
    "linkage.engine is 'spark' but pyspark is not installed; pip install 'scv-warehouse[spark]' "
    "(make run does it when the config says engine: spark) or set linkage.engine: duckdb"
)

_lock = threading.RLock()
_base: _Base | None = None
_job_numbers = itertools.count(1)


def find_java(env: Mapping[str, str] | None = None) -> str:
    """The `java` that Spark will start, checked to be Java 17+; `EngineUnavailableError` if none.

    Like Spark's launcher: `$JAVA_HOME/bin/java` when JAVA_HOME is set, else `java` on PATH.
    """
    env = os.environ if env is None else env
    java_home = env.get("JAVA_HOME", "").strip()
    if java_home:
        java = str(Path(java_home) / "bin" / "java")
        if not os.access(java, os.X_OK):
            raise EngineUnavailableError(
                f"linkage.engine is 'spark' but JAVA_HOME={java_home} has no bin/java; "
                f"point it at a JRE {MIN_JAVA}+ or unset it"
            )
    else:
        found = shutil.which("java", path=env.get("PATH", ""))
        if found is None:
            raise EngineUnavailableError(_NO_JAVA.format(min=MIN_JAVA))
        java = found
    try:
        out = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EngineUnavailableError(
            f"linkage.engine is 'spark' but {java} -version failed ({exc})"
        ) from exc
    version = _java_major(out.stderr + out.stdout)
    if version is None or version < MIN_JAVA:
        found_text = f"Java {version}" if version else "an unknown Java version"
        raise EngineUnavailableError(
            f"linkage.engine is 'spark' but {java} is {found_text}; Spark 4 needs Java "
            f"{MIN_JAVA}+ (Debian: apt install default-jre-headless) or set JAVA_HOME"
        )
    return java


def _java_major(version_text: str) -> int | None:
    """17 from 'openjdk version "17.0.15"', 8 from 'java version "1.8.0_392"'."""
    m = re.search(r'version "(\d+)(?:\.(\d+))?', version_text)
    if m is None:
        return None
    major = int(m.group(1))
    return int(m.group(2) or 0) if major == 1 else major


def _is_on_this_machine(master: str) -> bool:
    """local[…] and local-cluster[…] masters, or a standalone master on 127.0.0.1/localhost."""
    if master.startswith("local"):
        return True
    host = urlparse(master).hostname
    return host in ("127.0.0.1", "localhost")


def _spark_dir(settings: LinkageSettings) -> Path | None:
    return settings.temp_directory / "spark" if settings.temp_directory else None


def session_conf(
    settings: LinkageSettings, spark_dir: Path, jar: str, log4j_file: Path
) -> dict[str, str]:
    """Every Spark setting of the base session: our defaults, the folders, Splink's jar, the
    quiet logging, then `settings.spark_conf` on top (jars and Java options are merged)."""
    conf = dict(SPARK_DEFAULTS)
    conf["spark.master"] = settings.spark_master
    conf["spark.local.dir"] = str(spark_dir / "local")
    java_opts = f"-Dlog4j2.configurationFile={log4j_file.resolve().as_uri()}"
    conf["spark.driver.extraJavaOptions"] = java_opts
    if _is_on_this_machine(settings.spark_master):
        # Executors on this machine reach the driver on loopback (no dependence on how the
        # hostname resolves), and can read the same log4j file.
        conf["spark.driver.host"] = "127.0.0.1"
        conf["spark.driver.bindAddress"] = "127.0.0.1"
        conf["spark.executor.extraJavaOptions"] = java_opts
    for key, value in settings.spark_conf.items():
        if key == "spark.jars":
            continue
        if key.endswith(".extraJavaOptions") and key in conf:
            conf[key] = f"{conf[key]} {value}"
        else:
            conf[key] = value
    jars = [j for j in settings.spark_conf.get("spark.jars", "").split(",") if j.strip()]
    conf["spark.jars"] = ",".join([*jars, jar])
    return conf


class _Base:
    """The process's base SparkSession, the settings it was started with and its folders."""

    def __init__(self, key: tuple, session: SparkSession, checkpoint_root: str, own_dir: Path | None):
        self.key = key
        self.session = session
        self.checkpoint_root = checkpoint_root
        self.own_dir = own_dir  # a temporary spark folder we created (no temp_directory given)
        self.started_here = True

    def stop(self) -> None:
        sc = self.session.sparkContext
        try:
            _delete_path(sc, self.checkpoint_root)
        except Exception:  # best effort: a stopped context cannot delete
            log.debug("could not delete %s", self.checkpoint_root, exc_info=True)
        if self.started_here:
            self.session.stop()
        if self.own_dir is not None:
            shutil.rmtree(self.own_dir, ignore_errors=True)


def _import_pyspark() -> None:
    try:
        import pyspark  # noqa: F401
    except ImportError as exc:
        raise EngineUnavailableError(_NO_PYSPARK) from exc
    # pyspark 4 warns on every conversion that pandas >= 3 is not fully supported; the stage
    # keeps pandas at its edges (Parquet in and out), so the warning says nothing actionable.
    warnings.filterwarnings(
        "ignore", message="PySpark does not yet fully support pandas", category=FutureWarning
    )
    logging.getLogger("py4j").setLevel(logging.WARNING)


def _delete_path(sc: Any, uri: str) -> None:
    """Delete a folder through Hadoop's file system (local disk, HDFS, S3 … alike)."""
    jvm = sc._jvm
    path = jvm.org.apache.hadoop.fs.Path(uri)
    path.getFileSystem(sc._jsc.hadoopConfiguration()).delete(path, True)


def _base_session(settings: LinkageSettings) -> _Base:
    """The base session for these settings: reused, or (re)started when master/conf changed."""
    global _base
    _import_pyspark()
    from pyspark import SparkContext
    from pyspark.sql import SparkSession
    from splink.backends.spark import similarity_jar_location

    key = (settings.spark_master, tuple(sorted(settings.spark_conf.items())), str(_spark_dir(settings)))
    with _lock:
        if _base is not None and _base.key == key and _base.session.sparkContext._jsc is not None:
            return _base
        if _base is not None:
            log.info("spark: stopping the session on %s (settings changed)", _base.key[0])
            _base.stop()
            _base = None
        jar = similarity_jar_location()
        if _is_on_this_machine(settings.spark_master):
            # Spark's Python workers (the stage's mapInPandas steps) run this interpreter, with
            # its pandas and this project; pyspark reads PYSPARK_PYTHON only, when the context
            # starts, and otherwise runs the first `python3` on PATH. An explicit one wins.
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        existing = SparkContext._active_spark_context
        if existing is not None:
            # Started by someone else (spark-submit, a notebook): use it as it is.
            session = SparkSession.builder.getOrCreate()
            log.warning(
                "spark: using the running SparkContext (master %s); linkage.spark.master and "
                "linkage.spark.conf apply only to a session this process starts",
                existing.master,
            )
            if Path(jar).name not in existing.getConf().get("spark.jars", ""):
                session.sql(f"ADD JAR '{jar}'")
            root = existing.getCheckpointDir() or _default_root(settings)[0]
            _base = _Base(key, session, f"{root.rstrip('/')}/scv-{uuid.uuid4().hex[:8]}", None)
            _base.started_here = False
            return _base
        if SparkContext._gateway is None:
            find_java()  # before the JVM starts: one clear line instead of a Py4J trace
        spark_dir, own_dir = _default_root(settings)
        spark_dir.mkdir(parents=True, exist_ok=True)
        (spark_dir / "local").mkdir(exist_ok=True)
        log4j_file = spark_dir / "log4j2.properties"
        log4j_file.write_text(LOG4J2_PROPERTIES)
        conf = session_conf(settings, spark_dir, jar, log4j_file)
        builder = SparkSession.builder
        for k, v in conf.items():
            builder = builder.config(k, v)
        started = time.monotonic()
        try:
            session = builder.getOrCreate()
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise EngineUnavailableError(
                f"linkage.engine is 'spark' but Spark did not start on {settings.spark_master}: {first}"
            ) from exc
        sc = session.sparkContext
        sc.setLogLevel("WARN")
        root = settings.spark_conf.get("spark.checkpoint.dir") or (spark_dir / "checkpoints").resolve().as_uri()
        checkpoint_root = f"{root.rstrip('/')}/{sc.applicationId}"
        sc.setCheckpointDir(checkpoint_root)
        log.info(
            "spark: session on %s started in %.1f s (Spark %s, app %s)",
            settings.spark_master, time.monotonic() - started, session.version, sc.applicationId,
        )
        _base = _Base(key, session, checkpoint_root, own_dir)
        return _base


def _default_root(settings: LinkageSettings) -> tuple[Path, Path | None]:
    """The spark folder, and the same path again when it is a temporary one we must remove."""
    spark_dir = _spark_dir(settings)
    if spark_dir is not None:
        return spark_dir, None
    own = Path(tempfile.mkdtemp(prefix="scv-spark-"))
    return own, own


def stop_spark() -> None:
    """Stop the base session this process started (and delete its checkpoints); idempotent."""
    global _base
    with _lock:
        if _base is not None:
            _base.stop()
            _base = None


atexit.register(stop_spark)


class SparkJob:
    """One linkage job's SparkSession, checkpoint folder and log lines; `close()` drops both."""

    def __init__(self, session: SparkSession, name: str, checkpoint_dir: str):
        self.session = session
        self.name = name
        self.checkpoint_dir = checkpoint_dir
        self._group = f"scv-{name}-{uuid.uuid4().hex[:8]}"
        self._phases = itertools.count(1)
        self._closed = False

    def db_api(self, **kwargs: Any) -> Any:
        """Splink's SparkAPI on this job's session, its UDFs (jaro_winkler, …) registered and its
        intermediate Parquet written under this job's checkpoint folder."""
        return _job_api_class()(
            spark_session=self.session, checkpoint_dir=self.checkpoint_dir, **kwargs
        )

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Log one line when `name` ends: wall time and what Spark ran for it (jobs, stages,
        tasks, failures), read from Spark's status tracker through a job group."""
        sc = self.session.sparkContext
        group = f"{self._group}-{next(self._phases)}"
        sc.setJobGroup(group, f"{self.name}: {name}")
        started = time.monotonic()
        failed = True
        try:
            yield
            failed = False
        finally:
            sc.setLocalProperty("spark.jobGroup.id", None)  # type: ignore[arg-type]
            sc.setLocalProperty("spark.job.description", None)  # type: ignore[arg-type]
            stats = _group_stats(sc, group)
            log.info(
                "spark %s: %s %s in %.1f s (%d Spark jobs, %d stages, %d tasks%s)",
                self.name, name, "failed" if failed else "done", time.monotonic() - started,
                stats["jobs"], stats["stages"], stats["tasks"],
                f", {stats['failed_tasks']} failed tasks" if stats["failed_tasks"] else "",
            )

    def temp_views(self) -> list[str]:
        """Names of the temporary views this job's session holds."""
        return [t.name for t in self.session.catalog.listTables() if t.isTemporary]

    def close(self) -> None:
        """Drop the job's temporary views (and their cached data) and its checkpoint folder."""
        if self._closed:
            return
        self._closed = True
        try:
            for view in self.temp_views():
                self.session.catalog.dropTempView(view)
        finally:
            _delete_path(self.session.sparkContext, self.checkpoint_dir)


def _group_stats(sc: Any, group: str) -> dict[str, int]:
    tracker = sc.statusTracker()
    stats = {"jobs": 0, "stages": 0, "tasks": 0, "failed_tasks": 0}
    for job_id in tracker.getJobIdsForGroup(group):
        stats["jobs"] += 1
        job = tracker.getJobInfo(job_id)
        for stage_id in job.stageIds if job else []:
            stage = tracker.getStageInfo(stage_id)
            if stage is None:  # skipped (its output was reused) or already forgotten
                continue
            stats["stages"] += 1
            stats["tasks"] += stage.numTasks
            stats["failed_tasks"] += stage.numFailedTasks
    return stats


_api_class: type | None = None


def _job_api_class() -> type:
    """SparkAPI writing its intermediate tables under the job's folder instead of the context's
    shared checkpoint dir, so a job's files go with it."""
    global _api_class
    if _api_class is None:
        from splink import SparkAPI

        class JobSparkAPI(SparkAPI):
            def __init__(self, *, checkpoint_dir: str, **kwargs: Any):
                self.job_checkpoint_dir = checkpoint_dir
                super().__init__(**kwargs)

            def _get_checkpoint_dir_path(self, spark_df: Any) -> str:
                return self.job_checkpoint_dir

        _api_class = JobSparkAPI
    return _api_class


def open_spark_job(settings: LinkageSettings, name: str = "linkage") -> SparkJob:
    """A new job on the base session (started on first use); the caller closes it.

    Prefer `spark_job(...)` as a context manager; a job never closed keeps its views until its
    session is garbage-collected and its checkpoints until the process ends (`stop_spark`).
    """
    base = _base_session(settings)
    safe = re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-") or "job"
    checkpoint_dir = f"{base.checkpoint_root}/{safe}-{next(_job_numbers)}-{uuid.uuid4().hex[:8]}"
    return SparkJob(base.session.newSession(), safe, checkpoint_dir)


@contextmanager
def spark_job(settings: LinkageSettings, name: str = "linkage") -> Iterator[SparkJob]:
    """One linkage job on Spark: a clean session, dropped with its checkpoints on the way out."""
    job = open_spark_job(settings, name)
    try:
        yield job
    finally:
        job.close()
