"""Logging: JSON lines or readable text, journald priorities, stdlib routed in, secrets never out."""
import io
import logging

import pytest
from loguru import logger
from support import json_log_lines

from goald import logs, redact


@pytest.fixture
def capture():
    """Reconfigure logging into a buffer; restore the test default afterwards."""
    stream = io.StringIO()

    def setup(fmt="json", journald=False, level="DEBUG"):
        logs.setup(level, fmt, journald, stream)
        return stream

    yield setup
    logs.setup("DEBUG", "text")


def json_lines(stream):
    return json_log_lines(stream.getvalue())


def test_json_lines_carry_level_message_event_and_fields(capture):
    s = capture("json")
    logs.event("INFO", "pool_monitor.sample", "PoolMonitor utilization 40% (active 8, idle 12, waiting 0, total 20)",
               active=8, utilization=40.0)
    [doc] = json_lines(s)
    assert doc["level"] == "INFO" and doc["event"] == "pool_monitor.sample"
    assert doc["msg"].startswith("PoolMonitor utilization 40%")
    assert doc["active"] == 8 and doc["utilization"] == 40.0
    assert doc["ts"].endswith("+00:00")


def test_auto_format_writes_json_when_the_stream_is_not_a_terminal(capture):
    s = capture("auto")
    logger.info("hello")
    assert json_lines(s)[0]["msg"] == "hello"


def test_text_format_is_one_readable_line_with_fields(capture):
    s = capture("text")
    logs.event("WARNING", "x.y", "Something odd", count=3)
    line = s.getvalue().strip()
    assert "WARNING" in line and "Something odd" in line and "count=3" in line
    assert not line.startswith("{")


def test_journald_prefix_puts_the_syslog_priority_first(capture):
    s = capture("json", journald=True)
    logger.error("bad")
    logger.info("fine")
    lines = s.getvalue().splitlines()
    assert lines[0].startswith("<3>{") and lines[1].startswith("<6>{")


def test_messages_with_braces_are_never_formatted(capture):
    s = capture("json")
    logs.event("INFO", "t", "payload {not_a_field} {0}", n=1)
    assert json_lines(s)[0]["msg"] == "payload {not_a_field} {0}"


def test_dsn_passwords_never_reach_the_log(capture):
    s = capture("json")
    logger.info("connecting to postgresql://app:s3cr3tpass@db:5432/goal")
    logs.event("INFO", "t", "retry", dsn="redis://:r3dispass@cache:6379/0")
    out = s.getvalue()
    assert "s3cr3tpass" not in out and "r3dispass" not in out
    assert "postgresql://app:***@db:5432/goal" in out


def test_registered_secret_values_are_masked_even_on_their_own(capture):
    redact.register_secret("postgresql://app:tok-9f8e7d6c@db/goal")
    s = capture("text")
    logger.info("server said: password tok-9f8e7d6c is wrong")
    assert "tok-9f8e7d6c" not in s.getvalue()


def test_exceptions_are_logged_without_local_variables(capture):
    s = capture("json")
    secret_local = "do-not-print-me"  # noqa: F841  (diagnose would print locals)
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("failed")
    doc = json_lines(s)[0]
    assert "ValueError: boom" in doc["exception"]
    assert "do-not-print-me" not in s.getvalue()


def test_stdlib_logging_from_libraries_is_routed_into_loguru(capture):
    s = capture("json")
    logging.getLogger("pykka").error("actor crashed")
    logging.getLogger("urllib3").debug("noise below WARNING is dropped")
    docs = json_lines(s)
    assert [d["msg"] for d in docs] == ["actor crashed"]
    assert docs[0]["component"] == "pykka" and docs[0]["level"] == "ERROR"


def test_the_level_setting_drops_lower_levels(capture):
    s = capture("json", level="WARNING")
    logger.info("hidden")
    logger.warning("shown")
    assert [d["msg"] for d in json_lines(s)] == ["shown"]
