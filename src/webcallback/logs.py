"""The service's log output: one format for every component, and the callback id on every line
written while a callback's work runs.

Modules only ever `logging.getLogger(__name__)` and log with `%s` arguments; nothing but
`configure()` touches handlers, and only `webcallback run` and each SIP worker process call it.
It puts one handler on the root logger (stderr, `[log] format`: text or JSON lines) and makes
uvicorn's and Alembic's loggers propagate to it; sippy's own output is turned into records by
`engines/sip/_sippy.py` (patch 10). Warnings and uncaught exceptions in threads are logged too.

The callback id is carried by a context variable, `CALLBACK_ID`: bound where a callback's work
starts (the HTTP handler once the callback is accepted, the dispatcher's task for each callback,
the SIP driver on each of its steps, the SIP worker's task) and added to each record by
`ContextFilter` as `record.callback_id`. Under asyncio a task's context is its own, so one
callback's id never shows on another's lines; a `loop.call_soon_threadsafe` from the SIP reactor
carries the reactor's value at the time of the call, and `Database.run` hands the context to the
thread that runs a store call. A line about a callback logged outside its context names it with
`extra={"callback_id": ...}`.

Record fields other than the standard ones (`extra=`) become keys of the JSON object; the text
format shows the message, then `callback=` and `error=` when set. Nothing here logs a secret:
callers pass only what may be shown (never a password, hash, token or query string).
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import threading
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, TextIO

from webcallback.config import LogSettings

__all__ = [
    "CALLBACK_ID", "ContextFilter", "JsonFormatter", "TextFormatter", "active", "bind_callback",
    "callback_bound", "configure",
]  # fmt: skip

CALLBACK_ID: ContextVar[str | None] = ContextVar("webcallback_callback_id", default=None)

# uvicorn's and Alembic's loggers: their own handlers removed, records passed to the root's.
FOREIGN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.asgi", "alembic")
# What a LogRecord has without `extra=` (and what formatting or our filter adds to it).
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message", "asctime", "taskName", "callback_id", "process_label",
    "color_message",  # uvicorn's copy of the message with terminal colours
}  # fmt: skip

_active: LogSettings | None = None


def bind_callback(callback_id: str) -> None:
    """The callback this task (or thread) works for, from now on: for a task's own context."""
    CALLBACK_ID.set(callback_id)


@contextlib.contextmanager
def callback_bound(callback_id: str) -> Iterator[None]:
    """The callback id on the lines logged inside the block, then what it was before."""
    token = CALLBACK_ID.set(callback_id)
    try:
        yield
    finally:
        CALLBACK_ID.reset(token)


class ContextFilter(logging.Filter):
    """Adds `callback_id` (the context's, unless the call passed one in `extra=`) and
    `process_label` (`main`, or `sip[N]` in SIP worker N) to every record."""

    def __init__(self, process: str = "main") -> None:
        super().__init__()
        self.process = process

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "callback_id", None) is None:
            record.callback_id = CALLBACK_ID.get()
        record.process_label = self.process
        return True


def _time(record: logging.LogRecord) -> str:
    """ISO 8601 in UTC, to the millisecond: `2026-12-04T20:45:35.123Z`."""
    stamp = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD and not k.startswith("_")}


class TextFormatter(logging.Formatter):
    """`2026-12-04T20:45:35.123Z INFO webcallback.service.records: callback completed (…) callback=3f2a…`;
    in SIP worker N the logger is preceded by `sip[N]`. A traceback follows on its own lines."""

    def format(self, record: logging.LogRecord) -> str:
        process = getattr(record, "process_label", "main")
        where = record.name if process == "main" else f"{process} {record.name}"
        line = f"{_time(record)} {record.levelname} {where}: {record.getMessage()}"
        callback_id = getattr(record, "callback_id", None)
        error_id = getattr(record, "error_id", None)
        if error_id:
            line += f" error={error_id}"
        if callback_id:
            line += f" callback={callback_id}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        elif record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: `time`, `level`, `logger`, `process`, `message`; `callback_id` when
    the record belongs to a callback; every `extra=` field; `exc` (the traceback) when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _time(record),
            "level": record.levelname,
            "logger": record.name,
            "process": getattr(record, "process_label", "main"),
            "message": record.getMessage(),
        }
        callback_id = getattr(record, "callback_id", None)
        if callback_id:
            entry["callback_id"] = callback_id
        entry.update(_extras(record))
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        elif record.stack_info:
            entry["exc"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def formatter(settings: LogSettings) -> logging.Formatter:
    return JsonFormatter() if settings.format == "json" else TextFormatter()


def configure(settings: LogSettings, *, process: str = "main", stream: TextIO | None = None) -> None:
    """Make this process write every record in `settings.format` to `stream` (stderr), from
    `settings.level` up (with the `levels` overrides). Replaces whatever was configured before."""
    global _active
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(formatter(settings))
    handler.addFilter(ContextFilter(process))
    root.addHandler(handler)
    root.setLevel(settings.level.upper())
    for name in FOREIGN_LOGGERS:
        foreign = logging.getLogger(name)
        foreign.handlers.clear()
        foreign.propagate = True
        foreign.setLevel(logging.NOTSET)
    # Ours replaces it (web/access.py); uvicorn is told `access_log=False` as well.
    logging.getLogger("uvicorn.access").disabled = True
    for name, level in settings.logger_levels():
        logging.getLogger(name).setLevel(level.upper())
    logging.captureWarnings(True)
    threading.excepthook = _thread_exception
    _active = settings


def active() -> LogSettings | None:
    """The settings `configure` applied in this process (None: it was not called)."""
    return _active


def _thread_exception(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit or args.exc_value is None:
        return
    name = args.thread.name if args.thread is not None else "?"
    exc_info = (args.exc_type, args.exc_value, args.exc_traceback)
    logging.getLogger("webcallback").error("uncaught exception in thread %s", name, exc_info=exc_info)
