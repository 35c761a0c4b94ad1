"""Migration files on disk: names, versions, checksums and the statements inside them.

This module owns turning `sql/NNNN_name.sql` into a `MigrationFile`: the version and name from
the file name, the sha256 of the bytes, and the list of statements with the line each starts on.
Splitting is done by sqlparse's lexer (strings, quoted identifiers, dollar quotes and comments
are its job, not ours). We run its statement splitter *without* the grouping pass that
`sqlparse.parse` adds: grouping gives nothing we use and refuses statements of more than 10,000
tokens (a large INSERT in a data migration), while the split is the same and equally lossless.

Every problem that makes a file unusable is a `MigrationFileError` carrying path and line.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from sqlparse import engine
from sqlparse import tokens as T

NAME_RE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

_NAME_HINT = "a migration file name must look like NNNN_name.sql (4 digits, then lower-case letters, digits and underscores)"


class MigrationFileError(Exception):
    """A migration file cannot be used. str() is 'path:line: message' (line omitted when 0).

    Raised for a bad file name, an unreadable or non-UTF-8 file, an unterminated quote, dollar
    quote or block comment, and (from `discover`) two files sharing a version number.
    """

    def __init__(self, path, line: int, message: str):
        self.path = path
        self.line = line
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        if self.line:
            return f"{self.path}:{self.line}: {self.message}"
        return f"{self.path}: {self.message}"


@dataclass(frozen=True)
class Statement:
    """One SQL statement of a migration file.

    `sql` is the statement exactly as written (leading comments/whitespace, trailing comments,
    whitespace and ';' removed), ready to execute. `masked` has the same length as `sql`, with
    comments and the insides of string literals, quoted identifiers and dollar-quoted strings
    replaced by spaces (newlines kept), so regexes over it see only real SQL keywords and
    offsets found in it index `sql` too. `line` is the 1-based file line of `sql[0]`.
    """

    sql: str
    line: int
    masked: str

    def line_at(self, pos: int) -> int:
        """1-based file line of character offset `pos` in sql/masked."""
        return self.line + self.sql.count("\n", 0, max(0, pos))


@dataclass(frozen=True)
class MigrationFile:
    """A parsed migration file; `transactional` is False when any statement cannot run in a
    transaction block (the runner then applies the statements one by one in autocommit)."""

    path: Path
    version: int
    name: str
    text: str
    checksum: str
    statements: tuple[Statement, ...]
    transactional: bool


def _blank(value: str) -> str:
    """Spaces in place of every character of `value` except line breaks."""
    return re.sub(r"[^\r\n]", " ", value)


def _mask_token(ttype, value: str) -> str:
    """The masked form of one lexer token (see Statement.masked)."""
    if ttype in T.Comment:
        return _blank(value)
    if ttype in T.String.Single or ttype in T.String.Symbol:
        # 'string' / "Quoted Ident": keep the delimiters, blank what is between them.
        if len(value) >= 2:
            return value[0] + _blank(value[1:-1]) + value[-1]
        return value
    if ttype is T.Literal and value.startswith("$"):
        # $tag$ body $tag$: keep both tags, blank the body.
        tag = re.match(r"\$[^$]*\$", value)
        n = len(tag.group()) if tag else 1
        if len(value) >= 2 * n:
            return value[:n] + _blank(value[n:-n]) + value[-n:]
    return value


def _is_trivia(ttype) -> bool:
    return ttype in T.Whitespace or ttype in T.Comment


def split_statements(text: str) -> list[Statement]:
    """Split migration text into statements, dropping empty ones (only comments/whitespace/';').

    Raises MigrationFileError (path '<sql>'; `parse_migration_file` substitutes the real path)
    for an unterminated string, quoted identifier, dollar quote or block comment: the lexer
    would otherwise silently split such a file in the wrong places.
    """
    result: list[Statement] = []
    base = 0  # offset of the current sqlparse statement in `text`
    for parsed in engine.FilterStack().run(text):
        toks = []  # (start offset in text, ttype, value)
        pos = base
        for tok in parsed.flatten():
            toks.append((pos, tok.ttype, tok.value))
            pos += len(tok.value)
        base = pos
        _check_unterminated(text, toks)
        meaningful = [i for i, (_, tt, _) in enumerate(toks) if not _is_trivia(tt)]
        if meaningful and toks[meaningful[-1]][1] in T.Punctuation and toks[meaningful[-1]][2] == ";":
            meaningful.pop()
        if not meaningful:
            continue
        first, last = meaningful[0], meaningful[-1]
        start = toks[first][0]
        end = toks[last][0] + len(toks[last][2])
        masked = "".join(_mask_token(tt, val) for _, tt, val in toks[first:last + 1])
        result.append(Statement(sql=text[start:end], line=text.count("\n", 0, start) + 1, masked=masked))
    return result


def _check_unterminated(text: str, toks: list) -> None:
    """Raise MigrationFileError at the line of an opening quote/dollar quote/comment the lexer
    could not close (it reports those as an Error token, or '/' followed by '*')."""
    for i, (pos, ttype, value) in enumerate(toks):
        what = None
        if ttype is T.Error and value in ("'", '"'):
            what = "unterminated quoted string or identifier"
        elif ttype is T.Error and value == "$":
            what = "unterminated dollar-quoted string"
        elif ttype in T.Operator and value.endswith("/") and i + 1 < len(toks) and toks[i + 1][2].startswith("*"):
            what = "unterminated /* comment"
        if what:
            line = text.count("\n", 0, pos) + 1
            raise MigrationFileError("<sql>", line, f"{what}; close it (the file cannot be split into statements)")


_NON_TRANSACTIONAL = re.compile(
    r"""^(?:
        CREATE\s+(?:UNIQUE\s+)?INDEX\s+CONCURRENTLY\b
      | DROP\s+INDEX\s+CONCURRENTLY\b
      | REINDEX\b(?:\s*\([^)]*\bCONCURRENTLY\b|[^;]*?\bCONCURRENTLY\b)
      | VACUUM\b
      | (?:CREATE|DROP)\s+DATABASE\b
      | ALTER\s+SYSTEM\b
      | (?:CREATE|DROP)\s+TABLESPACE\b
    )""",
    re.IGNORECASE | re.VERBOSE | re.DOTALL,
)


def is_non_transactional(stmt: Statement) -> bool:
    """True for statements PostgreSQL refuses inside a transaction block: CREATE [UNIQUE] INDEX
    CONCURRENTLY, DROP INDEX CONCURRENTLY, REINDEX ... CONCURRENTLY, VACUUM, CREATE/DROP
    DATABASE, ALTER SYSTEM, CREATE/DROP TABLESPACE."""
    return _NON_TRANSACTIONAL.match(stmt.masked) is not None


def parse_migration_file(path: Path) -> MigrationFile:
    """Read and split one migration file.

    Raises MigrationFileError for a name not matching NAME_RE, an unreadable file, bytes that
    are not UTF-8 (with the line of the first bad byte), or an unterminated quote/comment.
    """
    path = Path(path)
    m = NAME_RE.match(path.name)
    if not m:
        raise MigrationFileError(path, 0, f"bad file name {path.name!r}: {_NAME_HINT}")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise MigrationFileError(path, 0, f"cannot read file: {e.strerror or e}") from e
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise MigrationFileError(path, line, "file is not valid UTF-8; save it as UTF-8") from e
    if text.startswith("\ufeff"):
        text = text[1:]  # a BOM would reach the server as part of the first statement
    try:
        statements = tuple(split_statements(text))
    except MigrationFileError as e:
        raise MigrationFileError(path, e.line, e.message) from e
    return MigrationFile(
        path=path,
        version=int(m.group(1)),
        name=m.group(2),
        text=text,
        checksum=hashlib.sha256(data).hexdigest(),
        statements=statements,
        transactional=not any(is_non_transactional(s) for s in statements),
    )


def discover(directory: Path) -> list[MigrationFile]:
    """Every *.sql file directly in `directory` (not recursive), parsed and sorted by version.

    Raises MigrationFileError for the first file that cannot be parsed (including a .sql name
    not matching NAME_RE) and for two files with one version number (reported at the later
    file name, naming the other). Non-.sql files are ignored.
    """
    directory = Path(directory)
    try:
        paths = sorted(p for p in directory.iterdir() if p.suffix == ".sql" and not p.is_dir())
    except OSError as e:
        raise MigrationFileError(directory, 0, f"cannot list directory: {e.strerror or e}") from e
    for p in paths:
        if not NAME_RE.match(p.name):
            raise MigrationFileError(p, 0, f"bad file name {p.name!r}: {_NAME_HINT}")
    files = sorted((parse_migration_file(p) for p in paths), key=lambda f: (f.version, f.path.name))
    clashes = version_clashes(files)
    if clashes:
        raise clashes[0]
    return files


def version_clashes(files: list[MigrationFile]) -> list[MigrationFileError]:
    """One error per file whose version number an earlier file (by name) already uses; the
    error is reported at the later file and names the other. Used by `discover` (which raises
    the first) and by the validator (which reports them all)."""
    errors = []
    first_by_version: dict[int, MigrationFile] = {}
    for f in sorted(files, key=lambda f: (f.version, f.path.name)):
        earlier = first_by_version.setdefault(f.version, f)
        if earlier is not f:
            errors.append(MigrationFileError(
                f.path, 0, f"version {f.version:04d} is also used by {earlier.path.name}; give each file its own number"))
    return errors
