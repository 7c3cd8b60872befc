"""Progress of a long command: a live bar on a terminal, plain log lines otherwise."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

log = logging.getLogger(__name__)
LOG_EVERY_S = 2.0


class EventRateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        return Text(f"{task.speed or 0:,.0f} events/s")


@contextmanager
def progress(description: str, total: int) -> Iterator[Callable[[int], None]]:
    """Yields `advance(n)`, to be called with each batch of events done."""
    if sys.stderr.isatty():
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            EventRateColumn(),
            TimeRemainingColumn(),
        )
        with Progress(*columns, transient=False) as bar:
            task = bar.add_task(description, total=total)
            yield lambda n: bar.advance(task, n)
        return
    started = last_logged = time.monotonic()
    done = 0

    def advance(n: int) -> None:
        nonlocal done, last_logged
        done += n
        now = time.monotonic()
        if now - last_logged >= LOG_EVERY_S or done >= total:
            last_logged = now
            rate = done / max(now - started, 1e-9)
            log.info("%s: %d/%d events, %.0f events/s", description, done, total, rate)

    yield advance
