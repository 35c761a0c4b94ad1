"""Telegram settlement (goald/business/telegram_settle.py, telegram.py, actors/jobs/telegram.py)
against a local Telegram Bot API server that records sendMessage calls and fails on demand."""
import json
import socket
import time

import gevent
import gevent.event
import pytest
from gevent.pywsgi import WSGIHandler, WSGIServer

from goald import config, logs
from goald.actors.context import JobContext
from goald.actors.jobs import telegram as job
from goald.actors.ledger import Occurrence
from goald.business import telegram, telegram_settle
from support import sql

TOKEN = "7654321:AAH-secret-bot-token-xyz"


class _NoDelay(WSGIHandler):
    """Answers without Nagle's delay (status line and body are two writes: 40 ms each otherwise)."""

    def handle(self):
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().handle()


class BotApi:
    """The Bot API on loopback. `plan`: answers to give, in order, before answering ok again:
    "500", "429:<retry_after>", "400" (ok: false), "timeout" (answers after 1.5 s)."""

    def __init__(self):
        self.sent: list[dict] = []          # the messages it accepted
        self.requests = 0
        self.paths: list[str] = []
        self.plan: list[str] = []
        self.always = None                  # an answer given to every request
        self.server = WSGIServer(("127.0.0.1", 0), self.app, log=None, handler_class=_NoDelay)
        self.server.start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def app(self, environ, start):
        self.requests += 1
        self.paths.append(environ["PATH_INFO"])
        body = json.loads(environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0)))
        mode = self.always or (self.plan.pop(0) if self.plan else "ok")
        if environ["PATH_INFO"] != f"/bot{TOKEN}/sendMessage":
            mode = "401"
        if mode == "timeout":
            gevent.sleep(1.5)
            mode = "ok"                     # it took the message, but too late for the client
        if mode == "500":
            start("500 Internal Server Error", [("Content-Type", "text/plain")])
            return [b"oops"]
        if mode.startswith("429"):
            start("429 Too Many Requests", [("Content-Type", "application/json")])
            return [json.dumps({"ok": False, "error_code": 429, "description": "Too Many Requests: retry later",
                                "parameters": {"retry_after": float(mode.split(":")[1])}}).encode()]
        if mode in ("400", "401"):
            start(f"{mode} Bad Request", [("Content-Type", "application/json")])
            return [json.dumps({"ok": False, "error_code": int(mode),
                                "description": "Bad Request: chat not found"}).encode()]
        self.sent.append(body)
        start("200 OK", [("Content-Type", "application/json")])
        return [json.dumps({"ok": True, "result": {"message_id": 9000 + len(self.sent),
                                                   "chat": {"id": body["chat_id"]}}}).encode()]

    def stop(self):
        self.server.stop()


@pytest.fixture
def api():
    a = BotApi()
    yield a
    a.stop()
    telegram._breakers.clear()          # a later test's server may get this port


def run(pool, api=None, **env):
    if api is not None:
        env = {"GOALD_TELEGRAM_BOT_TOKEN": TOKEN, "GOALD_TELEGRAM_API_URL": api.url, "GOALD_TELEGRAM_RETRIES": "0",
               "GOALD_TELEGRAM_TIMEOUT_S": "0.5", **env}
    ctx = JobContext(occurrence=Occurrence("telegram_settlement", time.time()), pool=pool,
                     config=config.load(None, env, search=False), node="t", cancel=gevent.event.Event())
    return job.telegram_settlement(ctx), ctx.queries


def match(dsn, mid, status, ft=(0, 0), ht=(0, 0), second_half=True, **extra):
    cols = {"id": mid, "status_id": status, "match_time": 1_700_000_000, "home_regular": ft[0],
            "away_regular": ft[1], "home_half_time": ht[0], "away_half_time": ht[1],
            "second_half_kickoff_ts": 1_700_003_600 if second_half else None, **extra}
    sql(dsn, f"INSERT INTO matches ({', '.join(cols)}) VALUES ({', '.join(['%s'] * len(cols))})", tuple(cols.values()))


def post(dsn, mid, markets, message_id=None, channel="@tips"):
    message_id = message_id or abs(hash((mid, tuple(markets)))) % 10_000_000
    pid = sql(dsn, "INSERT INTO telegram_posts (channel_id, message_id, match_id, text) VALUES (%s, %s, %s, 'tips') "
                   "RETURNING id", (channel, message_id, mid))[0][0]
    sql(dsn, "INSERT INTO telegram_picks (post_id, market) SELECT %s, unnest(%s::text[])", (pid, markets))
    return pid


def picks(dsn, pid):
    return dict((m, (o, r)) for m, o, r in sql(dsn, "SELECT market, outcome, void_reason FROM telegram_picks "
                                                    "WHERE post_id = %s", (pid,)))


def post_row(dsn, pid):
    return sql(dsn, "SELECT status, reply_attempts, reply_message_id, last_error FROM telegram_posts WHERE id = %s",
               (pid,))[0]


ALL = ["btts", "over_1_5", "over_2_5", "over_3_5", "ht_over_0_5", "ht_over_1_5", "home_win", "draw", "away_win"]


def test_each_market_settles_won_or_lost_from_regular_time_and_the_half_time_score(pool, db_dsn, api):
    match(db_dsn, "m1", 8, ft=(2, 1), ht=(0, 0))
    # 1-1 after 90 minutes, 2-1 after extra time: the full-time markets see 1-1.
    match(db_dsn, "m2", 8, ft=(1, 1), ht=(1, 0), home_overtime=2, away_overtime=1, finished_after="extra_time")
    p1, p2 = post(db_dsn, "m1", ALL), post(db_dsn, "m2", ALL)
    out, _ = run(pool, api)
    assert out["posts_settled"] == 2 and out["picks_void"] == 0 and out["sent"] == 2, out
    lost, won = ("lost", None), ("won", None)
    assert picks(db_dsn, p1) == {"btts": won, "over_1_5": won, "over_2_5": won, "over_3_5": lost,
                                 "ht_over_0_5": lost, "ht_over_1_5": lost, "home_win": won, "draw": lost,
                                 "away_win": lost}
    assert picks(db_dsn, p2) == {"btts": won, "over_1_5": won, "over_2_5": lost, "over_3_5": lost,
                                 "ht_over_0_5": won, "ht_over_1_5": lost, "home_win": lost, "draw": won,
                                 "away_win": lost}
    texts = {m["reply_parameters"]["message_id"]: m["text"] for m in api.sent}
    first = texts[sql(db_dsn, "SELECT message_id FROM telegram_posts WHERE id = %s", (p1,))[0][0]]
    assert first.startswith("Full time: Home 2-1 Away (HT 0-0)")
    assert "✅ Both teams to score" in first and "❌ Half-time over 0.5 goals" in first
    assert "settled on regular time" in texts[sql(db_dsn, "SELECT message_id FROM telegram_posts WHERE id = %s",
                                                  (p2,))[0][0]]


def test_a_half_time_of_0_0_loses_ht_over_0_5_and_1_0_wins_it_never_void(pool, db_dsn, api):
    match(db_dsn, "goalless_ht", 8, ft=(1, 0), ht=(0, 0))
    match(db_dsn, "one_nil_ht", 8, ft=(1, 0), ht=(1, 0))
    p0, p1 = post(db_dsn, "goalless_ht", ["ht_over_0_5"]), post(db_dsn, "one_nil_ht", ["ht_over_0_5"])
    run(pool, api)
    assert picks(db_dsn, p0) == {"ht_over_0_5": ("lost", None)}
    assert picks(db_dsn, p1) == {"ht_over_0_5": ("won", None)}


def test_a_match_that_can_never_be_completed_voids_only_what_was_not_decided(pool, db_dsn, api):
    match(db_dsn, "cancelled", 12, second_half=False)
    match(db_dsn, "abandoned_2h", 11, ft=(1, 0), ht=(1, 0))            # cut in half in the second half
    match(db_dsn, "abandoned_1h", 11, ft=(1, 0), ht=(1, 0), second_half=False)
    pc = post(db_dsn, "cancelled", ["btts", "ht_over_0_5", "home_win"])
    p2 = post(db_dsn, "abandoned_2h", ["ht_over_0_5", "ht_over_1_5", "over_1_5", "home_win"])
    p1 = post(db_dsn, "abandoned_1h", ["ht_over_0_5", "ht_over_1_5", "btts"])
    run(pool, api)
    assert picks(db_dsn, pc) == {m: ("void", "match cancelled") for m in ("btts", "ht_over_0_5", "home_win")}
    assert picks(db_dsn, p2) == {"ht_over_0_5": ("won", None), "ht_over_1_5": ("lost", None),
                                 "over_1_5": ("void", "match abandoned before full time"),
                                 "home_win": ("void", "match abandoned before full time")}
    assert picks(db_dsn, p1) == {"ht_over_0_5": ("won", None),       # the first half's goal decided it
                                 "ht_over_1_5": ("void", "match abandoned before half time"),
                                 "btts": ("void", "match abandoned before full time")}
    cancelled = next(m["text"] for m in api.sent if m["text"].startswith("Cancelled"))
    assert "➖ Home win: void (match cancelled)" in cancelled and "(half time not reached)" in cancelled


def test_a_match_still_being_played_settles_nothing_and_sends_nothing(pool, db_dsn, api):
    for mid, status in (("first_half", 2), ("half_time", 3), ("second_half", 4), ("interrupted", 10)):
        match(db_dsn, mid, status, ft=(3, 1), ht=(2, 1))
        post(db_dsn, mid, ["over_2_5", "ht_over_0_5"])
    out, _ = run(pool, api)
    assert out["posts_settled"] == 0 and out["sent"] == 0 and api.requests == 0
    assert sql(db_dsn, "SELECT count(*) FROM telegram_picks WHERE outcome IS NOT NULL") == [(0,)]
    assert sql(db_dsn, "SELECT count(*) FROM notification_outbox") == [(0,)]


@pytest.mark.parametrize("failure", ["500", "400", "timeout"])
def test_a_failed_reply_is_retried_on_the_next_run_and_the_picks_are_settled_once(pool, db_dsn, api, failure):
    match(db_dsn, "m", 8, ft=(2, 2), ht=(1, 1))
    pid = post(db_dsn, "m", ["btts", "over_3_5"])
    api.plan = [failure]
    out, _ = run(pool, api)
    assert out["picks_won"] == 2 and out["retry"] == 1 and out["sent"] == 0
    status, attempts, reply_id, error = post_row(db_dsn, pid)
    assert (status, attempts, reply_id) == ("open", 1, None) and error
    settled_at = sql(db_dsn, "SELECT market, outcome, settled_at FROM telegram_picks ORDER BY market")
    assert sql(db_dsn, "SELECT status FROM notification_outbox") == [("pending",)]
    gevent.sleep(1.2 if failure == "timeout" else 0)      # the slow answer's message lands first
    out, _ = run(pool, api)
    assert out["sent"] == 1 and out["picks_won"] == 0 and out["posts_settled"] == 0
    assert post_row(db_dsn, pid)[:3] == ("settled", 2, 9000 + len(api.sent))
    assert sql(db_dsn, "SELECT market, outcome, settled_at FROM telegram_picks ORDER BY market") == settled_at
    assert sql(db_dsn, "SELECT status, count(*) FROM notification_outbox GROUP BY 1") == [("sent", 1)]
    run(pool, api)
    sent = [m for m in api.sent if m["chat_id"] == "@tips"]
    assert len(sent) == (2 if failure == "timeout" else 1)     # a lost answer: sent again (at least once)
    assert sent[-1]["reply_parameters"]["allow_sending_without_reply"] is True


def test_five_failed_replies_make_the_post_reply_failed_and_there_is_no_sixth_attempt(pool, db_dsn, api):
    match(db_dsn, "m", 8, ft=(0, 0))
    pid = post(db_dsn, "m", ["draw"])
    api.always = "400"
    for _ in range(7):
        run(pool, api)
    assert api.requests == 5
    status, attempts, reply_id, error = post_row(db_dsn, pid)
    assert (status, attempts, reply_id) == ("reply_failed", 5, None) and "chat not found" in error
    assert sql(db_dsn, "SELECT status, attempts FROM notification_outbox") == [("failed", 5)]
    assert picks(db_dsn, pid) == {"draw": ("won", None)}


def test_a_reply_claimed_by_a_killed_run_is_sent_exactly_once_after_its_lease(pool, db_dsn, api):
    match(db_dsn, "m", 8, ft=(1, 2))
    pid = post(db_dsn, "m", ["away_win"])
    with pool.connection() as conn:
        telegram_settle.settle_and_queue(conn, 100)
        assert len(telegram_settle.claim_replies(conn, 100, 900)) == 1      # ... and the run dies here
    assert run(pool, api)[0]["sent"] == 0                                     # its lease holds
    sql(db_dsn, "UPDATE notification_outbox SET lease_until = now() - interval '1 s'")
    assert run(pool, api)[0]["sent"] == 1
    run(pool, api)
    assert len(api.sent) == 1 and post_row(db_dsn, pid)[:2] == ("settled", 1)
    assert sql(db_dsn, "SELECT status, attempts FROM notification_outbox") == [("sent", 2)]


def test_two_instances_at_once_settle_and_send_each_reply_once(pool, db_dsn, api):
    for i in range(60):
        match(db_dsn, f"m{i}", 8, ft=(i % 3, 1))
        post(db_dsn, f"m{i}", ["btts", "over_1_5"], message_id=i + 1)

    def instance():
        total = 0
        while True:
            out, _ = run(pool, api, GOALD_TELEGRAM_BATCH_SIZE="7")
            if not out["sent"] and not out["posts_settled"]:
                return total
            total += out["sent"]
    totals = [g.value for g in gevent.joinall([gevent.spawn(instance), gevent.spawn(instance)], raise_error=True)]
    assert sum(totals) == 60
    assert sorted(m["reply_parameters"]["message_id"] for m in api.sent) == list(range(1, 61))
    assert sql(db_dsn, "SELECT status, count(*) FROM telegram_posts GROUP BY 1") == [("settled", 60)]
    assert sql(db_dsn, "SELECT count(*) FROM telegram_picks WHERE outcome IS NULL") == [(0,)]


def test_a_429_is_waited_for_within_the_call_and_the_reply_goes_once(pool, db_dsn, api):
    match(db_dsn, "m", 8, ft=(3, 0))
    pid = post(db_dsn, "m", ["over_2_5"])
    api.plan = ["429:0.3"]
    started = time.monotonic()
    out, _ = run(pool, api, GOALD_TELEGRAM_RETRIES="1")
    assert out["sent"] == 1 and time.monotonic() - started >= 0.3
    assert api.requests == 2 and len(api.sent) == 1 and post_row(db_dsn, pid)[:2] == ("settled", 1)


def test_a_long_429_leaves_the_reply_for_the_next_run_without_counting_an_attempt(pool, db_dsn, api):
    match(db_dsn, "m", 8, ft=(3, 0))
    match(db_dsn, "n", 8, ft=(3, 0))
    pm, pn = post(db_dsn, "m", ["over_2_5"]), post(db_dsn, "n", ["over_2_5"])
    api.plan = ["429:30"]
    out, _ = run(pool, api, GOALD_TELEGRAM_RETRIES="1")
    assert out["released"] == 2 and out["sent"] == 0 and api.requests == 1    # the second not even tried
    assert post_row(db_dsn, pm)[:2] == ("open", 0) and post_row(db_dsn, pn)[:2] == ("open", 0)
    assert "retry after 30s" in post_row(db_dsn, pm)[3]


def test_a_dead_api_opens_the_breaker_and_is_not_hammered(pool, db_dsn, api, log_lines):
    for i in range(8):
        match(db_dsn, f"m{i}", 8)
        post(db_dsn, f"m{i}", ["draw"], message_id=i + 1)
    api.always = "500"
    out, _ = run(pool, api)
    assert out["retry"] == telegram.BREAKER_FAILURES and out["released"] == 8 - telegram.BREAKER_FAILURES
    assert api.requests == telegram.BREAKER_FAILURES
    run(pool, api)
    assert api.requests == telegram.BREAKER_FAILURES                         # open: nothing tried
    assert any(line.get("event") == "telegram.circuit.opened" for line in log_lines())


def test_without_a_token_replies_wait_in_the_outbox_and_the_log_says_so_once(pool, db_dsn, log_lines):
    logs.ONCE.discard("telegram.not_configured")
    match(db_dsn, "m", 8, ft=(1, 1))
    pid = post(db_dsn, "m", ["btts"])
    for _ in range(3):
        run(pool)
    assert sql(db_dsn, "SELECT channel, status, payload->>'chat_id' FROM notification_outbox") == \
        [("telegram", "pending", "@tips")]
    assert post_row(db_dsn, pid)[:2] == ("open", 0) and picks(db_dsn, pid) == {"btts": ("won", None)}
    assert sum(1 for line in log_lines() if line.get("event") == "telegram.not_configured") == 1


def test_the_bot_token_never_appears_in_logs_errors_or_the_database(pool, db_dsn, api, log_lines):
    for i, mode in enumerate(["500", "timeout", "400"]):
        match(db_dsn, f"m{i}", 8)
        post(db_dsn, f"m{i}", ["draw"], message_id=i + 1)
    api.plan = ["500", "timeout", "400"]
    run(pool, api)
    dead = {"GOALD_TELEGRAM_API_URL": "http://127.0.0.1:9"}                 # nothing listens there
    run(pool, api, **dead)
    assert api.paths and all(TOKEN in p for p in api.paths)                # it was used ...
    errors = sql(db_dsn, "SELECT last_error FROM telegram_posts UNION ALL SELECT error FROM notification_outbox")
    assert all(e and TOKEN not in e for (e,) in errors), errors             # ... and never shown
    assert any("cannot connect" in e for (e,) in errors)
    assert TOKEN not in json.dumps(log_lines())
    with pytest.raises(telegram.TelegramUnavailable) as e:
        telegram.TelegramBot(TOKEN, "http://127.0.0.1:9", retries=0).reply("@x", 1, "hi")
    assert TOKEN not in str(e.value) and TOKEN not in repr(e.value)


def test_queries_per_run_are_the_same_for_10_and_500_posts(pool, db_dsn, api):
    counts = {}
    for n in (10, 500):
        sql(db_dsn, "TRUNCATE telegram_posts, notification_outbox, matches CASCADE")
        sql(db_dsn, "INSERT INTO matches (id, status_id, match_time, home_regular) "
                    "SELECT 'b' || i, 8, 1700000000, i %% 4 FROM generate_series(1, %s) i", (n,))
        sql(db_dsn, "INSERT INTO telegram_posts (channel_id, message_id, match_id) "
                    "SELECT '@b', i, 'b' || i FROM generate_series(1, %s) i", (n,))
        sql(db_dsn, "INSERT INTO telegram_picks (post_id, market) SELECT id, unnest(ARRAY['btts', 'home_win']) "
                    "FROM telegram_posts")
        out, counts[n] = run(pool, api, GOALD_TELEGRAM_BATCH_SIZE="1000")
        assert out["posts_settled"] == n and out["sent"] == n, out
    assert counts[10] == counts[500] <= 10, counts


def test_demo_posts_are_made_on_the_matches_present_and_none_without_matches(pool, db_dsn, api):
    with pool.connection() as conn, conn.cursor() as cur:
        assert telegram_settle.seed_demo(cur, 50) == (0, 0)
    match(db_dsn, "ended", 8, ft=(2, 0))
    match(db_dsn, "live", 4, ft=(0, 1))
    match(db_dsn, "not_started", 1, second_half=False)
    with pool.connection() as conn, conn.cursor() as cur:
        assert telegram_settle.seed_demo(cur, 50) == (2, 6)
        assert telegram_settle.seed_demo(cur, 50) == (0, 0)                 # once per match
        conn.commit()
    out, _ = run(pool, api)
    assert out["posts_settled"] == 1 and out["sent"] == 1
    assert api.sent[0]["chat_id"] == telegram_settle.DEMO_CHANNEL


def test_a_pick_settled_already_keeps_its_outcome_and_time_and_is_listed_in_the_reply(pool, db_dsn, api):
    match(db_dsn, "m", 8, ft=(2, 0))
    pid = post(db_dsn, "m", ["btts", "home_win"])
    sql(db_dsn, "UPDATE telegram_picks SET outcome = 'void', void_reason = 'withdrawn by the tipster', "
                "settled_at = '2024-01-01' WHERE market = 'btts'")
    out, _ = run(pool, api)
    assert out["picks_won"] == 1 and out["picks_void"] == 0 and out["sent"] == 1
    assert sql(db_dsn, "SELECT outcome, void_reason, settled_at::date::text FROM telegram_picks WHERE post_id = %s "
                       "AND market = 'btts'", (pid,)) == [("void", "withdrawn by the tipster", "2024-01-01")]
    assert "➖ Both teams to score: void (withdrawn by the tipster)" in api.sent[0]["text"]


def test_a_late_result_of_a_run_whose_lease_ran_out_is_ignored(pool, db_dsn):
    match(db_dsn, "m", 8, ft=(0, 1))
    pid = post(db_dsn, "m", ["away_win"])
    with pool.connection() as conn:
        telegram_settle.settle_and_queue(conn, 100)
        slow = telegram_settle.claim_replies(conn, 100, 900)[0]
        sql(db_dsn, "UPDATE notification_outbox SET lease_until = now() - interval '1 s'")
        fresh = telegram_settle.claim_replies(conn, 100, 900)[0]
        assert (slow["attempts"], fresh["attempts"]) == (1, 2)
        late = telegram_settle.record_replies(conn, [{"id": slow["id"], "attempts": 1, "outcome": "failed",
                                                      "message_id": None, "error": "too late"}])
        assert late == {"sent": 0, "retry": 0, "failed": 0, "released": 0}
        done = telegram_settle.record_replies(conn, [{"id": fresh["id"], "attempts": 2, "outcome": "sent",
                                                      "message_id": 77, "error": None}])
    assert done["sent"] == 1 and post_row(db_dsn, pid) == ("settled", 1, 77, None)
    assert sql(db_dsn, "SELECT status FROM notification_outbox") == [("sent",)]
