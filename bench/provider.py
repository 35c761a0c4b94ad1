"""The provider side's two speed targets, and the reason the breaker is not pybreaker's `call`.

1. **The simulator serving `match/detail_live`** for a day big enough that the answer holds at
   least 2,000 matches: `goald simulate` runs in its own process (as later benches will run it),
   and `--clients` keep-alive clients (wrk when installed, else requests sessions here) ask for
   detail_live back to back for `--seconds`. Reported: requests/s and latency percentiles of a
   whole answer, p50 and p95.
   Target: >= 50 requests/s, so that the simulator is never the bottleneck of later benches.
2. **Decoding with full validation vs plain `json.loads`** of the same detail_live bytes (one answer
   of that run): `goald.provider.decode.detail_live` (typed msgspec Structs, constraints, the
   relative-time checks) against `json.loads`, which checks nothing. Interleaved rounds, median
   per call. Reported: matches/s for both and the ratio decode / json.loads. Target: <= 1.0.
3. Informational: ten 0.5-s calls through one breaker, gevent greenlets: pybreaker's
   `CircuitBreaker.call` (holds its lock for the whole call: one at a time) next to goald's
   `Breaker` (admit / call / record): wall time for all ten.

Run:  python bench/provider.py [--matches N] [--clients N] [--seconds S] [--rounds N] [--json]
Exit status 1 when a target is missed.
"""
from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import gevent  # noqa: E402
import pybreaker  # noqa: E402
import requests  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _stats import percentile  # noqa: E402

from goald.provider import decode  # noqa: E402
from goald.provider.breaker import Breaker  # noqa: E402

SERVE_TARGET_RPS = 50.0
WRK_PERCENTILES = """
done = function(summary, latency, requests)
  for _, q in ipairs({50, 95}) do io.write(string.format("p%d %d\\n", q, latency:percentile(q))) end
end
"""
DECODE_TARGET_RATIO = 1.0


def start_simulator(matches: int) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "goald", "simulate", "--port", "0", "--matches", str(matches),
                             "--rate", "0", "--seed", "3", "--day-time", "19:00"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True)
    url = proc.stdout.readline().strip()
    if not url.startswith("http://"):
        proc.kill()
        raise SystemExit(f"goald simulate did not start (printed {url!r})")
    return proc, url


def serve(url: str, clients: int, seconds: float) -> dict:
    """wrk when it is installed (`apt-get install wrk`): the figure is then the simulator's, not a
    Python client's (reading a 10 MB body through requests costs more than serving it). Else
    `clients` requests sessions in greenlets here."""
    endpoint = f"{url}/v1/football/match/detail_live?user=demo&secret=demo"
    first = requests.get(endpoint, timeout=60)  # builds the day's caches
    body = first.content
    now = requests.get(f"{url}/sim/state", timeout=10).json()["now"]
    if shutil.which("wrk"):
        with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
            script.write(WRK_PERCENTILES)
            script.flush()
            out = subprocess.run(["wrk", f"-t{min(clients, 4)}", f"-c{clients}", f"-d{seconds:g}s", "-s", script.name,
                                  endpoint], capture_output=True, text=True, timeout=seconds + 60).stdout
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
        us = {q: int(v) for q, v in re.findall(r"^p(\d+) (\d+)$", out, re.MULTILINE)}
        return {"client": "wrk", "requests": int(re.search(r"(\d+) requests in", out).group(1)), "seconds": seconds,
                "rps": rps, "p50_ms": round(us["50"] / 1000, 1), "p95_ms": round(us["95"] / 1000, 1),
                "body_mb": round(len(body) / 1e6, 2), "body": body, "now": now}
    latencies: list[float] = []
    deadline = time.monotonic() + seconds

    def client():
        session = requests.Session()
        while time.monotonic() < deadline:
            started = time.monotonic()
            session.get(endpoint, timeout=30).content
            latencies.append(time.monotonic() - started)

    started = time.monotonic()
    gevent.joinall([gevent.spawn(client) for _ in range(clients)], raise_error=True)
    elapsed = time.monotonic() - started
    return {"client": "python requests (install wrk for the server's own figure)", "requests": len(latencies),
            "seconds": round(elapsed, 2), "rps": round(len(latencies) / elapsed, 1),
            "p50_ms": round(percentile(latencies, 0.5) * 1000, 1), "p95_ms": round(percentile(latencies, 0.95) * 1000, 1),
            "body_mb": round(len(body) / 1e6, 2), "body": body, "now": now}


def decoding(body: bytes, rounds: int, now: float) -> dict:
    page = decode.detail_live(body, now)
    n = len(page.items) + len(page.rejections)
    live = sum(1 for m in page.items if m.score.status_id in (2, 3, 4, 5, 7))
    dec, loads = [], []
    for i in range(rounds):
        order = ((dec, lambda: decode.detail_live(body, now)), (loads, lambda: json.loads(body)))
        for times, fn in (order if i % 2 == 0 else order[::-1]):
            started = time.perf_counter()
            fn()
            times.append(time.perf_counter() - started)
    d, j = statistics.median(dec), statistics.median(loads)
    return {"matches": n, "live": live, "rejections": len(page.rejections),
            "decode_ms": round(d * 1000, 2), "json_loads_ms": round(j * 1000, 2),
            "decode_matches_per_s": round(n / d), "json_loads_matches_per_s": round(n / j),
            "ratio": round(d / j, 3)}


def breakers() -> dict:
    def slow():
        gevent.sleep(0.5)

    plain = pybreaker.CircuitBreaker(fail_max=5, reset_timeout=120)
    started = time.monotonic()
    gevent.joinall([gevent.spawn(plain.call, slow) for _ in range(10)])
    plain_s = time.monotonic() - started

    ours = Breaker("bench")

    def through_ours():
        trial = ours.admit("bench")
        slow()
        ours.success(trial)

    started = time.monotonic()
    gevent.joinall([gevent.spawn(through_ours) for _ in range(10)])
    return {"pybreaker_call_s": round(plain_s, 2), "goald_breaker_s": round(time.monotonic() - started, 2)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--matches", type=int, default=11000, help="matches in the simulated day (default 11000: at "
                                                               "19:00 over 2,000 of them are in a live status)")
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    proc, url = start_simulator(args.matches)
    try:
        served = serve(url, args.clients, args.seconds)
    finally:
        proc.terminate()
        proc.wait(10)
    body = served.pop("body")
    decoded = decoding(body, args.rounds, served.pop("now"))  # the simulated day's time: kick-offs are checked against it
    breaker = breakers()
    ok_serve = served["rps"] >= SERVE_TARGET_RPS and decoded["live"] >= 2000
    ok_decode = decoded["ratio"] <= DECODE_TARGET_RATIO
    report = {"serve": served, "decode": decoded, "breaker": breaker,
              "pass": {"serve": ok_serve, "decode": ok_decode}}
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"simulator detail_live ({decoded['matches']} matches, {decoded['live']} in a live status, "
              f"{served['body_mb']} MB; {args.clients} clients, {served['seconds']} s)")
        print(f"  {served['client']}: {served['rps']} requests/s, p50 {served['p50_ms']} ms, p95 {served['p95_ms']} ms"
              f"    target >= {SERVE_TARGET_RPS:g} requests/s: {'PASS' if ok_serve else 'FAIL'}")
        print(f"decode + validate vs json.loads, same bytes (median of {args.rounds})")
        print(f"  goald decode  {decoded['decode_ms']} ms  {decoded['decode_matches_per_s']} matches/s")
        print(f"  json.loads    {decoded['json_loads_ms']} ms  {decoded['json_loads_matches_per_s']} matches/s")
        print(f"  ratio {decoded['ratio']}    target <= {DECODE_TARGET_RATIO:g}: {'PASS' if ok_decode else 'FAIL'}")
        print(f"ten 0.5-s calls through one breaker: pybreaker.call {breaker['pybreaker_call_s']} s, "
              f"goald Breaker {breaker['goald_breaker_s']} s")
    return 0 if ok_serve and ok_decode else 1


if __name__ == "__main__":
    sys.exit(main())
