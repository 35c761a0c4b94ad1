"""The match safety jobs: the watchdog's ladder and the stuck-match check (goald/match/safety.py
has the rules; this module acts on them).

| job | schedule | what |
| --- | --- | --- |
| `match_watchdog` | every 30 s (+13 s) | stale and frozen live matches: WARN → forced reconcile → ERROR, `stale_reason` for the API |
| `stuck_matches` | every 10 minutes at :10 | live matches past their deadline: reconciled; ended only when the provider has nothing newer |

Both read the database (shared by every node, so a restart or another node goes on with the
ladder where it was), run in their job actor's run greenlet, and reconcile through the match's
actor (`Reconcile`, asked with `MatchPipeline.ask`): the actor reads the row first and applies
the provider's object under the same optimistic lock as every update, so a reconcile never
writes over newer state. At most `match.watchdog_concurrency` reconciles run at once. A provider
error fails one reconcile, never the run: it is counted (`reconcile_failed`), logged sampled, and
that match is not ended (no evidence). The ladder's writes are guarded by what was read
(`store.set_stale`): a provider message ingested meanwhile wins.
"""
from __future__ import annotations

import time

import gevent.pool
import pykka

from goald import logs
from goald.actors.catalog import JobSpec
from goald.actors.match_actor import Reconcile
from goald.actors.schedule import Schedule
from goald.match import safety, store
from goald.match.state import LIVE_STATUSES
from goald.provider.errors import ProviderError

RECONCILE_TIMEOUT_S = 10.0


def reconcile(ctx, ids: list[str], end_reasons: dict[str, str] | None = None) -> dict[str, str]:
    """Fetch each match from the provider (`match/recent/list?uuid=`) and hand it to its actor,
    `match.watchdog_concurrency` at a time: match id → the actor's answer (actors/match_actor.py
    Reconcile), or `provider_failed` / `timeout` / `no_actor`."""
    end_reasons = end_reasons or {}
    results: dict[str, str] = {}

    def one(mid: str) -> None:
        ctx.check_cancelled()
        try:
            decoded = ctx.provider.match(mid)
        except ProviderError as e:
            results[mid] = "provider_failed"
            ctx.matches.sampler.log("WARNING", "match.reconcile_failed", (e.reason,),
                                    f"Match {mid}: reconcile failed: {e}; nothing changed", match_id=mid,
                                    reason=e.reason)
            return
        obj = next((m for m in decoded.items if m.id == mid), None)
        timeout = RECONCILE_TIMEOUT_S
        if ctx.deadline is not None:
            timeout = max(0.5, min(timeout, ctx.deadline - time.time() - 0.5))
        try:
            answer = ctx.matches.ask(mid, Reconcile(obj, ctx.matches.clock(), end_reasons.get(mid)), timeout)
        except pykka.Timeout:
            answer = "timeout"
        results[mid] = answer or "no_actor"

    group = gevent.pool.Pool(ctx.config["match.watchdog_concurrency"])
    for mid in ids:
        group.spawn(one, mid)
    group.join(raise_error=True)
    return results


def match_watchdog(ctx) -> dict:
    """One run of the ladder over every live (or still flagged) match."""
    now = ctx.matches.clock()
    cfg = ctx.config
    with ctx.connection() as conn:
        rows = store.safety_rows(conn, sorted(LIVE_STATUSES))
        conn.rollback()
    steps = {r["id"]: (r, s) for r in rows if (s := safety.step(r, now, cfg)) is not None}
    to_reconcile = [mid for mid, (r, s) in steps.items() if s.action in ("reconcile", "freeze")]
    answers = reconcile(ctx, to_reconcile) if to_reconcile else {}
    writes = []
    counts = {"checked": len(rows), "warned": 0, "reconciled": 0, "reconcile_newer": 0, "reconcile_failed": 0,
              "errors": 0, "frozen": 0, "cleared": 0}
    for mid, (r, s) in steps.items():
        answer = answers.get(mid)
        if s.action == "reconcile" and answer == "newer":
            counts["reconcile_newer"] += 1     # fresh data: the writer clears the flag with its write
            continue
        if answer in ("provider_failed", "timeout", "no_actor"):
            counts["reconcile_failed"] += 1
        writes.append({"id": mid, "stale_level": s.level, "stale_reason": s.reason, "stale_since": int(now),
                       "seen_event_ts": r["last_event_ts"], "seen_level": r["stale_level"], "_step": s,
                       "_row": r, "_answer": answer})
    if writes:
        with ctx.connection() as conn:
            done = store.set_stale(conn, [{k: v for k, v in w.items() if not k.startswith("_")} for w in writes])
            conn.commit()
        if done:
            ctx.matches.changes.bump()     # stale_reason is in the answers
        for w in writes:
            if w["id"] in done:
                _log_step(ctx, w["_row"], w["_step"], w["_answer"], now, counts)
    return counts


def _log_step(ctx, row: dict, step: safety.Step, answer: str | None, now: float, counts: dict) -> None:
    mid = row["id"]
    fields = {"match_id": mid, "status_id": row["status_id"], "provider_update_time": row["provider_update_time"],
              "last_event_ts": row["last_event_ts"], "stale_level": step.level}
    if step.action == "warn":
        counts["warned"] += 1
        logs.event("WARNING", "match.stale", f"Match {mid}: stale: {step.reason}", stale_reason=step.reason,
                   **fields)
    elif step.action == "reconcile":
        counts["reconciled"] += 1
        logs.event("WARNING", "match.stale_reconciled", f"Match {mid}: still stale; reconciled from the provider "
                   f"({answer}): {step.reason}", stale_reason=step.reason, reconcile=answer, **fields)
    elif step.action == "error":
        counts["errors"] += 1
        logs.event("ERROR", "match.stale_error", f"Match {mid}: still stale after a reconcile: {step.reason}",
                   stale_reason=step.reason, stale_since=row.get("stale_since"), **fields)
    elif step.action == "freeze":
        counts["frozen"] += 1
        logs.event("ERROR", "match.frozen", f"Match {mid}: {step.reason}; reconciled from the provider ({answer})",
                   stale_reason=step.reason, reconcile=answer,
                   half_time_s=round(safety.half_time_for(row, now) or 0), **fields)
    elif step.action == "clear":
        counts["cleared"] += 1


def stuck_matches(ctx) -> dict:
    """Live matches past their deadline (goald/match/safety.py stuck_deadline): each reconciled,
    and ended with its reason only when the provider's object has nothing newer."""
    now = ctx.matches.clock()
    with ctx.connection() as conn:
        rows = [r for r in store.safety_rows(conn, sorted(LIVE_STATUSES)) if r["status_id"] in LIVE_STATUSES]
        conn.rollback()
    candidates = {r["id"]: r for r in rows if (d := safety.stuck_deadline(r)) is not None and now > d}
    reasons = {mid: safety.stuck_reason(r, now) for mid, r in candidates.items()}
    answers = reconcile(ctx, list(candidates), reasons) if candidates else {}
    counts = {"live": len(rows), "candidates": len(candidates), "ended": 0, "newer": 0, "unchanged": 0,
              "reconcile_failed": 0}
    for mid, answer in answers.items():
        if answer == "ended":
            counts["ended"] += 1
        elif answer == "newer":
            counts["newer"] += 1
        elif answer in ("unchanged", "gone"):
            counts["unchanged"] += 1
        else:
            counts["reconcile_failed"] += 1
            logs.event("WARNING", "match.stuck_unresolved",
                       f"Match {mid}: live past its deadline, but the reconcile had no answer ({answer}); "
                       f"not ended", match_id=mid, status_id=candidates[mid]["status_id"], reconcile=answer)
    return counts


JOBS = [
    JobSpec("match_watchdog", match_watchdog, Schedule(every_s=30, offset_s=13), timeout_s=25,
            description="Stale and frozen live matches: WARN, forced reconcile, ERROR; stale_reason for clients",
            timeout_env="MATCH_WATCHDOG_TIMEOUT_MS", leader_only=True),
    JobSpec("stuck_matches", stuck_matches, Schedule(cron="*/10 * * * *", offset_s=10), timeout_s=300,
            description="Live matches long past their end: reconciled, ended only when the provider has nothing newer",
            timeout_env="STUCK_MATCHES_TIMEOUT_MS", leader_only=True),
]
