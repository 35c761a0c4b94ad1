"""Renderings of the settings table: the sample goald.toml and docs/configuration.md.

Pure functions. `goald config --sample` and `goald config --markdown` print them; a test checks
that the committed goald.toml and docs/configuration.md are exactly these renderings.
"""
from __future__ import annotations

import textwrap

from goald.settings import SECTIONS, SETTINGS, Setting


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(v)


def _env_text(s: Setting) -> str:
    return ", ".join(s.env_names)


def sample_toml() -> str:
    out = [
        "# goald configuration. Every setting is listed with its default value.",
        "# Environment variables override this file (names in each comment); GOALD_* names win over",
        "# the original system's names. `goald config` shows the effective values and their sources.",
        "# Reference: docs/configuration.md",
    ]
    for section, title in SECTIONS.items():
        out += ["", f"[{section}]", f"# {title}"]
        for s in (x for x in SETTINGS if x.section == section):
            help_lines = textwrap.wrap(s.help, 96)
            meta = [f"env: {_env_text(s)}"]
            if s.bounds_text():
                meta.append(f"allowed: {s.bounds_text()}")
            if s.unit:
                meta.append(f"unit: {s.unit}")
            if s.secret:
                meta.append("secret")
            out += [f"# {line}" for line in help_lines]
            out += [f"# ({'; '.join(meta)})", f"{s.key} = {_toml_value(s.default)}"]
    return "\n".join(out) + "\n"


def markdown() -> str:
    out = [
        "# Configuration reference",
        "",
        "<!-- Generated from goald/settings.py by `goald config --markdown`; a test keeps it in sync. -->",
        "",
        "goald reads, in order of increasing strength: built-in defaults, the configuration file, then",
        "environment variables. The file is `$GOALD_CONFIG`, else `./goald.toml`, else",
        "`/etc/goald/goald.toml` (or `--config PATH`); with none, the defaults apply.",
        "Every setting answers to `GOALD_<SECTION>_<KEY>`; where the original system had a name for",
        "the same thing (`DATABASE_URL`, `DB_MAX_CONNECTIONS`, ...) it works too, and the `GOALD_*`",
        "name wins when both are set. Job-specific names of the original system",
        "(`JOB_STAGGER_<JOB>`, `MATCH_MINUTE_TIMEOUT_MS`, ...) arrive with the jobs that own them and",
        "follow the same scheme.",
        "",
        "An unknown key or variable, a wrong type or an out-of-range value stops goald with exit code 2",
        "and one line per problem naming the key, where it came from (file:line or variable) and, for",
        "a typo, the closest valid name. Legal but unusual values are logged as warnings at start.",
        "`goald config` prints every effective value and its source (secrets masked);",
        "`goald config --json` does the same for machines; `goald config --sample` prints a complete",
        "goald.toml.",
        "",
        "| setting | type | default | environment | allowed | description |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for s in SETTINGS:
        default = _toml_value(s.default)
        bounds = s.bounds_text() + (f" {s.unit}" if s.unit and s.bounds_text() else "")
        notes = s.help
        if s.secret:
            notes += " **Secret**: masked in `goald config` and never logged."
        if s.warn_above is not None:
            notes += f" Warns above {s.warn_above:g} ({s.warn_reason})."
        row = [f"`{s.name}`", s.type.__name__, f"`{default}`",
               ", ".join(f"`{e}`" for e in s.env_names), bounds, notes.replace("|", "\\|")]
        out.append("| " + " | ".join(row) + " |")
    return "\n".join(out) + "\n"
