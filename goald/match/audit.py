"""`goald audit matches`: the match invariants that can be checked after the fact, one query each.

Read-only; runs in the caller's greenlet on an open connection (the CLI's). Each check is one
statement returning the violating matches with a readable detail; `run` returns them all, in the
order of `CHECKS` and by match id. What the database already enforces on every write (a kick-off
written once, provider_update_time never going backwards: the trigger of sql/0006) cannot be
violated and is not re-checked here.
"""
from __future__ import annotations

from dataclasses import dataclass

from goald.match.state import LIVE_STATUSES

_LIVE = "(" + ", ".join(str(s) for s in sorted(LIVE_STATUSES)) + ")"

# name → (what it checks, the query: rows of (match id, detail)); `%(now)s` is the audit's time.
CHECKS: dict[str, tuple[str, str]] = {
    "live_without_kickoff": (
        "a match in a running half has that half's kick-off",
        """SELECT id, 'status ' || status_id || ' without the kick-off of its half' FROM matches
           WHERE (status_id = 2 AND first_half_kickoff_ts IS NULL)
              OR (status_id = 4 AND second_half_kickoff_ts IS NULL)
              OR (status_id = 5 AND overtime_kickoff_ts IS NULL)"""),
    "kickoffs_in_order": (
        "each half kicked off after the one before it",
        """SELECT id, 'kick-offs out of order: ' || concat_ws(' / ', first_half_kickoff_ts, second_half_kickoff_ts,
                  overtime_kickoff_ts, overtime_second_kickoff_ts) FROM matches
           WHERE second_half_kickoff_ts <= first_half_kickoff_ts OR overtime_kickoff_ts <= second_half_kickoff_ts
              OR overtime_second_kickoff_ts <= overtime_kickoff_ts"""),
    "minute_in_range": (
        "the minute lies within its status's range and its text says it (a running half whose kick-off is "
        "known has a minute; a break or a half first seen without its kick-off keeps none)",
        f"""SELECT id, 'status ' || status_id || ' (' || period || ') with minute ' || coalesce(minute::text, 'NULL')
                   || coalesce('+' || added_minute, '') || ' and text ' || quote_literal(minute_text) FROM matches
            WHERE (status_id = 2 AND NOT (minute BETWEEN 1 AND 45))
               OR (status_id = 4 AND NOT (minute BETWEEN 46 AND 90))
               OR (status_id = 5 AND NOT (minute BETWEEN 91 AND 120))
               OR (minute IS NULL AND ((period = 'first_half' AND first_half_kickoff_ts IS NOT NULL)
                   OR (period = 'second_half' AND second_half_kickoff_ts IS NOT NULL)
                   OR (period = 'extra_time_first' AND overtime_kickoff_ts IS NOT NULL)
                   OR (period = 'extra_time_second' AND overtime_second_kickoff_ts IS NOT NULL)))
               OR (added_minute IS NOT NULL AND (added_minute < 1 OR minute NOT IN (45, 90, 105, 120)))
               OR (period IN ('first_half', 'second_half', 'extra_time_first', 'extra_time_second')
                   AND minute IS NOT NULL
                   AND minute_text <> minute || coalesce('+' || added_minute, '') || '''')
               OR (status_id = 3 AND minute_text <> 'HT') OR (status_id = 8 AND minute_text <> 'FT')"""),
    "score_parts": (
        "the display score follows from its parts (half-time within regular time, overtime including it)",
        """SELECT id, 'score ' || home_display || '-' || away_display || ': regular ' || home_regular || '-' || away_regular
                  || ', half-time ' || home_half_time || '-' || away_half_time
                  || ', overtime ' || home_overtime || '-' || away_overtime FROM matches
           WHERE home_half_time > home_regular OR away_half_time > away_regular
              OR (home_overtime > 0 AND home_overtime < home_regular) OR (away_overtime > 0 AND away_overtime < away_regular)
              OR home_display <> CASE WHEN home_overtime > 0 THEN home_overtime ELSE home_regular END
              OR away_display <> CASE WHEN away_overtime > 0 THEN away_overtime ELSE away_regular END"""),
    "ended_with_evidence": (
        "an ended match was ended by the provider, or by goald with its reason",
        """SELECT id, CASE WHEN status_id = 8 THEN 'ended without a reason, the provider said status '
                                || coalesce(provider_status_id, status_id)
                           ELSE 'status ' || status_id || ' with an ended_reason' END FROM matches
           WHERE (status_id = 8 AND ended_reason IS NULL AND coalesce(provider_status_id, status_id) <> 8)
              OR (status_id <> 8 AND ended_reason IS NOT NULL)"""),
    "stale_flag_fresh": (
        "a stale flag is only on a match whose data are delayed",
        f"""SELECT id, 'stale_level ' || stale_level || ' (' || coalesce(stale_reason, 'no reason') || ')'
                   || CASE WHEN status_id NOT IN {_LIVE} THEN ' on a match no longer live (status ' || status_id || ')'
                           WHEN stale_level = 4 THEN ' at status ' || status_id
                           ELSE ', but a provider message came ' || (last_event_ts - stale_since) || ' s after it was set'
                      END FROM matches
            WHERE (stale_level = 0) <> (stale_reason IS NULL)
               OR (stale_level > 0 AND status_id NOT IN {_LIVE} AND stale_since < %(now)s - 120)
               OR (stale_level = 4 AND status_id <> 3)
               OR (stale_level BETWEEN 1 AND 3 AND last_event_ts >= stale_since)"""),
}


@dataclass(frozen=True)
class Violation:
    check: str
    match_id: str
    detail: str

    def line(self) -> str:
        return f"match {self.match_id}: {self.check}: {self.detail}"


def run(conn, now: float) -> tuple[int, list[Violation]]:
    """(matches checked, the violations)."""
    out = []
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM matches")
        checked = cur.fetchone()[0]
        for name, (_, query) in CHECKS.items():
            cur.execute(query + " ORDER BY 1", {"now": int(now)})
            out.extend(Violation(name, mid, detail) for mid, detail in cur.fetchall())
    return checked, out
