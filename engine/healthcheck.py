"""`python -m engine.healthcheck`: the containers' health check, with nothing but the standard library (it
runs every few seconds in each container: importing the engine would cost more than the check).

- `python -m engine.healthcheck URL`: healthy when `GET URL` answers 2xx within 3 s (the API's and the
  market's `/health`).
- `python -m engine.healthcheck --heartbeat FILE MAX_AGE_S`: healthy when FILE was written less than
  MAX_AGE_S seconds ago (a worker or projector writes it from its event loop: `HEARTBEAT_FILE`).

Exit status 0: healthy; 1: not (with one line on stderr saying why), as Docker's HEALTHCHECK expects."""

from __future__ import annotations

import os
import sys
import time
import urllib.error
import urllib.request

TIMEOUT_S = 3.0


def check_url(url: str) -> str | None:
    """None when `url` answers 2xx, else why not."""
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            status = int(response.status)
    except urllib.error.HTTPError as error:
        return f"{url} answered {error.code}"
    except (OSError, ValueError) as error:
        return f"{url} did not answer: {error}"
    return None if 200 <= status < 300 else f"{url} answered {status}"


def check_heartbeat(path: str, max_age_s: float, now: float | None = None) -> str | None:
    """None when `path` was modified less than `max_age_s` seconds before `now`, else why not."""
    try:
        age = (time.time() if now is None else now) - os.stat(path).st_mtime
    except OSError as error:
        return f"no heartbeat at {path}: {error.strerror}"
    return None if age < max_age_s else f"heartbeat {path} is {age:.0f} s old (limit {max_age_s:g} s)"


def main(argv: list[str]) -> int:
    if len(argv) == 1 and not argv[0].startswith("-"):
        problem = check_url(argv[0])
    elif len(argv) == 3 and argv[0] == "--heartbeat":
        problem = check_heartbeat(argv[1], float(argv[2]))
    else:
        print("usage: python -m engine.healthcheck URL | --heartbeat FILE MAX_AGE_S", file=sys.stderr)
        return 2
    if problem is not None:
        print(problem, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover (run by Docker)
    sys.exit(main(sys.argv[1:]))


HEARTBEAT_EVERY_S = 5.0  # the compose file's check allows three missed beats


async def beat_forever(path: str, every_s: float = HEARTBEAT_EVERY_S) -> None:
    """Touch `path` every `every_s` seconds, from the event loop: a loop that stalls stops the beats."""
    import asyncio
    from pathlib import Path

    heartbeat = Path(path)
    while True:
        await asyncio.to_thread(heartbeat.touch)
        await asyncio.sleep(every_s)
