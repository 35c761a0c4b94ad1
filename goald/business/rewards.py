"""Credits and XP: every grant is a `reward_ledger` row (balance before / after, reason,
reference) and the user's balance moves by it, in the same statement.

`grant_sql(ctes, grants_select)` wraps a query that yields the grants — rows of (user_id, currency, amount,
reason, reference) — into the CTEs that lock the users (FOR UPDATE: two instances granting to one
user take turns, so each row's balance_before is the balance it really follows), number each
user's grants so before / after chain within one statement, insert them (ON CONFLICT DO NOTHING
on the ledger's uniqueness rule: a grant that exists already is not made again) and add what was
inserted to the balances. The caller's statement puts it after its own CTEs and selects from
`granted` (the rows inserted). One round trip, however many users.
"""
from __future__ import annotations

REWARD_CTES = """
locked AS (
    SELECT u.id, u.credits, u.xp FROM app_users u
    WHERE u.id IN (SELECT user_id FROM grants) ORDER BY u.id FOR UPDATE),
chained AS (
    SELECT g.user_id, g.currency, g.amount, g.reason, g.reference,
           CASE g.currency WHEN 'credits' THEN l.credits ELSE l.xp END
           + coalesce(sum(g.amount) OVER (PARTITION BY g.user_id, g.currency ORDER BY g.reason, g.reference
                                          ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS before
    FROM grants g JOIN locked l ON l.id = g.user_id),
granted AS (
    INSERT INTO reward_ledger (user_id, currency, amount, balance_before, balance_after, reason, reference)
    SELECT user_id, currency, amount, before, before + amount, reason, reference FROM chained
    ON CONFLICT ON CONSTRAINT reward_ledger_once DO NOTHING
    RETURNING user_id, currency, amount),
balances AS (
    UPDATE app_users u
    SET credits = u.credits + s.credits, xp = u.xp + s.xp
    FROM (SELECT user_id, coalesce(sum(amount) FILTER (WHERE currency = 'credits'), 0) AS credits,
                 coalesce(sum(amount) FILTER (WHERE currency = 'xp'), 0) AS xp
          FROM granted GROUP BY user_id) s
    WHERE u.id = s.user_id
    RETURNING u.id)
"""


def grant_sql(ctes: str, grants_select: str, result: str = "count(*) FROM granted") -> str:
    """A whole statement: the caller's `ctes` (data-modifying ones included: they must sit at the
    top level), then the grants `grants_select` yields, made; it answers how many were made, or
    `result` (a select list that may count the caller's CTEs and `granted`)."""
    head = f"WITH {ctes}, " if ctes else "WITH "
    return f"{head}grants AS ({grants_select}),{REWARD_CTES}SELECT {result}"


def balance_mismatches(conn) -> list[tuple]:
    """Users whose balance is not the sum of their ledger: (user, currency, balance, ledger sum)."""
    with conn.cursor() as cur:
        cur.execute("""
            SELECT u.id, c.currency, CASE c.currency WHEN 'credits' THEN u.credits ELSE u.xp END,
                   coalesce((SELECT sum(amount) FROM reward_ledger l WHERE l.user_id = u.id AND l.currency = c.currency), 0)
            FROM app_users u CROSS JOIN (VALUES ('credits'), ('xp')) AS c(currency)
            WHERE CASE c.currency WHEN 'credits' THEN u.credits ELSE u.xp END
                  <> coalesce((SELECT sum(amount) FROM reward_ledger l WHERE l.user_id = u.id
                               AND l.currency = c.currency), 0)""")
        return cur.fetchall()
