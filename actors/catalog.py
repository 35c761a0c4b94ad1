"""The job catalog: every job goald can run, with its schedule, offset, timeout and policies.

`JobSpec` is the declaration a job module exports in its `JOBS` list (see actors/jobs/). The
catalog is the built-in modules (`BUILTIN_MODULES`) plus the modules named in `jobs.modules`,
resolved against the configuration: `[job.<name>]` tables / `GOALD_JOB_<NAME>_<KEY>` / the seeds'
`JOB_STAGGER_<NAME>` and `<JOB>_TIMEOUT_MS` variables. Runs at start and on reload, in the caller's
greenlet; problems raise `CatalogError` with one line each (the daemon exits 2 on them).

Only jobs with real bodies are registered: the seeds' business jobs join the catalog as each body
lands (later issues), with the seeds' offsets.
"""
from __future__ import annotations

import dataclasses
import importlib
import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from goald.actors.schedule import Schedule, ScheduleError
from goald.config import Config, ConfigError, _suggest

BUILTIN_MODULES = ("goald.actors.jobs.runtime", "goald.actors.jobs.ingest", "goald.actors.jobs.safety",
                   "goald.actors.jobs.stats", "goald.actors.jobs.tables", "goald.actors.jobs.business",
                   "goald.actors.jobs.badges", "goald.actors.jobs.predictions", "goald.actors.jobs.telegram")
NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
OVERLAP_POLICIES = ("skip", "allow")


class CatalogError(ConfigError):
    """The job catalog cannot be used (a bad job module or override): a configuration problem,
    one line per problem in `problems`, exit 2."""


@dataclass(frozen=True)
class JobSpec:
    """One job. `run(ctx)` is a plain function (see actors.context); `schedule.offset_s` is the
    catalog (staggered) offset; `stagger=False` pins the job to offset 0 unless configured."""

    name: str
    run: Callable[[Any], Any]
    schedule: Schedule
    timeout_s: float
    description: str
    overlap: str = "skip"
    enabled: bool = True
    stagger: bool = True
    timeout_env: str | None = None    # the seeds' variable, in milliseconds (e.g. MATCH_MINUTE_TIMEOUT_MS)
    sources: tuple[tuple[str, str], ...] = ()   # (what, where) for overrides applied, for `goald jobs`
    # "DEBUG" for a poller that runs every few seconds: its started / completed / skipped lines go
    # to DEBUG and its failures are logged once a minute per error with a count (actors/job_actor.py).
    log_runs: str = "INFO"
    # Runs only on the node that leads the match pipeline (goald/db/cluster.py): the ingest and
    # match-safety jobs, which feed and ask the match actors that only the leader holds.
    leader_only: bool = False

    def __post_init__(self) -> None:
        if not NAME_RE.match(self.name):
            raise ValueError(f"job name {self.name!r} must be lower-case letters, digits and _")
        if self.overlap not in OVERLAP_POLICIES:
            raise ValueError(f"job {self.name}: overlap must be one of {OVERLAP_POLICIES}")
        if self.log_runs not in ("INFO", "DEBUG"):
            raise ValueError(f"job {self.name}: log_runs must be INFO or DEBUG")
        if not self.timeout_s > 0:
            raise ValueError(f"job {self.name}: timeout_s must be positive")


def load(cfg: Config, environ: Mapping[str, str]) -> list[JobSpec]:
    """The effective catalog for this configuration, sorted by name."""
    problems: list[str] = []
    specs: dict[str, JobSpec] = {}
    extra = [m.strip() for m in cfg["jobs.modules"].split(",") if m.strip()]
    for module_name in (*BUILTIN_MODULES, *extra):
        try:
            module = importlib.import_module(module_name)
        except Exception as e:  # an operator's module: report, do not crash
            problems.append(f"jobs.modules: cannot import {module_name!r}: {type(e).__name__}: {e}")
            continue
        jobs = getattr(module, "JOBS", None)
        if not isinstance(jobs, (list, tuple)) or not all(isinstance(j, JobSpec) for j in jobs):
            problems.append(f"jobs.modules: {module_name} has no JOBS list of JobSpec")
            continue
        for spec in jobs:
            if spec.name in specs:
                problems.append(f"jobs.modules: job {spec.name!r} is declared twice ({module_name})")
            specs[spec.name] = spec
    resolved = []
    for name in sorted(specs):
        try:
            resolved.append(_apply_overrides(specs[name], cfg.jobs.get(name, {}), environ))
        except (ScheduleError, ValueError) as e:
            problems.append(f"job {name}: {e}")
    for name, keys in cfg.jobs.items():
        if name not in specs:
            where = next(iter(keys.values()))[1]
            problems.append(f"{where}: no job named {name!r}{_suggest(name, specs, kind='job')}")
    if problems:
        raise CatalogError(problems)
    return resolved


def _apply_overrides(spec: JobSpec, keys: dict[str, tuple[Any, str]], environ: Mapping[str, str]) -> JobSpec:
    changes: dict[str, Any] = {}
    sources = []
    if spec.timeout_env and spec.timeout_env in environ:
        raw = environ[spec.timeout_env].strip()
        if not raw.isdigit() or int(raw) <= 0:
            raise ValueError(f"environment variable {spec.timeout_env} must be a positive number of "
                             f"milliseconds, not {raw!r}")
        changes["timeout_s"] = int(raw) / 1000.0
        sources.append(("timeout_s", spec.timeout_env))
    for key, (value, where) in keys.items():
        if key == "offset_s":
            changes["schedule"] = spec.schedule.with_offset(value)
        else:
            changes[key] = value
        sources.append((key, where))
    if not changes:
        return spec
    return dataclasses.replace(spec, **changes, sources=tuple(sources))
