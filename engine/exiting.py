"""Running a role's main coroutine to the process's exit, within a bound.

`asyncio.run` cancels the tasks still running when its coroutine returns, then waits for each of them with no
limit: a task whose library turns its cancellation into another wait (redis-py#2028, a shielded cleanup
awaiting a server that does not answer) keeps a SIGTERMed process alive past its grace period, until
something kills it. Here those tasks get `close_timeout_s`, are logged with where they wait, and the process
exits without them.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger(__name__)


def run_to_exit(main: Coroutine[Any, Any, None], close_timeout_s: float) -> None:
    """`asyncio.run(main)`, except that the tasks left when `main` ends get `close_timeout_s` seconds to end
    once cancelled; if one does not, the process exits at once (code 0, or 1 if `main` raised), after
    logging where each such task waits. Raises what `main` raises."""
    runner, error = asyncio.Runner(), None
    try:
        runner.run(main)
    except BaseException as raised:
        error = raised
        raise
    finally:
        loop = runner.get_loop()
        stuck = loop.run_until_complete(_cancel_the_rest(close_timeout_s))
        if stuck:
            for task in stuck:
                log.error("a task did not end once cancelled; exiting without it: %s", where_it_waits(task))
            if error is not None:  # its traceback would not be printed: the process ends here
                log.error("the role stopped on an error", exc_info=error)
            logging.shutdown()
            os._exit(0 if error is None else 1)
        runner.close()


async def _cancel_the_rest(timeout_s: float) -> set[asyncio.Task[Any]]:
    """Cancel every other task of the loop; those not ended within `timeout_s`."""
    rest = asyncio.all_tasks() - {asyncio.current_task()}
    for task in rest:
        task.cancel()
    if not rest:
        return set()
    _, stuck = await asyncio.wait(rest, timeout=timeout_s)
    return stuck


def where_it_waits(task: asyncio.Task[Any]) -> str:
    """Where `task` waits, down its chain of awaits (`Task.get_stack` gives a suspended task's outermost
    frame only): which await did not end when it was cancelled."""
    places = []
    awaiting: Any = task.get_coro()
    while (frame := getattr(awaiting, "cr_frame", None) or getattr(awaiting, "ag_frame", None)) is not None:
        places.append(f"{frame.f_code.co_name} ({frame.f_code.co_filename}:{frame.f_lineno})")
        awaiting = getattr(awaiting, "cr_await", None) or getattr(awaiting, "ag_await", None)
    return " > ".join(places)
