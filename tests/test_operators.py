"""Console operators (goald/operators.py) and `goald operator` (goald/cli_operator.py)."""
import json

import gevent
import psycopg2
import pytest

from goald import operators
from support import goald
from support import sql


PASSWORD = "correct horse battery"


def test_a_password_verifies_a_wrong_one_does_not_and_the_hash_is_salted_scrypt():
    h1, h2 = operators.hash_password(PASSWORD), operators.hash_password(PASSWORD)
    assert h1.startswith("scrypt$32768$8$1$") and h1 != h2 and PASSWORD not in h1
    assert operators.verify(PASSWORD, h1) and operators.verify(PASSWORD, h2)
    assert not operators.verify(PASSWORD + "x", h1)
    assert not operators.verify(PASSWORD, "md5$abc") and not operators.verify(PASSWORD, "scrypt$x$y")


def test_verifying_off_the_loop_lets_other_greenlets_run_meanwhile():
    stored = operators.hash_password(PASSWORD)
    ticks = []

    def ticker():
        for _ in range(20):
            ticks.append(1)
            gevent.sleep(0.005)
    t = gevent.spawn(ticker)
    assert operators.verify_off_loop(PASSWORD, stored) is True
    assert len(ticks) >= 5                      # the hub kept running during the ~100-ms hash
    t.join()
    assert operators.verify_off_loop(PASSWORD, None) is False     # an unknown operator: as slow, never True


@pytest.mark.parametrize("name", ["", "a b", "x" * 65, "<b>", "ö"])
def test_a_bad_operator_name_is_refused_with_its_rule(name, pool):
    with pool.connection() as conn, pytest.raises(operators.OperatorError, match="1-64 characters"):
        operators.add(conn, name, operators.hash_password(PASSWORD), "admin", by="t", node="n")


def test_a_short_or_huge_password_is_refused():
    with pytest.raises(operators.OperatorError, match="at least 10"):
        operators.hash_password("short")
    with pytest.raises(operators.OperatorError, match="at most"):
        operators.hash_password("x" * 2000)


def test_add_passwd_and_remove_are_audited_and_the_last_admin_stays(pool, db_dsn):
    with pool.connection() as conn:
        operators.add(conn, "alice", operators.hash_password(PASSWORD), "admin", by="root (cli)", node="n")
        with pytest.raises(operators.OperatorError, match="exists already"):
            operators.add(conn, "alice", operators.hash_password(PASSWORD), "admin", by="root (cli)", node="n")
        operators.add(conn, "rob", operators.hash_password(PASSWORD), "readonly", by="root (cli)", node="n")
        operators.start_session(conn, "alice", 3600, None)
        conn.commit()
        assert operators.set_password(conn, "alice", operators.hash_password("a new long one"), by="root (cli)",
                                      node="n") == 1
        with pytest.raises(operators.OperatorError, match="last admin"):
            operators.remove(conn, "alice", by="root (cli)", node="n")
        operators.remove(conn, "rob", by="root (cli)", node="n")
        with pytest.raises(operators.OperatorError, match="no operator"):
            operators.remove(conn, "rob", by="root (cli)", node="n")
        assert [o.name for o in operators.list_all(conn)] == ["alice"]
    rows = sql(db_dsn, "SELECT actor, action, target, new_value FROM audit_log ORDER BY id")
    assert rows == [("root (cli)", "operator_add", "alice", "admin"), ("root (cli)", "operator_add", "rob", "readonly"),
                    ("root (cli)", "operator_passwd", "alice", None), ("root (cli)", "operator_remove", "rob", None)]


def test_the_first_start_makes_one_admin_even_when_two_nodes_start_together(db_dsn):
    conns = [psycopg2.connect(db_dsn) for _ in range(2)]
    try:
        made = [g.value for g in gevent.joinall([gevent.spawn(operators.ensure_operator, c, node=f"n{i}")
                                                  for i, c in enumerate(conns)])]
    finally:
        for c in conns:
            c.close()
    passwords = [p for p in made if p is not None]
    assert len(passwords) == 1
    rows = sql(db_dsn, "SELECT name, role, password_hash FROM operators")
    assert [(r[0], r[1]) for r in rows] == [("admin", "admin")] and operators.verify(passwords[0], rows[0][2])
    with psycopg2.connect(db_dsn) as c:
        assert operators.ensure_operator(c, node="n3") is None      # an operator exists: nothing made


def goald_operator(db_dsn, *args, stdin=None):
    return goald(["operator", *args], input=stdin, GOALD_DATABASE_URL=db_dsn)


def test_goald_operator_adds_lists_changes_and_removes_operators(db_dsn):
    r = goald_operator(db_dsn, "add", "alice", "--password-stdin", stdin=PASSWORD + "\n")
    assert r.returncode == 0 and "operator alice added (admin)" in r.stdout, r.stderr
    r = goald_operator(db_dsn, "add", "rob", "--read-only", "--generate")
    assert r.returncode == 0 and "(shown once)" in r.stdout
    generated = r.stdout.split("password: ")[1].split()[0]
    stored = sql(db_dsn, "SELECT password_hash FROM operators WHERE name = 'rob'")[0][0]
    assert operators.verify(generated, stored)
    listed = json.loads(goald_operator(db_dsn, "list", "--json").stdout)
    assert [(o["name"], o["role"]) for o in listed] == [("alice", "admin"), ("rob", "readonly")]
    r = goald_operator(db_dsn, "passwd", "rob", "--password-stdin", stdin="another long password\n")
    assert r.returncode == 0 and "password of rob changed" in r.stdout
    assert goald_operator(db_dsn, "remove", "rob").returncode == 0
    r = goald_operator(db_dsn, "remove", "alice")
    assert r.returncode == 2 and "last admin" in r.stderr
    actors = {a for (a,) in sql(db_dsn, "SELECT DISTINCT actor FROM audit_log")}
    assert len(actors) == 1 and actors.pop().endswith("(cli)")


def test_goald_operator_refuses_bad_input_in_one_line_and_changes_nothing(db_dsn):
    r = goald_operator(db_dsn, "add", "bad name", "--generate")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "1-64 characters" in r.stderr
    r = goald_operator(db_dsn, "add", "alice", "--password-stdin", stdin="short\n")
    assert r.returncode == 2 and "at least 10" in r.stderr
    r = goald_operator(db_dsn, "add", "alice")           # no terminal, no --password-stdin
    assert r.returncode == 2 and "--password-stdin" in r.stderr
    r = goald_operator(db_dsn, "passwd", "nobody", "--generate")
    assert r.returncode == 2 and "no operator nobody" in r.stderr
    assert sql(db_dsn, "SELECT count(*) FROM operators")[0][0] == 0
