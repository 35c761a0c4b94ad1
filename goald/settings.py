"""The one table of goald's settings.

Every setting is declared once, in one of the table's parts (goald/settings_runtime.py: goald's own;
goald/settings_feed.py: the provider, match pipeline, tables and cache; goald/settings_business.py:
the business jobs), as a `Setting` (goald/setting.py): its dotted name (`section.key` in
goald.toml), type, default, bounds, the environment variables that override it, help text and
whether it is a secret (a secret is masked, redacted from logs and also read from the systemd
credential of its name, see goald/credentials.py). This table drives parsing and validation
(goald/config.py), `goald config`, the sample goald.toml (`goald config --sample`) and
docs/configuration.md (`goald config --markdown`); a test fails when the committed goald.toml or doc
disagree with it.

Environment naming scheme: every setting answers to `GOALD_<SECTION>_<KEY>` (upper case, dots to
underscores). Where the original system (the seeds) had a variable for the same thing, that name
works too (`DATABASE_URL`, `DB_MAX_CONNECTIONS`, ...) and is listed in `legacy_env`. When both are
set, the `GOALD_*` name wins. Job-specific variables of the seeds (`JOB_STAGGER_<JOB>`,
`MATCH_MINUTE_TIMEOUT_MS`, ...) arrive with the jobs that own them and follow the same scheme.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from goald import settings_business, settings_feed, settings_runtime
from goald.setting import Setting

__all__ = ["BY_ENV", "BY_NAME", "SECTIONS", "SETTINGS", "Setting", "SettingsTableError"]

# The parts, in the order goald.toml and docs/configuration.md show them: goald's own, the match
# side's, the business jobs'.
_PARTS = (settings_runtime, settings_feed, settings_business)
SECTIONS: dict[str, str] = {name: title for part in _PARTS for name, title in part.SECTIONS.items()}
SETTINGS: tuple[Setting, ...] = tuple(s for part in _PARTS for s in part.SETTINGS)

BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}
BY_ENV: dict[str, Setting] = {env: s for s in SETTINGS for env in s.env_names}


@dataclass
class SettingsTableError(Exception):
    problems: list[str] = field(default_factory=list)


def _check_table() -> None:
    """Fail at import when the table itself is inconsistent (a developer error, caught by any test)."""
    problems = []
    if len(SECTIONS) != sum(len(part.SECTIONS) for part in _PARTS):
        problems.append("two parts of the table declare the same section")
    for part in _PARTS:
        problems += [f"{s.name}: declared in {part.__name__}, whose sections do not include {s.section!r}"
                     for s in part.SETTINGS if s.section not in part.SECTIONS]
    for s in SETTINGS:
        if s.section not in SECTIONS:
            problems.append(f"{s.name}: section {s.section!r} missing from SECTIONS")
        if not isinstance(s.default, s.type) or (s.type is int and isinstance(s.default, bool)):
            problems.append(f"{s.name}: default {s.default!r} is not {s.type.__name__}")
        if s.choices and s.default not in s.choices:
            problems.append(f"{s.name}: default {s.default!r} not in choices")
        if s.secret and s.type is not str:  # masking, redaction and credential files hold text
            problems.append(f"{s.name}: a secret must be a str setting")
    if len(BY_ENV) != sum(len(s.env_names) for s in SETTINGS):
        problems.append("two settings share an environment variable")
    if problems:
        raise SettingsTableError(problems)


_check_table()
