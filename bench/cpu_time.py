"""CPU time spent by each part of the running system (engine roles, PostgreSQL, Redis, the bench itself),
read from the operating system: unlike a profiler's samples, a process descheduled in a system call costs
nothing here."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

import psutil


class CpuClock:
    """`elapsed()`: CPU seconds used by each group of processes since the clock was made.

    `groups` maps a name to process ids; each group also counts its processes' children, those still
    running and those that ended (as PostgreSQL's server does with a backend per connection). Groups named
    "postgresql" and "redis" are found by themselves: every local server process of that name; "bench" is
    this process alone (not the profilers it starts).
    """

    def __init__(self, groups: Mapping[str, Iterable[int]]) -> None:
        self._roots = {name: [psutil.Process(pid) for pid in pids] for name, pids in groups.items()}
        self._roots["postgresql"] = _oldest("postgres")
        self._roots["redis"] = _oldest("redis-server")
        self._bench = psutil.Process(os.getpid())
        self._start = self._now()

    def elapsed(self) -> dict[str, float]:
        now = self._now()
        return {name: now[name] - self._start[name] for name in now}

    def _now(self) -> dict[str, float]:
        now = {name: sum(_cpu_s(process) for process in roots) for name, roots in self._roots.items()}
        own = self._bench.cpu_times()
        return now | {"bench": own.user + own.system}


def _cpu_s(process: psutil.Process) -> float:
    """The process's CPU seconds, with its children's, ended (reaped) or running."""
    try:
        times = process.cpu_times()
        own = times.user + times.system + times.children_user + times.children_system
        running = process.children(recursive=True)
    except psutil.NoSuchProcess:
        return 0.0
    for child in running:
        try:
            child_times = child.cpu_times()
        except psutil.NoSuchProcess:
            continue  # ended between the two calls: its time is its parent's once reaped
        own += child_times.user + child_times.system
    return own


def _oldest(name: str) -> list[psutil.Process]:
    """The oldest local process called `name` (a server's parent process), if any."""
    found = [p for p in psutil.process_iter(["name", "create_time"]) if p.info["name"] == name]
    return sorted(found, key=lambda p: p.info["create_time"])[:1]
