"""Every occurrence's row through one path that cannot race; occurrences are periods, not offsets;
every occurrence explained through a database outage. Real database, real actor trees."""
import time
from datetime import timedelta

import gevent
import psycopg2
from runtime_support import (count_job as count, counted, counter_table, database_outage, job, periods,
                             running_tree, runs)
from support import fetch, wait_for

from goald import flags as flagnames
from goald.actors import ledger
from goald.actors.ledger import Occurrence


def claim(pool, occ, node="n"):
    return ledger.claim(pool, occ, node=node, overlap="skip", stale_after_s=15, utilization=0.0,
                        flag=flagnames.job_enabled(occ.job), enabled_default=True)


def test_a_claim_meeting_a_concurrent_missed_insert_reports_the_row_instead_of_raising(pool, db_dsn):
    period = float(int(time.time()) - 100)
    writer = psycopg2.connect(db_dsn)
    try:
        with writer.cursor() as cur:  # uncommitted: the claim cannot see it, only collide with it
            cur.execute("INSERT INTO job_runs (job, period_at, scheduled_at, outcome, node, error) VALUES "
                        "('j', to_timestamp(%s), to_timestamp(%s), 'missed', 'other', 'late')", (period, period))
        pending = gevent.spawn(claim, pool, Occurrence("j", period))
        gevent.sleep(0.3)
        assert not pending.ready()  # waiting on the other transaction's row
        writer.commit()
        result = pending.get(timeout=5)
    finally:
        writer.close()
    assert (result.outcome, result.holder, result.existing) == ("skipped_lock", "other", "missed")
    assert fetch(db_dsn, "SELECT count(*) FROM job_lock_skips WHERE job = 'j'") == [(1,)]


def test_claims_of_one_period_at_different_offsets_meet_on_one_row(pool, db_dsn):
    period = float(int(time.time()) // 60 * 60 - 600)
    first = claim(pool, Occurrence("j", period, offset_s=15, staggered=True), node="a")
    second = claim(pool, Occurrence("j", period, offset_s=0), node="b")
    assert first.outcome == "running" and (second.outcome, second.holder) == ("skipped_lock", "a")
    assert fetch(db_dsn, "SELECT node, offset_s, scheduled_at - period_at FROM job_runs") == [
        ("a", 15, timedelta(seconds=15))]


def test_the_claim_reads_the_jobs_flag_itself_so_every_instance_decides_alike(pool, db_dsn):
    with pool.connection() as conn:
        flagnames.set_flag(conn, flagnames.job_enabled("j"), False, by="test", node="n")
    now = float(int(time.time()))
    # an instance whose configuration says enabled (or whose flag poll is stale) still skips it
    assert claim(pool, Occurrence("j", now)).outcome == "skipped_disabled"
    assert ledger.claim(pool, Occurrence("k", now), node="n", overlap="skip", stale_after_s=15, utilization=0.0,
                        flag=flagnames.job_enabled("k"), enabled_default=False).outcome == "skipped_disabled"


def test_a_healthy_instance_runs_the_occurrence_when_the_other_ones_job_actor_is_down(db_dsn):
    counter_table(db_dsn)
    with running_tree(db_dsn, [job("count", count, every_s=2)], node="a") as a, \
            running_tree(db_dsn, [job("count", count, every_s=2)], node="b"):
        a.jobs_directory.pop("count")   # the clock of a now finds no job actor: as while it restarts
        wait_for(lambda: len([r for r in runs(db_dsn, "count") if r["node"] == "b"]) >= 3, timeout_s=15,
                 what="three occurrences taken by b")
        a_down_since = time.time()
        gevent.sleep(4.5)
    rows = [r for r in runs(db_dsn, "count") if r["scheduled_at"].timestamp() > a_down_since]
    assert rows and {(r["outcome"], r["node"]) for r in rows} == {("succeeded", "b")}, rows
    assert counted(db_dsn) == len([r for r in runs(db_dsn, "count") if r["outcome"] == "succeeded"])


def test_two_instances_with_different_offsets_run_each_period_once(db_dsn):
    counter_table(db_dsn)
    with running_tree(db_dsn, [job("count", count, every_s=2, offset_s=1)], node="early",
                      GOALD_JOBS_STAGGER_ENABLED="false"), \
            running_tree(db_dsn, [job("count", count, every_s=2, offset_s=1)], node="late"):
        gevent.sleep(9)
    rows = runs(db_dsn, "count")
    ps = periods(rows)
    assert len(rows) == len(ps) >= 4
    assert [b - a for a, b in zip(ps, ps[1:])] == [2.0] * (len(ps) - 1)  # no period left out
    assert counted(db_dsn) == len([r for r in rows if r["outcome"] == "succeeded"]) == len(ps)
    # once both run, "early" (offset 0) always claims first; "late" (offset 1) finds the period taken
    assert {(r["node"], r["offset_s"]) for r in rows[1:]} == {("early", 0)}, rows
    assert fetch(db_dsn, "SELECT count(*) FROM job_lock_skips WHERE node = 'late'")[0][0] >= len(ps) - 1


def test_turning_stagger_off_mid_period_neither_skips_nor_repeats_a_period(db_dsn):
    counter_table(db_dsn)
    with running_tree(db_dsn, [job("count", count, every_s=4, offset_s=2)]) as tree:
        wait_for(lambda: runs(db_dsn, "count"), timeout_s=8, what="a first run")
        while time.time() % 4 < 0.5 or time.time() % 4 > 1.2:   # just after a period began: its
            gevent.sleep(0.05)                                  # occurrence is still 1-1.5 s away
        with tree.rt.pool.connection() as c:
            flagnames.set_flag(c, flagnames.STAGGER, False, by="test", node="n")
        gevent.sleep(9)
    rows = runs(db_dsn, "count")
    ps = periods(rows)
    assert [b - a for a, b in zip(ps, ps[1:])] == [4.0] * (len(ps) - 1), rows
    assert {r["outcome"] for r in rows} == {"succeeded"} and counted(db_dsn) == len(rows)
    assert [r["offset_s"] for r in rows][-2:] == [0, 0] and rows[0]["offset_s"] == 2


def test_occurrences_during_a_database_outage_get_missed_rows_once_it_is_back(db_dsn, server_dsn):
    counter_table(db_dsn)
    escalations = []
    with running_tree(db_dsn, [job("count", count)], escalations=escalations,
                      GOALD_DATABASE_POOL_TIMEOUT_S="1", GOALD_JOBS_GRACE_S="1") as tree:
        wait_for(lambda: counted(db_dsn) >= 2, what="runs before the outage")
        with database_outage(server_dsn, db_dsn):
            down = time.time()
            gevent.sleep(4)
        up = time.time()
        wait_for(lambda: [r for r in runs(db_dsn, "count") if r["outcome"] == "succeeded"
                          and r["scheduled_at"].timestamp() > up], timeout_s=5, what="a run after the outage")
        gevent.sleep(2.5)   # the last outage occurrences' grace ends; the reaper writes them
        restarts = next(c for c in tree.describe()["children"] if c["name"] == "jobs")["children"][0]["restarts"]
    rows = runs(db_dsn, "count")
    ps = periods(rows)
    assert [b - a for a, b in zip(ps, ps[1:])] == [1.0] * (len(ps) - 1)  # every second has its row
    during = [r for r in rows if down + 1 < r["scheduled_at"].timestamp() < up - 1]
    assert len(during) >= 2 and {r["outcome"] for r in during} == {"missed"}
    assert all(r["error"].startswith("database unavailable") for r in during), {r["error"] for r in during}
    assert escalations == [] and restarts == 0
    assert counted(db_dsn) == len([r for r in rows if r["outcome"] == "succeeded"])
