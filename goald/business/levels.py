"""XP levels (sql/0014_badges_levels.sql, `xp_levels`): a user's level is the highest level whose
`min_xp` is at most their XP (`app_users.xp`, the sum of their XP ledger rows); level 1 from 0 XP.
The seeded curve is min_xp = 50 * (level - 1) * level, levels 1..30.

The SQL fragments are what badge auto-unlock (goald/business/badges.py) uses for its `xp_level`
condition, so the rule lives here once. Functions run in the caller's greenlet on its connection
and only read.
"""
from __future__ import annotations


def level_of_sql(xp: str) -> str:
    """An SQL expression: the level of the XP amount `xp` (an SQL expression); NULL below level 1."""
    return f"(SELECT max(lv.level) FROM xp_levels lv WHERE lv.min_xp <= {xp})"


def min_xp_sql(level: str) -> str:
    """An SQL expression: the least XP that makes the level at least `level`; NULL when no such level."""
    return f"(SELECT min(lv.min_xp) FROM xp_levels lv WHERE lv.level >= {level})"


def progress(conn, user_id: int) -> dict | None:
    """{"xp", "level", "next_level", "next_level_xp"} of one user (next_* None at the top level);
    None for an unknown user."""
    with conn.cursor() as cur:
        cur.execute(f"""
            SELECT u.xp, l.level, n.level, n.min_xp
            FROM app_users u
            CROSS JOIN LATERAL (SELECT {level_of_sql('u.xp')} AS level) l
            LEFT JOIN LATERAL (SELECT level, min_xp FROM xp_levels WHERE min_xp > u.xp
                               ORDER BY min_xp LIMIT 1) n ON true
            WHERE u.id = %s""", (user_id,))
        row = cur.fetchone()
    if row is None:
        return None
    xp, level, next_level, next_xp = row
    return {"xp": xp, "level": level, "next_level": next_level, "next_level_xp": next_xp}
