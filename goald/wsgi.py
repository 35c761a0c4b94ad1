"""A gevent.pywsgi server tuned for keep-alive clients; shared by the console and the simulator.

gevent.pywsgi sends a response's headers and body in two writes; with Nagle's algorithm on,
every keep-alive request after the first waited ~40 ms for the client's delayed ACK. Each
connection is served in a greenlet of its own.
"""
from __future__ import annotations

import socket

from gevent.pywsgi import WSGIHandler, WSGIServer

from goald import logs


class _Handler(WSGIHandler):
    def log_request(self):
        log = self.server.log
        if getattr(log, "enabled", None) is None or log.enabled():   # an access line costs 5 % of a request
            super().log_request()


class NoDelayWSGIServer(WSGIServer):
    handler_class = _Handler

    def handle(self, sock, address):
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass  # not TCP (a Unix socket): nothing to tune
        super().handle(sock, address)


class EventLog:
    """A file-like sink for pywsgi's `log` / `error_log`: each non-empty write becomes one event."""

    def __init__(self, level: str, event: str, prefix: str = ""):
        self.level, self.event, self.prefix = level, event, prefix

    def enabled(self) -> bool:
        return logs.enabled(self.level)

    def write(self, text: str) -> None:
        text = text.strip()
        if text:
            logs.event(self.level, self.event, self.prefix + text)

    def flush(self) -> None:
        pass
