"""goald against the simulator's full day with every chaos switch turned on in turn for
`--minutes-each` (10), then all at once for as long: goald never crashes or escalates, every bad
answer is counted with a reason, the breaker opens and closes as specified, and `goald audit
matches` finds no violation afterwards.

`goald simulate` (its busiest hour) and one `goald run` on a fresh database, each in its own
process. Each phase sets one switch (`POST /sim/chaos`; the previous phase's are reset first) and
compares, over the phase, what the simulator served badly with what goald's `/health/provider`
counted for it:

| switch | the simulator counts | goald counts |
| --- | --- | --- |
| malformed, truncated | bodies that are not JSON | `rejections.malformed_json` |
| err | `{"err": ...}` answers | `refusals.err` |
| throttle, http_429 | throttle answers | `throttled` (the calls refused while backing off after one are `backed_off`) |
| http_5xx, timeout | failed answers | `retries` + `failures` (each failed attempt once) |
| wrong_types | (items mutated at random) | item rejections `wrong_type` (some) |
| out_of_order, duplicate, vanish, stuck, latency | (nothing bad to count) | updates rejected as older (out_of_order), nothing else |

`http_5xx` is set to 1.0, so that the breaker of each endpoint group opens after
`provider.breaker_failures` failures; after the phase (and `provider.breaker_open_s`, 120 s) its
trial call closes it again: the bench waits for `provider.circuit.closed`. Afterwards, with chaos
off, goald runs on for a minute and `goald audit matches` runs.

Run:  python bench/chaos_soak.py [--minutes-each 10] [--matches 1500] [--only http_5xx,malformed]
          [--breaker-open-s S] [--settle-s 60] [--json]
      (GOALD_BENCH_DATABASE_URL: a maintenance DSN, default postgresql://postgres@127.0.0.1:5432/postgres)
Exit status 1 when a target is missed. `--minutes-each 0.2` is the short version the suite runs
(tests/test_chaos_soak.py).
"""
import argparse
import json
import os
import sys
import time
import urllib.request
from collections import Counter

sys.path.insert(0, os.path.dirname(__file__))
from _goald import Stack  # noqa: E402

MAINTENANCE = os.environ.get("GOALD_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
PHASES = [
    ("latency_ms", {"latency_ms": 1500}),
    ("timeout", {"timeout": 0.2, "hang_s": 8}),
    ("http_5xx", {"http_5xx": 1.0}),
    ("http_429", {"http_429": 0.3}),
    ("throttle", {"throttle": 0.3}),
    ("err", {"err": 0.3}),
    ("malformed", {"malformed": 0.3}),
    ("truncated", {"truncated": 0.3}),
    ("wrong_types", {"wrong_types": 0.02}),
    ("out_of_order", {"out_of_order": 0.3}),
    ("duplicate", {"duplicate": 0.3}),
    ("vanish", {"vanish": 0.2}),
    ("stuck", None),                                   # stuck_ids: five live matches, chosen at the time
]
ALL_AT_ONCE = {"latency_ms": 200, "timeout": 0.02, "hang_s": 8, "http_5xx": 0.05, "http_429": 0.05, "throttle": 0.05,
               "err": 0.05, "malformed": 0.05, "truncated": 0.05, "wrong_types": 0.01, "out_of_order": 0.1,
               "duplicate": 0.1, "vanish": 0.1}
COUNTED_AS = {"malformed": "malformed", "truncated": "malformed", "err": "err", "throttle": "throttled",
              "http_429": "throttled", "http_5xx": "failed", "timeout": "failed"}


def call(url: str, body: dict | None = None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"} if data else {})
    with urllib.request.urlopen(req, timeout=15) as r:
        return json.loads(r.read())


def sim_bad(state: dict) -> Counter:
    out = Counter()
    for path, outcomes in state["served"].items():
        for outcome, n in outcomes.items():
            if outcome in COUNTED_AS:
                out[COUNTED_AS[outcome]] += n
    return out


def goald_counted(provider: dict) -> Counter:
    out = Counter()
    for s in provider["endpoints"].values():
        out["malformed"] += s["rejections"].get("malformed_json", 0)
        out["err"] += s["refusals"].get("err", 0)
        out["throttled"] += s["throttled"]
        out["failed"] += s["retries"] + sum(s["failures"].values())
        out["wrong_type_items"] += s["rejections"].get("wrong_type", 0)
        out["rejections"] += sum(s["rejections"].values())
    return out


def events(log_path: str, since_line: int = 0) -> list[dict]:
    out = []
    with open(log_path) as f:
        for i, line in enumerate(f):
            if i >= since_line and line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes-each", type=float, default=10.0)
    ap.add_argument("--matches", type=int, default=1500)
    ap.add_argument("--only", default="", help="comma-separated phases, all_at_once among them (default: every "
                                               "switch in turn, then all at once)")
    ap.add_argument("--breaker-open-s", type=float, default=None,
                    help="goald's provider.breaker_open_s (default: goald's own, 120 s)")
    ap.add_argument("--settle-s", type=float, default=60.0, help="goald runs on this long before the audit")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    only = {p for p in args.only.split(",") if p}
    phases = [p for p in PHASES if not only or p[0] in only] + (
        [("all_at_once", ALL_AT_ONCE)] if not only or "all_at_once" in only else [])
    rows, problems = [], []
    with Stack(MAINTENANCE, "chaos") as stack:
        sim = stack.simulator(matches=args.matches, seed=6, day_time="18:30")
        port = stack.goald(sim, **({} if args.breaker_open_s is None
                                   else {"GOALD_PROVIDER_BREAKER_OPEN_S": str(args.breaker_open_s)}))
        base = f"http://127.0.0.1:{port}"
        time.sleep(15)
        for name, switches in phases:
            call(f"{sim}/sim/chaos", {"reset": True})
            if switches is None:
                live = call(f"{base}/api/matches/live")["matches"]
                switches = {"stuck_ids": [m["id"] for m in live if m["status_id"] in (2, 4)][:5]}
            before_sim, before_goald = sim_bad(call(f"{sim}/sim/state")), goald_counted(call(f"{base}/health/provider"))
            lines_before = sum(1 for _ in open(stack.log_path))
            call(f"{sim}/sim/chaos", switches)
            # The live breaker needs five failed 2-s polls in a row: http_5xx lasts 30 s at least.
            time.sleep(max(args.minutes_each * 60, 30.0 if name == "http_5xx" else 0.0))
            call(f"{sim}/sim/chaos", {"reset": True})
            time.sleep(3)                                          # the calls in flight come back
            alive = stack.goald_proc.poll() is None
            if not alive:
                problems.append(f"{name}: goald exited {stack.goald_proc.returncode}")
                break
            sim_d = sim_bad(call(f"{sim}/sim/state")) - before_sim
            goald_d = goald_counted(call(f"{base}/health/provider")) - before_goald
            evs = events(stack.log_path, lines_before)
            kinds = Counter(e.get("event") for e in evs)
            row = {"phase": name, "switches": switches, "simulator_bad": dict(sim_d), "goald_counted": dict(goald_d),
                   "crashed": kinds["actor.crashed"], "escalated": kinds["supervisor.escalated"] + kinds["goald.escalated"],
                   "breaker_opened": kinds["provider.circuit.opened"],
                   "rejected_lines_without_reason": sum(1 for e in evs if e.get("event") == "provider.payload.rejected"
                                                        and not e.get("reason"))}
            rows.append(row)
            if row["escalated"]:
                problems.append(f"{name}: escalated")
            if row["rejected_lines_without_reason"]:
                problems.append(f"{name}: rejection lines without a reason")
            for kind in ("malformed", "err", "throttled"):
                if sim_d[kind] and goald_d[kind] != sim_d[kind]:
                    problems.append(f"{name}: the simulator served {sim_d[kind]} {kind}, goald counted {goald_d[kind]}")
            if name == "wrong_types" and not goald_d["wrong_type_items"]:
                problems.append("wrong_types: no item rejected as wrong_type")
            if name == "http_5xx" and not row["breaker_opened"]:
                problems.append("http_5xx: no breaker opened")
        # The breakers opened during http_5xx close with their trial call once open_s is over.
        call(f"{sim}/sim/chaos", {"reset": True})
        # (+ a minute and more: the stats group's only callers run once a minute)
        deadline = time.monotonic() + (args.breaker_open_s or 120) + 140
        while time.monotonic() < deadline:
            groups = call(f"{base}/health/provider")["groups"]
            if all(g["state"] == "closed" for g in groups.values()):
                break
            time.sleep(5)
        groups = call(f"{base}/health/provider")["groups"]
        all_events = events(stack.log_path)
        kinds = Counter(e.get("event") for e in all_events)
        breakers = {"opened": kinds["provider.circuit.opened"], "half_open": kinds["provider.circuit.half_open"],
                    "closed": kinds["provider.circuit.closed"], "now": {g: v["state"] for g, v in groups.items()}}
        if any(v["state"] != "closed" for v in groups.values()):
            problems.append(f"breakers not closed again: {breakers['now']}")
        if breakers["opened"] and not breakers["closed"]:
            problems.append("a breaker opened and never closed")
        time.sleep(args.settle_s)
        audit = stack.audit()
        if audit.returncode != 0:
            problems.append("audit: " + "; ".join(audit.stdout.splitlines()[:5]))
        alive = stack.goald_proc.poll() is None
        if not alive:
            problems.append(f"goald exited {stack.goald_proc.returncode}")
    out = {"minutes_each": args.minutes_each, "phases": rows, "breakers": breakers, "audit_exit": audit.returncode,
           "audit": audit.stdout.strip().splitlines()[-1:], "goald_alive": alive, "problems": problems}
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(f"chaos soak: {len(rows)} phases of {args.minutes_each:g} min; goald alive at the end: {alive}")
        for r in rows:
            bad = ", ".join(f"{k} {v}/{r['goald_counted'].get(k, 0)}" for k, v in sorted(r["simulator_bad"].items()))
            print(f"  {r['phase']:<13} served-bad/counted: {bad or '-':<40} rejections {r['goald_counted'].get('rejections', 0):>5}"
                  f"  crashed {r['crashed']}  escalated {r['escalated']}  breaker opened {r['breaker_opened']}")
        print(f"  breakers: opened {breakers['opened']}, half-open {breakers['half_open']}, closed {breakers['closed']}; "
              f"now {breakers['now']}")
        print(f"  goald audit matches: exit {audit.returncode} {out['audit']}   target: no violation")
        print("  problems: " + ("; ".join(problems) if problems else "none"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
