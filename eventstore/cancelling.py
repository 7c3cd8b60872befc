"""Telling a loop that its task is being cancelled, when a client library lost the cancellation.

redis-py's asyncio client can swallow a cancellation that comes mid-command and answer the command instead
(redis/redis-py#2028): it sends each command under `asyncio.wait_for` (when the connection has a socket
timeout, as it has by default), and Python 3.11's `wait_for` returns the awaited result when the
cancellation comes as the send completes. The task carries on as if it had never been cancelled, though
`Task.cancelling()` still counts the request. It, and database drivers, can also turn a cancellation into an
error of their own (a lost connection). A loop that runs until it is cancelled (a worker's queue reader, its
presence, a projector) and goes on to its next round, or catches that error, then never ends, and its
process does not stop: taskiq's receiver awaits its queue read in a cancel-shielded cleanup, and
`asyncio.run` waits for every task it cancels.

So every such loop calls `stop_if_cancelled` once a round, after its commands and before it waits, and in
each handler that keeps it going.
"""

from __future__ import annotations

import asyncio


def stop_if_cancelled(error: BaseException | None = None) -> None:
    """Raise CancelledError (from `error`, the driver's own error for it, if given) when the current task
    is being cancelled, even where the cancellation was lost; return otherwise (also outside a task)."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError from error
