"""systemd's notify protocol (sd_notify), spoken by goald itself: no python-systemd dependency.

systemd passes `NOTIFY_SOCKET` (a filesystem path, or an abstract socket name starting with
'@') to a `Type=notify` service, and `WATCHDOG_USEC` / `WATCHDOG_PID` when the unit has
`WatchdogSec=`. `Notifier.from_env()` reads them once; each message is one datagram of
`KEY=value` lines sent with `sendto` on the Notifier's own AF_UNIX SOCK_DGRAM socket (created on
first use, closed by `close()`). Under gevent's monkey-patching the socket is cooperative; a send
waits at most `SEND_TIMEOUT_S` for a full receive queue.

Who calls what (the contract; the wiring lives with the daemon and the actors):
- the daemon's main greenlet: `extend_timeout()` during long start-up steps (migrations),
  `ready()` once start-up has finished, `status()` for one-line progress, `reloading()` when a
  SIGHUP reload begins and `ready()` again when it is done, `stopping()` when a stop begins;
- the clock actor: `watchdog()` every `watchdog_interval_s` (half of `WATCHDOG_USEC`), and only
  after it has checked that its children are alive, so a hung actor stops the keep-alives and
  systemd restarts goald. No watchdog configured: `watchdog_interval_s` is None.

Nothing here raises into the caller. Without `NOTIFY_SOCKET`, `enabled` is False and every method
is a cheap no-op returning False. A failed send (OSError, timeout) returns False and is logged
once per kind of error per Notifier as event `sdnotify.failed`; success returns True.
"""
from __future__ import annotations

import contextlib
import os
import re
import socket
import threading
import time
from collections.abc import Mapping, MutableMapping

from goald import logs

STATUS_MAX_CHARS = 200
SEND_TIMEOUT_S = 1.0
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]+")
_ENV_KEYS = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")


def one_line(text: str, limit: int = STATUS_MAX_CHARS) -> str:
    """`text` as a single line (newlines and other control characters become a space), at most
    `limit` characters (cut with '...')."""
    line = _CONTROL_CHARS.sub(" ", str(text)).strip()
    return line if len(line) <= limit else line[: limit - 3] + "..."


class Notifier:
    """Sends notify messages to systemd; a no-op when goald was not started by a notify unit."""

    def __init__(self, address: str | None, watchdog_usec: int | None = None):
        """`address`: the socket as a path or with a leading '\\0' for the abstract namespace
        (`from_env` translates the '@' form); None disables the Notifier. `watchdog_usec`: the
        watchdog timeout that applies to this process, or None."""
        self.address = address or None
        self.watchdog_usec = watchdog_usec if watchdog_usec and watchdog_usec > 0 else None
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._logged: set[str] = set()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *, unset: bool = False) -> Notifier:
        """A Notifier from `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID` in `environ`
        (default os.environ). The watchdog applies only when `WATCHDOG_PID` is unset or is this
        process. `unset=True` removes the three variables from `environ` afterwards, so child
        processes (the embedded PostgreSQL, subprocesses) do not inherit them."""
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET") or None
        if address and address.startswith("@"):
            address = "\0" + address[1:]
        watchdog_usec = _positive_int(env.get("WATCHDOG_USEC"))
        watchdog_pid = env.get("WATCHDOG_PID")
        if watchdog_pid is not None and _positive_int(watchdog_pid) != os.getpid():
            watchdog_usec = None
        if unset and isinstance(env, MutableMapping):
            for key in _ENV_KEYS:
                env.pop(key, None)
        return cls(address, watchdog_usec)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    @property
    def watchdog_interval_s(self) -> float | None:
        """How often to send `watchdog()`: half of WATCHDOG_USEC, in seconds. None when no
        watchdog applies to this process or there is no NOTIFY_SOCKET to send it to."""
        if not self.enabled or self.watchdog_usec is None:
            return None
        return self.watchdog_usec / 2 / 1_000_000

    # -- messages -----------------------------------------------------------------------------

    def ready(self, status: str | None = None) -> bool:
        """Start-up (or a reload) has finished: READY=1, MAINPID and an optional STATUS."""
        return self.send("READY=1", *_status(status), f"MAINPID={os.getpid()}")

    def status(self, text: str) -> bool:
        """One line of free-form status, shown by `systemctl status goald`."""
        return self.send(*_status(text))

    def stopping(self, status: str | None = None) -> bool:
        """A stop has begun: STOPPING=1 and an optional STATUS."""
        return self.send("STOPPING=1", *_status(status))

    def reloading(self, status: str | None = None) -> bool:
        """A reload has begun: RELOADING=1 with MONOTONIC_USEC (systemd >= 253 requires it for
        Type=notify-reload; older systemd ignores it). Send `ready()` when the reload is done."""
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.send("RELOADING=1", f"MONOTONIC_USEC={usec}", *_status(status))

    def watchdog(self) -> bool:
        """Keep-alive for WatchdogSec=: WATCHDOG=1."""
        return self.send("WATCHDOG=1")

    def errno(self, n: int) -> bool:
        """The errno-style reason of a failure: ERRNO=n (shown by `systemctl status`)."""
        return self.send(f"ERRNO={int(n)}")

    def extend_timeout(self, usec: int) -> bool:
        """Ask for `usec` more microseconds before the start (or stop) timeout: for long steps
        such as migrations. Send it again before it runs out."""
        return self.send(f"EXTEND_TIMEOUT_USEC={max(0, int(usec))}")

    # -- transport ----------------------------------------------------------------------------

    def send(self, *lines: str) -> bool:
        """Send `lines` as one datagram. True when sent; False when disabled or on an error."""
        if self.address is None or not lines:
            return False
        try:
            self._socket().sendto("\n".join(lines).encode("utf-8", "replace"), self.address)
            return True
        except Exception as exc:  # noqa: BLE001 - OSError, timeouts, anything: never raise
            self._log_failure(exc, lines[0])
            return False

    def close(self) -> None:
        """Close the socket; a later message opens a new one."""
        with self._lock:
            sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()

    def _socket(self) -> socket.socket:
        with self._lock:
            if self._sock is None:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                sock.settimeout(SEND_TIMEOUT_S)
                self._sock = sock
            return self._sock

    def _log_failure(self, exc: Exception, first_line: str) -> None:
        kind = getattr(exc, "errno", None)
        kind = type(exc).__name__ + (f":{kind}" if kind else "")
        if kind in self._logged:
            return
        self._logged.add(kind)
        where = self.address.replace("\0", "@") if self.address else None
        with contextlib.suppress(Exception):  # logging must not raise into the caller either
            logs.event("WARNING", "sdnotify.failed",
                       f"could not notify systemd ({first_line}): {exc}; "
                       "further failures of this kind are not logged",
                       socket=where, error=kind)

    def __repr__(self) -> str:
        where = self.address.replace("\0", "@") if self.address else None
        return f"Notifier(address={where!r}, watchdog_interval_s={self.watchdog_interval_s})"


def _status(text: str | None) -> tuple[str, ...]:
    return () if text is None else (f"STATUS={one_line(text)}",)


def _positive_int(value: str | None) -> int | None:
    try:
        n = int(value) if value is not None else None
    except ValueError:
        return None
    return n if n is not None and n > 0 else None
