"""The log format (`webcallback.logs`): the context filter and the two formatters on real records,
the callback id kept apart between asyncio tasks and threads, and `configure()` on the real
logging tree — uvicorn's loggers, the level and its per-logger overrides, warnings, uncaught
thread exceptions. `webcallback run` writing it is tests/operator/test_logs.py."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import sys
import threading
import warnings
from collections.abc import Iterator

import pytest

from webcallback import logs
from webcallback.config import ConfigError, LogSettings, load_settings
from webcallback.store.db import Database

TEXT_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (DEBUG|INFO|WARNING|ERROR) \S+( \S+)?: ")


def record(message: str = "hello %s", *args: object, **extra: object) -> logging.LogRecord:
    """A record of `message % args` ("hello world" by default), with `extra` fields."""
    args = args or (("world",) if "%s" in message else ())
    made = logging.LogRecord("webcallback.test", logging.INFO, __file__, 1, message, args, None)
    made.__dict__.update(extra)
    return made


def filtered(made: logging.LogRecord, process: str = "main") -> logging.LogRecord:
    assert logs.ContextFilter(process).filter(made)
    return made


# ---- the filter and the formatters --------------------------------------------------------------


def test_the_filter_adds_the_bound_callback_id_and_none_outside() -> None:
    assert filtered(record()).__dict__["callback_id"] is None
    with logs.callback_bound("cb-1"):
        assert filtered(record()).__dict__["callback_id"] == "cb-1"
        with logs.callback_bound("cb-2"):
            assert filtered(record()).__dict__["callback_id"] == "cb-2"
        assert filtered(record()).__dict__["callback_id"] == "cb-1"
        # a call that names its callback (work outside the callback's own task) wins
        assert filtered(record(callback_id="cb-9")).__dict__["callback_id"] == "cb-9"
    assert logs.CALLBACK_ID.get() is None


def test_json_lines_carry_the_fixed_keys_the_callback_the_extras_and_the_traceback() -> None:
    with logs.callback_bound("cb-1"):
        made = filtered(record(status=403, error_id="password-needs-https"), "sip[1]")
    entry = json.loads(logs.JsonFormatter().format(made))
    assert entry.pop("time").endswith("Z")
    assert entry == {
        "level": "INFO", "logger": "webcallback.test", "process": "sip[1]", "message": "hello world",
        "callback_id": "cb-1", "status": 403, "error_id": "password-needs-https",
    }  # fmt: skip
    try:
        raise ValueError("boom")
    except ValueError:
        failed = filtered(record("it failed", exc_info=sys.exc_info()))
    entry = json.loads(logs.JsonFormatter().format(failed))
    assert "callback_id" not in entry  # none bound: the key is left out
    assert "Traceback" in entry["exc"] and "ValueError: boom" in entry["exc"]
    assert "\n" not in logs.JsonFormatter().format(failed)  # one line, whatever the traceback


def test_json_lines_take_any_value_and_drop_uvicorns_colour_copy() -> None:
    made = filtered(record(color_message="\x1b[36m%d\x1b[0m", since=object()))
    entry = json.loads(logs.JsonFormatter().format(made))
    assert "color_message" not in entry and entry["since"].startswith("<object")


def test_text_lines_end_with_the_error_and_callback_ids_and_name_the_worker() -> None:
    with logs.callback_bound("cb-1"):
        made = filtered(record("GET %s 403", "/webcallback", error_id="password-needs-https"))
    line = logs.TextFormatter().format(made)
    assert TEXT_LINE.match(line), line
    expected = " INFO webcallback.test: GET /webcallback 403 error=password-needs-https callback=cb-1"
    assert line.endswith(expected), line
    worker = logs.TextFormatter().format(filtered(record(), "sip[0]"))
    assert worker.endswith(" INFO sip[0] webcallback.test: hello world"), worker


async def test_each_asyncio_task_keeps_its_own_callback_id() -> None:
    seen: dict[str, list[str | None]] = {}
    both_bound = asyncio.Barrier(2)

    async def work(callback_id: str) -> None:
        logs.bind_callback(callback_id)
        await both_bound.wait()  # the other task has bound its own id meanwhile
        seen[callback_id] = [filtered(record()).__dict__["callback_id"] for _ in range(3)]

    await asyncio.gather(work("a"), work("b"))
    assert seen == {"a": ["a"] * 3, "b": ["b"] * 3}
    assert logs.CALLBACK_ID.get() is None  # the tasks' binding did not reach their creator


def test_a_thread_binding_its_callback_does_not_leak_into_another() -> None:
    seen: list[str | None] = []

    def reactor() -> None:
        with logs.callback_bound("in-thread"):
            seen.append(filtered(record()).__dict__["callback_id"])
            other = threading.Thread(target=lambda: seen.append(filtered(record()).__dict__["callback_id"]))
            other.start()
            other.join()

    thread = threading.Thread(target=reactor)
    thread.start()
    thread.join()
    assert seen == ["in-thread", None]


async def test_a_store_call_sees_the_callback_id_of_its_caller(db: Database) -> None:
    """On PostgreSQL `Database.run` hands the call to a pool thread; the context goes with it."""
    seen = []

    def store_call() -> None:
        seen.append((logs.CALLBACK_ID.get(), threading.current_thread() is threading.main_thread()))

    with logs.callback_bound("cb-db"):
        await db.run(store_call)
    await db.run(store_call)
    in_thread = not db.is_sqlite
    assert seen == [("cb-db", not in_thread), (None, not in_thread)]


# ---- the settings ---------------------------------------------------------------------------------


def test_the_log_settings_are_read_and_checked() -> None:
    env = {"WEBCALLBACK_LOG__FORMAT": "json", "WEBCALLBACK_LOG__LEVEL": "warning",
           "WEBCALLBACK_LOG__LEVELS": "webcallback.access=info, sippy=ERROR"}  # fmt: skip
    settings = load_settings("/dev/null", environ=env).log
    assert (settings.format, settings.level, settings.access) == ("json", "warning", True)
    assert settings.logger_levels() == [("webcallback.access", "info"), ("sippy", "error")]
    with pytest.raises(ConfigError, match=r"log\.format: must be one of text, json"):
        load_settings("/dev/null", environ={"WEBCALLBACK_LOG__FORMAT": "xml"})
    with pytest.raises(ConfigError, match=r"log\.level: must be one of debug, info"):
        load_settings("/dev/null", environ={"WEBCALLBACK_LOG__LEVEL": "verbose"})
    for bad in ("sippy", "=info", "sippy=loud"):
        with pytest.raises(ConfigError, match=r"config log\.levels: .* is not `logger=level`"):
            load_settings("/dev/null", environ={"WEBCALLBACK_LOG__LEVELS": bad})


# ---- configure() on the real logging tree -----------------------------------------------------


@pytest.fixture
def logging_restored() -> Iterator[None]:
    """`configure` changes the process's logging: put everything it touches back afterwards."""
    root = logging.getLogger()
    names = [*logs.FOREIGN_LOGGERS, "uvicorn.access", "webcallback.access", "webcallback", "sippy"]
    touched = [logging.getLogger(name) for name in names]
    saved = [(lg, lg.handlers[:], lg.level, lg.propagate, lg.disabled) for lg in touched]
    root_state = (root.handlers[:], root.level)
    hook, active = threading.excepthook, logs._active
    yield
    for lg, handlers, level, propagate, disabled in saved:
        lg.handlers[:], lg.propagate, lg.disabled = handlers, propagate, disabled
        lg.setLevel(level)
    root.handlers[:] = root_state[0]
    root.setLevel(root_state[1])
    logging.captureWarnings(False)
    threading.excepthook, logs._active = hook, active


def lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


def test_configure_writes_every_component_in_one_format(logging_restored: None) -> None:
    out = io.StringIO()
    uvicorn_error = logging.getLogger("uvicorn.error")
    uvicorn_error.addHandler(logging.StreamHandler(io.StringIO()))  # as uvicorn's own config leaves it
    uvicorn_error.propagate = False
    logs.configure(LogSettings(format="json"), stream=out)
    assert logs.active() == LogSettings(format="json")
    uvicorn_error.info("Application startup complete.")
    logging.getLogger("uvicorn.access").info("127.0.0.1 - GET / 200")  # replaced by ours: dropped
    logging.getLogger("alembic.runtime.migration").info("Running upgrade")
    logging.getLogger("webcallback.service.dispatcher").debug("below the level")
    with logs.callback_bound("cb-7"):
        logging.getLogger("webcallback.service.records").info("callback %s", "completed")
    entries = [json.loads(line) for line in lines(out)]
    assert [(e["logger"], e["message"]) for e in entries] == [
        ("uvicorn.error", "Application startup complete."),
        ("alembic.runtime.migration", "Running upgrade"),
        ("webcallback.service.records", "callback completed"),
    ]
    assert entries[-1]["callback_id"] == "cb-7" and entries[0]["process"] == "main"


def test_the_level_and_per_logger_overrides_filter_records(logging_restored: None) -> None:
    out = io.StringIO()
    settings = LogSettings(level="warning", levels=("webcallback.access=info", "sippy=error"))
    logs.configure(settings, process="sip[2]", stream=out)
    logging.getLogger("webcallback.access").info("GET /livez 200 0.3 ms")  # its own level: kept
    logging.getLogger("webcallback.web.listen").info("HTTP on ...")  # below warning: dropped
    logging.getLogger("webcallback.refusals").warning("refused 401")
    logging.getLogger("sippy").warning("a print")  # below its own level: dropped
    logging.getLogger("sippy").error("a traceback")
    assert [line.split(" ", 1)[1] for line in lines(out)] == [
        "INFO sip[2] webcallback.access: GET /livez 200 0.3 ms",
        "WARNING sip[2] webcallback.refusals: refused 401",
        "ERROR sip[2] sippy: a traceback",
    ]
    assert all(TEXT_LINE.match(line) for line in lines(out))


def test_configure_again_replaces_the_handler(logging_restored: None) -> None:
    first, second = io.StringIO(), io.StringIO()
    logs.configure(LogSettings(), stream=first)
    logs.configure(LogSettings(format="json"), stream=second)
    logging.getLogger("webcallback").warning("once")
    assert first.getvalue() == "" and json.loads(second.getvalue())["message"] == "once"


def test_warnings_and_uncaught_thread_exceptions_are_logged_records(logging_restored: None) -> None:
    out = io.StringIO()
    logs.configure(LogSettings(format="json"), stream=out)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("an old API", UserWarning, stacklevel=1)

    def crash() -> None:
        raise RuntimeError("thread bug")

    thread = threading.Thread(target=crash, name="doomed")
    thread.start()
    thread.join()
    warned, crashed = (json.loads(line) for line in lines(out))
    assert warned["logger"] == "py.warnings" and "an old API" in warned["message"]
    assert (crashed["level"], crashed["message"]) == ("ERROR", "uncaught exception in thread doomed")
    assert "RuntimeError: thread bug" in crashed["exc"]
