"""`goald monitor-pool`: the seeds' 24-hour pool monitor (scripts/monitor-pool-health.ts) as a command.

    goald monitor-pool [--interval 60] [--duration 86400] [--url http://127.0.0.1:8080]
                       [--db-active-threshold 45] [--sustain 300] [--json]

Every `--interval` seconds it samples the running goald (`/health/pool`, `/health/cache` at
`--url`, by default console.host:console.port) and the database (a new connection each time:
active and total connections against max_connections, and whether the server refuses with
"too many clients"), prints one line, and an alert line when a threshold of the seeds is crossed:
- pool waiting queue > 5 (check for connection leaks);
- database active connections above `--db-active-threshold` for `--sustain` seconds (5 minutes);
- more than 3 "too many clients" refusals within an hour;
- cache hit rate below 50 % over an interval with at least 20 lookups (target: above 60 %);
- goald or the database not answering.
At the end (`--duration` over, or Ctrl-C) it prints a summary with the alerts and the seeds'
recommendation for each; exit 0 when no alert was raised, 1 otherwise. Runs in the main greenlet.
"""
from __future__ import annotations

import json
import signal
import time
from collections import Counter, deque
from dataclasses import dataclass, field

import psycopg2
import requests

from goald import exitcodes

POOL_WAITING_MAX = 5
TOO_MANY_CLIENTS_MAX_PER_HOUR = 3
CACHE_HIT_TRIGGER_PCT, CACHE_HIT_TARGET_PCT, CACHE_MIN_LOOKUPS = 50.0, 60.0, 20
RECOMMENDATIONS = {
    "pool_waiting": "Requests wait for connections: look for connection leaks (runs that hold a connection across "
                    "slow work) in /admin/runs, then consider a larger database.pool_max (goald check-db-capacity).",
    "db_active": "Many connections busy for minutes: optimize slow queries, look for long transactions "
                 "(pg_stat_activity), before adding connections.",
    "too_many_clients": "The server refused connections (too many clients): lower database.pool_max across the "
                        "nodes, or raise max_connections (goald check-db-capacity recommends a pool max).",
    "cache_hit_rate": "The cache misses more than it hits: raise the TTLs (cache.standings_ttl_s, cache.h2h_ttl_s) "
                      "or check that invalidations are not too broad.",
    "goald_down": "goald did not answer: systemctl status goald, journalctl -u goald.",
    "database_down": "The database did not answer: check the server, then goald's /api/ready.",
}


def add_parser(sub, common, epilog: str) -> None:
    import argparse

    p = sub.add_parser("monitor-pool", parents=[common], help="sample pool, database and cache; alert; summarize",
                       description=__doc__.split("\n\n")[1], epilog=epilog,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--interval", type=float, default=60.0, metavar="S", help="seconds between samples (default 60)")
    p.add_argument("--duration", type=float, default=86400.0, metavar="S", help="seconds in all (default 24 h)")
    p.add_argument("--url", help="the running goald's console (default: console.host and console.port)")
    p.add_argument("--db-active-threshold", type=int, default=45, metavar="N",
                   help="alert when more database connections than this are active ... (default 45)")
    p.add_argument("--sustain", type=float, default=300.0, metavar="S", help="... for this long (default 300 s)")
    p.add_argument("--json", action="store_true", help="the summary as JSON (sample lines still print)")


@dataclass
class Monitor:
    url: str
    dsn: str
    db_active_threshold: int
    sustain_s: float
    clock: callable = time.time
    samples: int = 0
    utilization: list = field(default_factory=list)
    max_waiting: int = 0
    max_db_active: int = 0
    alerts: Counter = field(default_factory=Counter)
    too_many: deque = field(default_factory=deque)
    _active_since: float | None = None
    _cache_prev: tuple[int, int] | None = None
    cache_hits: int = 0
    cache_lookups: int = 0

    def sample(self) -> list[str]:
        """One sample; returns the lines to print (the sample and its alerts)."""
        now = self.clock()
        self.samples += 1
        alerts, parts = [], []
        pool = self._get("/health/pool")
        if pool is None:
            alerts.append(self._alert("goald_down", f"goald at {self.url} did not answer /health/pool"))
        else:
            self.utilization.append(pool["utilization"])
            self.max_waiting = max(self.max_waiting, pool["waiting"])
            parts.append(f"pool {pool['utilization']:.0f}% (active {pool['active']}, idle {pool['idle']}, "
                         f"waiting {pool['waiting']}, total {pool['total']}/{pool['max']})")
            if pool["waiting"] > POOL_WAITING_MAX:
                alerts.append(self._alert("pool_waiting", f"Pool waiting queue {pool['waiting']} "
                                                          f"(trigger: >{POOL_WAITING_MAX})"))
        parts.append(self._database(now, alerts))
        cache = self._get("/health/cache")
        if cache is not None:
            hits = sum(k.get("hits", 0) for k in cache.get("kinds", {}).values())
            misses = sum(k.get("misses", 0) for k in cache.get("kinds", {}).values())
            if self._cache_prev is not None:
                dh, dm = hits - self._cache_prev[0], misses - self._cache_prev[1]
                self.cache_hits += max(0, dh)
                self.cache_lookups += max(0, dh + dm)
                if dh + dm >= CACHE_MIN_LOOKUPS:
                    rate = 100.0 * dh / (dh + dm)
                    parts.append(f"cache {rate:.0f}%")
                    if rate < CACHE_HIT_TRIGGER_PCT:
                        alerts.append(self._alert("cache_hit_rate", f"Cache hit rate low: {rate:.0f}% (target: "
                                                  f">{CACHE_HIT_TARGET_PCT:g}%, trigger: <{CACHE_HIT_TRIGGER_PCT:g}%)"))
            self._cache_prev = (hits, misses)
        stamp = time.strftime("%H:%M:%S", time.gmtime(now))
        return [f"{stamp} " + " · ".join(p for p in parts if p)] + [f"{stamp} ALERT {a}" for a in alerts]

    def _database(self, now: float, alerts: list[str]) -> str:
        try:
            conn = psycopg2.connect(self.dsn, connect_timeout=5, application_name="goald monitor-pool")
        except psycopg2.OperationalError as e:
            # "sorry, too many clients already" (max_connections), "too many connections for role /
            # database" (their CONNECTION LIMIT), "remaining connection slots are reserved"
            if "too many c" in str(e) or "remaining connection slots" in str(e):
                self.too_many.append(now)
                while self.too_many and self.too_many[0] < now - 3600:
                    self.too_many.popleft()
                if len(self.too_many) > TOO_MANY_CLIENTS_MAX_PER_HOUR:
                    alerts.append(self._alert("too_many_clients", f"Too many clients: {len(self.too_many)} "
                                              f"refusals in the last hour (trigger: >{TOO_MANY_CLIENTS_MAX_PER_HOUR})"))
                return "db refused: too many clients"
            alerts.append(self._alert("database_down", f"database did not answer: {str(e).strip().splitlines()[0]}"))
            return ""
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT count(*) FILTER (WHERE state = 'active'), count(*), "
                            "current_setting('max_connections')::int FROM pg_stat_activity")
                active, total, max_conn = cur.fetchone()
        finally:
            conn.close()
        active -= 1                                   # this monitor's own query
        self.max_db_active = max(self.max_db_active, active)
        if active > self.db_active_threshold:
            self._active_since = self._active_since if self._active_since is not None else now
            if now - self._active_since >= self.sustain_s:
                alerts.append(self._alert("db_active", f"DB active connections high: {active}/{max_conn} "
                                          f"(trigger: >{self.db_active_threshold} for {self.sustain_s:g}s)"))
        else:
            self._active_since = None
        return f"db active {active}, connections {total}/{max_conn}"

    def _get(self, path: str) -> dict | None:
        try:
            r = requests.get(self.url + path, timeout=5)
            return r.json() if r.status_code == 200 else None
        except (requests.RequestException, ValueError):
            return None

    def _alert(self, kind: str, text: str) -> str:
        self.alerts[kind] += 1
        return text

    def summary(self) -> dict:
        util = self.utilization
        return {"samples": self.samples,
                "pool_utilization_max": max(util) if util else None,
                "pool_utilization_mean": round(sum(util) / len(util), 1) if util else None,
                "pool_waiting_max": self.max_waiting, "db_active_max": self.max_db_active,
                "too_many_clients_last_hour": len(self.too_many),
                "cache_hit_rate": round(100.0 * self.cache_hits / self.cache_lookups, 1) if self.cache_lookups else None,
                "alerts": dict(self.alerts), "status": "HEALTHY" if not self.alerts else "ATTENTION",
                "recommendations": [RECOMMENDATIONS[k] for k in self.alerts]}


def cmd_monitor(args, open_database, fail, console_url) -> int:
    cfg, db, code = open_database(args)
    if db is None:
        return code
    dsn = db.dsn
    url = (args.url or console_url(cfg)).rstrip("/")
    if args.interval <= 0 or args.duration <= 0:
        fail("monitor-pool", "--interval and --duration must be positive seconds")
        db.close()
        return exitcodes.CONFIG
    m = Monitor(url, dsn, args.db_active_threshold, args.sustain)
    stop = {"now": False}
    previous = signal.signal(signal.SIGINT, lambda *_: stop.update(now=True))
    print(f"monitoring {url} and the database every {args.interval:g}s for {args.duration:g}s (Ctrl-C: summary now)",
          flush=True)
    try:
        end = time.monotonic() + args.duration
        while not stop["now"]:
            for line in m.sample():
                print(line, flush=True)
            wait = min(args.interval, end - time.monotonic())
            if wait <= 0:
                break
            deadline = time.monotonic() + wait
            while not stop["now"] and time.monotonic() < deadline:
                time.sleep(min(0.2, deadline - time.monotonic()))
    finally:
        signal.signal(signal.SIGINT, previous)
        db.close()
    s = m.summary()
    if args.json:
        print(json.dumps(s, indent=2))
    else:
        print(f"=== SUMMARY ({s['samples']} samples) ===")
        print(f"Max utilization: {s['pool_utilization_max']}%  mean {s['pool_utilization_mean']}%  max waiting "
              f"{s['pool_waiting_max']}  max DB active {s['db_active_max']}  too-many-clients (last hour) "
              f"{s['too_many_clients_last_hour']}  cache hit rate {s['cache_hit_rate']}%")
        for kind, n in s["alerts"].items():
            print(f"ALERT {kind}: {n}x — {RECOMMENDATIONS[kind]}")
        print(f"Status: {s['status']}")
    return exitcodes.OK if not m.alerts else exitcodes.CHECK_FAILED
