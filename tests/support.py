"""Test support: running the `goald` command (clean environment, bounded) and reading its logs."""
import json
import os
import subprocess
import sys

from goald.settings import BY_ENV

TIMEOUT_S = 60


def goald_env(**extra):
    """os.environ without any goald setting (GOALD_* or legacy name), plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOALD_") and k not in BY_ENV}
    env.update(extra)
    return env


def goald(args, cwd, **env):
    """Run `goald ARGS` (as `python -m goald`) to completion; returns the CompletedProcess."""
    return subprocess.run([sys.executable, "-m", "goald", *args], cwd=cwd, env=goald_env(**env),
                          capture_output=True, text=True, timeout=TIMEOUT_S)


def json_log_lines(text):
    """The JSON log lines in `text` (goald's stderr or a captured stream), skipping anything else."""
    out = []
    for line in text.splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out
