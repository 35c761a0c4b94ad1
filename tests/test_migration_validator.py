"""goald.migrations.validator: the safety rules behind `goald validate-migrations`."""
import re
from pathlib import Path

import pytest

from goald.migrations.sqlfile import parse_migration_file
from goald.migrations.validator import RULES, Finding, validate_files, validate_paths


def check(tmp_path, text, name="0002_change.sql"):
    """Findings for one migration file with this text, as (line, rule) pairs."""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return [(f.line, f.rule) for f in validate_paths([path])]


def rules(tmp_path, text):
    return [rule for _, rule in check(tmp_path, text)]


# --- the headline case and message format ---------------------------------------------------

def test_a_non_concurrent_index_on_an_existing_table_is_rejected_with_file_and_line(tmp_path):
    path = tmp_path / "0002_bad.sql"
    path.write_text("CREATE INDEX foo ON some_table (x);\n")
    (finding,) = validate_paths([path])
    assert finding == Finding(str(path), 1, "index-not-concurrent", finding.message)
    assert str(finding).startswith(f"{path}:1: ")
    assert str(finding).endswith(" [index-not-concurrent]")
    assert '"some_table"' in finding.message and "CONCURRENTLY IF NOT EXISTS" in finding.message
    assert "\n" not in str(finding)


def test_every_rule_has_a_one_sentence_description_and_is_documented():
    docs = (Path(__file__).resolve().parent.parent / "docs" / "migrations.md").read_text()
    for rule, description in RULES.items():
        assert re.fullmatch(r"[a-z-]+", rule)
        assert description.endswith(".") and "\n" not in description
        assert f"`{rule}`" in docs, rule


# --- index-not-concurrent -------------------------------------------------------------------

def test_a_unique_index_on_an_existing_table_is_rejected_and_the_message_says_unique(tmp_path):
    path = tmp_path / "0002_u.sql"
    path.write_text("CREATE UNIQUE INDEX u ON t (x);")
    (finding,) = validate_paths([path])
    assert finding.rule == "index-not-concurrent" and "CREATE UNIQUE INDEX CONCURRENTLY" in finding.message


def test_a_concurrent_idempotent_index_on_an_existing_table_is_accepted(tmp_path):
    assert check(tmp_path, "CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON t (x);") == []


def test_an_index_on_a_table_created_earlier_in_the_same_file_is_exempt(tmp_path):
    text = "CREATE TABLE IF NOT EXISTS fresh (x int);\nCREATE INDEX fresh_x ON fresh (x);\nCREATE UNIQUE INDEX ON public.fresh (x);"
    assert check(tmp_path, text) == []


def test_a_table_created_after_the_index_does_not_exempt_it(tmp_path):
    assert check(tmp_path, "CREATE INDEX i ON later (x);\nCREATE TABLE later (x int);") == [(1, "index-not-concurrent")]


def test_quoted_names_are_case_sensitive_and_unquoted_names_fold_to_lower_case(tmp_path):
    text = ('CREATE TABLE "Fresh" (x int);\n'
            'CREATE INDEX a ON "Fresh" (x);\n'   # same table
            'CREATE INDEX b ON Fresh (x);\n'     # folds to fresh: another, existing table
            'CREATE TABLE Other (x int);\n'
            'CREATE INDEX c ON "other" (x);\n')  # "other" is what Other folds to
    assert check(tmp_path, text) == [(3, "index-not-concurrent")]


def test_schema_qualified_names_match_unqualified_ones_but_not_another_schema(tmp_path):
    text = ("CREATE TABLE app.fresh (x int);\n"
            "CREATE INDEX a ON fresh (x);\n"
            "CREATE INDEX b ON app.fresh (x);\n"
            'CREATE INDEX c ON "app"."fresh" (x);\n'
            "CREATE INDEX d ON other.fresh (x);\n")
    assert check(tmp_path, text) == [(5, "index-not-concurrent")]


def test_a_quoted_existing_table_name_is_reported_verbatim(tmp_path):
    path = tmp_path / "0002_q.sql"
    path.write_text('CREATE INDEX i ON public."MixedCase" (x);')
    (finding,) = validate_paths([path])
    assert '"public.MixedCase"' in finding.message


def test_keywords_inside_strings_and_comments_are_not_checked(tmp_path):
    text = ("-- CREATE INDEX i ON t (x);\n"
            "/* DROP INDEX i; */\n"
            "INSERT INTO notes VALUES ('CREATE INDEX i ON t (x)');\n"
            "COMMENT ON TABLE t IS $$ALTER TABLE t ALTER COLUMN x TYPE text$$;\n")
    assert check(tmp_path, text) == []


# --- drop-index-not-concurrent --------------------------------------------------------------

def test_dropping_an_existing_index_without_concurrently_is_rejected(tmp_path):
    assert check(tmp_path, "SELECT 1;\nDROP INDEX IF EXISTS old_idx;") == [(2, "drop-index-not-concurrent")]


def test_dropping_an_index_created_earlier_in_the_same_file_is_accepted(tmp_path):
    text = "CREATE TABLE fresh (x int);\nCREATE INDEX tmp_idx ON fresh (x);\nDROP INDEX tmp_idx;"
    assert check(tmp_path, text) == []


def test_dropping_an_index_concurrently_and_idempotently_is_accepted(tmp_path):
    assert check(tmp_path, "DROP INDEX CONCURRENTLY IF EXISTS public.old_idx;") == []


# --- concurrent-not-idempotent --------------------------------------------------------------

def test_a_concurrent_index_without_if_not_exists_is_rejected_even_on_a_new_table(tmp_path):
    text = "CREATE INDEX CONCURRENTLY i ON t (x);"
    assert check(tmp_path, text) == [(1, "concurrent-not-idempotent")]


def test_a_concurrent_drop_without_if_exists_is_rejected(tmp_path):
    assert check(tmp_path, "DROP INDEX CONCURRENTLY old_idx;") == [(1, "concurrent-not-idempotent")]


# --- not-null-without-default ---------------------------------------------------------------

def test_adding_a_not_null_column_without_default_to_an_existing_table_is_rejected(tmp_path):
    assert rules(tmp_path, "ALTER TABLE t ADD COLUMN c int NOT NULL;") == ["not-null-without-default"]


def test_adding_a_not_null_column_with_a_constant_default_is_accepted(tmp_path):
    text = "ALTER TABLE t ADD COLUMN c int NOT NULL DEFAULT 0, ADD COLUMN d timestamptz NOT NULL DEFAULT now();"
    assert check(tmp_path, text) == []


def test_adding_a_nullable_column_or_one_with_an_is_not_null_check_is_accepted(tmp_path):
    assert check(tmp_path, "ALTER TABLE t ADD c int, ADD COLUMN d int CHECK (d IS NOT NULL OR true);") == []


def test_adding_a_not_null_column_to_a_table_created_in_the_same_file_is_accepted(tmp_path):
    assert check(tmp_path, "CREATE TABLE fresh (x int);\nALTER TABLE fresh ADD COLUMN c int NOT NULL;") == []


# --- column-type-change ---------------------------------------------------------------------

@pytest.mark.parametrize("action", ["ALTER COLUMN c TYPE bigint", "ALTER c TYPE bigint", "ALTER COLUMN c SET DATA TYPE bigint USING c::bigint"])
def test_changing_a_column_type_on_an_existing_table_is_rejected(tmp_path, action):
    assert rules(tmp_path, f"ALTER TABLE t {action};") == ["column-type-change"]


def test_other_column_alterations_are_not_type_changes(tmp_path):
    assert check(tmp_path, "ALTER TABLE t ALTER COLUMN c SET DEFAULT 1, ALTER COLUMN c DROP NOT NULL, RENAME COLUMN d TO e;") == []


# --- hidden-rewrite -------------------------------------------------------------------------

@pytest.mark.parametrize("action", [
    "ADD COLUMN c double precision DEFAULT random()",
    "ADD COLUMN c timestamptz DEFAULT clock_timestamp()",
    "ADD COLUMN c text DEFAULT timeofday()",
    "ADD COLUMN c uuid NOT NULL DEFAULT gen_random_uuid()",
    "ADD COLUMN c uuid DEFAULT public.uuid_generate_v4()",
    "ADD COLUMN c uuid DEFAULT uuid_generate_v1()",
    "ADD COLUMN c bigint DEFAULT nextval('seq')",
    "ADD COLUMN c serial",
    "ADD COLUMN c BIGSERIAL",
    "ADD COLUMN c smallserial",
    "ADD COLUMN c int GENERATED ALWAYS AS (a * 2) STORED",
    "SET LOGGED",
    "SET UNLOGGED",
    "SET TABLESPACE slow",
    "SET ACCESS METHOD heap2",
])
def test_an_alter_table_that_rewrites_an_existing_table_is_rejected(tmp_path, action):
    assert rules(tmp_path, f"ALTER TABLE t {action};") == ["hidden-rewrite"]


def test_a_stable_default_or_a_volatile_default_on_a_new_table_is_accepted(tmp_path):
    text = ("ALTER TABLE t ADD COLUMN c timestamptz DEFAULT now(), ADD COLUMN d text DEFAULT 'random()';\n"
            "CREATE TABLE fresh (x int);\nALTER TABLE fresh ADD COLUMN u uuid DEFAULT gen_random_uuid(), ADD COLUMN s serial;\n")
    assert check(tmp_path, text) == []


@pytest.mark.parametrize("sql", ["VACUUM FULL t", "VACUUM (FULL, ANALYZE) t", "VACUUM FULL", "CLUSTER t USING t_pkey", "CLUSTER"])
def test_vacuum_full_and_cluster_are_rejected(tmp_path, sql):
    assert rules(tmp_path, f"{sql};") == ["hidden-rewrite"]


@pytest.mark.parametrize("sql", ["VACUUM ANALYZE t", "VACUUM (FULL false) t", "VACUUM (ANALYZE) t"])
def test_plain_vacuum_is_accepted(tmp_path, sql):
    assert check(tmp_path, f"{sql};") == []


# --- blocking-constraint --------------------------------------------------------------------

@pytest.mark.parametrize("action", [
    "ADD CONSTRAINT t_u_fk FOREIGN KEY (u) REFERENCES users (id)",
    "ADD FOREIGN KEY (u) REFERENCES users (id)",
    "ADD CONSTRAINT t_x_ck CHECK (x > 0)",
    "ADD PRIMARY KEY (id)",
    "ADD UNIQUE (x)",
    "ADD CONSTRAINT t_x_key UNIQUE (x)",
    "ALTER COLUMN x SET NOT NULL",
])
def test_a_constraint_that_scans_an_existing_table_under_lock_is_rejected(tmp_path, action):
    assert rules(tmp_path, f"ALTER TABLE t {action};") == ["blocking-constraint"]


@pytest.mark.parametrize("action", [
    "ADD CONSTRAINT t_u_fk FOREIGN KEY (u) REFERENCES users (id) NOT VALID",
    "ADD CONSTRAINT t_x_ck CHECK (x > 0) NOT VALID",
    "VALIDATE CONSTRAINT t_x_ck",
    "ADD CONSTRAINT t_pkey PRIMARY KEY USING INDEX t_id_idx",
    "ADD CONSTRAINT t_x_key UNIQUE USING INDEX t_x_idx",
])
def test_the_not_valid_and_using_index_patterns_are_accepted(tmp_path, action):
    assert check(tmp_path, f"ALTER TABLE t {action};") == []


def test_constraints_on_a_table_created_in_the_same_file_are_accepted(tmp_path):
    text = ("CREATE TABLE fresh (id int, u int);\n"
            "ALTER TABLE fresh ADD PRIMARY KEY (id), ADD FOREIGN KEY (u) REFERENCES users (id), ALTER COLUMN u SET NOT NULL;\n")
    assert check(tmp_path, text) == []


# --- several actions in one ALTER TABLE -----------------------------------------------------

def test_each_action_of_an_alter_table_is_checked_and_reported_at_its_own_line(tmp_path):
    text = ("-- header\n"
            "ALTER TABLE public.orders\n"
            "  ADD COLUMN note text,\n"
            "  ADD COLUMN total numeric(10, 2) NOT NULL,\n"
            "  ALTER COLUMN status TYPE text,\n"
            "  ADD CONSTRAINT orders_total_ck CHECK (total >= 0);\n")
    assert check(tmp_path, text) == [(4, "not-null-without-default"), (5, "column-type-change"), (6, "blocking-constraint")]


# --- line numbers ---------------------------------------------------------------------------

def test_findings_after_a_dollar_quoted_function_body_with_semicolons_have_the_right_line(tmp_path):
    text = ("CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$\n"
            "BEGIN\n"
            "  NEW.note := 'x;y'; -- CREATE INDEX i ON t (x);\n"
            "  RETURN NEW;\n"
            "END;\n"
            "$$;\n"
            "CREATE INDEX i ON t (x);\n")
    assert check(tmp_path, text) == [(7, "index-not-concurrent")]


def test_findings_after_a_block_comment_have_the_right_line(tmp_path):
    text = "/*\n * Adds an index.\n * DROP INDEX x;\n */\nCREATE INDEX i\n  ON t (x);\n"
    assert check(tmp_path, text) == [(5, "index-not-concurrent")]


def test_findings_in_a_crlf_file_have_the_right_line(tmp_path):
    path = tmp_path / "0002_crlf.sql"
    path.write_bytes(b"SELECT 1;\r\n\r\nALTER TABLE t\r\n  ADD COLUMN a int,\r\n  ALTER COLUMN b TYPE text;\r\n")
    assert [(f.line, f.rule) for f in validate_paths([path])] == [(5, "column-type-change")]


# --- mixed-transactional --------------------------------------------------------------------

def test_a_file_mixing_a_concurrent_index_with_other_statements_is_rejected_at_the_concurrent_statement(tmp_path):
    text = "CREATE TABLE fresh (x int);\nINSERT INTO fresh VALUES (1);\nCREATE INDEX CONCURRENTLY IF NOT EXISTS i ON t (x);\n"
    path = tmp_path / "0002_mixed.sql"
    path.write_text(text)
    (finding,) = validate_paths([path])
    assert (finding.line, finding.rule) == (3, "mixed-transactional")
    assert "line 1" in finding.message and "file of their own" in finding.message


def test_a_file_of_only_non_transactional_statements_is_accepted(tmp_path):
    text = ("CREATE INDEX CONCURRENTLY IF NOT EXISTS a ON t (x);\n"
            "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS b ON t (y);\n"
            "DROP INDEX CONCURRENTLY IF EXISTS c;\n")
    assert check(tmp_path, text) == []


def test_a_file_of_only_transactional_statements_is_not_mixed(tmp_path):
    assert check(tmp_path, "CREATE TABLE a (x int);\nCREATE TABLE b (x int);") == []


# --- suppression ----------------------------------------------------------------------------

def test_an_allow_comment_on_the_line_above_suppresses_that_rule_for_that_statement(tmp_path):
    text = ("-- goald:allow index-not-concurrent\n"
            "CREATE INDEX small ON tiny_lookup (x);\n"
            "CREATE INDEX other ON tiny_lookup (y);\n")
    assert check(tmp_path, text) == [(3, "index-not-concurrent")]


def test_an_allow_comment_on_the_statements_first_line_suppresses_several_rules(tmp_path):
    text = ("ALTER TABLE t -- goald:allow column-type-change, blocking-constraint\n"
            "  ALTER COLUMN a TYPE text,\n"
            "  ALTER COLUMN b SET NOT NULL,\n"
            "  ADD COLUMN c int NOT NULL;\n")
    assert check(tmp_path, text) == [(4, "not-null-without-default")]


def test_an_allow_comment_for_another_rule_or_two_lines_above_does_not_suppress(tmp_path):
    text = ("-- goald:allow index-not-concurrent\n"
            "\n"
            "CREATE INDEX a ON t (x);\n"
            "-- goald:allow hidden-rewrite\n"
            "CREATE INDEX b ON t (x);\n")
    assert check(tmp_path, text) == [(3, "index-not-concurrent"), (5, "index-not-concurrent")]


def test_mixed_transactional_is_suppressed_at_the_first_non_transactional_statement(tmp_path):
    text = ("CREATE TABLE fresh (x int);\n"
            "-- goald:allow mixed-transactional\n"
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON t (x);\n")
    assert check(tmp_path, text) == []


# --- bad-file and paths ---------------------------------------------------------------------

def test_a_path_that_does_not_exist_is_a_bad_file_finding_at_line_0(tmp_path):
    missing = tmp_path / "nope"
    assert [(f.path, f.line, f.rule) for f in validate_paths([missing])] == [(str(missing), 0, "bad-file")]


def test_a_badly_named_file_is_a_bad_file_finding_not_an_exception(tmp_path):
    path = tmp_path / "add_index.sql"
    path.write_text("SELECT 1;")
    (finding,) = validate_paths([str(path)])
    assert (finding.path, finding.line, finding.rule) == (str(path), 0, "bad-file")


def test_a_non_utf8_file_is_a_bad_file_finding_with_its_line(tmp_path):
    path = tmp_path / "0002_latin1.sql"
    path.write_bytes(b"SELECT 1;\n-- caf\xe9\n")
    assert [(f.line, f.rule) for f in validate_paths([path])] == [(2, "bad-file")]


def test_a_directory_is_validated_file_by_file_in_version_order(tmp_path):
    (tmp_path / "0002_b.sql").write_text("CREATE INDEX b ON t (x);")
    (tmp_path / "0001_a.sql").write_text("SELECT 1;\nCREATE INDEX a ON t (x);")
    (tmp_path / "notes.txt").write_text("CREATE INDEX n ON t (x);")
    got = [(Path(f.path).name, f.line, f.rule) for f in validate_paths([tmp_path])]
    assert got == [("0001_a.sql", 2, "index-not-concurrent"), ("0002_b.sql", 1, "index-not-concurrent")]


def test_duplicate_versions_in_a_directory_are_reported_and_the_other_files_still_checked(tmp_path):
    (tmp_path / "0001_a.sql").write_text("SELECT 1;")
    (tmp_path / "0001_b.sql").write_text("SELECT 1;")
    (tmp_path / "0002_c.sql").write_text("CREATE INDEX c ON t (x);")
    (tmp_path / "Bad Name.sql").write_text("SELECT 1;")
    got = sorted((Path(f.path).name, f.rule) for f in validate_paths([tmp_path]))
    assert got == [("0001_b.sql", "bad-file"), ("0002_c.sql", "index-not-concurrent"), ("Bad Name.sql", "bad-file")]


def test_validate_files_checks_already_parsed_files(tmp_path):
    path = tmp_path / "0002_x.sql"
    path.write_text("ALTER TABLE t SET UNLOGGED;")
    assert [f.rule for f in validate_files([parse_migration_file(path)])] == ["hidden-rewrite"]


def test_a_file_with_nothing_risky_has_no_findings(tmp_path):
    text = ("CREATE TABLE events (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, kind text NOT NULL);\n"
            "CREATE INDEX events_kind ON events (kind);\n"
            "ALTER TABLE events ADD CONSTRAINT events_kind_ck CHECK (kind <> '');\n"
            "ALTER TABLE matches ADD COLUMN note text, ADD COLUMN score int NOT NULL DEFAULT 0;\n"
            "INSERT INTO settings (k, v) VALUES ('a;b', 'DROP INDEX x');\n")
    assert check(tmp_path, text) == []


def test_explicit_transaction_control_in_a_migration_is_rejected(tmp_path):
    p = tmp_path / "0003_tx.sql"
    p.write_text("BEGIN;\nCREATE TABLE t (id int);\nCOMMIT;\n")
    findings = validate_paths([p])
    assert [(f.line, f.rule) for f in findings] == [(1, "explicit-transaction"), (3, "explicit-transaction")]


def test_a_function_body_with_begin_and_end_is_not_transaction_control(tmp_path):
    p = tmp_path / "0003_fn.sql"
    p.write_text("CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$\nBEGIN\n  RETURN 1;\nEND;\n$$;\n")
    assert validate_paths([p]) == []
