"""The HTTP listener: a gevent.pywsgi server around the Bottle app.

`start()` binds in the calling greenlet (so a busy port is reported at start-up, not later) and
serves each request in a greenlet of its own. Access lines go to the log at DEBUG
(event `http.access`); `stop()` stops accepting and gives open requests `timeout_s` to finish.
"""
from __future__ import annotations

import errno
import socket

from gevent.pywsgi import WSGIServer

from goald import logs
from goald.actors.base import SupervisedActor


class ConsoleStartError(Exception):
    """The listener could not bind; the message names the address and the setting to change."""


class _AccessLog:
    def write(self, line: str) -> None:
        line = line.strip()
        if line:
            logs.event("DEBUG", "http.access", line)


class _ErrorLog:
    def write(self, text: str) -> None:
        text = text.strip()
        if text:
            logs.event("ERROR", "http.server_error", text)

    def flush(self) -> None:
        pass


class _Server(WSGIServer):
    """gevent.pywsgi sends a response's headers and body in two writes; with Nagle's algorithm on,
    every keep-alive request after the first waited ~40 ms for the client's delayed ACK."""

    def handle(self, sock, address):
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass  # not TCP (a Unix socket): nothing to tune
        super().handle(sock, address)


class HttpServer:
    def __init__(self, app, host: str, port: int):
        self.app, self.host, self.port = app, host, port
        self._server: WSGIServer | None = None

    def start(self) -> None:
        server = _Server((self.host, self.port), self.app, log=_AccessLog(), error_log=_ErrorLog())
        try:
            server.start()
        except OSError as e:
            why = "is in use" if e.errno == errno.EADDRINUSE else f"cannot be bound ({e.strerror})"
            raise ConsoleStartError(
                f"console address {self.host}:{self.port} {why}; set console.port (or GOALD_CONSOLE_PORT) "
                f"to a free port") from None
        self._server = server
        self.port = server.server_port

    def stop(self, timeout_s: float = 5.0) -> None:
        if self._server is not None:
            self._server.stop(timeout=timeout_s)
            self._server = None


class ConsoleActor(SupervisedActor):
    """Hosts the HTTP listener in the actor tree: bound in `started()`, stopped in `stopping()`.

    A bind failure makes the start fail (the supervisor reports it; at start-up goald exits 5).
    """

    kind = "console"

    def __init__(self, *, name: str, parent, app, host: str, port: int, stop_timeout_s: float = 5.0):
        super().__init__(name=name, parent=parent)
        self.server = HttpServer(app, host, port)
        self.stop_timeout_s = stop_timeout_s

    def started(self) -> None:
        self.server.start()

    def stopping(self) -> None:
        self.server.stop(timeout_s=self.stop_timeout_s)

    def address(self) -> tuple[str, int]:
        return self.server.host, self.server.port
