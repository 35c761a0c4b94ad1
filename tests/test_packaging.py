"""The installed package: layout, package data and the services the tests rely on."""
import os
import subprocess
import sys

import pytest
import redis

from goald.migrations.runner import default_dir


def test_actors_and_console_are_installed_under_goald_not_as_top_level_names(tmp_path):
    # Run outside the repository so that its folders are not on sys.path: only what is installed.
    code = ("import importlib.util as u; "
            "print([u.find_spec(n) is not None for n in ('goald.actors', 'goald.console', 'goald.sql', "
            "'actors', 'console', 'sql')])")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[True, True, True, False, False, False]"


def test_the_migrations_ship_as_package_data():
    files = sorted(p.name for p in default_dir().glob("*.sql"))
    assert files and files[0] == "0001_runtime.sql"


def test_the_redis_server_for_the_tests_answers(redis_url):
    """CI (CI or GOALD_TEST_REDIS_URL set) must have Redis; a developer laptop without one skips."""
    client = redis.Redis.from_url(redis_url, socket_timeout=2)
    try:
        assert client.ping() is True
    except redis.ConnectionError:
        if os.environ.get("CI") or os.environ.get("GOALD_TEST_REDIS_URL"):
            raise
        pytest.skip(f"no Redis at {redis_url}; start one or set GOALD_TEST_REDIS_URL")
