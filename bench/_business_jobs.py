"""A jobs module for bench/business_kill.py, loaded by `goald run` with jobs.modules =
"_business_jobs" (PYTHONPATH = bench/): every business job of the catalog again, with its real
body, every second instead of its production schedule, named `fast_<job>_<BENCH_JOB_SUFFIX>`.

Each node of the bench gets its own suffix, so the two nodes run the same bodies at the same
moments against the same rows (each node's occurrences are its own in the run ledger): nothing
but the database keeps them from granting, moving, queueing or sending anything twice. The
production jobs themselves are disabled by the bench (GOALD_JOB_<NAME>_ENABLED=false).
"""
import dataclasses
import importlib
import os

from goald.actors.catalog import JobSpec
from goald.actors.schedule import Schedule

# The business job modules; the ones this goald does not have yet are left out (and the bench
# prints the jobs it ran, so a missing one is visible).
MODULES = ("goald.actors.jobs.business", "goald.actors.jobs.badges", "goald.actors.jobs.predictions",
           "goald.actors.jobs.telegram")


def business_jobs() -> list[JobSpec]:
    specs = []
    for name in MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError:
            continue
        specs.extend(module.JOBS)
    return specs


def _fast(spec: JobSpec, suffix: str) -> JobSpec:
    return dataclasses.replace(spec, name=f"fast_{spec.name}_{suffix}", schedule=Schedule(every_s=1),
                               timeout_s=min(spec.timeout_s, 30.0), timeout_env=None, log_runs="DEBUG",
                               description=f"bench copy of {spec.name}, every second")


JOBS = [_fast(s, os.environ.get("BENCH_JOB_SUFFIX", "a")) for s in business_jobs()]
