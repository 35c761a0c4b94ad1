"""Console load generator for bench/tick_precision.py (a separate process, plain threads, no gevent).

`--clients` keep-alive HTTP/1.1 connections (http.client), each in its own thread, alternate
GET /health/pool (no database) and GET /api/health (one SELECT 1 through goald's pool) back to
back: a closed loop, as fast as goald answers, unless `--rps` paces the total rate. Prints
"ready" once every client has connected, runs until its standard input closes, then prints one
JSON line: requests, errors, achieved rate, and client-side latency p50/p99 per path.
"""
import argparse
import http.client
import json
import resource
import sys
import threading
import time

from _stats import percentile

PATHS = ("/health/pool", "/api/health")


def client(host, port, stop, interval, out, ready, failed):
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        conn.connect()
    except OSError as e:   # say so instead of leaving the parent waiting for "ready"
        failed.append(f"{host}:{port}: {e}")
        ready.release()
        return
    ready.release()
    lat = {p: [] for p in PATHS}
    errors, n, i = 0, 0, 0
    next_at = time.monotonic()
    while not stop.is_set():
        path = PATHS[i % 2]
        i += 1
        t0 = time.perf_counter()
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            resp.read()
            if resp.status != 200:
                errors += 1
        except (OSError, http.client.HTTPException):
            errors += 1
            conn.close()
            conn = http.client.HTTPConnection(host, port, timeout=10)
            time.sleep(0.01)
            continue
        lat[path].append(time.perf_counter() - t0)
        n += 1
        if interval:
            next_at += interval
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                next_at = time.monotonic()
    conn.close()
    out.append((n, errors, lat))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--rps", type=float, default=0.0, help="total requests/s (0: closed loop, no pacing)")
    args = ap.parse_args()
    stop = threading.Event()
    ready = threading.Semaphore(0)
    out: list = []
    failed: list = []
    interval = args.clients / args.rps if args.rps > 0 else 0.0
    threads = [threading.Thread(target=client, args=(args.host, args.port, stop, interval, out, ready, failed),
                                daemon=True)
               for _ in range(args.clients)]
    for t in threads:
        t.start()
    for _ in threads:
        ready.acquire()
    if failed:
        print(f"failed: {len(failed)} client(s) could not connect: {failed[0]}", flush=True)
        return 1
    started = time.monotonic()
    print("ready", flush=True)
    sys.stdin.read()
    stop.set()
    for t in threads:
        t.join(timeout=15)
    elapsed = time.monotonic() - started
    total = sum(n for n, _, _ in out)
    errors = sum(e for _, e, _ in out)
    lat = {p: [x for _, _, lt in out for x in lt[p]] for p in PATHS}
    ru = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({
        "requests": total, "errors": errors, "elapsed_s": round(elapsed, 2),
        "rps": round(total / elapsed, 1) if elapsed > 0 else 0.0, "clients": args.clients,
        "latency_ms": {p: {"p50": round(1000 * percentile(v, 0.5), 2), "p99": round(1000 * percentile(v, 0.99), 2)}
                       for p, v in lat.items() if v},
        "cpu_s": ru.ru_utime + ru.ru_stime,
    }), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
