"""Loading goald's configuration: defaults, then goald.toml, then systemd credentials (secrets
only, goald/credentials.py), then environment variables; each overrides the one before.

Runs in the main greenlet at start-up (and on reload). Everything comes from the table in
goald/settings.py. Problems never raise half-way: `load()` collects every problem and raises one
`ConfigError` whose lines each name the key, where it came from (file:line, the credential's path
or the variable) and, for a typo, the closest valid name; the CLI prints them and exits 2. Legal
but unusual values become `Config.warnings`, logged at start.
"""
from __future__ import annotations

import difflib
import os
import pwd
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from goald import credentials, redact
from goald.settings import BY_ENV, BY_NAME, SECTIONS, SETTINGS, Setting

CONFIG_ENV = "GOALD_CONFIG"
SYSTEM_CONFIG = Path("/etc/goald/goald.toml")
# GOALD_* variables that are not settings and must not be reported as unknown.
NON_SETTING_ENV = {CONFIG_ENV}
NON_SETTING_ENV_PREFIXES = ("GOALD_TEST_",)

# Per-job overrides: [job.<name>] in goald.toml, GOALD_JOB_<NAME>_<KEY> and the seeds' JOB_STAGGER_<NAME>.
JOB_TABLE = "job"
JOB_KEYS: dict[str, type] = {"enabled": bool, "stagger": bool, "offset_s": int, "timeout_s": float}
_KIND_WORD = {bool: "true or false", int: "a whole number", float: "a number", str: "a string"}
GOALD_JOB_PREFIX = "GOALD_JOB_"
LEGACY_JOB_STAGGER = "JOB_STAGGER_"

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class ConfigError(Exception):
    """The configuration cannot be used; `problems` holds one self-contained line per problem."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Source:
    kind: str  # "default" | "file" | "credential" | "env"
    detail: str = ""  # "goald.toml:12", "/run/credentials/goald.service/database.url" or "GOALD_DATABASE_POOL_MAX"

    def __str__(self) -> str:
        return self.kind if not self.detail else f"{self.kind} ({self.detail})"


@dataclass
class Config:
    """Effective settings. Read with `cfg["database.pool_max"]`; the object is never mutated."""

    values: dict[str, Any]
    sources: dict[str, Source]
    path: Path | None = None
    warnings: list[str] = field(default_factory=list)
    # Per-job overrides: {job: {key: (value, where)}} from [job.<name>] tables and the environment
    # (JOB_STAGGER_<JOB>, GOALD_JOB_<JOB>_<KEY>). Job names are checked against the catalog by
    # goald.actors.catalog.resolve(), which knows them; keys and types are checked here.
    jobs: dict[str, dict[str, tuple[Any, str]]] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    def display(self, name: str) -> str:
        """The value as shown to people: secrets masked (a DSN keeps host and database visible)."""
        s = BY_NAME[name]
        v = self.values[name]
        if s.secret and v:
            return redact.mask_dsn(v) if "://" in v else redact.MASK
        if isinstance(v, bool):
            return "true" if v else "false"
        return str(v)

    def as_rows(self) -> list[dict[str, Any]]:
        rows = []
        for s in SETTINGS:
            v = self.values[s.name]
            rows.append({
                "name": s.name,
                "value": self.display(s.name) if s.secret else v,
                "source": self.sources[s.name].kind,
                "origin": self.sources[s.name].detail,
                "env": s.env,
                "secret": s.secret,
            })
        return rows


def default_path(environ: Mapping[str, str]) -> Path | None:
    """$GOALD_CONFIG, else ./goald.toml, else /etc/goald/goald.toml, else None (defaults only)."""
    if environ.get(CONFIG_ENV):
        return Path(environ[CONFIG_ENV])
    for candidate in (Path("goald.toml"), SYSTEM_CONFIG):
        if candidate.is_file():
            return candidate
    return None


def load(path: str | Path | None = None, environ: Mapping[str, str] | None = None,
         *, search: bool = True) -> Config:
    """Build the effective configuration. `path=None` with `search` looks in the default places."""
    environ = os.environ if environ is None else environ
    if path is None and search:
        path = default_path(environ)
    path = Path(path) if path is not None else None

    problems: list[str] = []
    values = {s.name: s.default for s in SETTINGS}
    sources = {s.name: Source("default") for s in SETTINGS}
    warnings: list[str] = []

    jobs: dict[str, dict[str, tuple[Any, str]]] = {}
    if path is not None:
        _apply_file(path, values, sources, problems, jobs)
    _apply_credentials(environ, values, sources, problems)
    _apply_env(environ, values, sources, problems)
    _apply_job_env(environ, jobs, problems)

    invalid = {s.name for s in SETTINGS if not _check_value(s, values[s.name], sources[s.name], problems, warnings)}
    if values["database.url"]:
        _check_dsn(values["database.url"], sources["database.url"], problems)
    if values["database.embedded_user"]:
        _check_embedded_user(values["database.embedded_user"], sources["database.embedded_user"], problems,
                             warnings)
    if not invalid & {"database.pool_min", "database.pool_max"} and \
            values["database.pool_min"] > values["database.pool_max"]:
        problems.append(
            f"{_where(sources['database.pool_min'])}: database.pool_min = {values['database.pool_min']} "
            f"is above database.pool_max = {values['database.pool_max']}; lower pool_min or raise pool_max")
    if problems:
        raise ConfigError(problems)

    for s in SETTINGS:
        if s.secret:
            redact.register_secret(values[s.name])
    return Config(values=values, sources=sources, path=path, warnings=warnings, jobs=jobs)


# --- file -------------------------------------------------------------------------------------

def _apply_file(path: Path, values: dict, sources: dict, problems: list[str], jobs: dict) -> None:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        problems.append(f"{path}: no such configuration file; create it (`goald config --sample > {path}`) "
                        f"or point {CONFIG_ENV} elsewhere")
        return
    except OSError as e:
        problems.append(f"{path}: cannot read: {e.strerror}")
        return
    try:
        text = raw.decode("utf-8")
        data = tomllib.loads(text)
    except UnicodeDecodeError:
        problems.append(f"{path}: not UTF-8 text")
        return
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"\(at line (\d+), column \d+\)", str(e))
        line = f":{m.group(1)}" if m else ""
        reason = re.sub(r" \(at line.*", "", str(e))
        problems.append(f"{path}{line}: invalid TOML: {reason}")
        return

    lines = _key_lines(text)
    for key, value in data.items():
        if isinstance(value, dict) and key == JOB_TABLE:
            _file_jobs(path, value, lines, jobs, problems)
        elif isinstance(value, dict):
            if key not in SECTIONS:
                problems.append(f"{path}:{lines.get(key, 0)}: unknown section [{key}]{_suggest(key, SECTIONS)}")
                continue
            for sub, v in value.items():
                _file_value(path, f"{key}.{sub}", v, lines, values, sources, problems)
        else:
            _file_value(path, key, value, lines, values, sources, problems)


def _file_value(path: Path, name: str, value: Any, lines: dict, values: dict, sources: dict,
                problems: list[str]) -> None:
    where = f"{path}:{lines.get(name, 0)}"
    s = BY_NAME.get(name)
    if s is None:
        problems.append(f"{where}: unknown key '{name}'{_suggest(name, BY_NAME)}")
        return
    coerced = _coerce_toml(s, value)
    if coerced is None:
        problems.append(f"{where}: {name} must be {_type_word(s)}, not {_toml_type(value)} ({value!r})")
        return
    values[name] = coerced
    sources[name] = Source("file", where)


def _file_jobs(path: Path, tables: dict, lines: dict, jobs: dict, problems: list[str]) -> None:
    """[job.<name>] tables: per-job overrides of the catalog (see JOB_KEYS)."""
    for job, table in tables.items():
        where = f"{path}:{lines.get(f'{JOB_TABLE}.{job}', 0)}"
        if not isinstance(table, dict):
            problems.append(f"{where}: {JOB_TABLE}.{job} must be a table ([{JOB_TABLE}.{job}]), "
                            f"not {_toml_type(table)}")
            continue
        for key, value in table.items():
            kwhere = f"{path}:{lines.get(f'{JOB_TABLE}.{job}.{key}', 0)}"
            kind = JOB_KEYS.get(key)
            if kind is None:
                problems.append(f"{kwhere}: unknown key '{key}' in [{JOB_TABLE}.{job}]"
                                f"{_suggest(key, JOB_KEYS, kind='key')}")
                continue
            ok = isinstance(value, kind) and not (kind is not bool and isinstance(value, bool))
            if kind is float and isinstance(value, int) and not isinstance(value, bool):
                value, ok = float(value), True
            if not ok:
                problems.append(f"{kwhere}: {JOB_TABLE}.{job}.{key} must be {_KIND_WORD[kind]}, "
                                f"not {_toml_type(value)} ({value!r})")
                continue
            if not _job_value_ok(key, value, kwhere, problems):
                continue
            jobs.setdefault(job, {})[key] = (value, kwhere)


def _job_value_ok(key: str, value: Any, where: str, problems: list[str]) -> bool:
    if key == "offset_s" and not 0 <= value <= 86399:
        problems.append(f"{where}: {key} = {value} is out of range (0..86399)")
        return False
    if key == "timeout_s" and not 0.001 <= value <= 86400:
        problems.append(f"{where}: {key} = {value} is out of range (0.001..86400)")
        return False
    return True


def _key_lines(text: str) -> dict[str, int]:
    """Map 'section.key' (and 'section') to the 1-based line where goald.toml sets it."""
    out: dict[str, int] = {}
    table = ""
    for no, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        m = re.match(r"^\[\s*([A-Za-z0-9_.\-\"' ]+?)\s*\]\s*(#.*)?$", stripped)
        if m:
            table = m.group(1).strip("\"'")
            out.setdefault(table, no)
            continue
        m = re.match(r"^([A-Za-z0-9_.\-\"']+)\s*=", stripped)
        if m:
            key = m.group(1).replace('"', "").replace("'", "")
            out.setdefault(f"{table}.{key}" if table else key, no)
    return out


def _coerce_toml(s: Setting, value: Any) -> Any:
    if s.type is bool:
        return value if isinstance(value, bool) else None
    if s.type is int:
        return value if isinstance(value, int) and not isinstance(value, bool) else None
    if s.type is float:
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    return value if isinstance(value, str) else None


# --- systemd credentials ----------------------------------------------------------------------

def _apply_credentials(environ: Mapping[str, str], values: dict, sources: dict, problems: list[str]) -> None:
    """$CREDENTIALS_DIRECTORY/<name> for each secret setting: above goald.toml, below the environment."""
    found, unusable = credentials.read(environ, [s.name for s in SETTINGS if s.secret])
    problems.extend(unusable)
    for cred in found:
        values[cred.name] = cred.value
        sources[cred.name] = Source("credential", str(cred.path))


# --- environment ------------------------------------------------------------------------------

def _apply_env(environ: Mapping[str, str], values: dict, sources: dict, problems: list[str]) -> None:
    for var in sorted(environ):
        if not var.startswith("GOALD_") or var in BY_ENV or var in NON_SETTING_ENV \
                or var.startswith(GOALD_JOB_PREFIX):
            continue
        if var.startswith(NON_SETTING_ENV_PREFIXES):
            continue
        goald_names = [s.env for s in SETTINGS]
        problems.append(f"environment variable {var}: unknown setting{_suggest(var, goald_names)}")
    for s in SETTINGS:
        # weakest first, so that the GOALD_* name wins over a seeds' legacy name
        for var in reversed(s.env_names):
            if var not in environ:
                continue
            raw = environ[var]
            parsed = _parse_env(s, raw)
            if parsed is None:
                shown = redact.MASK if s.secret else repr(raw)
                problems.append(f"environment variable {var}: {s.name} must be {_type_word(s)}, not {shown}")
                continue
            values[s.name] = parsed
            sources[s.name] = Source("env", var)


def _apply_job_env(environ: Mapping[str, str], jobs: dict, problems: list[str]) -> None:
    """JOB_STAGGER_<JOB> (the seeds' name) and GOALD_JOB_<JOB>_<KEY>; the GOALD_* name wins."""
    found: list[tuple[int, str, str, str]] = []
    for var in sorted(environ):
        if var.startswith(LEGACY_JOB_STAGGER) and var not in BY_ENV:
            found.append((0, var, var[len(LEGACY_JOB_STAGGER):].lower(), "stagger"))
        elif var.startswith(GOALD_JOB_PREFIX):
            rest = var[len(GOALD_JOB_PREFIX):]
            for key in sorted(JOB_KEYS, key=len, reverse=True):
                suffix = "_" + key.upper()
                if rest.endswith(suffix) and len(rest) > len(suffix):
                    found.append((1, var, rest[:-len(suffix)].lower(), key))
                    break
            else:
                keys = ", ".join(k.upper() for k in JOB_KEYS)
                problems.append(f"environment variable {var}: expected GOALD_JOB_<JOB>_<KEY> with KEY one of {keys}")
    for _, var, job, key in sorted(found):
        value = _parse_env(Setting(f"job.{key}", JOB_KEYS[key], JOB_KEYS[key](), ""), environ[var])
        if value is None:
            problems.append(f"environment variable {var}: must be {_KIND_WORD[JOB_KEYS[key]]}, not {environ[var]!r}")
            continue
        if _job_value_ok(key, value, f"environment variable {var}", problems):
            jobs.setdefault(job, {})[key] = (value, var)


def _parse_env(s: Setting, raw: str) -> Any:
    text = raw.strip()
    if s.type is bool:
        low = text.lower()
        return True if low in _TRUE else False if low in _FALSE else None
    if s.type is int:
        try:
            return int(text.replace("_", ""))
        except ValueError:
            return None
    if s.type is float:
        try:
            return float(text)
        except ValueError:
            return None
    return raw


# --- checks -----------------------------------------------------------------------------------

def _check_value(s: Setting, v: Any, src: Source, problems: list[str], warnings: list[str]) -> bool:
    """Append a problem (returning False) or a warning about one effective value."""
    where = _where(src)
    if s.choices and v not in s.choices:
        problems.append(f"{where}: {s.name} = {v!r} is not one of {', '.join(s.choices)}"
                        f"{_suggest(str(v), s.choices, kind='value')}")
        return False
    if s.type in (int, float):
        if (s.minimum is not None and v < s.minimum) or (s.maximum is not None and v > s.maximum):
            problems.append(f"{where}: {s.name} = {v} is out of range ({s.bounds_text()})")
            return False
        if s.warn_above is not None and v > s.warn_above:
            warnings.append(f"{where}: {s.name} = {v} is above {s.warn_above:g}: {s.warn_reason}")
    return True


def _check_dsn(dsn: str, src: Source, problems: list[str]) -> None:
    """A set database.url must be a DSN libpq can parse (else it fails deep in the pool later)."""
    import psycopg2
    import psycopg2.extensions

    try:
        psycopg2.extensions.parse_dsn(dsn)
    except psycopg2.ProgrammingError as e:
        reason = redact.redact((str(e).strip().splitlines() or ["invalid dsn"])[0])
        problems.append(f"{_where(src)}: database.url is not a valid PostgreSQL DSN ({reason}); "
                        f"use postgresql://user:password@host:5432/dbname")


def _check_embedded_user(name: str, src: Source, problems: list[str], warnings: list[str]) -> None:
    """As root: an existing user other than root. Not as root: ignored, with a warning."""
    if os.geteuid() != 0:
        warnings.append(f"{_where(src)}: database.embedded_user = {name!r} is ignored: goald is not running as "
                        f"root, so the embedded PostgreSQL runs as the user running goald")
        return
    try:
        uid = pwd.getpwnam(name).pw_uid
    except KeyError:
        problems.append(f"{_where(src)}: database.embedded_user = {name!r}: no such user on this system; name an "
                        f"existing unprivileged user (goald never creates one), or leave it empty for nobody")
        return
    if uid == 0:
        problems.append(f"{_where(src)}: database.embedded_user = {name!r} is root (uid 0), and PostgreSQL does not "
                        f"run as root; name an unprivileged user, or leave it empty for nobody")


def _where(src: Source) -> str:
    return src.detail if src.detail else "default"


def _suggest(text: str, candidates, kind: str = "name") -> str:
    """' (did you mean 'x'?)' for the closest candidate, or a pointer to the list of valid names."""
    close = difflib.get_close_matches(text, list(candidates), n=1, cutoff=0.6)
    if not close and "." in text:  # a typo in the key part only: compare within the section
        section, _, key = text.partition(".")
        keys = [c.partition(".")[2] for c in candidates if c.startswith(section + ".")]
        near = difflib.get_close_matches(key, keys, n=1, cutoff=0.5)
        close = [f"{section}.{near[0]}"] if near else []
    return f" (did you mean '{close[0]}'?)" if close else f" (no similar valid {kind}; see `goald config`)"


def _type_word(s: Setting) -> str:
    return {bool: "true or false", int: "a whole number", float: "a number", str: "a string"}[s.type]


def _toml_type(v: Any) -> str:
    return {bool: "a boolean", int: "a whole number", float: "a number", str: "a string",
            list: "an array", dict: "a table"}.get(type(v), type(v).__name__)
