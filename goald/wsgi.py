"""A gevent.pywsgi server tuned for keep-alive clients; shared by the console and the simulator.

gevent.pywsgi sends a response's headers and body in two writes; with Nagle's algorithm on,
every keep-alive request after the first waited ~40 ms for the client's delayed ACK. Each
connection is served in a greenlet of its own.
"""
from __future__ import annotations

import socket

from gevent.pywsgi import WSGIServer


class NoDelayWSGIServer(WSGIServer):
    def handle(self, sock, address):
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass  # not TCP (a Unix socket): nothing to tune
        super().handle(sock, address)
