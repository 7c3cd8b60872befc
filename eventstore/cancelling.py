"""Telling a loop that its task is being cancelled, when a client library hid the cancellation.

redis-py's asyncio client (redis/redis-py#2028) and database drivers can turn a cancellation that comes
mid-command into an error of their own (a lost connection), or swallow it and answer the command. A loop that
catches the error, or just goes on to its next round, then never ends, and the process that cancelled it to
stop waits for it. Every loop that talks to a server asks `stop_if_cancelled` after each round and in each
handler that keeps it going.
"""

from __future__ import annotations

import asyncio


def stop_if_cancelled(error: BaseException | None = None) -> None:
    """Raise CancelledError (from `error`, the driver's own error for it, if given) when the current task
    is being cancelled; return otherwise (also outside a task)."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError from error
