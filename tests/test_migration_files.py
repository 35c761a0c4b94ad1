"""goald.migrations.sqlfile: file names, discovery, statement splitting, line numbers, masking."""
import hashlib

import pytest

from goald.migrations.sqlfile import (
    MigrationFileError,
    Statement,
    discover,
    is_non_transactional,
    parse_migration_file,
    split_statements,
)


def write(directory, name, text, encoding="utf-8"):
    path = directory / name
    path.write_bytes(text.encode(encoding) if isinstance(text, str) else text)
    return path


def lines_of(text):
    return [(s.line, s.sql) for s in split_statements(text)]


# --- splitting and line numbers -------------------------------------------------------------

def test_statements_are_split_on_semicolons_with_their_first_keyword_line():
    text = "CREATE TABLE a (x int);\n\nCREATE TABLE b (y int);\nSELECT 1;"
    assert lines_of(text) == [(1, "CREATE TABLE a (x int)"), (3, "CREATE TABLE b (y int)"), (4, "SELECT 1")]


def test_leading_comments_are_stripped_and_the_line_is_that_of_the_first_keyword():
    text = "-- a comment\n-- another\n\n  CREATE TABLE a (x int);\n"
    assert lines_of(text) == [(4, "CREATE TABLE a (x int)")]


def test_a_statement_after_a_multi_line_block_comment_has_the_right_line():
    text = "SELECT 1;\n/* a block comment\n   with ; semicolons ;\n   over lines */\nSELECT 2;\n"
    assert lines_of(text) == [(1, "SELECT 1"), (5, "SELECT 2")]


def test_a_dollar_quoted_function_body_with_semicolons_is_one_statement_and_later_lines_are_right():
    text = (
        "CREATE FUNCTION touch() RETURNS trigger AS $body$\n"
        "BEGIN\n"
        "  NEW.updated := now(); -- comment ; here\n"
        "  RETURN NEW;\n"
        "END;\n"
        "$body$ LANGUAGE plpgsql;\n"
        "\n"
        "CREATE TABLE after_fn (x int);\n"
    )
    got = split_statements(text)
    assert [s.line for s in got] == [1, 8]
    assert got[0].sql.endswith("$body$ LANGUAGE plpgsql")
    assert "RETURN NEW;" in got[0].sql


def test_strings_containing_semicolons_and_dashes_do_not_split_or_shift_lines():
    text = "INSERT INTO t VALUES ('a; -- not a comment', 'it''s;');\nSELECT 2;\n"
    assert lines_of(text) == [(1, "INSERT INTO t VALUES ('a; -- not a comment', 'it''s;')"), (2, "SELECT 2")]


def test_split_statements_on_crlf_text_keeps_lines_and_text():
    text = "-- header\r\nCREATE TABLE a (x int);\r\n\r\nCREATE INDEX i\r\n  ON a (x);\r\n"
    got = split_statements(text)
    assert [(s.line, s.sql) for s in got] == [(2, "CREATE TABLE a (x int)"), (4, "CREATE INDEX i\r\n  ON a (x)")]
    assert got[1].line_at(got[1].sql.index("ON")) == 5


def test_empty_statements_and_trailing_comments_are_dropped():
    text = "SELECT 1;;\n;\n-- only a comment\n/* and another */\n"
    assert lines_of(text) == [(1, "SELECT 1")]


def test_a_trailing_comment_and_whitespace_before_the_semicolon_are_not_part_of_the_sql():
    assert lines_of("SELECT 1 -- why\n  ;") == [(1, "SELECT 1")]


def test_a_last_statement_without_a_semicolon_is_kept():
    assert lines_of("SELECT 1;\nSELECT 2\n") == [(1, "SELECT 1"), (2, "SELECT 2")]


def test_masked_blanks_comments_strings_quoted_identifiers_and_dollar_bodies_keeping_length_and_newlines():
    sql = "CREATE /* INDEX */ TABLE \"CREATE INDEX\" (x text DEFAULT 'DROP INDEX;'\n, y text DEFAULT $q$VACUUM$q$)"
    (stmt,) = split_statements(sql + ";")
    assert stmt.sql == sql
    assert len(stmt.masked) == len(stmt.sql)
    assert "INDEX" not in stmt.masked and "VACUUM" not in stmt.masked and "DROP" not in stmt.masked
    assert stmt.masked.count("\n") == stmt.sql.count("\n")
    assert '"            "' in stmt.masked and "$q$      $q$" in stmt.masked


def test_line_at_maps_an_offset_to_its_file_line():
    (stmt,) = split_statements("\n\nALTER TABLE t\n  ADD COLUMN a int,\n  ADD COLUMN b int;")
    assert stmt.line == 3
    assert stmt.line_at(0) == 3
    assert stmt.line_at(stmt.sql.index("ADD COLUMN b")) == 5


def test_an_unterminated_string_is_an_error_with_its_line():
    with pytest.raises(MigrationFileError) as e:
        split_statements("SELECT 1;\nSELECT 'oops;\nSELECT 3;")
    assert e.value.line == 2 and "unterminated" in e.value.message


def test_an_unterminated_block_comment_is_an_error():
    with pytest.raises(MigrationFileError, match="unterminated /\\* comment"):
        split_statements("SELECT 1;\n/* never closed\nSELECT 2;")


def test_an_unterminated_dollar_quote_is_an_error():
    with pytest.raises(MigrationFileError, match="dollar"):
        split_statements("DO $$ BEGIN PERFORM 1; END;\n")


# --- non-transactional statements -----------------------------------------------------------

@pytest.mark.parametrize("sql", [
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON t (x)",
    "create unique index concurrently i on t (x)",
    "DROP INDEX CONCURRENTLY IF EXISTS i",
    "REINDEX INDEX CONCURRENTLY i",
    "REINDEX (CONCURRENTLY) TABLE t",
    "VACUUM ANALYZE t",
    "CREATE DATABASE x",
    "DROP DATABASE x",
    "ALTER SYSTEM SET work_mem = '64MB'",
    "CREATE TABLESPACE ts LOCATION '/x'",
    "DROP TABLESPACE ts",
])
def test_statements_that_cannot_run_in_a_transaction_are_recognised(sql):
    (stmt,) = split_statements(sql)
    assert is_non_transactional(stmt)


@pytest.mark.parametrize("sql", [
    "CREATE INDEX i ON t (x)",
    "DROP INDEX i",
    "REINDEX INDEX i",
    "CREATE TABLE concurrently (x int)",
    "INSERT INTO t VALUES ('VACUUM')",
    "/* VACUUM */ SELECT 1",
])
def test_ordinary_statements_are_transactional(sql):
    (stmt,) = split_statements(sql)
    assert not is_non_transactional(stmt)


# --- files ----------------------------------------------------------------------------------

def test_a_file_is_parsed_with_version_name_checksum_and_statements(tmp_path):
    text = "CREATE TABLE a (x int);\nCREATE INDEX i ON a (x);\n"
    path = write(tmp_path, "0007_add_a.sql", text)
    mf = parse_migration_file(path)
    assert (mf.version, mf.name, mf.path, mf.text) == (7, "add_a", path, text)
    assert mf.checksum == hashlib.sha256(text.encode()).hexdigest()
    assert [s.line for s in mf.statements] == [1, 2]
    assert all(isinstance(s, Statement) for s in mf.statements)
    assert mf.transactional is True


def test_a_file_with_a_concurrent_index_is_not_transactional(tmp_path):
    path = write(tmp_path, "0008_idx.sql", "CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON a (x);\n")
    assert parse_migration_file(path).transactional is False


def test_the_checksum_is_of_the_bytes_so_crlf_and_lf_files_differ(tmp_path):
    lf = parse_migration_file(write(tmp_path, "0001_a.sql", "SELECT 1;\n"))
    (tmp_path / "crlf").mkdir()
    crlf = parse_migration_file(write(tmp_path / "crlf", "0001_a.sql", "SELECT 1;\r\n"))
    assert lf.checksum != crlf.checksum
    assert [s.sql for s in lf.statements] == [s.sql for s in crlf.statements]


@pytest.mark.parametrize("name", ["1_short.sql", "0001-dash.sql", "0001_Upper.sql", "00001_five.sql", "0001_.sql", "0001_x.SQL"])
def test_a_badly_named_file_is_rejected(tmp_path, name):
    path = write(tmp_path, name, "SELECT 1;")
    with pytest.raises(MigrationFileError) as e:
        parse_migration_file(path)
    assert e.value.line == 0 and "NNNN_name.sql" in str(e.value)
    assert str(e.value).startswith(f"{path}: ")


def test_a_non_utf8_file_is_rejected_at_the_line_of_the_bad_byte(tmp_path):
    path = write(tmp_path, "0001_latin.sql", b"SELECT 1;\nSELECT 'caf\xe9';\n")
    with pytest.raises(MigrationFileError) as e:
        parse_migration_file(path)
    assert e.value.line == 2 and "UTF-8" in e.value.message
    assert str(e.value) == f"{path}:2: {e.value.message}"


def test_an_unreadable_file_is_a_migration_file_error(tmp_path):
    (tmp_path / "0001_dir.sql").mkdir()
    with pytest.raises(MigrationFileError, match="cannot read"):
        parse_migration_file(tmp_path / "0001_dir.sql")


def test_a_syntax_problem_in_a_file_is_reported_with_the_file_path(tmp_path):
    path = write(tmp_path, "0001_q.sql", "SELECT 1;\n\nSELECT 'x;\n")
    with pytest.raises(MigrationFileError) as e:
        parse_migration_file(path)
    assert str(e.value).startswith(f"{path}:3: unterminated")


def test_discover_returns_the_sql_files_sorted_by_version_ignoring_other_files(tmp_path):
    write(tmp_path, "0010_ten.sql", "SELECT 10;")
    write(tmp_path, "0002_two.sql", "SELECT 2;")
    write(tmp_path, "0001_one.sql", "SELECT 1;")
    write(tmp_path, "README.md", "not sql")
    write(tmp_path, "__init__.py", "")
    (tmp_path / "nested").mkdir()
    write(tmp_path / "nested", "0003_nested.sql", "SELECT 3;")
    assert [(f.version, f.name) for f in discover(tmp_path)] == [(1, "one"), (2, "two"), (10, "ten")]


def test_discover_rejects_two_files_with_one_version_number(tmp_path):
    write(tmp_path, "0003_first.sql", "SELECT 1;")
    write(tmp_path, "0003_second.sql", "SELECT 2;")
    with pytest.raises(MigrationFileError) as e:
        discover(tmp_path)
    assert e.value.path == tmp_path / "0003_second.sql"
    assert "0003" in e.value.message and "0003_first.sql" in e.value.message


def test_discover_rejects_a_sql_file_with_a_bad_name(tmp_path):
    write(tmp_path, "0001_ok.sql", "SELECT 1;")
    write(tmp_path, "add_things.sql", "SELECT 2;")
    with pytest.raises(MigrationFileError, match="add_things.sql"):
        discover(tmp_path)


def test_discover_on_an_empty_directory_is_empty(tmp_path):
    assert discover(tmp_path) == []


def test_a_utf8_byte_order_mark_is_not_part_of_the_first_statement(tmp_path):
    path = write(tmp_path, "0001_bom.sql", "\ufeffSELECT 1;\n")
    assert [s.sql for s in parse_migration_file(path).statements] == ["SELECT 1"]
