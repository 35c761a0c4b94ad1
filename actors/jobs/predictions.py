"""The AI prediction jobs (DOMAIN.md, "Business jobs": prediction matcher, prediction results).

| job | schedule | what |
| --- | --- | --- |
| `prediction_matcher` | every 5 minutes at :25 | unmatched pending predictions linked to their match (names, time window) with a confidence, or left unmatched with a reason; given up (void) a day after they were made |
| `prediction_results` | every minute at :51 | matched pending predictions settled won / lost (void when the score cannot exist) once their match reached the state the market needs |

Each run is one statement (goald/business/predictions_match.py, predictions_results.py) on at
most `predictions.batch_size` predictions, claimed FOR UPDATE SKIP LOCKED: two instances at once
take different predictions, and a settlement or a match happens once (the statements' own
`WHERE status = 'pending'` / `match_id IS NULL`). A run that changed something invalidates the
cached GET /api/predictions answers (`ctx.cache`, kind `predictions`), on this node and, through
the cache's listener, on the others. Bodies run in their job actor's run greenlet; an exception
fails the run (nothing of it is kept: one statement) and the next occurrence tries again.
"""
from __future__ import annotations

import time

from goald import logs
from goald.actors.catalog import JobSpec
from goald.actors.schedule import Schedule
from goald.business import predictions_match, predictions_results

CACHE_KIND, CACHE_SCOPE = "predictions", "list"


def _now(ctx) -> float:
    return ctx.matches.clock() if ctx.matches is not None else time.time()


def invalidate(ctx) -> None:
    """Drop the cached prediction answers (every filter variant), here and on the other nodes."""
    if ctx.cache is not None and CACHE_KIND in ctx.cache.kinds:
        ctx.cache.invalidate(CACHE_KIND, CACHE_SCOPE)


def prediction_matcher(ctx) -> dict:
    cfg = ctx.config
    with ctx.connection() as conn:
        out = predictions_match.match_batch(
            conn, _now(ctx), batch=cfg["predictions.batch_size"], window_s=cfg["predictions.match_window_s"],
            retry_s=cfg["predictions.match_retry_s"], give_up_after_s=cfg["predictions.give_up_after_s"],
            min_confidence=cfg["predictions.min_confidence"])
    if out["matched"] or out["given_up"]:
        invalidate(ctx)
    if out["given_up"]:
        logs.event("INFO", "predictions.given_up", f"{out['given_up']} AI predictions found no match within "
                   f"{cfg['predictions.give_up_after_s']:g}s of being made: void", count=out["given_up"])
    return out


def prediction_results(ctx) -> dict:
    with ctx.connection() as conn:
        out = predictions_results.settle_batch(conn, _now(ctx), ctx.config["predictions.batch_size"])
    if any(out.values()):
        invalidate(ctx)
    return out


JOBS = [
    JobSpec("prediction_matcher", prediction_matcher, Schedule(cron="*/5 * * * *", offset_s=25), timeout_s=240,
            description="AI predictions linked to their match (normalised names, time window) with a confidence, "
                        "or left unmatched with a reason", timeout_env="PREDICTION_MATCHER_TIMEOUT_MS"),
    JobSpec("prediction_results", prediction_results, Schedule(cron="* * * * *", offset_s=51), timeout_s=50,
            description="Matched pending AI predictions settled won / lost / void from their match's scores",
            timeout_env="PREDICTION_RESULTS_TIMEOUT_MS"),
]
