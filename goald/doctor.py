"""`goald doctor`: the seeds' production-readiness checklist as a go / no-go.

Each check answers (name, ok, detail); any failed check is a no-go with its one line saying what
to do. `skipped` checks (nothing to check here: no systemd unit installed, no cache configured)
do not count against. The checks:

- `migrations`: every migration shipped with this goald is applied;
- `pool`: `database.pool_max` fits the server's max_connections (goald/capacity.py's
  recommendation: max_connections - 23, at most 80);
- `provider`: a provider is configured (not the demo feed), it answers with the configured
  credentials, and the breakers of a running goald (its /health/provider, or the process's own
  client on the console) are not open;
- `operator`: at least one console operator exists;
- `secrets`: a configuration file that holds a secret is readable by its owner only;
- `systemd`: an installed goald.service uses Type=notify with a WatchdogSec;
- `clock`: the kernel says the system clock is synchronised (ntp_adjtime), and the database
  server's clock is within 1 s of this host's (second offsets and several nodes depend on both);
- `cache`: Redis answers, when `cache.use_redis` is on.

Runs in the caller's greenlet; every check catches its own errors and reports them as its
detail, so the doctor itself never raises for what it examines.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import stat
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from goald import capacity, operators

UNIT_PATHS = ("/etc/systemd/system/goald.service", "/lib/systemd/system/goald.service",
              "/usr/lib/systemd/system/goald.service")
MAX_DB_CLOCK_SKEW_S = 1.0
TIME_ERROR = 5                 # ntp_adjtime(): the clock is not synchronised


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    skipped: bool = False


@dataclass(frozen=True)
class Report:
    checks: list[Check]
    at: float

    @property
    def go(self) -> bool:
        return all(c.ok or c.skipped for c in self.checks)

    def as_dict(self) -> dict:
        return {"go": self.go, "at": self.at, "checks": [asdict(c) for c in self.checks],
                "reasons": [f"{c.name}: {c.detail}" for c in self.checks if not (c.ok or c.skipped)]}


def run(cfg, pool, dsn: str, *, provider_state: Callable[[], dict] | None = None,
        probe_provider: bool = True) -> Report:
    """Every check. `provider_state`: the breakers and endpoints of a running client (the
    console's own); `probe_provider`: also make one provider call with the configured credentials."""
    checks = [_guard("migrations", lambda: _migrations(dsn)),
              _guard("pool", lambda: _pool(cfg, pool)),
              _guard("provider", lambda: _provider(cfg, provider_state, probe_provider)),
              _guard("operator", lambda: _operator(pool)),
              _guard("secrets", lambda: _secrets(cfg)),
              _guard("systemd", _systemd),
              _guard("clock", lambda: _clock(pool)),
              _guard("cache", lambda: _cache(cfg))]
    return Report(checks, time.time())


def render(report: Report) -> str:
    lines = []
    for c in report.checks:
        word = "skip " if c.skipped else ("go   " if c.ok else "NO-GO")
        lines.append(f"{word} {c.name}: {c.detail}")
    failed = [c for c in report.checks if not (c.ok or c.skipped)]
    lines.append("GO" if report.go else f"NO-GO ({len(failed)} reason{'s' if len(failed) != 1 else ''})")
    return "\n".join(lines)


def _guard(name: str, fn: Callable[[], tuple]) -> Check:
    try:
        ok, detail, *skipped = fn()
    except Exception as e:  # the doctor reports what it could not check; it never raises
        return Check(name, False, f"could not be checked: {type(e).__name__}: {str(e).strip().splitlines()[0]}")
    return Check(name, ok, detail, bool(skipped and skipped[0]))


def _migrations(dsn: str) -> tuple:
    from goald.migrations.runner import pending, shipped

    left = pending(dsn)
    if left:
        return False, (f"{len(left)} migration(s) not applied ({', '.join(f.path.name for f in left)}): "
                       f"run `goald migrate` (or start `goald run`)")
    return True, f"all {len(shipped())} applied"


def _pool(cfg, pool) -> tuple:
    with pool.connection(timeout_s=5.0) as conn:
        report = capacity.check(conn, cfg["database.pool_max"])
        conn.rollback()
    pool_max = cfg["database.pool_max"]
    if pool_max > report.recommended_pool_max:
        return False, (f"database.pool_max {pool_max} is above {report.recommended_pool_max} (the server's "
                       f"max_connections {report.max_connections} - {capacity.RESERVED_CONNECTIONS} reserved, at "
                       f"most {capacity.POOL_MAX_CEILING}): lower it, or raise max_connections")
    return True, (f"database.pool_max {pool_max} of max_connections {report.max_connections} "
                  f"(recommended at most {report.recommended_pool_max})")


def _provider(cfg, provider_state, probe: bool) -> tuple:
    if not cfg["provider.base_url"]:
        return False, "provider.base_url is empty: goald serves the built-in demo feed, not real data"
    problems, notes = [], []
    if probe:
        from goald.provider.client import ProviderClient
        from goald.provider.errors import ProviderError

        client = ProviderClient.from_config(cfg)
        try:
            got = client.detail_live()
            notes.append(f"answered match/detail_live ({len(got.items)} items)")
        except ProviderError as e:
            problems.append(f"match/detail_live failed: {e} (check provider.base_url, provider.user and "
                            f"provider.secret)")
        finally:
            client.close()
    if provider_state is not None:
        state = provider_state()
        opened = sorted(g for g, b in state.get("groups", {}).items() if b.get("state") == "open")
        if opened:
            problems.append(f"breaker open: {', '.join(opened)}")
        else:
            notes.append("breakers closed or half-open")
        if not probe:
            answered = sum(e.get("ok", 0) for e in state.get("endpoints", {}).values())
            calls = sum(e.get("calls", 0) for e in state.get("endpoints", {}).values())
            if calls and not answered:
                problems.append(f"none of its {calls} calls answered: check provider.base_url, provider.user and "
                                f"provider.secret")
            else:
                notes.append(f"{answered} of {calls} calls answered")
    if problems:
        return False, "; ".join(problems)
    return True, "; ".join(notes) or "configured"


def _operator(pool) -> tuple:
    with pool.connection(timeout_s=5.0) as conn:
        ops = operators.list_all(conn)
        conn.rollback()
    if not ops:
        return False, "no console operator: `goald operator add NAME` (or start `goald run` once, which makes admin)"
    admins = sum(o.role == "admin" for o in ops)
    return True, f"{len(ops)} operator(s), {admins} admin"


def _secrets(cfg) -> tuple:
    if cfg.path is None:
        return True, "no configuration file", True
    in_file = [r["name"] for r in cfg.as_rows() if r["secret"] and r["source"] == "file" and cfg[r["name"]]]
    if not in_file:
        return True, f"{cfg.path} holds no secret (they come from the environment or systemd credentials)"
    mode = stat.S_IMODE(os.stat(cfg.path).st_mode)
    if mode & 0o044:
        return False, (f"{cfg.path} holds {', '.join(in_file)} and is readable by others (mode {mode:04o}): "
                       f"`chmod 600 {cfg.path}`, or pass them as systemd credentials (docs/operations.md, Secrets)")
    return True, f"{cfg.path} holds {', '.join(in_file)}, mode {mode:04o}"


def _systemd(paths: tuple[str, ...] = UNIT_PATHS) -> tuple:
    unit = next((Path(p) for p in paths if Path(p).exists()), None)
    if unit is None:
        return True, "no goald.service installed: not run by systemd here", True
    keys: dict[str, str] = {}
    for line in unit.read_text().splitlines():
        k, sep, v = line.strip().partition("=")
        if sep and not k.startswith("#"):
            keys[k.strip()] = v.strip()
    problems = []
    if keys.get("Type") != "notify":
        problems.append(f"Type={keys.get('Type', '(unset)')} (goald tells systemd when it is ready: Type=notify)")
    if not keys.get("WatchdogSec") or keys.get("WatchdogSec") in ("0", "0s", "infinity"):
        problems.append("no WatchdogSec (a hung goald would never be restarted)")
    if problems:
        return False, f"{unit}: " + "; ".join(problems) + " (compare with systemd/goald.service)"
    return True, f"{unit}: Type=notify, WatchdogSec={keys['WatchdogSec']}"


class _Timex(ctypes.Structure):
    # struct timex (linux/timex.h): modes, offset, freq, maxerror, esterror, status, ... 11 reserved ints
    _fields_ = [("modes", ctypes.c_uint), ("offset", ctypes.c_long), ("freq", ctypes.c_long),
                ("maxerror", ctypes.c_long), ("esterror", ctypes.c_long), ("status", ctypes.c_int),
                ("constant", ctypes.c_long), ("precision", ctypes.c_long), ("tolerance", ctypes.c_long),
                ("time_sec", ctypes.c_long), ("time_usec", ctypes.c_long), ("tick", ctypes.c_long),
                ("ppsfreq", ctypes.c_long), ("jitter", ctypes.c_long), ("shift", ctypes.c_int),
                ("stabil", ctypes.c_long), ("jitcnt", ctypes.c_long), ("calcnt", ctypes.c_long),
                ("errcnt", ctypes.c_long), ("stbcnt", ctypes.c_long), ("tai", ctypes.c_int),
                ("reserved", ctypes.c_int * 11)]


def kernel_clock() -> tuple[bool | None, float | None]:
    """(synchronised, estimated error in ms) from ntp_adjtime(2), read-only; (None, None) where
    the call is not available."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        tx = _Timex()
        state = libc.ntp_adjtime(ctypes.byref(tx))
    except (OSError, AttributeError):
        return None, None
    if state < 0:
        return None, None
    return state != TIME_ERROR, tx.esterror / 1000.0


def _clock(pool) -> tuple:
    synced, err_ms = kernel_clock()
    with pool.connection(timeout_s=5.0) as conn, conn.cursor() as cur:
        before = time.time()
        cur.execute("SELECT extract(epoch FROM clock_timestamp())")
        server = float(cur.fetchone()[0])
        after = time.time()
        conn.rollback()
    skew = server - (before + after) / 2
    problems = []
    if synced is False:
        problems.append("the kernel says the system clock is not synchronised: start NTP (systemd-timesyncd, chrony)")
    if abs(skew) > MAX_DB_CLOCK_SKEW_S:
        problems.append(f"the database server's clock is {skew:+.1f} s from this host's (limit "
                        f"{MAX_DB_CLOCK_SKEW_S:g} s): synchronise both")
    if problems:
        return False, "; ".join(problems)
    kernel = "unknown (no ntp_adjtime)" if synced is None else f"synchronised (estimated error {err_ms:g} ms)"
    return True, f"system clock {kernel}; database clock {skew * 1000:+.0f} ms from this host's"


def _cache(cfg) -> tuple:
    if not cfg["cache.use_redis"]:
        return True, "memory cache (no Redis configured)", True
    import redis

    url = cfg["cache.redis_url"]
    client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3)
    try:
        client.ping()
    except redis.RedisError as e:
        return False, f"Redis at {cfg.display('cache.redis_url')} does not answer: {e}"
    finally:
        client.close()
    return True, f"Redis at {cfg.display('cache.redis_url')} answers"
