"""Scheduled notifications and the push outbox (DOMAIN.md, "Scheduled notifications").

- `expand_due(conn, node, limit, lease_s)`: one statement claims the due notifications (pending
  with `scheduled_at <= now`, or `sending` whose lease ran out: a run killed mid-way is resumed,
  never left stuck), at most `limit`, FOR UPDATE SKIP LOCKED (two instances never take the same
  one), and queues one push message per recipient in `notification_outbox` (dedupe key
  `scheduled:<notification>:<user>`, so a resumed run queues nothing twice). Audiences: `all`
  (users with an active push token), `vip`, `free`, `segment` (the listed users).
- `claim_push(conn, node, limit, lease_s)`: one statement claims pending push messages (or ones
  whose lease ran out), with their recipients' active tokens.
- `finish_push(conn, results)`: one statement records each message sent / failed (or back to
  pending for a retry) and deactivates tokens the gateway called unregistered; a second, after
  the first committed, finishes every notification whose messages are all done (`sent` with
  recipients, successes and failures), including one a killed or concurrent sender left.
Functions run in the caller's greenlet on its connection and commit.
"""
from __future__ import annotations

import json

MAX_ATTEMPTS = 5

_EXPAND = """
WITH due AS (
    SELECT id FROM scheduled_notifications
    WHERE scheduled_at <= now()
      AND (status = 'pending' OR (status = 'sending' AND lease_until < now()))
    ORDER BY scheduled_at, id LIMIT %(limit)s FOR UPDATE SKIP LOCKED),
claimed AS (
    UPDATE scheduled_notifications n SET status = 'sending', claimed_by = %(node)s,
           lease_until = now() + make_interval(secs => %(lease_s)s)
    FROM due WHERE n.id = due.id
    RETURNING n.id, n.title, n.body, n.audience, n.segment),
queued AS (
    INSERT INTO notification_outbox (channel, kind, user_id, scheduled_id, dedupe_key, payload)
    SELECT 'push', 'scheduled', u.id, c.id, 'scheduled:' || c.id || ':' || u.id,
           jsonb_build_object('title', c.title, 'body', c.body, 'notification_id', c.id)
    FROM claimed c JOIN app_users u
      ON (c.audience = 'all' OR (c.audience = 'vip' AND u.is_vip) OR (c.audience = 'free' AND NOT u.is_vip)
          OR (c.audience = 'segment' AND u.id = ANY (c.segment)))
    WHERE EXISTS (SELECT 1 FROM push_tokens p WHERE p.user_id = u.id AND p.active)
    ON CONFLICT (dedupe_key) DO NOTHING
    RETURNING scheduled_id)
SELECT (SELECT count(*) FROM claimed), (SELECT count(*) FROM queued)
"""

# The claim of an outbox channel's due messages (push here, telegram in telegram_settle.py): the
# CTEs `due` and `claimed` (id, user_id, payload, attempts, dedupe_key), parameters %(channel)s,
# %(limit)s, %(lease_s)s. Pending rows, or `sending` ones whose lease ran out (their sender was
# killed), in id order, FOR UPDATE SKIP LOCKED: two senders never hold the same row; each claim
# counts in `attempts`.
OUTBOX_CLAIM_CTES = """
due AS (
    SELECT id FROM notification_outbox
    WHERE channel = %(channel)s AND (status = 'pending' OR (status = 'sending' AND lease_until < now()))
    ORDER BY id LIMIT %(limit)s FOR UPDATE SKIP LOCKED),
claimed AS (
    UPDATE notification_outbox o SET status = 'sending', claimed_at = now(), attempts = o.attempts + 1,
           lease_until = now() + make_interval(secs => %(lease_s)s)
    FROM due WHERE o.id = due.id
    RETURNING o.id, o.user_id, o.payload, o.attempts, o.dedupe_key)"""

_CLAIM_PUSH = "WITH" + OUTBOX_CLAIM_CTES + """
SELECT c.id, c.payload, c.attempts, c.dedupe_key,
       coalesce((SELECT array_agg(p.token ORDER BY p.id) FROM push_tokens p WHERE p.user_id = c.user_id AND p.active),
                '{}')
FROM claimed c ORDER BY c.id
"""

_FINISH_PUSH = """
WITH results AS (
    SELECT * FROM jsonb_to_recordset(%(results)s::jsonb) AS r(id bigint, outcome text, error text)),
done AS (
    UPDATE notification_outbox o
    SET status = CASE WHEN r.outcome = 'sent' THEN 'sent'
                      WHEN r.outcome = 'retry' AND o.attempts < %(max_attempts)s THEN 'pending'
                      ELSE 'failed' END,
        sent_at = CASE WHEN r.outcome = 'sent' THEN now() END,
        error = r.error, lease_until = NULL
    FROM results r WHERE o.id = r.id AND o.status = 'sending'
    RETURNING o.scheduled_id),
gone AS (
    UPDATE push_tokens SET active = false WHERE token = ANY (%(unregistered)s::text[]) AND active
    RETURNING 1)
SELECT (SELECT count(*) FROM done), (SELECT count(*) FROM gone)
"""

# Its own statement, after the results are committed: a statement sees only what was committed
# when it began, so two senders recording the last messages of one notification at the same
# moment would each see the other's as unfinished, and a finishing step inside their statements
# would leave it `sending` for ever. The later of two sweeps begins after both commits and sees
# them; a sweep that loses the race for a row finds it `sent` already and leaves it. A sender
# killed between the two is made good by the next run's sweep.
_FINISH_NOTIFICATIONS = """
UPDATE scheduled_notifications n
SET status = 'sent', recipients = s.total, successes = s.sent, failures = s.failed, sent_at = now(),
    lease_until = NULL
FROM (SELECT o.scheduled_id, count(*) AS total, count(*) FILTER (WHERE o.status = 'sent') AS sent,
             count(*) FILTER (WHERE o.status = 'failed') AS failed
      FROM notification_outbox o
      WHERE o.scheduled_id IN (SELECT id FROM scheduled_notifications WHERE status = 'sending')
      GROUP BY o.scheduled_id) s
WHERE n.id = s.scheduled_id AND n.status = 'sending' AND s.sent + s.failed = s.total
"""


_FINISH_EMPTY = """
UPDATE scheduled_notifications n
SET status = 'sent', recipients = 0, successes = 0, failures = 0, sent_at = now(), lease_until = NULL
WHERE n.status = 'sending' AND n.claimed_by = %(node)s
  AND NOT EXISTS (SELECT 1 FROM notification_outbox o WHERE o.scheduled_id = n.id)
"""


def expand_due(conn, node: str, limit: int, lease_s: float) -> dict:
    """Claim due notifications and queue their messages; one with no recipient at all is finished
    at once (sent to 0). Two statements."""
    with conn.cursor() as cur:
        cur.execute(_EXPAND, {"node": node, "limit": limit, "lease_s": lease_s})
        claimed, queued = cur.fetchone()
        cur.execute(_FINISH_EMPTY, {"node": node})
        empty = cur.rowcount
    conn.commit()
    return {"claimed": claimed, "queued": queued, "empty": empty}


def claim_push(conn, limit: int, lease_s: float) -> list[dict]:
    """Push messages to send now: [{"id", "payload", "attempts", "dedupe_key", "tokens"}]."""
    with conn.cursor() as cur:
        cur.execute(_CLAIM_PUSH, {"channel": "push", "limit": limit, "lease_s": lease_s})
        rows = [{"id": i, "payload": p, "attempts": a, "dedupe_key": k, "tokens": list(t)}
                for i, p, a, k, t in cur.fetchall()]
    conn.commit()
    return rows


def finish_push(conn, results: list[dict], unregistered: list[str]) -> dict:
    """`results`: [{"id", "outcome": sent | failed | retry, "error"}]; `unregistered`: tokens to
    deactivate. Records them, then finishes every notification whose messages are all done (two
    statements, two commits). Returns {"recorded", "tokens_deactivated", "notifications_finished"}."""
    with conn.cursor() as cur:
        cur.execute(_FINISH_PUSH, {"results": json.dumps(results), "unregistered": unregistered,
                                   "max_attempts": MAX_ATTEMPTS})
        recorded, gone = cur.fetchone()
        conn.commit()
        cur.execute(_FINISH_NOTIFICATIONS)
        finished = cur.rowcount
    conn.commit()
    return {"recorded": recorded, "tokens_deactivated": gone, "notifications_finished": finished}
