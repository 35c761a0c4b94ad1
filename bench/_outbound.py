"""Local stand-ins for goald's outbound channels, for the benches: a push gateway that speaks the
Expo-style protocol of goald/business/push.py and a Telegram Bot API (`sendMessage`), each an
HTTP server on loopback in a thread of the bench's process, recording what reached it.

The gateway keeps the `idempotencyKey`s it has seen, as a relay that honours them does: a repeat
is acknowledged, not delivered again, and counted in `repeats`. Telegram has no such key: every
`sendMessage` is a message, and `replies` lists them all.
"""
import json
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _QuietServer(ThreadingHTTPServer):
    """A client killed mid-request (the bench does that) is not an error worth a traceback."""

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


class _Server:
    def __init__(self, handler_cls):
        self.lock = threading.Lock()
        outer = self

        class Handler(handler_cls):
            server_state = outer

            def log_message(self, *args):   # quiet
                pass

        self.httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.base = f"http://127.0.0.1:{self.httpd.server_port}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _Json(BaseHTTPRequestHandler):
    def body(self):
        return json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"null")

    def answer(self, code: int, doc) -> None:
        raw = json.dumps(doc).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)


class PushGateway(_Server):
    """POST /push/send: a list of messages in, one ticket per message out, after `latency_s` (a
    real gateway takes tens of milliseconds: a kill then often lands while goald waits for it)."""

    def __init__(self, latency_s: float = 0.0):
        self.delivered: Counter = Counter()     # idempotency key -> deliveries (1, or a bug)
        self.repeats = 0

        class Handler(_Json):
            def do_POST(self):
                state = self.server_state
                time.sleep(latency_s)
                tickets = []
                with state.lock:
                    for m in self.body():
                        key = m.get("idempotencyKey") or f"no-key:{m.get('to')}:{json.dumps(m.get('data'))}"
                        if key in state.delivered:
                            state.repeats += 1
                        else:
                            state.delivered[key] += 1
                        tickets.append({"status": "ok", "id": key})
                self.answer(200, {"data": tickets})

        super().__init__(Handler)
        self.url = f"{self.base}/push/send"


class TelegramApi(_Server):
    """POST /bot<token>/sendMessage: answers ok with a new message_id after `latency_s`; records
    every call."""

    def __init__(self, latency_s: float = 0.0):
        self.replies: list[dict] = []

        class Handler(_Json):
            def do_POST(self):
                state = self.server_state
                doc = self.body()
                time.sleep(latency_s)
                with state.lock:
                    state.replies.append(doc)
                    message_id = 10_000 + len(state.replies)
                self.answer(200, {"ok": True, "result": {"message_id": message_id, "chat": {"id": doc.get("chat_id")},
                                                         "text": doc.get("text")}})

        super().__init__(Handler)
        self.url = self.base
