"""`goald simulate`: the TheSports-compatible simulator on its own, in the foreground.

Runs in the main greenlet; the server's requests run in greenlets of their own. Bad arguments
(an unknown scenario, a bad `--at`, a bad chaos switch, a busy port) are one line on standard
error and exit 2 (5 for the port); SIGINT/SIGTERM stop it (exit 0).
"""
from __future__ import annotations

import signal
import sys

import gevent
import gevent.event

from goald import exitcodes

DEFAULT_PORT = 8090


def add_parser(sub, common, epilog: str) -> None:
    p = sub.add_parser(
        "simulate", help="serve a simulated TheSports provider (a live football day)",
        description="Serve a TheSports-compatible API on loopback: a deterministic football day of "
                    "--matches matches from --seed, scenario files played beside it (or alone with "
                    "--matches 0), chaos switches, a control endpoint (/sim/state, /sim/chaos, "
                    "/sim/clock). See docs/simulator.md.", epilog=epilog)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0 = any free)")
    p.add_argument("--seed", type=int, default=1, help="the day's seed: the same seed, the same day (default 1)")
    p.add_argument("--matches", type=int, default=400, help="matches in the generated day (default 400)")
    p.add_argument("--scenario", action="append", default=[], metavar="FILE",
                   help="a scenario file, or the name of a shipped one (repeatable)")
    p.add_argument("--at", metavar="MM:SS", default="00:00",
                   help="start the scenarios at this point of their clock (kick-off placed in the past)")
    p.add_argument("--day-time", metavar="HH:MM", default=None,
                   help="run the day's clock from this UTC time of day instead of now (e.g. 19:00, the evening "
                        "peak); it then runs in real time")
    p.add_argument("--chaos", action="append", default=[], metavar="SWITCH=VALUE",
                   help="a chaos switch, e.g. http_5xx=0.2 or stuck_ids=a+b (repeatable, or comma-separated)")
    p.add_argument("--user", default=None, help="the accepted user (default demo)")
    p.add_argument("--secret", default=None, help="the accepted secret (default demo)")
    p.add_argument("--rate", type=int, default=None, help="requests per second per user before code 429 "
                                                           "(default 200; 0 = no limit)")


def cmd_simulate(args, fail) -> int:
    from goald import logs
    from goald.simulator.chaos import ChaosError
    from goald.simulator.scenario import ScenarioError
    from goald.simulator.service import SimulatorSetupError, build

    logs.setup("INFO")
    try:
        server = build(seed=args.seed, matches=args.matches, scenarios=args.scenario, at=args.at,
                       chaos_flags=args.chaos, host=args.host, port=args.port, user=args.user,
                       secret=args.secret, rate=args.rate, day_time=args.day_time)
    except (ScenarioError, ChaosError, SimulatorSetupError) as e:
        fail("simulate", str(e))
        return exitcodes.CONFIG
    try:
        server.start()
    except OSError as e:
        fail("simulate", f"cannot listen on {args.host}:{args.port}: {e.strerror}; pick another --port (0 = any)")
        return exitcodes.STARTUP
    stop = gevent.event.Event()
    handlers = [gevent.signal_handler(s, stop.set) for s in (signal.SIGTERM, signal.SIGINT)]
    logs.event("INFO", "simulator.ready", f"Simulator serving on {server.url} (user {server.user!r}): "
               f"{server.world.summary()['matches']} matches, seed {args.seed}; control: {server.url}/sim/state",
               url=server.url, matches=server.world.summary()["matches"], seed=args.seed)
    print(server.url, flush=True)
    try:
        stop.wait()
    finally:
        for h in handlers:
            h.cancel()
        server.stop()
    logs.event("INFO", "simulator.stopped", "Simulator stopped")
    return exitcodes.OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit("run it as: goald simulate")
