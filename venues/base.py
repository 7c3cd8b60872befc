"""What the venues' side may raise, and how the engine tells its failures from its own bugs.

`VenueError` when the chain or a venue refuses or fails something (a quote, a transaction), and `TimeoutError`
when it does not answer in time: both are the venue's failure (`VENUE_FAILURES`). In routing such a venue is
left out of that attempt (the attempt fails only when no venue answers); in execution the attempt fails with
the reason and is retried. Anything else an adapter raises is a bug of the engine's side (the adapters are
ours): the run is recorded as crashed, with the traceback in the logs, and the order fails after a few crashed
runs.
"""

from __future__ import annotations


class VenueError(Exception):
    """The venue refused or failed the request; `reason` is a short sentence fit to show to the user."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


VENUE_FAILURES = (VenueError, TimeoutError)


def failure_reason(error: BaseException) -> str:
    """What a venue failure says to the user."""
    if isinstance(error, VenueError):
        return error.reason
    return "venue did not answer in time"
