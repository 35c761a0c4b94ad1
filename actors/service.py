"""ServiceActor: puts a plain service object (the HTTP listener, the pool monitor) into the tree.

The service knows nothing of actors: it offers `start()` and/or `run_forever()`, and optionally
`stop(timeout_s)`. In the actor's greenlet, `started()` calls `service.start()` (an exception fails
the start: the console's "address in use" reaches the daemon as one line), then runs
`service.run_forever()` in a linked helper greenlet: if the loop dies, the actor crashes and its
supervisor restarts it (with a fresh service object from the spec's factory). `stopping()` calls
`service.stop(timeout_s)`. This keeps the core and the console free of actor imports (the layers
in docs/ARCHITECTURE.md); only the composition root (goald/tree.py) puts them together.
"""
from __future__ import annotations

from typing import Any

from goald.actors.base import SupervisedActor


class ServiceActor(SupervisedActor):
    def __init__(self, *, name: str, parent, service: Any, kind: str = "service", stop_timeout_s: float = 5.0):
        super().__init__(name=name, parent=parent)
        self.service = service
        self.kind = kind
        self.stop_timeout_s = stop_timeout_s

    def started(self) -> None:
        start = getattr(self.service, "start", None)
        if start is not None:
            start()
        run = getattr(self.service, "run_forever", None)
        if run is not None:
            self.spawn_linked(run)

    def stopping(self) -> None:
        stop = getattr(self.service, "stop", None)
        if stop is not None:
            stop(timeout_s=self.stop_timeout_s)
