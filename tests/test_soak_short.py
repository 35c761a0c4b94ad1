"""The short versions of the long soaks in bench/ (their figures at full length are in the
issue's note): the chaos soak with every switch in turn for a few seconds each, then all at once,
kill -9 of goald during ingest three times, and kill -9 of two nodes running the business jobs
five times. Each runs the bench script itself, so the suite and the long runs check the same
things; a missed target is the script's exit 1."""
import os
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench"


def run(script, *args, timeout=900):
    env = {**os.environ, "GOALD_BENCH_DATABASE_URL": os.environ.get(
        "GOALD_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")}
    return subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def test_goald_survives_every_chaos_switch_counts_every_bad_answer_and_audits_clean_afterwards():
    out = run("chaos_soak.py", "--minutes-each", "0.15", "--matches", "600", "--breaker-open-s", "10",
              "--settle-s", "10")
    assert out.returncode == 0, out.stdout + out.stderr[-3000:]
    assert "problems: none" in out.stdout and "goald alive at the end: True" in out.stdout


def test_kill_9_during_ingest_rewrites_no_kick_off_applies_nothing_out_of_order_and_audits_clean():
    out = run("kill_ingest.py", "--kills", "3", "--matches", "600")
    assert out.returncode == 0, out.stdout + out.stderr[-3000:]
    assert "kick-offs rewritten / provider times gone backwards: 0" in out.stdout


def test_kill_9_of_two_nodes_running_the_business_jobs_loses_and_duplicates_nothing():
    out = run("business_kill.py", "--kills", "5", "--users", "800", "--drain-s", "90")
    assert out.returncode == 0, out.stdout + out.stderr[-3000:]
    assert "problems: 0" in out.stdout and "(problems: none)" in out.stdout
    assert "push_sent: 0" not in out.stdout and "grants: 0," not in out.stdout     # the jobs did work
