"""Closed-loop HTTP load with wrk (C, so the load generator is not what is measured), and the reference
server that our POST endpoint is compared with."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import msgspec

WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = [[%(body)s]]
wrk.headers["Content-Type"] = "application/json"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write("RESULT", string.format(
    '{"requests":%%d,"duration_us":%%d,"errors":%%d,"non_2xx":%%d,"p50_us":%%d,"p99_us":%%d}',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(99)), "\\n")
end
"""


class LoadResult(msgspec.Struct):
    requests: int
    duration_us: int
    errors: int
    non_2xx: int
    p50_us: int
    p99_us: int

    @property
    def per_second(self) -> float:
        return self.requests / (self.duration_us / 1e6)


INSTALL_WRK = "apt-get install wrk (Debian/Ubuntu) or brew install wrk"


def wrk_binary() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise SystemExit(f"the HTTP parts need wrk: {INSTALL_WRK}")
    return found


def post_load(
    url: str, body: dict, *, seconds: float, connections: int, threads: int = 1, timeout_s: float = 2
) -> LoadResult:
    """POSTs `body` to `url` as fast as `connections` keep-alive connections allow; a request unanswered
    after `timeout_s` counts as an error (wrk's default: 2 s)."""
    with tempfile.TemporaryDirectory() as scratch:
        script = Path(scratch) / "post.lua"
        script.write_text(WRK_SCRIPT % {"body": json.dumps(body)})
        command = [wrk_binary(), f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s"]
        command.append(f"--timeout={timeout_s:g}s")
        out = subprocess.run(
            [*command, "-s", script, url],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    line = next(line for line in out.splitlines() if line.startswith("RESULT"))
    return msgspec.json.decode(line.removeprefix("RESULT"), type=LoadResult)
