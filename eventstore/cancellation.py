"""A cancellation lost on its way, and the loops that must end all the same.

redis-py's asyncio client can swallow a cancellation that comes mid-command and answer the command instead
(redis/redis-py#2028): it sends each command under `asyncio.wait_for` (when the connection has a socket
timeout, as it has by default), and Python 3.11's `wait_for` returns the awaited result when the
cancellation comes as the send completes. The task carries on as if it had never been cancelled, though
`Task.cancelling()` still counts the request. A loop that runs until it is cancelled (a worker's queue
reader, its presence, a projector) then runs on, and its process does not stop: taskiq's receiver awaits
its queue read in a cancel-shielded cleanup, and `asyncio.run` waits for every task it cancels.

So each such loop calls `raise_if_cancelled` once a round, after its Redis commands and before it waits.
"""

from __future__ import annotations

import asyncio


def raise_if_cancelled() -> None:
    """Raise CancelledError if the running task has been cancelled, even where the cancellation was lost."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
