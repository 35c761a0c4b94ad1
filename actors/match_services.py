"""The match pipeline's parts in the actor tree (goald/tree.py): the `match_writer` and
`match_ticker` services (ServiceActor objects, actors/service.py) and the `matches`
DynamicSupervisor. Thin: every state they act on is the MatchPipeline's (actors/matches.py), so a
restarted service loses nothing. Each loop runs in its service actor's linked greenlet; an
exception in it crashes that actor, and its supervisor restarts it.
"""
from __future__ import annotations

import pykka

from goald.actors.dynamic import DynamicSupervisor
from goald.actors.matches import MatchPipeline


class WriterService:
    """The `match_writer` service (actors/service.py): the writer loop, and a last flush at stop."""

    def __init__(self, pipeline: MatchPipeline):
        self.pipeline = pipeline

    def run_forever(self) -> None:
        self.pipeline.writer_loop()

    def stop(self, timeout_s: float) -> None:
        self.pipeline.final_flush(timeout_s)


class TickerService:
    """The `match_ticker` service: the minute ticker's loop."""

    def __init__(self, pipeline: MatchPipeline):
        self.pipeline = pipeline

    def run_forever(self) -> None:
        self.pipeline.ticker_loop()


def match_supervisor(pipeline: MatchPipeline, parent, name: str, intensity, shutdown_timeout_s) -> pykka.ActorRef:
    """The `matches` DynamicSupervisor, sharing the pipeline's registry."""
    return DynamicSupervisor.start(name=name, parent=parent, intensity=intensity, registry=pipeline.registry,
                                   shutdown_timeout_s=shutdown_timeout_s)
