"""`goald kpi`: the seeds' before/after stagger analysis, read from the run ledger.

Owns the KPI report over a half-open window [since, until) of job_runs.scheduled_at,
job_lock_skips.scheduled_at and pool_samples.sampled_at: per-job outcomes, durations, offsets and
lock skips; how many runs overlapped at once, and how many of them held a database connection at
once; the second-of-minute the runs started at; same-job overlaps; pool utilization. `render_text`
turns the report into the operator's table with the seeds' KPI thresholds marked.

Concurrent DB jobs (`peak_db_concurrent`, "using the database" in the text) is the most runs that
held at least one pooled connection at the same instant, from the connection-held stretches each
run records (job_runs.db_spans, migration 0004; a stretch counts within its run's start and end):
a 19 s run that writes once at its end is a DB job for those few milliseconds, not for 19 s. Rows
whose db_spans is NULL (written before 0004) keep the older approximation: the whole run counts
when it issued queries (queries_issued > 0). db_spans '{}' is a run that never touched the
database. Same key as before 0004, when it counted whole runs for every row.

Read-only: SELECTs only, in one READ ONLY repeatable-read snapshot when the connection is idle on
entry (that transaction is rolled back at the end). Counts and percentiles are SQL aggregates; the
concurrency figures come from one pass over the started runs streamed in start order (a
server-side cursor: memory holds only the runs still open). A run's stretches are parsed and swept
only where it overlaps another run (alone, a run can only make the DB figure 1), so a million-row
ledger takes seconds.
"""
from __future__ import annotations

import heapq
import re
from bisect import bisect_right
from collections import Counter
from datetime import UTC, datetime, timedelta

from psycopg2.extensions import LONGINTEGERARRAY, TRANSACTION_STATUS_IDLE

OUTCOMES = ("running", "succeeded", "failed", "timed_out", "skipped_overlap", "skipped_lock",
            "skipped_disabled", "missed", "interrupted")           # job_runs' CHECK list
STARTED = ("succeeded", "failed", "timed_out", "interrupted")      # a run that started and ended
TOTALS = ("succeeded", "failed", "timed_out", "interrupted", "missed")
# The seeds' KPI THRESHOLDS: (target, alert). Pool: pass below the target; concurrent jobs:
# pass at most the target; alert above the alert level; warn in between.
POOL_AVG, POOL_MAX, CONCURRENT = (40.0, 60.0), (50.0, 70.0), (1, 3)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_WINDOW = "scheduled_at >= %(since)s AND scheduled_at < %(until)s"
_STARTED_SQL = f"outcome IN ({', '.join(repr(o) for o in STARTED)})"
_FINISHED = f"{_STARTED_SQL} AND duration_ms IS NOT NULL"

JOBS_SQL = f"""
SELECT job, {", ".join(f"count(*) FILTER (WHERE outcome = '{o}')" for o in OUTCOMES)},
       avg(duration_ms) FILTER (WHERE {_FINISHED}),
       percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms) FILTER (WHERE {_FINISHED}),
       max(duration_ms) FILTER (WHERE {_FINISHED}),
       count(*) FILTER (WHERE staggered AND {_STARTED_SQL}),
       array_agg(DISTINCT offset_s ORDER BY offset_s)
FROM job_runs WHERE {_WINDOW} GROUP BY job"""

LOCK_SKIPS_SQL = f"SELECT job, count(*) FROM job_lock_skips WHERE {_WINDOW} GROUP BY job"

# The started runs in start order, times in µs since the epoch (exact, cheap to compare). A run
# occupies [started_at, end); one still 'running' ends at min(until, now). db_spans comes as text,
# parsed only for the runs that overlap another (see _held).
RUNS_SQL = f"""
SELECT (extract(epoch FROM started_at) * 1000000)::int8,
       (extract(epoch FROM CASE WHEN outcome = 'running'
                                THEN greatest(started_at, least(%(until)s, now()))
                                ELSE coalesce(finished_at, started_at + duration_ms * interval '1 millisecond',
                                              started_at) END) * 1000000)::int8,
       job, db_spans::text, coalesce(queries_issued, 0) > 0
FROM job_runs WHERE {_WINDOW} AND started_at IS NOT NULL ORDER BY started_at"""
SWEEP_BATCH = 20_000
SECOND, MINUTE = 1_000_000, 60_000_000
US = {"second": SECOND, "minute": MINUTE}

# The max is the pool's high-water mark between samples (peak_utilization, since migration 0003),
# so bursts shorter than the sampling interval count; the mean and p95 are of the samples themselves.
PEAK = "greatest(utilization, coalesce(peak_utilization, 0))"
POOL_SQL = f"""
SELECT count(*), avg(utilization), max({PEAK}),
       percentile_cont(0.95) WITHIN GROUP (ORDER BY utilization), max(waiting),
       (SELECT sampled_at FROM pool_samples WHERE sampled_at >= %(since)s AND sampled_at < %(until)s
        ORDER BY {PEAK} DESC, sampled_at LIMIT 1)
FROM pool_samples WHERE sampled_at >= %(since)s AND sampled_at < %(until)s"""

_DURATION = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
TIME_EXAMPLE = "ISO-8601 like 2024-05-01 or 2024-05-01T12:00:00Z (naive = UTC), or a duration ago like 15m, 24h, 7d"


class WindowError(ValueError):
    """A bad --since/--until; the message names the option and shows an example."""


def parse_time(value: str, option: str, now: datetime) -> datetime:
    """ISO-8601 date or datetime (naive = UTC), or `<n>s|m|h|d|w` meaning now minus that."""
    text = value.strip()
    m = _DURATION.match(text.lower())
    if m:
        return now - timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        raise WindowError(f"{option} {value!r} is not a time: use {TIME_EXAMPLE}") from None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def parse_window(since: str | None, until: str | None, now: datetime | None = None):
    """(since, until) from the options; defaults: the last 24 hours up to now."""
    now = now or datetime.now(UTC)
    start = parse_time(since, "--since", now) if since else now - timedelta(hours=24)
    end = parse_time(until, "--until", now) if until else now
    if start >= end:
        raise WindowError(f"--since {_iso(start)} is not before --until {_iso(end)}: the window is "
                          f"empty (e.g. --since 24h --until 1h)")
    return start, end


def analyse(conn, since: datetime, until: datetime) -> dict:
    """The KPI report for runs scheduled in [since, until) (see the module docstring)."""
    params = {"since": _aware(since), "until": _aware(until)}
    own_tx = not conn.autocommit and conn.get_transaction_status() == TRANSACTION_STATUS_IDLE
    try:
        with conn.cursor() as cur:
            if own_tx:
                cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            jobs = _jobs(cur, params)
            report = {"window": {"since": _iso(params["since"]), "until": _iso(params["until"])},
                      "jobs": jobs}
            report.update(_concurrency(conn, params, jobs))
            report["pool"] = _pool(cur, params)
            report["totals"] = _totals(jobs)
        return report
    finally:
        if own_tx:
            conn.rollback()


def _jobs(cur, params) -> list[dict]:
    cur.execute(LOCK_SKIPS_SQL, params)
    skips = dict(cur.fetchall())
    cur.execute(JOBS_SQL, params)
    by_job = {row[0]: _job(row[0], dict(zip(OUTCOMES, row[1:10])), skips.get(row[0], 0), *row[10:])
              for row in cur.fetchall()}
    for job in skips.keys() - by_job.keys():  # lock-skipped everywhere: no ledger row here
        by_job[job] = _job(job, dict.fromkeys(OUTCOMES, 0), skips[job])
    return [by_job[j] for j in sorted(by_job)]


def _job(job: str, outcomes: dict, lock_skips: int, mean=None, p95=None, top=None, staggered=0,
         offsets=()) -> dict:
    runs = sum(outcomes[o] for o in STARTED)
    return {"job": job, "runs": runs, "outcomes": outcomes,
            "success_rate": _pct(outcomes["succeeded"], runs),
            "duration_ms": {"mean": _ms(mean), "p95": _ms(p95), "max": _ms(top)},
            "lock_skips": lock_skips, "staggered_runs": staggered, "offsets": list(offsets)}


def _held(s: int, e: int, spans: str | None, queried: bool) -> list[int]:
    """When a run held a connection, flattened [start, end, ...] in time order: its db_spans as
    recorded (disjoint, in order; else sorted and merged), or the whole run for a NULL db_spans
    with queries (module docstring). Parts outside [s, e) are left to the callers to clip."""
    if spans is None:
        return [s, e] if queried else []
    flat = LONGINTEGERARRAY(spans, None)
    if len(flat) % 2 == 0 and flat == sorted(flat):
        return flat
    merged: list[int] = []
    for a, b in sorted(pair for pair in zip(flat[0::2], flat[1::2]) if pair[0] < pair[1]):
        if merged and a <= merged[-1]:
            merged[-1] = max(merged[-1], b)
        else:
            merged += [a, b]
    return merged


def _cover(flat: list[int], w0: int, w1: int, out: list) -> None:
    """Push the non-empty parts of `flat` inside [w0, w1) onto the heap `out`, as (start, end)."""
    for i in range(bisect_right(flat, w0) // 2 * 2, len(flat), 2):
        a, b = flat[i], flat[i + 1]
        if a >= w1:
            break
        if a < b:
            heapq.heappush(out, (a if a > w0 else w0, b if b < w1 else w1))


class _Leader:
    """The open run ending last, once another run overlapped it: what it held, and up to when
    its parts are pushed already."""
    __slots__ = ("e", "flat", "covered")

    def __init__(self, e: int, flat: list[int], covered: int):
        self.e, self.flat, self.covered = e, flat, covered

    def cover(self, w0: int, w1: int, out: list) -> None:
        start = max(w0, self.covered)
        if start < w1:
            self.covered = w1
            _cover(self.flat, start, w1, out)


class _Sweep:
    """One pass over the started runs in start order. A heap of the end times of the runs still
    open; a run ending exactly when another starts is no overlap. Starts per second and per minute
    are runs of equal buckets, since the stream is ordered.

    DB concurrency can exceed 1 only where two or more runs are open, so only there are the runs'
    connection-held parts swept, exactly (a heap of parts waiting for their start, a heap of the
    held parts' ends); elsewhere a run alone makes 1, first at the earliest instant any run held a
    connection. Covering a run over [w0, w1) pushes its parts there. When a run arrives while
    others are open, all of those but the one ending last (the leader) are covered to their ends
    already; the newcomer and the leader are covered to the earlier of their two ends, and the one
    ending later leads. Runs arrive in start order and hold connections only within their own run,
    so a waiting part is swept once the stream has passed its start."""

    def __init__(self):
        self.open: list[int] = []
        self.leader: tuple | _Leader | None = None    # the open run ending last (tuple: lone so far)
        self.pieces: list[tuple[int, int]] = []       # (start, end) not swept yet
        self.held: list[int] = []                     # ends of the pieces being held
        self.first_held: int | None = None
        self.open_by_job: dict[str, list[int]] = {}
        self.peak = dict.fromkeys(("all", "db", "second", "minute"), (0, None))   # (n, at µs)
        self.bucket = dict.fromkeys(US, (None, 0))                                 # (bucket, n)
        self.same_job_pairs = 0
        self.seconds = Counter()

    def add(self, s: int, e: int, job: str, spans: str | None, queried: bool) -> None:
        second = s // SECOND
        self._count_start("second", second, SECOND)
        self._count_start("minute", s // MINUTE, MINUTE)
        self.seconds[second % 60] += 1
        if e <= s:
            return                      # zero length: occupies no instant
        if self.pieces and self.pieces[0][0] <= s:
            self._sweep_held(s)
        _expire(self.open, s)
        if self.first_held is None or s < self.first_held:
            self._first_held(s, e, spans, queried)
        if self.open:
            self._overlap(s, e, spans, queried)
        else:
            self.leader = (s, e, spans, queried)
        heapq.heappush(self.open, e)
        if len(self.open) > self.peak["all"][0]:
            self.peak["all"] = (len(self.open), s)
        mine = self.open_by_job.setdefault(job, [])
        _expire(mine, s)
        self.same_job_pairs += len(mine)
        heapq.heappush(mine, e)

    def finish(self) -> None:
        if self.pieces:
            self._sweep_held(max(a for a, _ in self.pieces))
        if self.peak["db"][0] < 2:
            self.peak["db"] = (0, None) if self.first_held is None else (1, self.first_held)

    def _first_held(self, s: int, e: int, spans: str | None, queried: bool) -> None:
        parts: list[tuple[int, int]] = []
        _cover(_held(s, e, spans, queried), s, e, parts)
        if parts and (self.first_held is None or parts[0][0] < self.first_held):
            self.first_held = parts[0][0]

    def _overlap(self, s: int, e: int, spans: str | None, queried: bool) -> None:
        leader = self.leader
        if isinstance(leader, tuple):                  # lone until now: covered nowhere yet
            leader = _Leader(leader[1], _held(*leader), leader[0])
        until = min(e, leader.e)
        leader.cover(s, until, self.pieces)
        flat = _held(s, e, spans, queried)
        _cover(flat, s, until, self.pieces)
        self.leader = _Leader(e, flat, until) if e > leader.e else leader

    def _sweep_held(self, until: int) -> None:
        pieces, held, peak = self.pieces, self.held, self.peak["db"][0]
        while pieces and pieces[0][0] <= until:
            a, b = heapq.heappop(pieces)
            while held and held[0] <= a:
                heapq.heappop(held)
            heapq.heappush(held, b)
            if len(held) > peak:
                peak = len(held)
                self.peak["db"] = (peak, a)

    def _count_start(self, unit: str, bucket: int, size: int) -> None:
        last, n = self.bucket[unit]
        n = n + 1 if bucket == last else 1
        self.bucket[unit] = (bucket, n)
        if n > self.peak[unit][0]:
            self.peak[unit] = (n, bucket * size)


def _expire(heap: list[int], now: int) -> None:
    while heap and heap[0] <= now:
        heapq.heappop(heap)


def _concurrency(conn, params, jobs) -> dict:
    sweep = _Sweep()
    # A server-side cursor streams the runs (memory: the open runs only); it needs a transaction.
    with (conn.cursor() if conn.autocommit else conn.cursor("goald_kpi_runs")) as cur:
        cur.itersize = SWEEP_BATCH
        cur.execute(RUNS_SQL, params)
        for s, e, job, spans, queried in cur:
            sweep.add(s, e, job, spans, queried)
    sweep.finish()
    names = {"all": "peak_concurrent", "db": "peak_db_concurrent",
             "second": "peak_starts_per_second", "minute": "peak_starts_per_minute"}
    concurrency = {}
    for kind, name in names.items():
        n, at = sweep.peak[kind]
        concurrency.update({name: n, f"{name}_at": _iso(_from_us(at))})
    return {
        "concurrency": concurrency,
        "start_seconds": {str(s): sweep.seconds[s] for s in sorted(sweep.seconds)},
        "distinct_start_seconds": len(sweep.seconds),
        "overlaps": {"same_job_pairs": sweep.same_job_pairs,
                     "skipped_overlap": sum(j["outcomes"]["skipped_overlap"] for j in jobs)},
    }


def _pool(cur, params) -> dict:
    cur.execute(POOL_SQL, params)
    samples, mean, top, p95, waiting, at_max = cur.fetchone()
    return {"samples": samples, "utilization_mean": _ms(mean), "utilization_max": _ms(top),
            "utilization_p95": _ms(p95), "waiting_max": waiting, "at_max": _iso(at_max)}


def _totals(jobs: list[dict]) -> dict:
    totals = {"runs": sum(j["runs"] for j in jobs)}
    totals.update({o: sum(j["outcomes"][o] for j in jobs) for o in TOTALS})
    totals["skipped_lock"] = sum(j["lock_skips"] for j in jobs)
    totals["success_rate"] = _pct(totals["succeeded"], totals["runs"])
    return totals


def _from_us(us: int | None) -> datetime | None:
    return None if us is None else EPOCH + timedelta(microseconds=us)


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _iso(t: datetime | None) -> str | None:
    return None if t is None else _aware(t).astimezone(UTC).isoformat()


def _ms(value) -> float | None:
    return None if value is None else round(float(value), 1)


def _pct(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 1) if whole else None


# --- text ---------------------------------------------------------------------------------------

def _threshold(label: str, value, unit: str, limits, *, strict: bool = True) -> str:
    """One KPI line: pass under the target (at most the target when not strict), ALERT above the
    alert level, warn between; n/a without data."""
    target, alert = limits
    if value is None:
        mark = "n/a"
    elif value < target or (not strict and value == target):
        mark = "pass"
    else:
        mark = "warn" if value <= alert else "ALERT"
    shown = "-" if value is None else f"{value:.1f}{unit}" if unit else str(value)
    goal = f"target {'<' if strict else ''}{target:g}{unit}, alert >{alert:g}{unit}"
    return f"  [{mark}]{' ' * (6 - len(mark))}{label:<24} {shown:>7}   {goal}"


def _job_row(j: dict, width: int) -> str:
    d, rate = j["duration_ms"], j["success_rate"]
    nums = [f"{v:.1f}" if v is not None else "-" for v in (d["mean"], d["p95"], d["max"])]
    seen = [f"{o} {n}" for o, n in j["outcomes"].items() if n]
    seen += [f"lock_skips {j['lock_skips']}"] if j["lock_skips"] else []
    ok = f"{rate:.1f}%" if rate is not None else "-"
    return (f"{j['job']:<{width}} {j['runs']:>7} {ok:>7} {nums[0]:>9} {nums[1]:>9} {nums[2]:>9}  "
            + ", ".join(seen))


def _table(report: dict) -> list[str]:
    t = report["totals"]
    width = max([len("total")] + [len(j["job"]) for j in report["jobs"]])
    head = f"{'job':<{width}} {'runs':>7} {'ok %':>7} {'mean ms':>9} {'p95 ms':>9} {'max ms':>9}  outcomes"
    rows = [_job_row(j, width) for j in report["jobs"]] or ["(no runs in this window)"]
    rate = f"{t['success_rate']:.1f}%" if t["success_rate"] is not None else "-"
    total = (f"{'total':<{width}} {t['runs']:>7} {rate:>7}  failed {t['failed']}, timed_out {t['timed_out']}, "
             f"interrupted {t['interrupted']}, missed {t['missed']}, lock skips {t['skipped_lock']}")
    return [head, *rows, total]


def _spread(report: dict) -> list[str]:
    c, o = report["concurrency"], report["overlaps"]
    hist = "  ".join(f":{int(s):02d} ×{n}" for s, n in report["start_seconds"].items()) or "-"
    return [(f"concurrent jobs peak {c['peak_concurrent']} at {c['peak_concurrent_at'] or '-'}; using the "
             f"database {c['peak_db_concurrent']} at {c['peak_db_concurrent_at'] or '-'}"),
            (f"starts peak {c['peak_starts_per_second']}/s at {c['peak_starts_per_second_at'] or '-'}; "
             f"{c['peak_starts_per_minute']}/min at {c['peak_starts_per_minute_at'] or '-'}"),
            f"same-job overlaps {o['same_job_pairs']}; skipped_overlap {o['skipped_overlap']}",
            f"start seconds ({report['distinct_start_seconds']} distinct)  {hist}"]


def _pool_line(p: dict) -> str:
    if not p["samples"]:
        return "pool utilization: no samples in this window"
    return (f"pool utilization mean {p['utilization_mean']:.1f}% max {p['utilization_max']:.1f}% "
            f"({p['samples']} samples); p95 {p['utilization_p95']:.1f}%; max at {p['at_max']}; "
            f"waiting max {p['waiting_max']}")


def render_text(report: dict) -> str:
    """The operator's view: per-job table, concurrency and start seconds, pool, KPI marks."""
    w, p = report["window"], report["pool"]
    peak = report["concurrency"]["peak_concurrent"] or None      # no runs: n/a, not a pass
    return "\n".join([
        f"goald kpi: runs scheduled from {w['since']} to {w['until']}", "",
        *_table(report), "", *_spread(report), _pool_line(p), "", "seeds' KPI thresholds:",
        _threshold("pool utilization mean", p["utilization_mean"], "%", POOL_AVG),
        _threshold("pool utilization max", p["utilization_max"], "%", POOL_MAX),
        _threshold("concurrent jobs (peak)", peak, "", CONCURRENT, strict=False)])
