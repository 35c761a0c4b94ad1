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
        "# the original system's names. A secret is better given as a systemd credential of its name",
        "# (LoadCredential=, docs/operations.md) than written here: a credential overrides this file.",
        "# `goald config` shows the effective values and their sources.",
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
                meta.append(f"secret; credential: {s.name}")
            out += [f"# {line}" for line in help_lines]
            out += [f"# ({'; '.join(meta)})", f"{s.key} = {_toml_value(s.default)}"]
    out += ["", *JOB_TABLE_SAMPLE]
    return "\n".join(out) + "\n"


JOB_TABLE_SAMPLE = [
    "# Per-job overrides of the catalog (`goald jobs` lists the jobs), one table per job, e.g.:",
    "# [job.orphan_rescue]",
    "# enabled = true       # default before any `goald jobs enable|disable` (the flags table wins)",
    "# stagger = true       # false: this job starts at :00 (env JOB_STAGGER_<JOB>=0, as in the seeds)",
    "# offset_s = 7         # the second offset used while stagger is on",
    "# timeout_s = 20       # the run is cancelled and recorded timed_out after this",
    "# Environment: GOALD_JOB_<JOB>_<KEY> (e.g. GOALD_JOB_ORPHAN_RESCUE_TIMEOUT_S=30); a job may also",
    "# honour the seeds' <JOB>_TIMEOUT_MS variable (milliseconds).",
]


def markdown() -> str:
    out = [
        "# Configuration reference",
        "",
        "<!-- Generated from goald/settings.py by `goald config --markdown`; a test keeps it in sync. -->",
        "",
        "goald reads, in order of increasing strength: built-in defaults, the configuration file,",
        "systemd credentials (secrets only), then environment variables. The file is `$GOALD_CONFIG`,",
        "else `./goald.toml`, else `/etc/goald/goald.toml` (or `--config PATH`); with none, the",
        "defaults apply.",
        "Every setting answers to `GOALD_<SECTION>_<KEY>`; where the original system had a name for",
        "the same thing (`DATABASE_URL`, `DB_MAX_CONNECTIONS`, ...) it works too, and the `GOALD_*`",
        "name wins when both are set.",
        "",
        "A secret setting (marked **Secret** below) is also read from the systemd credential named",
        "after it: for `database.url`, the file `$CREDENTIALS_DIRECTORY/database.url` that the unit's",
        "`LoadCredential=database.url:/etc/goald/database.url` provides (docs/operations.md, Secrets).",
        "The value is the file's text without one trailing newline; an empty file counts as absent;",
        "other files in that directory are ignored. `goald config` shows such a value's source as",
        "`credential (/run/credentials/goald.service/database.url)`, masked like any secret.",
        "",
        "An unknown key or variable, a wrong type or an out-of-range value stops goald with exit code 2",
        "and one line per problem naming the key, where it came from (file:line, credential path or",
        "variable) and, for a typo, the closest valid name. Legal but unusual values are logged as",
        "warnings at start.",
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
            notes += (" **Secret**: masked in `goald config` and never logged; also read from the "
                      f"credential `{s.name}` (`$CREDENTIALS_DIRECTORY/{s.name}`).")
        if s.warn_above is not None:
            notes += f" Warns above {s.warn_above:g} ({s.warn_reason})."
        row = [f"`{s.name}`", s.type.__name__, f"`{default}`",
               ", ".join(f"`{e}`" for e in s.env_names), bounds, notes.replace("|", "\\|")]
        out.append("| " + " | ".join(row) + " |")
    out += [
        "",
        "## Per-job overrides",
        "",
        "Each job of the catalog (`goald jobs` lists them) can be tuned in a `[job.<name>]` table or",
        "through the environment. An unknown job name or key stops goald with exit code 2, with the",
        "closest valid name.",
        "",
        "| key | type | environment | meaning |",
        "| --- | --- | --- | --- |",
        "| `enabled` | bool | `GOALD_JOB_<JOB>_ENABLED` | whether the job runs, until a flag is set with "
        "`goald jobs enable\\|disable` (the flags table wins) |",
        "| `stagger` | bool | `GOALD_JOB_<JOB>_STAGGER`, `JOB_STAGGER_<JOB>` | false: the job starts at "
        "offset 0 even when `jobs.stagger_enabled` is on (the seeds' per-job rollback) |",
        "| `offset_s` | int | `GOALD_JOB_<JOB>_OFFSET_S` | the second offset used while stagger is on |",
        "| `timeout_s` | float | `GOALD_JOB_<JOB>_TIMEOUT_S`, the job's `<JOB>_TIMEOUT_MS` (ms) | the run is "
        "cancelled, its connection discarded and the row recorded `timed_out` after this |",
        "",
        "```toml",
        *(line[2:] if line.startswith("# [") or line.startswith("# ") and "=" in line else line
          for line in JOB_TABLE_SAMPLE[1:6]),
        "```",
    ]
    return "\n".join(out) + "\n"
