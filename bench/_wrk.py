"""What the HTTP benches share: one wrk run over a list of paths, with its figures parsed.

wrk's Lua script cycles through `paths` with the given request headers; `think_ms` > 0 makes
each connection pause a random think time (uniform over 0 to twice it) after every answer
(paced clients), 0 sends again at once (saturated). The script's `done` prints the counts and
the latency percentiles, read back here.
"""
import json
import os
import subprocess
import uuid
from pathlib import Path

SCRIPT = """
paths = {%(paths)s}
headers = %(headers)s
think = %(think)d
local i = 0
if think > 0 then
  delay = function() return math.random(0, 2 * think) end
end
request = function()
  i = i %% #paths + 1
  return wrk.format("GET", paths[i], headers)
end
done = function(summary, latency, requests)
  io.write(string.format("requests %%d\\nduration_us %%d\\n", summary.requests, summary.duration))
  io.write(string.format("errors %%d\\n", summary.errors.status + summary.errors.connect + summary.errors.read
                                        + summary.errors.write + summary.errors.timeout))
  for _, q in ipairs({50, 95, 99}) do io.write(string.format("p%%d %%d\\n", q, latency:percentile(q))) end
end
"""


def run(base: str, paths: list[str], seconds: int, workdir: str, *, connections: int = 100,
        headers: dict[str, str] | None = None, think_ms: int = 0) -> dict:
    """`wrk -t1 -c<connections> -d<seconds>s` against `base`: requests/s, p50 / p95 / p99 (ms), errors."""
    lua_headers = "{" + ", ".join(f"[{json.dumps(k)}] = {json.dumps(v)}" for k, v in (headers or {}).items()) + "}"
    script = os.path.join(workdir, f"wrk-{uuid.uuid4().hex[:6]}.lua")
    Path(script).write_text(SCRIPT % {"paths": ", ".join(json.dumps(p) for p in paths), "headers": lua_headers,
                                      "think": think_ms})
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "30s", "-s", script, base]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60).stdout
    got = dict(line.split() for line in out.splitlines() if len(line.split()) == 2 and line.split()[1].isdigit())
    reqs, dur = int(got.get("requests", 0)), max(int(got.get("duration_us", 1)), 1) / 1e6
    return {"rps": round(reqs / dur), "p50_ms": int(got.get("p50", 0)) / 1000, "p95_ms": int(got.get("p95", 0)) / 1000,
            "p99_ms": int(got.get("p99", 0)) / 1000, "errors": int(got.get("errors", 0)), "requests": reqs}
