"""What the match benches share: a throwaway database, `goald simulate` and a real `goald run`
against it, each in its own process, stopped (and the database dropped) at the end.

    with Stack(maintenance_dsn, "mem") as stack:
        sim_url = stack.simulator(matches=2240, seed=5, day_time="00:30")
        port = stack.goald(sim_url)                 # waits for goald.ready; returns its console port
"""
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid

from _db import create_database, drop_database

READY_S = 180


def goald_env(**extra) -> dict:
    """This process's environment without its GOALD_* variables (the bench's own
    GOALD_BENCH_DATABASE_URL, a test run's GOALD_TEST_*: goald refuses settings it does not
    know), plus `extra`."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith("GOALD_")}, **extra}


class Stack:
    def __init__(self, maintenance_dsn: str, tag: str):
        self.maintenance = maintenance_dsn
        self.name = f"goald_bench_{tag}_{uuid.uuid4().hex[:8]}"
        self.dsn = maintenance_dsn.rsplit("/", 1)[0] + "/" + self.name
        self.workdir = tempfile.mkdtemp(prefix="goald-bench-")
        self.log_path = os.path.join(self.workdir, "goald.log")
        self.procs: list[subprocess.Popen] = []
        self.goald_proc: subprocess.Popen | None = None
        self.nodes: dict[str, tuple[subprocess.Popen, str]] = {}

    def __enter__(self) -> "Stack":
        create_database(self.maintenance, self.name)
        return self

    def __exit__(self, *exc) -> None:
        for p in reversed(self.procs):
            p.terminate()
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
        drop_database(self.maintenance, self.name)

    def spawn(self, args: list[str], **kwargs) -> subprocess.Popen:
        p = subprocess.Popen(args, **kwargs)
        self.procs.append(p)
        return p

    def simulator(self, *, matches: int, seed: int, day_time: str) -> str:
        """`goald simulate` (no rate limit) at that time of today; returns its URL."""
        sim = self.spawn([sys.executable, "-m", "goald", "simulate", "--port", "0", "--matches", str(matches),
                          "--rate", "0", "--seed", str(seed), "--day-time", day_time],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=goald_env())
        url = sim.stdout.readline().strip()
        if not url.startswith("http://"):
            sys.exit("goald simulate did not start")
        return url

    def goald(self, provider_url: str, tag: str = "goald", **env) -> int:
        """`goald run` on the stack's database with that provider (JSON log in workdir/<tag>.log,
        node name `tag`); returns its console port once it is ready. Several tags: several nodes."""
        env = goald_env(GOALD_DATABASE_URL=self.dsn, GOALD_PROVIDER_BASE_URL=provider_url, GOALD_PROVIDER_USER="demo",
                        GOALD_PROVIDER_SECRET="demo", GOALD_CONSOLE_PORT="0", GOALD_LOG_FORMAT="json",
                        GOALD_NODE_NAME=tag, **env)
        log_path = self.log_path if tag == "goald" else os.path.join(self.workdir, f"{tag}.log")
        start = os.path.getsize(log_path) if os.path.exists(log_path) else 0   # a restart appends
        proc = self.spawn([sys.executable, "-m", "goald", "run"], stdout=subprocess.DEVNULL,
                          stderr=open(log_path, "a"), cwd=self.workdir, env=env)
        self.nodes[tag] = (proc, log_path)
        self.goald_proc = proc
        deadline = time.monotonic() + READY_S
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                sys.exit(f"goald exited {proc.returncode}; see {log_path}")
            with open(log_path) as f:
                f.seek(start)
                for line in f.read().splitlines():
                    if '"goald.ready"' in line:
                        return json.loads(line)["port"]
            time.sleep(0.2)
        sys.exit(f"goald did not get ready in {READY_S}s; see {log_path}")

    def audit(self) -> subprocess.CompletedProcess:
        """`goald audit matches` on the stack's database."""
        return subprocess.run([sys.executable, "-m", "goald", "audit", "matches"], capture_output=True, text=True,
                              env=goald_env(GOALD_DATABASE_URL=self.dsn))

    def log(self) -> str:
        return open(self.log_path).read()
