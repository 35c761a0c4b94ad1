"""Safety checks behind `goald validate-migrations`.

This module owns deciding whether a migration would lock or rewrite a production table, or
could not be safely re-run. It works on `MigrationFile`s from `sqlfile` and never touches a
database: every check is a regex over `Statement.masked` (comments, strings and quoted
identifiers blanked), with positions mapped back to `Statement.sql` for names and to file lines
through `Statement.line_at`.

"Existing table" means any table not created (CREATE TABLE / CREATE MATERIALIZED VIEW) earlier
in the same file: a table created by an earlier migration is in production and has data.
Names compare case-folded unless quoted; an unqualified name matches a qualified one with the
same relation name (`foo` is `public.foo`), two qualified names must agree on the schema.

Suppression: `-- goald:allow rule-a, rule-b` on a statement's first line or on the line directly
above it silences those rules for that statement (see docs/migrations.md).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from goald.migrations.sqlfile import (
    MigrationFile,
    MigrationFileError,
    Statement,
    discover,
    is_non_transactional,
    parse_migration_file,
    version_clashes,
)

RULES: dict[str, str] = {
    "index-not-concurrent": "CREATE [UNIQUE] INDEX without CONCURRENTLY on an existing table blocks writes for the whole build.",
    "drop-index-not-concurrent": "DROP INDEX without CONCURRENTLY (of an index not created earlier in the same file) takes an ACCESS EXCLUSIVE lock on its table.",
    "not-null-without-default": "ALTER TABLE ... ADD COLUMN ... NOT NULL without a DEFAULT fails on a table that has rows.",
    "column-type-change": "ALTER TABLE ... ALTER COLUMN ... TYPE rewrites the table and its indexes under an ACCESS EXCLUSIVE lock.",
    "hidden-rewrite": "An ALTER TABLE that silently rewrites the table (volatile DEFAULT, serial/identity or stored generated column, SET LOGGED/UNLOGGED, SET TABLESPACE, SET ACCESS METHOD), or VACUUM FULL / CLUSTER.",
    "blocking-constraint": "Adding a FOREIGN KEY/CHECK without NOT VALID, a PRIMARY KEY/UNIQUE without USING INDEX, or SET NOT NULL scans the table while blocking writes.",
    "concurrent-not-idempotent": "CREATE INDEX CONCURRENTLY without IF NOT EXISTS, or DROP INDEX CONCURRENTLY without IF EXISTS, fails when the file is re-run after a partial apply.",
    "mixed-transactional": "A file mixes statements that cannot run in a transaction block with statements that can, so it is applied without a transaction.",
    "explicit-transaction": "BEGIN / COMMIT / ROLLBACK / SAVEPOINT in a migration file breaks the runner's one transaction per file (applied and recorded together).",
    "bad-file": "The file cannot be used: bad name, duplicate version number, unreadable, not UTF-8, or an unterminated quote or comment.",
}


@dataclass(frozen=True)
class Finding:
    """One problem: where it is, which rule, and a one-line message saying what to do instead."""

    path: str
    line: int
    rule: str
    message: str

    def __str__(self):
        return f"{self.path}:{self.line}: {self.message} [{self.rule}]"


_F = re.IGNORECASE | re.DOTALL
IDENT = r'(?:"[^"]*"|[^\W\d][\w$]*)'  # in `masked` a quoted identifier's inside is blank
QNAME = rf"{IDENT}(?:\s*\.\s*{IDENT}){{0,2}}"

_CREATE_TABLE = re.compile(
    rf"CREATE\s+(?:(?:GLOBAL|LOCAL)\s+)?(?:(?:TEMP|TEMPORARY|UNLOGGED)\s+)?TABLE\s+"
    rf"(?:IF\s+NOT\s+EXISTS\s+)?(?P<t>{QNAME})", _F)
_CREATE_MATVIEW = re.compile(rf"CREATE\s+MATERIALIZED\s+VIEW\s+(?:IF\s+NOT\s+EXISTS\s+)?(?P<t>{QNAME})", _F)
_CREATE_INDEX = re.compile(
    rf"CREATE\s+(?P<unique>UNIQUE\s+)?INDEX(?P<conc>\s+CONCURRENTLY)?(?P<ine>\s+IF\s+NOT\s+EXISTS)?"
    rf"(?:\s+(?P<idx>{QNAME}))?\s+ON\s+(?:ONLY\s+)?(?P<t>{QNAME})", _F)
_DROP_INDEX = re.compile(
    rf"DROP\s+INDEX(?P<conc>\s+CONCURRENTLY)?(?P<ie>\s+IF\s+EXISTS)?\s+(?P<names>{QNAME}(?:\s*,\s*{QNAME})*)", _F)
_ALTER_TABLE = re.compile(rf"ALTER\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?:ONLY\s+)?(?P<t>{QNAME})(?:\s*\*)?", _F)
_VACUUM = re.compile(r"VACUUM\b(?P<opts>\s*\([^)]*\))?(?P<words>(?:\s+(?:FULL|FREEZE|VERBOSE|ANALYZE|ANALYSE)\b)*)", _F)
_CLUSTER = re.compile(rf"CLUSTER\b(?:\s*\([^)]*\))?(?:\s+VERBOSE\b)?(?:\s+(?P<t>{QNAME}))?", _F)

_TRANSACTION_CONTROL = re.compile(
    r"(?:BEGIN|START\s+TRANSACTION|COMMIT|END|ROLLBACK|ABORT|SAVEPOINT|RELEASE|PREPARE\s+TRANSACTION)\b(?!\s*\()", _F)

# ALTER TABLE actions, matched at the start of one comma-separated action.
_ADD_CONSTRAINT = re.compile(rf"ADD\s+(?:CONSTRAINT\s+{IDENT}\s+)?(?P<kind>FOREIGN\s+KEY|CHECK|PRIMARY\s+KEY|UNIQUE)\b", _F)
_ADD_COLUMN = re.compile(rf"ADD\s+(?:COLUMN\s+)?(?:IF\s+NOT\s+EXISTS\s+)?(?P<col>{IDENT})\s+(?P<def>.*)", _F)
_ALTER_TYPE = re.compile(rf"ALTER\s+(?:COLUMN\s+)?(?P<col>{IDENT})\s+(?:SET\s+DATA\s+)?TYPE\b", _F)
_SET_NOT_NULL = re.compile(rf"ALTER\s+(?:COLUMN\s+)?(?P<col>{IDENT})\s+SET\s+NOT\s+NULL\b", _F)
_SET_REWRITE = re.compile(r"SET\s+(?P<what>LOGGED|UNLOGGED|TABLESPACE|ACCESS\s+METHOD)\b", _F)
_ALL_IN_TABLESPACE = re.compile(r"IN\s+TABLESPACE\b.*\bSET\s+TABLESPACE\b", _F)
_NOT_COLUMN = {"constraint", "primary", "unique", "check", "foreign", "exclude"}

_SERIAL = re.compile(r"(?:small|big)?serial[248]?\b", _F)
_IDENTITY = re.compile(r"\bGENERATED\s+(?:ALWAYS|BY\s+DEFAULT)\s+AS\s+IDENTITY\b", _F)
_STORED = re.compile(r"\bGENERATED\s+ALWAYS\s+AS\s*\(.*\bSTORED\b", _F)
_DEFAULT = re.compile(r"\bDEFAULT\b", _F)
_VOLATILE = re.compile(
    r"\b(?P<fn>random|clock_timestamp|timeofday|gen_random_uuid|uuid_generate_v1(?:mc)?|uuid_generate_v4|nextval)\s*\(", _F)
_NOT_NULL = re.compile(r"\b(?P<is>IS\s+)?NOT\s+NULL\b", _F)  # not `x IS NOT NULL` in a CHECK
_INLINE_KEY = re.compile(r"\b(?P<kind>PRIMARY\s+KEY|UNIQUE)\b", _F)
_NOT_VALID = re.compile(r"\bNOT\s+VALID\b", _F)
_USING_INDEX = re.compile(r"\bUSING\s+INDEX\b", _F)

_LEAD = re.compile(r"\w+(?:\s+(?:UNIQUE|INDEX|CONCURRENTLY|DATABASE|SYSTEM|TABLESPACE|FULL)\b)*", _F)
_ALLOW = re.compile(r"--\s*goald:allow\s+(?P<ids>[a-z0-9-]+(?:\s*,\s*[a-z0-9-]+)*)", re.IGNORECASE)


def _parts(stmt: Statement, start: int, end: int) -> tuple[str, ...]:
    """The normalised parts of the (possibly qualified) name at masked[start:end]: unquoted
    parts lower-cased, quoted parts taken verbatim (read from `sql`, since masked blanks them)."""
    out = []
    for m in re.finditer(IDENT, stmt.masked[start:end]):
        raw = stmt.sql[start + m.start():start + m.end()]
        out.append(raw[1:-1].replace('""', '"') if raw.startswith('"') else raw.lower())
    return tuple(out)


def _show(parts: tuple[str, ...]) -> str:
    return '"' + ".".join(parts) + '"'


def _column(stmt: Statement, pos: int, m: re.Match) -> str:
    """The column named by group `col` of a match made at offset `pos` of the statement."""
    return _show(_parts(stmt, pos + m.start("col"), pos + m.end("col")))


def _same(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    """Same relation: same last part, and same schema when both names are qualified."""
    return a[-1] == b[-1] and (len(a) == 1 or len(b) == 1 or a[-2] == b[-2])


def _known(name: tuple[str, ...], names: list[tuple[str, ...]]) -> bool:
    return any(_same(name, n) for n in names)


def _top_level(masked: str, start: int, end: int):
    """(offset, text) of each comma-separated item of masked[start:end] outside parentheses,
    with leading whitespace skipped. Safe on `masked`: strings and comments are blank."""
    depth, item_start = 0, start
    for i in range(start, end + 1):
        ch = masked[i] if i < end else ","
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth = max(0, depth - 1)
        elif ch == "," and (depth == 0 or i == end):
            text = masked[item_start:i]
            stripped = text.lstrip()
            if stripped:
                yield item_start + len(text) - len(stripped), stripped
            item_start = i + 1


class _FileChecker:
    """Checks one file, statement by statement, remembering the tables and indexes it creates."""

    def __init__(self, mf: MigrationFile):
        self.mf = mf
        self.path = str(mf.path)
        self.tables: list[tuple[str, ...]] = []
        self.indexes: list[tuple[str, ...]] = []
        self.findings: list[Finding] = []
        self.stmt: Statement | None = None

    def add(self, pos: int, rule: str, message: str) -> None:
        self.findings.append(Finding(self.path, self.stmt.line_at(pos), rule, message))

    def run(self) -> list[Finding]:
        lines = self.mf.text.split("\n")
        for stmt in self.mf.statements:
            self.stmt = stmt
            before = len(self.findings)
            self.check_statement(stmt)
            allowed = _allowed(lines, stmt.line)
            self.findings[before:] = [f for f in self.findings[before:] if f.rule not in allowed]
        self.stmt = None
        self.check_mixed(lines)
        return sorted(self.findings, key=lambda f: (f.line, f.rule))

    def check_statement(self, s: Statement) -> None:
        m = s.masked
        if _TRANSACTION_CONTROL.match(m):
            self.add(0, "explicit-transaction", "transaction control in a migration: goald already applies and records "
                     "each file in one transaction; remove it (and split the file if you need two transactions)")
        elif hit := _CREATE_TABLE.match(m) or _CREATE_MATVIEW.match(m):
            self.tables.append(_parts(s, *hit.span("t")))
        elif hit := _CREATE_INDEX.match(m):
            self.check_create_index(s, hit)
        elif hit := _DROP_INDEX.match(m):
            self.check_drop_index(s, hit)
        elif hit := _ALTER_TABLE.match(m):
            self.check_alter_table(s, hit)
        elif hit := _VACUUM.match(m):
            full = re.search(r"\bFULL\b", hit.group("words")) or re.search(
                r"\bFULL\b(?!\s+(?:FALSE|OFF|0)\b)", hit.group("opts") or "", re.IGNORECASE)
            tables = [_parts(s, off, off + n.end()) for off, t in _top_level(m, hit.end(), len(m))
                      if (n := re.match(QNAME, t))]
            if full and (not tables or not all(_known(t, self.tables) for t in tables)):
                self.add(0, "hidden-rewrite", "VACUUM FULL rewrites every table it touches under an ACCESS EXCLUSIVE lock, "
                         "blocking reads and writes; use plain VACUUM (or pg_repack outside migrations)")
        elif hit := _CLUSTER.match(m):
            if hit.group("t") is None or not _known(_parts(s, *hit.span("t")), self.tables):
                self.add(0, "hidden-rewrite", "CLUSTER rewrites the table under an ACCESS EXCLUSIVE lock, blocking reads and "
                         "writes; drop it from the migration (or use pg_repack outside migrations)")

    def check_create_index(self, s: Statement, hit: re.Match) -> None:
        table = _parts(s, *hit.span("t"))
        kind = "CREATE UNIQUE INDEX" if hit.group("unique") else "CREATE INDEX"
        if hit.group("idx"):
            self.indexes.append(_parts(s, *hit.span("idx")))
        if not hit.group("conc"):
            if not _known(table, self.tables):
                self.add(0, "index-not-concurrent", f"{kind} on existing table {_show(table)} locks writes for the whole "
                         f"build; use {kind} CONCURRENTLY IF NOT EXISTS in a file of its own")
        elif not hit.group("ine"):
            self.add(0, "concurrent-not-idempotent", f"{kind} CONCURRENTLY without IF NOT EXISTS fails when the file is "
                     f"re-run after a partial apply; write {kind} CONCURRENTLY IF NOT EXISTS <name> ON ...")

    def check_drop_index(self, s: Statement, hit: re.Match) -> None:
        start = hit.start("names")
        names = [_parts(s, start + n.start(), start + n.end()) for n in re.finditer(QNAME, hit.group("names"))]
        if not hit.group("conc"):
            old = [n for n in names if not _known(n, self.indexes)]
            if old:
                shown = ", ".join(_show(n) for n in old)
                self.add(0, "drop-index-not-concurrent", f"DROP INDEX {shown} takes an ACCESS EXCLUSIVE lock on its table, "
                         "blocking reads and writes; use DROP INDEX CONCURRENTLY IF EXISTS in a file of its own")
        elif not hit.group("ie"):
            self.add(0, "concurrent-not-idempotent", "DROP INDEX CONCURRENTLY without IF EXISTS fails when the file is "
                     "re-run after a partial apply; write DROP INDEX CONCURRENTLY IF EXISTS")

    def check_alter_table(self, s: Statement, hit: re.Match) -> None:
        table = _parts(s, *hit.span("t"))
        if table == ("all",) and _ALL_IN_TABLESPACE.match(s.masked[hit.end():].lstrip()):
            self.add(0, "hidden-rewrite", "ALTER TABLE ALL IN TABLESPACE ... SET TABLESPACE rewrites every table it moves "
                     "under an ACCESS EXCLUSIVE lock; move tables outside migrations, in a maintenance window")
            return
        if _known(table, self.tables):
            return
        t = _show(table)
        for pos, action in _top_level(s.masked, hit.end(), len(s.masked)):
            self.check_action(s, t, pos, action)

    def check_action(self, s: Statement, t: str, pos: int, a: str) -> None:
        """One comma-separated action of an ALTER TABLE on existing table `t`, at masked offset `pos`."""
        if m := _ADD_CONSTRAINT.match(a):
            kind = " ".join(m.group("kind").upper().split())
            if kind in ("FOREIGN KEY", "CHECK") and not _NOT_VALID.search(a):
                self.add(pos, "blocking-constraint", f"ADD {kind} on existing table {t} scans the whole table while "
                         "blocking writes; add it NOT VALID, then VALIDATE CONSTRAINT in a later migration file")
            elif kind in ("PRIMARY KEY", "UNIQUE") and not _USING_INDEX.search(a):
                self.add(pos, "blocking-constraint", f"ADD {kind} on existing table {t} builds an index while blocking "
                         "reads and writes; CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS in a file of its own, then "
                         f"ADD CONSTRAINT ... {kind} USING INDEX")
        elif (m := _ADD_COLUMN.match(a)) and m.group("col").lower() not in _NOT_COLUMN:
            self.check_add_column(s, t, pos, m)
        elif m := _ALTER_TYPE.match(a):
            col = _column(s, pos, m)
            self.add(pos, "column-type-change", f"ALTER COLUMN {col} TYPE on existing table {t} rewrites the table and "
                     "its indexes under an ACCESS EXCLUSIVE lock; add a new column, backfill it in batches and switch "
                     "over (suppress only for a binary-compatible change such as varchar(n) to text)")
        elif m := _SET_NOT_NULL.match(a):
            col = _column(s, pos, m)
            self.add(pos, "blocking-constraint", f"SET NOT NULL on column {col} of existing table {t} scans the whole "
                     f"table under an ACCESS EXCLUSIVE lock; first ADD CONSTRAINT ... CHECK ({col} IS NOT NULL) NOT VALID "
                     "and VALIDATE it in a later file (then SET NOT NULL skips the scan and may be suppressed)")
        elif m := _SET_REWRITE.match(a):
            what = " ".join(m.group("what").upper().split())
            self.add(pos, "hidden-rewrite", f"SET {what} rewrites existing table {t} under an ACCESS EXCLUSIVE lock, "
                     "blocking reads and writes; do it outside migrations, in a maintenance window")

    def check_add_column(self, s: Statement, t: str, pos: int, m: re.Match) -> None:
        col = _column(s, pos, m)
        d = m.group("def")
        default = _DEFAULT.search(d)
        volatile = _VOLATILE.search(d, default.end()) if default else None
        why = None
        if _SERIAL.match(d):
            why = f"a {_SERIAL.match(d).group().lower()} column fills every row from a sequence"
        elif _IDENTITY.search(d):
            why = "an identity column fills every row from a sequence"
        elif _STORED.search(d):
            why = "a stored generated column computes a value for every row"
        elif volatile:
            why = f"DEFAULT {volatile.group('fn').lower()}() is volatile, so every row gets its own value"
        if why:
            self.add(pos, "hidden-rewrite", f"ADD COLUMN {col} on existing table {t} rewrites the table under an "
                     f"ACCESS EXCLUSIVE lock: {why}; add the column nullable (or with a constant DEFAULT) and "
                     "backfill it in batches")
            return
        not_null = any(not n.group("is") for n in _NOT_NULL.finditer(d)) or re.search(r"\bPRIMARY\s+KEY\b", d, re.I)
        if not_null and not default:
            self.add(pos, "not-null-without-default", f"ADD COLUMN {col} NOT NULL without a DEFAULT fails on existing "
                     f"table {t} as soon as it has rows; give it a constant DEFAULT, or add it nullable, backfill, "
                     "then add the NOT NULL through a validated CHECK constraint")
        if key := _INLINE_KEY.search(d):
            kind = " ".join(key.group("kind").upper().split())
            self.add(pos, "blocking-constraint", f"ADD COLUMN {col} ... {kind} on existing table {t} builds an index "
                     "while blocking reads and writes; add the column, CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS "
                     f"in a file of its own, then ADD CONSTRAINT ... {kind} USING INDEX")

    def check_mixed(self, lines: list[str]) -> None:
        """[mixed-transactional], reported at the first non-transactional statement (the one that
        takes the file out of a transaction); its suppression comment is the one that counts."""
        stmts = self.mf.statements
        nontx = [s for s in stmts if is_non_transactional(s)]
        if not nontx or len(nontx) == len(stmts):
            return
        first, other = nontx[0], next(s for s in stmts if not is_non_transactional(s))
        if "mixed-transactional" in _allowed(lines, first.line):
            return
        what = " ".join(_LEAD.match(first.masked).group().upper().split())
        self.findings.append(Finding(
            self.path, first.line, "mixed-transactional",
            f"{what} cannot run in a transaction block, but this file also has {len(stmts) - len(nontx)} statement(s) "
            f"that can (first at line {other.line}), so the whole file runs without a transaction and a failure leaves "
            "it half-applied; move the non-transactional statement(s) to a file of their own"))


def _allowed(lines: list[str], line: int) -> set[str]:
    """Rule ids allowed by `-- goald:allow ...` comments on file line `line` or the line above."""
    out: set[str] = set()
    for n in (line, line - 1):
        if 1 <= n <= len(lines):
            for m in _ALLOW.finditer(lines[n - 1]):
                out.update(r.strip().lower() for r in m.group("ids").split(","))
    return out


def validate_files(files: list[MigrationFile]) -> list[Finding]:
    """All findings for already-parsed files, file by file in the given order, by line within a file."""
    findings: list[Finding] = []
    for mf in files:
        findings.extend(_FileChecker(mf).run())
    return findings


def _bad(e: MigrationFileError) -> Finding:
    return Finding(str(e.path), e.line, "bad-file", e.message)


def _load_directory(d: Path) -> tuple[list[MigrationFile], list[Finding]]:
    """`discover(d)`; when it fails, still parse every *.sql file on its own so that one bad
    file does not hide the others' problems, and report every problem as a bad-file finding."""
    try:
        return discover(d), []
    except MigrationFileError as first:
        errors, files = [first], []
        for p in sorted(p for p in d.glob("*.sql") if p.is_file()):
            try:
                files.append(parse_migration_file(p))
            except MigrationFileError as e:
                errors.append(e)
        errors.extend(version_clashes(files))
        findings, seen = [], set()
        for e in errors:
            if str(e) not in seen:
                seen.add(str(e))
                findings.append(_bad(e))
        return files, findings


def validate_paths(paths: list[str | Path]) -> list[Finding]:
    """Findings for each path: a .sql file, or a directory (its *.sql files via `discover`).

    Never raises for a bad file: a MigrationFileError, or a path that does not exist (line 0),
    becomes a Finding with rule "bad-file".
    """
    findings: list[Finding] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            files, bad = _load_directory(p)
            findings.extend(bad)
            findings.extend(validate_files(files))
        elif p.exists():
            try:
                findings.extend(validate_files([parse_migration_file(p)]))
            except MigrationFileError as e:
                findings.append(_bad(e))
        else:
            findings.append(Finding(str(p), 0, "bad-file", "no such file or directory; pass a .sql file or a directory of them"))
    return findings
