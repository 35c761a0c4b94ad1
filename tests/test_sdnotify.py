"""systemd's notify protocol, checked through a real AF_UNIX datagram socket standing in for systemd."""
import os
import socket
import time
import uuid

import pytest
from loguru import logger

from goald import sdnotify
from goald.sdnotify import Notifier


@pytest.fixture
def systemd(tmp_path):
    """A bound datagram socket at a filesystem path, as systemd's NOTIFY_SOCKET; yields
    (environ, receive) where receive() returns the next datagram as text."""
    path = tmp_path / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(1.0)
    yield {"NOTIFY_SOCKET": str(path)}, lambda: sock.recv(4096).decode()
    sock.close()


@pytest.fixture
def captured_events():
    """Every log record's (level, event, message), collected while the test runs."""
    records = []
    sink = logger.add(lambda m: records.append((m.record["level"].name, m.record["extra"].get("event"),
                                                m.record["message"])), level="DEBUG")
    yield records
    logger.remove(sink)


def test_ready_sends_ready_with_status_and_the_main_pid(systemd):
    environ, receive = systemd
    n = Notifier.from_env(environ)
    assert n.enabled
    assert n.ready("serving on :8080") is True
    assert receive() == f"READY=1\nSTATUS=serving on :8080\nMAINPID={os.getpid()}"
    assert n.ready() is True
    assert receive() == f"READY=1\nMAINPID={os.getpid()}"
    n.close()


def test_status_is_sent_as_one_line_and_cut_to_a_sane_length(systemd):
    environ, receive = systemd
    n = Notifier.from_env(environ)
    assert n.status("migrating\n0002_job_lock_skips.sql\r\nstep 2") is True
    assert receive() == "STATUS=migrating 0002_job_lock_skips.sql step 2"
    n.status("x" * 5000)
    text = receive()
    assert "\n" not in text and text.startswith("STATUS=xxx") and text.endswith("...")
    assert len(text) == len("STATUS=") + sdnotify.STATUS_MAX_CHARS
    n.close()


def test_stopping_watchdog_errno_and_extend_timeout_send_their_exact_messages(systemd):
    environ, receive = systemd
    n = Notifier.from_env(environ)
    assert n.stopping() and receive() == "STOPPING=1"
    assert n.stopping("warm shutdown") and receive() == "STOPPING=1\nSTATUS=warm shutdown"
    assert n.watchdog() and receive() == "WATCHDOG=1"
    assert n.errno(5) and receive() == "ERRNO=5"
    assert n.extend_timeout(60_000_000) and receive() == "EXTEND_TIMEOUT_USEC=60000000"
    n.close()


def test_reloading_carries_the_monotonic_clock_in_microseconds(systemd):
    environ, receive = systemd
    n = Notifier.from_env(environ)
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert n.reloading() is True
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    first, second = receive().split("\n")
    assert first == "RELOADING=1"
    key, usec = second.split("=")
    assert key == "MONOTONIC_USEC" and before <= int(usec) <= after
    n.close()


def test_an_abstract_socket_is_named_with_a_leading_at_sign():
    name = f"goald-test-{uuid.uuid4().hex[:12]}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(1.0)
    try:
        n = Notifier.from_env({"NOTIFY_SOCKET": "@" + name})
        assert n.watchdog() is True
        assert sock.recv(4096) == b"WATCHDOG=1"
        n.close()
    finally:
        sock.close()


def test_without_notify_socket_the_notifier_is_a_disabled_no_op():
    n = Notifier.from_env({})
    assert not n.enabled
    assert n.ready("up") is False and n.status("x") is False and n.stopping() is False
    assert n.reloading() is False and n.watchdog() is False and n.extend_timeout(1) is False
    assert n.watchdog_interval_s is None
    assert n._sock is None  # no socket was even created
    n.close()


def test_a_notify_socket_that_does_not_exist_returns_false_and_logs_once_per_kind(tmp_path, captured_events):
    n = Notifier.from_env({"NOTIFY_SOCKET": str(tmp_path / "gone")})
    assert n.enabled
    assert n.ready("up") is False
    assert n.watchdog() is False
    warnings = [r for r in captured_events if r[1] == "sdnotify.failed"]
    assert len(warnings) == 1 and warnings[0][0] == "WARNING"
    assert "READY=1" in warnings[0][2]
    n.close()


def test_the_watchdog_interval_is_half_of_watchdog_usec_in_seconds(systemd):
    environ, _ = systemd
    assert Notifier.from_env({**environ, "WATCHDOG_USEC": "20000000"}).watchdog_interval_s == 10.0
    mine = {**environ, "WATCHDOG_USEC": "20000000", "WATCHDOG_PID": str(os.getpid())}
    assert Notifier.from_env(mine).watchdog_interval_s == 10.0
    assert Notifier.from_env(environ).watchdog_interval_s is None
    assert Notifier.from_env({**environ, "WATCHDOG_USEC": "nonsense"}).watchdog_interval_s is None


def test_a_watchdog_meant_for_another_pid_does_not_apply(systemd):
    environ, _ = systemd
    other = {**environ, "WATCHDOG_USEC": "20000000", "WATCHDOG_PID": str(os.getpid() + 1)}
    assert Notifier.from_env(other).watchdog_interval_s is None


def test_from_env_can_unset_the_variables_so_children_do_not_inherit_them(systemd):
    environ, receive = systemd
    env = {**environ, "WATCHDOG_USEC": "20000000", "WATCHDOG_PID": str(os.getpid()), "HOME": "/x"}
    n = Notifier.from_env(env, unset=True)
    assert env == {"HOME": "/x"}
    assert n.watchdog_interval_s == 10.0 and n.watchdog() and receive() == "WATCHDOG=1"
    n.close()


def test_close_is_idempotent_and_a_later_message_opens_a_new_socket(systemd):
    environ, receive = systemd
    n = Notifier.from_env(environ)
    n.close()
    assert n.status("one") and receive() == "STATUS=one"
    n.close()
    n.close()
    assert n.status("two") and receive() == "STATUS=two"
    n.close()
