"""The collision check's rule (actors/schedule.py collisions): jobs of a minute or longer are
checked against each other, sub-minute pollers against each other, and a poller meeting a longer
job is no collision; the default catalog (runtime and ingest jobs) is clean."""
import time

from goald import config
from goald.actors import catalog
from goald.actors.schedule import Schedule, collisions, is_poller

NOW = 1_780_000_000.0


def test_two_minute_jobs_on_one_second_collide_and_two_pollers_on_one_second_collide():
    found = collisions({"a": Schedule(cron="* * * * *", offset_s=5), "b": Schedule(cron="*/5 * * * *", offset_s=5),
                        "p": Schedule(every_s=2), "q": Schedule(every_s=20, offset_s=4)}, NOW)
    assert {(c.first, c.second) for c in found} == {("a", "b"), ("p", "q")}


def test_a_poller_sharing_seconds_with_minute_jobs_is_not_a_collision_but_pollers_apart_are_clean():
    assert collisions({"minute": Schedule(cron="* * * * *", offset_s=20), "poll2": Schedule(every_s=2),
                       "poll20": Schedule(every_s=20, offset_s=1)}, NOW) == []
    assert is_poller(Schedule(every_s=59)) and not is_poller(Schedule(every_s=60))
    assert not is_poller(Schedule(cron="* * * * *"))


def test_the_default_catalog_has_no_collisions_with_stagger_on():
    cfg = config.load(None, {}, search=False)
    specs = catalog.load(cfg, {})
    names = {s.name for s in specs}
    assert {"detail_live", "data_update", "recent_sync", "daily_diary", "reference_sync"} <= names
    assert collisions({s.name: s.schedule for s in specs if s.enabled}, time.time()) == []
