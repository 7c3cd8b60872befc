"""The retry policy: how many attempts an order gets and how long it waits between them."""

from __future__ import annotations

from dataclasses import dataclass

JITTER = 0.2  # each delay is drawn within ±20% of its exponential centre


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int
    base_ms: int
    # Runs that crashed on an error of the engine's own before the order fails: a poison order must end.
    max_crashed_runs: int = 3

    def delay_ms(self, failed_attempt: int, jitter_draw: float) -> int:
        """Backoff after attempt `failed_attempt` (1-based); `jitter_draw` is uniform in [0, 1).

        The centre doubles per attempt and the jitter band is narrower than that doubling, so each
        delay is longer than the one before whatever the draws.
        """
        centre: float = self.base_ms * 2 ** (failed_attempt - 1)
        return round(centre * (1 - JITTER + 2 * JITTER * jitter_draw))

    def may_retry(self, failed_attempt: int) -> bool:
        return failed_attempt < self.max_attempts

    def may_run_again(self, crashed_runs: int) -> bool:
        return crashed_runs < self.max_crashed_runs
