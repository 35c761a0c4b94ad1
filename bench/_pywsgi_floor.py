"""The floor of bench/api_latency.py: goald's own WSGI server (goald/wsgi.py NoDelayWSGIServer,
gevent.pywsgi) answering every request with one fixed, already-compressed body (a file:
goald's own gzip answer for a standings table) and no application at all. What it reaches at 100 clients is the most any endpoint behind that server
can reach on this machine.

Run:  python bench/_pywsgi_floor.py PORT GZIP_BODY_FILE
"""
from gevent import monkey

monkey.patch_all()

import sys  # noqa: E402

from goald.wsgi import NoDelayWSGIServer  # noqa: E402


def main() -> None:
    port = int(sys.argv[1])
    with open(sys.argv[2], "rb") as f:
        body = f.read()
    headers = [("Content-Type", "application/json"), ("Content-Encoding", "gzip"),
               ("Content-Length", str(len(body)))]

    def app(environ, start_response):
        start_response("200 OK", headers)
        return [body]
    NoDelayWSGIServer(("127.0.0.1", port), app, log=None).serve_forever()


if __name__ == "__main__":
    main()
