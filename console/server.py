"""The HTTP listener: a gevent.pywsgi server around the Bottle app.

`bind(host, port)` makes the listening socket; the daemon calls it before anything slow (database,
migrations), so a busy port or an unusable `console.host` is reported at once, naming the setting
that is actually wrong. `HttpServer.start()` serves on that socket (or binds one itself), each
request in a greenlet of its own. Access lines go to the log at DEBUG (event `http.access`);
`stop()` stops accepting and gives open requests `timeout_s` to finish. Nothing here knows about
actors: the tree hosts the server in a ServiceActor (goald/tree.py).
"""
from __future__ import annotations

import errno
import socket

from gevent.pywsgi import WSGIServer

from goald.wsgi import EventLog, NoDelayWSGIServer

LISTEN_BACKLOG = 1024


class ConsoleStartError(Exception):
    """The listener could not bind; the message names the address and the setting to change."""


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on (host, port), or ConsoleStartError saying which setting is wrong."""
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise ConsoleStartError(
            f"console.host {host!r} is not an address or a host name this machine can resolve "
            f"({e.strerror}); set console.host (or GOALD_CONSOLE_HOST) to an address of this machine, "
            f"e.g. 127.0.0.1 or 0.0.0.0") from None
    except OverflowError:
        raise ConsoleStartError(f"console.port {port} is not a port (0..65535)") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(LISTEN_BACKLOG)
    except OSError as e:
        sock.close()
        raise ConsoleStartError(_bind_problem(host, port, e)) from None
    return sock


def _bind_problem(host: str, port: int, e: OSError) -> str:
    where = f"console address {host}:{port}"
    if e.errno == errno.EADDRINUSE:
        return f"{where} is in use; set console.port (or GOALD_CONSOLE_PORT) to a free port, or 0 for any"
    if e.errno == errno.EADDRNOTAVAIL:
        return (f"{where} cannot be bound: {host} is not an address of this machine; set console.host "
                f"(or GOALD_CONSOLE_HOST) to one of its addresses, e.g. 127.0.0.1 or 0.0.0.0")
    if e.errno == errno.EACCES:
        return (f"{where} cannot be bound: ports below 1024 need privileges goald should not have; set "
                f"console.port (or GOALD_CONSOLE_PORT) to 1024 or above")
    return f"{where} cannot be bound ({e.strerror}); check console.host and console.port"
class HttpServer:
    """The console's listener; `listener` is a socket from `bind()` (else `start()` binds)."""

    def __init__(self, app, host: str, port: int, listener: socket.socket | None = None):
        self.app, self.host, self.port = app, host, port
        self._listener = listener
        self._server: WSGIServer | None = None
        if listener is not None:
            self.port = listener.getsockname()[1]

    def start(self) -> None:
        listener, self._listener = self._listener, None
        if listener is None:
            listener = bind(self.host, self.port)
        server = NoDelayWSGIServer(listener, self.app, log=EventLog("DEBUG", "http.access"),
                                   error_log=EventLog("ERROR", "http.server_error"))
        try:
            server.start()
        except OSError as e:
            listener.close()
            raise ConsoleStartError(_bind_problem(self.host, self.port, e)) from None
        self._server = server
        self.port = server.server_port

    def stop(self, timeout_s: float = 5.0) -> None:
        if self._server is not None:
            self._server.stop(timeout=timeout_s)
            self._server = None
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def address(self) -> tuple[str, int]:
        return self.host, self.port
