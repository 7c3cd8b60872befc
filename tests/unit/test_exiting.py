"""A role's process exits within its bound even when a task will not end once cancelled."""

from __future__ import annotations

import subprocess
import sys
import textwrap

PROGRAM = textwrap.dedent(
    """
    import asyncio, logging, sys
    from engine.exiting import run_to_exit

    logging.basicConfig(level=logging.INFO)

    async def deaf() -> None:  # turns every cancellation into another wait, as some drivers do
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                pass

    async def main() -> None:
        asyncio.create_task(deaf(), name="deaf")
        await asyncio.sleep(0)
        if sys.argv[1] == "raise":
            raise RuntimeError("main failed")

    run_to_exit(main(), close_timeout_s=0.2)
    """
)


def run(how: str) -> subprocess.CompletedProcess[str]:
    """PROGRAM, whose main returns or raises as `how` says; asyncio.run would wait for its task forever."""
    return subprocess.run(
        [sys.executable, "-c", PROGRAM, how], capture_output=True, text=True, timeout=60, check=False
    )


def test_a_task_deaf_to_cancellation_is_logged_and_left_behind():
    done = run("return")

    assert done.returncode == 0
    assert "a task did not end once cancelled" in done.stderr
    assert "deaf" in done.stderr  # where it waits


def test_a_main_that_raised_exits_with_failure_though_a_task_lingers():
    done = run("raise")

    assert done.returncode == 1
    assert "a task did not end once cancelled" in done.stderr
    assert "RuntimeError: main failed" in done.stderr  # its traceback, though the process ends early


def test_tasks_that_end_once_cancelled_leave_a_clean_exit():
    program = textwrap.dedent(
        """
        import asyncio
        from engine.exiting import run_to_exit

        async def main() -> None:
            asyncio.create_task(asyncio.sleep(3600))
            await asyncio.sleep(0)

        run_to_exit(main(), close_timeout_s=30)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=False
    )

    assert (done.returncode, done.stderr) == (0, "")
