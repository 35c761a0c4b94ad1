"""Match safety rules (DOMAIN.md, staleness and stuck matches): when a live match is stale or
frozen, what the watchdog's ladder does next, and when a match is still live long after it must
have ended.

Pure functions over a match's row (the columns `store.safety_rows` reads) and `now`; no I/O, no
clock of their own, never raising for a row the database holds. The jobs that act on them are in
actors/jobs/safety.py; the match actors apply what a reconcile brings (actors/match_actor.py).

**The ladder** (`stale_level`, kept in the row, so a restart or another node goes on with it):

    0 fresh ──stale──▶ 1 WARN ──still stale──▶ 2 forced reconcile ──still stale──▶ 3 ERROR
                 (each step one watchdog run later; any provider message for the match: back to 0)
    half-time for longer than freeze_after_s ──▶ 4 frozen: ERROR + reconcile (0 once it leaves half-time)

Stale means no provider message for `stale_after_s` (120 s), or `stale_after_half_time_s` (900 s)
at half-time: `last_event_ts` is when goald last ingested one (an unchanged message refreshes it
every SEEN_STAMP_S, goald/match/state.py), so a match the provider still reports is never stale.

**Stuck** (`stuck_deadline`): the latest second at which a match could plausibly still be in its
status, from its period's own kick-off (so a delayed kick-off or 14 minutes of stoppage never
count against it) and never earlier than DOMAIN.md's 150 minutes after `match_time` (210 with
extra time or penalties). Past it, the match is only a candidate: it is reconciled from the
provider and ended only when the provider has nothing newer. No rule here ends a match.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from goald.match.state import LIVE_STATUSES as LIVE

FRESH, WARNED, RECONCILED, ERRORED, FROZEN = 0, 1, 2, 3, 4
HALF_TIME = 3
STATUS_TEXT = {2: "the first half", 3: "half-time", 4: "the second half", 5: "extra time", 7: "the penalty shoot-out"}

MIN = 60
# How long after its own kick-off (or start) a status can last at most, generously: a half of 45
# minutes with up to 14 of stoppage (World Cup 2022) plus margin; half-time of 15 with long delays;
# both extra-time halves and their break; a shoot-out.
PHASE_LIMIT_S = {2: 75 * MIN, 3: 60 * MIN, 4: 75 * MIN, 5: 60 * MIN, 7: 45 * MIN}
# DOMAIN.md's floor, from the scheduled kick-off: "> 150 min after match_time in regulation, with
# allowance for overtime and penalties".
REGULATION_FLOOR_S = 150 * MIN
EXTRA_FLOOR_S = 210 * MIN


@dataclass(frozen=True)
class Step:
    """What the watchdog does to one match in this run."""

    action: str               # warn | reconcile | error | freeze | clear
    level: int                # the stale_level after it
    reason: str | None        # the stale_reason after it


def stale_limit(status_id: int, cfg) -> float:
    return cfg["match.stale_after_half_time_s"] if status_id == HALF_TIME else cfg["match.stale_after_s"]


def quiet_for(row: dict, now: float) -> float | None:
    """Seconds since goald last ingested a provider message for the match (None: never)."""
    last = row.get("last_event_ts")
    return None if last is None else now - last


def is_stale(row: dict, now: float, cfg) -> bool:
    quiet = quiet_for(row, now)
    return quiet is None or quiet > stale_limit(row["status_id"], cfg)


def half_time_for(row: dict, now: float) -> float | None:
    """Seconds at half-time so far (None: not at half-time, or when it began is unknown)."""
    if row["status_id"] != HALF_TIME:
        return None
    since = row.get("status_changed_ts") or row.get("last_minute_update_ts")
    return None if since is None else now - since


def stale_reason(row: dict, now: float, cfg) -> str:
    quiet = quiet_for(row, now)
    where = STATUS_TEXT.get(row["status_id"], f"status {row['status_id']}")
    if quiet is None:
        return f"no provider data yet in {where}"
    return (f"no provider data for {quiet:.0f} s in {where} "
            f"(at most {stale_limit(row['status_id'], cfg):.0f} s expected)")


def freeze_reason(row: dict, now: float) -> str:
    return f"frozen: half-time for {half_time_for(row, now) / MIN:.0f} min"


def step(row: dict, now: float, cfg) -> Step | None:
    """The ladder's next step for a match (live, or still flagged), or None: nothing to do."""
    level = row.get("stale_level") or FRESH
    if row["status_id"] not in LIVE:
        return Step("clear", FRESH, None) if level else None
    ht = half_time_for(row, now)
    if ht is not None and ht > cfg["match.freeze_after_s"]:
        return None if level == FROZEN else Step("freeze", FROZEN, freeze_reason(row, now))
    if level == FROZEN:
        # No longer frozen (it left half-time, or the half-time clock was reset): the ladder anew.
        level = FRESH
        if not is_stale(row, now, cfg):
            return Step("clear", FRESH, None)
    if not is_stale(row, now, cfg):
        return Step("clear", FRESH, None) if level else None
    reason = stale_reason(row, now, cfg)
    if level == FRESH:
        return Step("warn", WARNED, reason)
    if level == WARNED:
        return Step("reconcile", RECONCILED, reason)
    if level == RECONCILED:
        return Step("error", ERRORED, reason)
    return None      # ERRORED: logged once; the flag stays until data arrive


def stuck_deadline(row: dict) -> float | None:
    """The second after which a live match is a stuck candidate (None: not live)."""
    status = row["status_id"]
    if status not in LIVE:
        return None
    match_time = row.get("match_time") or 0
    floor = match_time + (EXTRA_FLOOR_S if status in (5, 7) else REGULATION_FLOOR_S)
    start = _phase_start(row)
    if start is None:
        return float(floor)
    return float(max(floor, start + PHASE_LIMIT_S[status]))


def _phase_start(row: dict) -> int | None:
    status = row["status_id"]
    if status == 2:
        return row.get("first_half_kickoff_ts")
    if status == 4:
        return row.get("second_half_kickoff_ts")
    if status == 5:
        return row.get("overtime_kickoff_ts")
    return row.get("status_changed_ts")      # half-time, the shoot-out: since the status began


def stuck_reason(row: dict, now: float) -> str:
    """`ended_reason` of a stuck match ended by goald: what it was, how long, and the evidence."""
    where = STATUS_TEXT.get(row["status_id"], f"status {row['status_id']}")
    since = _phase_start(row)
    parts = [f"stuck in {where}"]
    if since:
        parts.append(f"since {_utc(since)} ({(now - since) / MIN:.0f} min)")
    parts.append(f"{(now - (row.get('match_time') or now)) / MIN:.0f} min after the scheduled kick-off")
    evidence = row.get("provider_update_time")
    parts.append("the provider's reconcile had nothing newer than "
                 + (_utc(evidence) if evidence else "what goald held"))
    return ", ".join(parts)


def _utc(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts))
