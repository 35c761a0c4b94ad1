"""Configuration: one settings table drives parsing, validation, the sample file and the docs."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support import goald

from goald import config_docs, exitcodes, redact
from goald.config import ConfigError, load
from goald.settings import SETTINGS

REPO = Path(__file__).resolve().parent.parent


def write(tmp_path, text):
    p = tmp_path / "goald.toml"
    p.write_text(text)
    return p


def problems_of(path=None, env=None):
    with pytest.raises(ConfigError) as e:
        load(path, env or {}, search=False)
    return e.value.problems


def test_with_no_file_and_no_environment_every_setting_has_its_default():
    cfg = load(None, {}, search=False)
    for s in SETTINGS:
        assert cfg[s.name] == s.default
        assert cfg.sources[s.name].kind == "default"


def test_the_file_overrides_defaults_and_records_file_and_line(tmp_path):
    p = write(tmp_path, "[database]\n# comment\npool_max = 7\n\n[console]\nport = 9000\n")
    cfg = load(p, {})
    assert cfg["database.pool_max"] == 7 and cfg["console.port"] == 9000
    assert cfg.sources["database.pool_max"].detail == f"{p}:3"
    assert cfg.sources["console.port"].detail == f"{p}:6"


def test_environment_overrides_the_file_and_goald_names_win_over_the_seeds_names(tmp_path):
    p = write(tmp_path, "[database]\npool_max = 7\n")
    cfg = load(p, {"DB_MAX_CONNECTIONS": "12"})
    assert cfg["database.pool_max"] == 12
    assert cfg.sources["database.pool_max"].detail == "DB_MAX_CONNECTIONS"
    cfg = load(p, {"DB_MAX_CONNECTIONS": "12", "GOALD_DATABASE_POOL_MAX": "15"})
    assert cfg["database.pool_max"] == 15
    assert cfg.sources["database.pool_max"].detail == "GOALD_DATABASE_POOL_MAX"


def test_the_seeds_database_url_name_sets_the_dsn():
    cfg = load(None, {"DATABASE_URL": "postgresql://app:pw12345@db.example/goal"}, search=False)
    assert cfg["database.url"] == "postgresql://app:pw12345@db.example/goal"


def test_a_misspelt_key_names_the_key_the_file_line_and_the_closest_valid_name(tmp_path):
    p = write(tmp_path, "[database]\npool_max = 5\npool_mxa = 5\n")
    [line] = problems_of(p)
    assert line.startswith(f"{p}:3:")
    assert "database.pool_mxa" in line and "did you mean 'database.pool_max'" in line


def test_a_misspelt_section_is_reported_with_the_closest_section(tmp_path):
    [line] = problems_of(write(tmp_path, "\n[databse]\npool_max = 5\n"))
    assert ":2:" in line and "[databse]" in line and "'database'" in line


def test_a_negative_pool_size_is_out_of_range_with_file_line_and_bounds(tmp_path):
    [line] = problems_of(write(tmp_path, "[database]\npool_max = -1\n"))
    assert ":2:" in line and "database.pool_max = -1 is out of range (1..500)" in line


def test_every_problem_is_reported_not_only_the_first(tmp_path):
    lines = problems_of(write(tmp_path, "[database]\npool_mx = 1\npool_max = 0\n[log]\nlevel = \"LOUD\"\n"))
    assert len(lines) == 3


def test_a_wrong_type_in_the_file_says_what_type_is_expected(tmp_path):
    [line] = problems_of(write(tmp_path, "[database]\npool_max = \"many\"\n"))
    assert "must be a whole number" in line and ":2:" in line


def test_a_boolean_is_not_accepted_as_a_number(tmp_path):
    [line] = problems_of(write(tmp_path, "[console]\nport = true\n"))
    assert "console.port must be a whole number" in line


def test_invalid_toml_is_reported_with_its_line(tmp_path):
    [line] = problems_of(write(tmp_path, "[database]\npool_max = \n"))
    assert f"{tmp_path / 'goald.toml'}:2: invalid TOML" in line


def test_a_missing_explicit_file_is_an_error_that_says_how_to_create_one(tmp_path):
    [line] = problems_of(tmp_path / "nope.toml")
    assert "no such configuration file" in line and "goald config --sample" in line


def test_an_unknown_goald_environment_variable_is_reported_with_the_closest_name():
    [line] = problems_of(env={"GOALD_DATABASE_POOLMAX": "5"})
    assert "GOALD_DATABASE_POOLMAX" in line and "GOALD_DATABASE_POOL_MAX" in line


def test_test_variables_and_goald_config_are_not_mistaken_for_settings():
    load(None, {"GOALD_TEST_DATABASE_URL": "x", "GOALD_CONFIG": "/nonexistent-but-ignored"}, search=False)


def test_an_unparsable_environment_value_names_the_variable():
    [line] = problems_of(env={"GOALD_DATABASE_MIGRATE_ON_START": "perhaps"})
    assert line.startswith("environment variable GOALD_DATABASE_MIGRATE_ON_START:")
    assert "true or false" in line


def test_pool_min_above_pool_max_is_refused():
    [line] = problems_of(env={"GOALD_DATABASE_POOL_MIN": "9", "GOALD_DATABASE_POOL_MAX": "3"})
    assert "pool_min = 9 is above database.pool_max = 3" in line


def test_legal_but_extreme_values_start_with_a_warning():
    cfg = load(None, {"DB_MAX_CONNECTIONS": "120"}, search=False)
    assert cfg["database.pool_max"] == 120
    assert any("database.pool_max = 120 is above 80" in w for w in cfg.warnings)
    assert load(None, {"DB_MAX_CONNECTIONS": "80"}, search=False).warnings == []


def test_secrets_are_masked_for_display_and_registered_for_log_redaction():
    cfg = load(None, {"GOALD_DATABASE_URL": "postgresql://app:hunter2hunter@db.internal:5432/goal"}, search=False)
    assert cfg.display("database.url") == "postgresql://app:***@db.internal:5432/goal"
    row = next(r for r in cfg.as_rows() if r["name"] == "database.url")
    assert "hunter2hunter" not in str(row)
    assert "hunter2hunter" not in redact.redact("connect failed: password hunter2hunter rejected")


def test_the_provider_credentials_are_masked_in_goald_config_and_registered_for_log_redaction(tmp_path):
    env = {"GOALD_PROVIDER_USER": "acct-user-31", "GOALD_PROVIDER_SECRET": "k3y-Very-Secret"}
    out = subprocess.run([sys.executable, "-m", "goald", "config", "--json"], capture_output=True, text=True,
                         cwd=tmp_path, env={**os.environ, **env}, timeout=60)
    assert out.returncode == 0, out.stderr
    rows = {r["name"]: r for r in json.loads(out.stdout)["settings"]}
    assert rows["provider.secret"]["source"] == "env" and rows["provider.user"]["source"] == "env"
    assert "k3y-Very-Secret" not in out.stdout and "acct-user-31" not in out.stdout
    load(None, env, search=False)
    assert "k3y-Very-Secret" not in redact.redact("GET /v1/football/match/diary?secret=k3y-Very-Secret&user=x")
    assert "acct-user-31" not in redact.redact("user acct-user-31 refused")


def test_the_config_file_is_found_through_goald_config(tmp_path):
    p = write(tmp_path, "[console]\nport = 9999\n")
    assert load(None, {"GOALD_CONFIG": str(p)})["console.port"] == 9999


def test_the_committed_goald_toml_is_the_sample_rendered_from_the_settings_table():
    committed = (REPO / "goald.toml").read_text()
    assert committed == config_docs.sample_toml(), "regenerate: goald config --sample > goald.toml"


def test_the_committed_sample_parses_to_exactly_the_defaults():
    cfg = load(REPO / "goald.toml", {})
    for s in SETTINGS:
        assert cfg[s.name] == s.default
        assert cfg.sources[s.name].kind == "file", f"{s.name} missing from goald.toml"


def test_docs_configuration_md_agrees_with_the_settings_table():
    committed = (REPO / "docs" / "configuration.md").read_text()
    assert committed == config_docs.markdown(), "regenerate: goald config --markdown > docs/configuration.md"
    for s in SETTINGS:
        assert f"`{s.name}`" in committed and f"`{s.env}`" in committed


def test_a_malformed_database_url_is_a_configuration_error_that_keeps_the_password_secret():
    [line] = problems_of(env={"GOALD_DATABASE_URL": "postgresql://u:pw-9x8y7z@h/db?sslmod=require"})
    assert line.startswith("GOALD_DATABASE_URL: database.url is not a valid PostgreSQL DSN")
    assert "pw-9x8y7z" not in line


# --- systemd credentials ($CREDENTIALS_DIRECTORY/<setting name>) ------------------------------

CRED_DSN = "postgresql://app:cred-pw-4u8k@db.internal:5432/goal"


def credentials(tmp_path, **files):
    """A credentials directory like systemd's, with one file per keyword (dots spelt as __)."""
    d = tmp_path / "credentials"
    d.mkdir(exist_ok=True)
    for name, content in files.items():
        path = d / name.replace("__", ".")
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return {"CREDENTIALS_DIRECTORY": str(d)}


def test_a_credential_supplies_the_dsn_without_its_trailing_newline_and_is_masked(tmp_path):
    env = credentials(tmp_path, database__url=CRED_DSN + "\n")
    cfg = load(None, env, search=False)
    assert cfg["database.url"] == CRED_DSN
    assert cfg.sources["database.url"].kind == "credential"
    assert cfg.sources["database.url"].detail == str(tmp_path / "credentials" / "database.url")
    assert cfg.display("database.url") == "postgresql://app:***@db.internal:5432/goal"
    assert "cred-pw-4u8k" not in str(cfg.as_rows())
    assert "cred-pw-4u8k" not in redact.redact("FATAL: password cred-pw-4u8k rejected")


def test_a_credential_overrides_goald_toml_and_the_environment_overrides_a_credential(tmp_path):
    p = write(tmp_path, '[database]\nurl = "postgresql://file:file-pw-1@file.host/goal"\n')
    env = credentials(tmp_path, database__url=CRED_DSN)
    assert load(p, env)["database.url"] == CRED_DSN
    assert load(p, {**env, "DATABASE_URL": "postgresql://env:env-pw-2@env.host/goal"})["database.url"] \
        == "postgresql://env:env-pw-2@env.host/goal"
    assert load(p, {})["database.url"] == "postgresql://file:file-pw-1@file.host/goal"


def test_an_empty_credential_counts_as_absent_so_goald_toml_or_the_default_applies(tmp_path):
    # The unit's fallback `SetCredential=database.url:\n` when /etc/goald/database.url does not exist.
    env = credentials(tmp_path, database__url="\n")
    p = write(tmp_path, '[database]\nurl = "postgresql://file:file-pw-1@file.host/goal"\n')
    assert load(p, env).sources["database.url"].kind == "file"
    cfg = load(None, env, search=False)
    assert cfg["database.url"] == "" and cfg.sources["database.url"].kind == "default"


def test_only_secret_settings_are_read_and_other_files_in_the_directory_are_ignored(tmp_path):
    env = credentials(tmp_path, console__port="9999", node__name="from-credential", other_service_key="x")
    cfg = load(None, env, search=False)
    assert cfg["console.port"] == 8080 and cfg["node.name"] == ""
    assert {src.kind for src in cfg.sources.values()} == {"default"}


def test_a_credential_that_exists_but_cannot_be_read_names_its_path_and_what_to_do(tmp_path):
    env = credentials(tmp_path)
    (tmp_path / "credentials" / "database.url").mkdir()  # unreadable as a file, even for root
    [line] = problems_of(env=env)
    assert line.startswith(f"{tmp_path / 'credentials' / 'database.url'}: cannot read credential database.url:")
    assert "LoadCredential=database.url:" in line


def test_a_credential_that_is_not_utf8_or_spans_several_lines_is_refused_without_its_value(tmp_path):
    [line] = problems_of(env=credentials(tmp_path, database__url=b"postgresql://a:\xffpw@h/db\n"))
    assert "database.url is not UTF-8 text" in line
    [line] = problems_of(env=credentials(tmp_path, database__url=CRED_DSN + "\n\n"))
    assert "credential database.url has 2 lines" in line and "cred-pw-4u8k" not in line


def test_a_malformed_dsn_in_a_credential_names_the_credential_file_and_keeps_the_password_secret(tmp_path):
    env = credentials(tmp_path, database__url="postgresql://u:pw-c9d8e7@h/db?sslmod=require\n")
    [line] = problems_of(env=env)
    assert line.startswith(f"{tmp_path / 'credentials' / 'database.url'}: database.url is not a valid PostgreSQL DSN")
    assert "pw-c9d8e7" not in line


def test_goald_config_shows_the_credential_as_the_source_with_the_secret_masked(tmp_path):
    env = credentials(tmp_path, database__url=CRED_DSN + "\n")
    out = goald(["config"], tmp_path, **env)
    assert out.returncode == 0, out.stderr
    [line] = [x for x in out.stdout.splitlines() if x.startswith("database.url ")]
    assert '"postgresql://app:***@db.internal:5432/goal"' in line
    assert line.endswith(f"# credential ({tmp_path / 'credentials' / 'database.url'})")
    row = next(r for r in json.loads(goald(["config", "--json"], tmp_path, **env).stdout)["settings"]
               if r["name"] == "database.url")
    assert row["source"] == "credential" and row["origin"].endswith("/credentials/database.url")
    assert "cred-pw-4u8k" not in out.stdout + out.stderr + str(row)


def test_goald_config_exits_2_with_one_line_when_the_credential_cannot_be_read(tmp_path):
    env = credentials(tmp_path)
    (tmp_path / "credentials" / "database.url").mkdir()
    out = goald(["config"], tmp_path, **env)
    assert out.returncode == exitcodes.CONFIG
    [line] = [x for x in out.stderr.splitlines() if "config error" in x]
    assert "credentials/database.url: cannot read credential database.url" in line
