"""Splink's messages in the Dagster log, one readable line each, and progress on long steps.

Splink logs through the `splink` logger: multi-line warnings ("WARNING:\\nLevel initial matches
on comparison first_name not observed in dataset, unable to train m value\\n") that went to the
console only, and progress (EM sessions, iterations) that nobody saw: training took ~20 s on the
demo with no line in the run's log. `splink_to_dagster(context.log, "training")` routes them,
while a step runs, to the step's Dagster log:

- each message becomes one line, rewritten in plain words where we know it (`readable_line`),
  and repeated lines (Splink warns again for every EM session) are logged once;
- Splink's own severity is kept, except for a warning that is no problem here (EM's sampling
  probe finding nothing to sample); EM's iterations and sampling arithmetic go to DEBUG, and
  Splink's INFO repeats of a warning are dropped;
- every `heartbeat` seconds without a new line, "<step>: still running (N s; last: …)".

Splink's default console handler is taken off for the step and put back afterwards.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["HEARTBEAT_SECONDS", "readable_line", "splink_to_dagster"]

#: Seconds without a line from a long step after which a progress line is logged.
HEARTBEAT_SECONDS = 15.0
#: The loggers routed: Splink's, and our linkage package's (its own warnings).
LOGGERS = ("splink", "transforms.linkage")

_NOT_OBSERVED = re.compile(
    r"Level (?P<level>.+?) on comparison (?P<comp>\S+) not observed in dataset, "
    r"unable to train (?P<mu>[mu]) value"
)
_EM_SESSION = re.compile(
    r"Estimating the (?P<what>.+?) of the model by blocking on:\s*(?P<rule>.+?)\s*"
    r"Parameter estimates will be made for the following comparison\(s\):(?P<made>.*?)"
    r"(?:Parameter estimates cannot be made for the following comparison\(s\).*?:(?P<not>.*))?$",
    re.DOTALL,
)
_BANNER = re.compile(r"-{3,}\s*(?P<what>.*?)\s*-{3,}")
#: Lines logged at DEBUG: EM's iterations and sampling arithmetic.
_DETAIL = re.compile(r"^(Iteration \d+:|\[EM sampling\] (Probe at|Estimated total|Materialised))")
#: Splink's INFO repeat of a warning already logged ("m probability not trained for …").
_REPEAT = re.compile(r"^[mu] probability not trained for ")
#: Messages Splink logs as warnings that are no problem here: logged at INFO.
_BENIGN = ("[EM sampling] Probe returned zero blocked pairs",)


def _names(listing: str | None) -> str:
    return ", ".join(re.findall(r"-\s*(\S+)", listing or ""))


def readable_line(message: str) -> str:
    """One line for a Splink message ('' to drop it): known messages in plain words, any other
    squeezed onto one line."""
    text = message.strip()
    if text.upper().startswith("WARNING:"):
        text = text[len("WARNING:"):].strip()
    if not text:
        return ""
    m = _NOT_OBSERVED.search(text)
    if m:
        return (
            f"Splink: no training pair had {m['comp']} at level '{m['level']}', so its "
            f"{m['mu']} probability was not trained (it keeps its starting value)"
        )
    if "[EM sampling] Probe returned zero blocked pairs" in text:
        return "Splink EM: the sampling probe found no blocked pairs, so EM uses every blocked pair"
    if _REPEAT.match(text):
        return ""
    m = _EM_SESSION.match(text)
    if m:
        rule = " ".join(m["rule"].split())
        return (
            f"Splink EM: estimating the {m['what']} on pairs blocked by {rule}, for "
            f"{_names(m['made']) or '-'} (not for {_names(m['not']) or 'none'}: used in blocking)"
        )
    m = _BANNER.fullmatch(text)
    if m:
        # "Starting EM training session": the next line says which one
        return "" if "Starting EM" in m["what"] else f"Splink: {m['what']}"
    # Splink's explanations after the fact ("This means that …") make lines too long to scan
    text = re.split(r"\s+This (?:usually )?means\b", text, maxsplit=1)[0]
    line = " ".join(text.split())
    return line if line.lower().startswith("splink") else f"Splink: {line}"


class _ToDagster(logging.Handler):
    """Forwards records to a Dagster log manager, one readable line each, once each."""

    def __init__(self, log: Any, step: str) -> None:
        super().__init__(logging.DEBUG)
        self.log = log
        self.step = step
        self.seen: set[str] = set()
        self.last_line = ""
        self.last_time = time.monotonic()
        self.guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = readable_line(record.getMessage())
        except Exception:  # noqa: BLE001 - a log line must never fail the step
            line = " ".join(str(record.msg).split())
        if not line:
            return
        with self.guard:
            if line in self.seen:
                return
            self.seen.add(line)
            self.last_line, self.last_time = line, time.monotonic()
        message = record.getMessage().strip()
        if record.levelno >= logging.WARNING and not message.startswith(_BENIGN):
            self.log.warning(line)
        elif _DETAIL.match(message) or record.levelno < logging.INFO:
            self.log.debug(line)
        else:
            self.log.info(line)


@contextmanager
def splink_to_dagster(log: Any, step: str, heartbeat: float = HEARTBEAT_SECONDS) -> Iterator[None]:
    """While the block runs, Splink's messages go to `log` (a Dagster log manager), and a
    progress line every `heartbeat` seconds without one."""
    handler = _ToDagster(log, step)
    saved = []
    for name in LOGGERS:
        logger = logging.getLogger(name)
        saved.append((logger, list(logger.handlers), logger.level, logger.propagate))
        for h in list(logger.handlers):  # Splink's console handler, if a Linker added one
            logger.removeHandler(h)
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    stop = threading.Event()
    started = time.monotonic()

    def beat() -> None:
        while not stop.wait(min(heartbeat, 1.0)):
            with handler.guard:
                quiet = time.monotonic() - handler.last_time
                last = handler.last_line
            if quiet >= heartbeat:
                elapsed = time.monotonic() - started
                log.info(f"{step}: still running ({elapsed:.0f} s" + (f"; last: {last})" if last else ")"))
                with handler.guard:
                    handler.last_time = time.monotonic()

    thread = threading.Thread(target=beat, name=f"progress-{step}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)
        for logger, handlers, level, propagate in saved:
            logger.removeHandler(handler)
            for h in handlers:
                logger.addHandler(h)
            logger.setLevel(level)
            logger.propagate = propagate
