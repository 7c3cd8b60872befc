"""The workers' queue as the commands see it: handing an order over to be executed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

# Hands the order with this id to the workers; raises what the queue raises (the log stays the outbox: the
# recovery sweep, `workers/recovery.py`, queues an order again that nobody has in hand).
Enqueue = Callable[[str], Awaitable[None]]
