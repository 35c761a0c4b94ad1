"""Day after day: the simulator's world for a process that outlives a UTC day (`goald run`'s demo
feed, a long `goald simulate`).

A `World` is one day (kick-offs from 20:00 the evening before to midnight). `RollingDays` builds
the next day's World when the clock passes midnight and keeps the previous one for `KEEP_S`
more (its late matches are still playing or just ended), answering from both: their matches have
different ids (a match id includes its day; teams and competitions are the same every day, from
the seed). Then the previous day is dropped. Runs in the server's request greenlets; building a
day blocks for about a second a day, which is the price of not running threads.
"""
from __future__ import annotations

from goald.simulator.world import PAGE_SIZE, World

KEEP_S = 6 * 3600  # the previous day's last matches end by ~02:40; six hours leaves them in recent lists


class RollingDays:
    def __init__(self, seed: int, matches: int, clock):
        self.seed, self.count, self.clock = seed, matches, clock
        self.current = World(seed=seed, matches=matches, clock=clock)
        self.previous: World | None = None

    def _worlds(self) -> list[World]:
        now = self.clock.now()
        day = int(now - now % 86400)
        if day > self.current.day:
            kept = self.current if self.current.day == day - 86400 else None
            self.current = World(seed=self.seed, matches=self.count, clock=self.clock, day=day)
            self.previous = kept
        if self.previous is not None and now >= self.current.day + KEEP_S:
            self.previous = None
        return [self.current] if self.previous is None else [self.previous, self.current]

    # --- the endpoints World answers, over one or two days -------------------------------------

    def detail_live(self) -> list[dict]:
        worlds = self._worlds()
        if len(worlds) == 1:
            return worlds[0].detail_live()
        return [item for w in worlds for item in w.detail_live()]

    def diary(self, tsp) -> tuple[list[dict], dict]:
        worlds = self._worlds()
        if len(worlds) == 1:
            return worlds[0].diary(tsp)
        results, extra = [], {}
        for w in worlds:
            r, e = w.diary(tsp)
            results.extend(r)
            for section, rows in e.items():
                seen = {row["id"] for row in extra.setdefault(section, [])}
                extra[section].extend(row for row in rows if row["id"] not in seen)
        results.sort(key=lambda o: (o["match_time"], o["id"]))
        return results, extra

    def recent_list(self, since: int | None = 0, page: int = 1, uuid: str | None = None) -> list[dict]:
        worlds = self._worlds()
        if uuid is not None:
            return next((found for w in reversed(worlds) if (found := w.recent_list(uuid=uuid))), [])
        if len(worlds) == 1:
            return worlds[0].recent_list(since, page)
        objs = []
        for w in worlds:
            n = 1
            while chunk := w.recent_list(since, n):
                objs.extend(chunk)
                n += 1
        objs.sort(key=lambda o: (o["updated_at"], o["id"]))
        return objs[(page - 1) * PAGE_SIZE: page * PAGE_SIZE] if page >= 1 else []

    def data_update(self) -> dict:
        worlds = self._worlds()
        if len(worlds) == 1:
            return worlds[0].data_update()
        merged: dict[str, list] = {}
        for w in worlds:
            for type_id, items in w.data_update().items():
                merged.setdefault(type_id, []).extend(items)
        return {k: merged[k] for k in sorted(merged, key=int)}

    def team_stats(self) -> list[dict]:
        return [item for w in self._worlds() for item in w.team_stats()]

    def half_team_stats(self, match_id: str):
        return self._first(lambda w: w.half_team_stats(match_id))

    def sim_match(self, match_id: str):
        return self._first(lambda w: w.sim_match(match_id))

    def _first(self, ask):
        for w in reversed(self._worlds()):
            found = ask(w)
            if found is not None:
                return found
        return None

    def analysis(self, match_id: str):
        for w in reversed(self._worlds()):
            found = w.analysis(match_id)
            if found is not None:
                return found
        return None

    def season_table(self, season_id: str):
        return self._worlds()[-1].season_table(season_id)

    def table_live(self) -> list[dict]:
        return self._worlds()[-1].table_live()

    def competitions(self, **kw) -> list[dict]:
        return self._worlds()[-1].competitions(**kw)

    def teams(self, **kw) -> list[dict]:
        return self._worlds()[-1].teams(**kw)

    def summary(self) -> dict:
        worlds = self._worlds()
        out = dict(worlds[-1].summary())
        out["days"] = [w.day for w in worlds]
        out["matches"] = sum(len(w.matches) for w in worlds)
        return out

    def match_ids(self) -> list[str]:
        return [i for w in self._worlds() for i in w.match_ids()]

    def state(self, match_id: str):
        for w in self._worlds():
            found = w.state(match_id)
            if found is not None:
                return found
        return None
