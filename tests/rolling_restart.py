"""The rolling restart: docker-compose.yml's fleet as processes (the market, two APIs, two workers, two
projectors) on PostgreSQL + Redis. Orders are submitted round-robin to both APIs, each followed by a WebSocket
subscriber on the other API, while a driver stops every process with SIGTERM, one at a time, waits for it
to exit and starts it again. At the end it checks and prints what a rolling restart must keep: each process
exited cleanly within its grace period; every order ended exactly once; every subscriber got every event of
its order once, in order (resuming with afterVersion on the other API when its API went away); the rate
limit and each worker's concurrency held; no order waited for a lease to run out; the read side matches the
log and the chain's record.

    uv run python -m tests.rolling_restart --orders 300

It needs the test servers (TEST_DATABASE_URL, TEST_REDIS_URL; it creates and drops its own database).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import random
import signal
import socket
import subprocess
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import httpx
import msgspec
import websockets
from redis.asyncio import Redis

from domain.events import RoutingStarted
from eventstore.base import RecordedEvent
from tests.harness import MARKET_ORDER
from tests.processes import Role, environment, free_port, stop_processes, wait_for_workers, wait_until_healthy
from tests.run_outcome import (
    RunOutcome,
    read_outcome,
    run_from_command_line,
    until_all_ended,
    until_projected,
)
from workers.presence import live_workers

ROLLING_SETTINGS = {
    "mock_quote_delay_ms": 20,
    "mock_execution_delay_ms_min": 150,
    "mock_execution_delay_ms_max": 400,
    "mock_failure_rate": 0.1,
    "recovery_interval_s": 0.5,
    "recovery_grace_s": 1,
    # Low enough to be reached: orders are submitted a little faster than it lets them start, and each
    # window's starts are more than the workers' slots (2 x 3) take at once.
    "rate_limit_max": 10,
    "rate_limit_window_s": 1,
    "worker_concurrency": 3,
    # Far longer than any wait of the run: an order whose stopped worker did not hand it back (its claim
    # left to run out) would wait this long, and the checks below would see it.
    "worker_lease_s": 60,
    "shutdown_grace_s": 10,
}
# Every process once, one at a time, each kind of role in turn.
RESTARTS = ["worker-0", "api-0", "projector-0", "market-0", "worker-1", "api-1", "projector-1"]
# A little faster than the rate limit lets orders start, so that it is reached.
SUBMIT_INTERVAL_S = ROLLING_SETTINGS["rate_limit_window_s"] / (ROLLING_SETTINGS["rate_limit_max"] * 1.2)
MIN_IN_FLIGHT = 10  # orders accepted and not ended when a process is stopped
START_TIMEOUT_S = 60
CLOSE_GOING_AWAY = 1001


@dataclass
class Subscription:
    """A client following one order's WebSocket, on the API other than the one that took the order."""

    order_id: str
    api: int  # the API it is connected to, or connecting to
    messages: list[dict] = field(default_factory=list)
    interruptions: Counter[str] = field(default_factory=Counter)  # close codes before the last, refusals
    done: bool = False


@dataclass
class Stop:
    """One process stopped with SIGTERM and started again."""

    name: str
    exit_code: int | None  # None: still running after the wait (then killed)
    seconds: float
    orders_in_flight: int  # accepted and not yet seen ending by their subscribers, at the SIGTERM
    clean: bool  # exited by itself, as its role does (see `_exited_cleanly`)
    sockets_moved: int = 0  # an API's subscribers at the SIGTERM
    back_after_s: float = 0.0  # from its start again until it was ready


@dataclass
class Summary:
    orders_accepted: int = 0
    submissions_retried: int = 0  # a POST that failed (its API stopping) and went to the other API
    stops: list[Stop] = field(default_factory=list)
    outcomes: Counter = field(default_factory=Counter)
    events: int = 0
    interruptions: Counter = field(default_factory=Counter)  # what subscribers met before their last close
    subscribers_resumed: int = 0  # subscribers that resumed on the other API at least once
    most_starts_in_a_window: int = 0
    most_in_execution_per_worker: int = 0
    handovers: int = 0  # orders whose events continue from one worker to another
    longest_handover_s: float = 0.0
    handed_back: int = 0  # orders the stopped workers said they handed back
    longest_wait_after_hand_back_s: float = 0.0
    invariants: dict[str, bool] = field(default_factory=dict)
    cache_differences: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(self.invariants.values())

    def report(self) -> str:
        lines = [
            f"orders accepted: {self.orders_accepted} (POSTs retried on the other API: "
            f"{self.submissions_retried})",
            f"outcomes: {dict(self.outcomes)}; events in the log: {self.events}; {self.seconds:.1f} s",
            "SIGTERM, exit, start again, one at a time:",
            *(
                f"  {s.name}: exited in {s.seconds:.1f} s (code {s.exit_code}) with {s.orders_in_flight} "
                "orders in flight"
                + (f" and {s.sockets_moved} WebSockets" if s.name.startswith("api") else "")
                + f", ready again {s.back_after_s:.1f} s after its start"
                for s in self.stops
            ),
            f"subscribers: {self.subscribers_resumed} resumed on the other API; interruptions: "
            f"{dict(self.interruptions)}",
            f"most orders started in one {ROLLING_SETTINGS['rate_limit_window_s']} s window: "
            f"{self.most_starts_in_a_window} (limit {ROLLING_SETTINGS['rate_limit_max']}); most in execution "
            f"at once in one worker: {self.most_in_execution_per_worker} "
            f"(limit {ROLLING_SETTINGS['worker_concurrency']})",
            f"orders handed back by stopped workers: {self.handed_back}, the longest wait for their next "
            f"event {self.longest_wait_after_hand_back_s:.1f} s; orders continued by another worker: "
            f"{self.handovers}, the longest gap {self.longest_handover_s:.1f} s "
            f"(lease {ROLLING_SETTINGS['worker_lease_s']} s)",
            *(f"  {'ok  ' if held else 'FAIL'} {name}" for name, held in self.invariants.items()),
            *(f"  cache: {difference}" for difference in self.cache_differences),
        ]
        return "\n".join(lines)


async def rolling_restart(
    database_url: str, redis_url: str, order_count: int, log_dir: Path, seed: int | None = None
) -> Summary:
    rng = random.Random(seed)
    summary = Summary()
    started = time.monotonic()
    api_ports, market_port = [free_port(), free_port()], free_port()
    market_url = f"http://127.0.0.1:{market_port}"
    settings = {**ROLLING_SETTINGS, "market_port": market_port, "market_url": market_url}
    base = {**os.environ, **environment(database_url, redis_url, **settings)}
    api_urls = [f"http://127.0.0.1:{port}" for port in api_ports]
    roles = {
        "market-0": Role("market-0", base, log_dir),
        **{
            f"api-{n}": Role(f"api-{n}", {**base, "PORT": str(port)}, log_dir)
            for n, port in enumerate(api_ports)
        },
        **{f"worker-{n}": Role(f"worker-{n}", base, log_dir) for n in range(2)},
        **{
            f"projector-{n}": Role(
                f"projector-{n}",
                {**base, "HEARTBEAT_FILE": str(log_dir / f"projector-{n}.heartbeat")},
                log_dir,
            )
            for n in range(2)
        },
    }
    subscriptions: dict[str, Subscription] = {}
    following: list[asyncio.Task[None]] = []
    https = [httpx.AsyncClient(base_url=url, timeout=10) for url in api_urls]
    flow = asyncio.Condition()  # told of each order accepted
    try:
        for role in roles.values():
            role.start()
        async with httpx.AsyncClient(base_url=market_url) as http:
            await wait_until_healthy(http, START_TIMEOUT_S)
        for http in https:
            await wait_until_healthy(http, START_TIMEOUT_S)
        await wait_for_workers(redis_url, 2, START_TIMEOUT_S)
        for n in range(2):
            await _heartbeat(roles[f"projector-{n}"])

        async def submit(n: int) -> None:
            key = str(uuid.uuid4())  # a POST retried after an ambiguous failure must not make a second order
            body = {**MARKET_ORDER, "amountIn": f"{rng.uniform(0.1, 3):.3f}"}
            for attempt in range(100):
                api = (n + attempt) % 2
                with contextlib.suppress(httpx.HTTPError):
                    response = await https[api].post(
                        "/api/orders/execute", json=body, headers={"Idempotency-Key": key}
                    )
                    if response.status_code in (200, 201):
                        order_id = response.json()["orderId"]
                        if order_id not in subscriptions:
                            subscriptions[order_id] = Subscription(order_id, api=1 - api)
                            following.append(asyncio.create_task(_follow(subscriptions[order_id], api_urls)))
                            async with flow:
                                flow.notify_all()
                        return
                summary.submissions_retried += 1
                if attempt % 2:  # both refused: give the one coming back a moment
                    await asyncio.sleep(0.1)

        async def submit_segment(numbers: range) -> None:
            """Orders `numbers`, one every interval, each POST as it goes (a slow one holds up no other)."""
            submitting = []
            for n in numbers:
                submitting.append(asyncio.create_task(submit(n)))
                await asyncio.sleep(SUBMIT_INTERVAL_S)
            await asyncio.gather(*submitting)
            async with flow:
                flow.notify_all()

        # A segment of the orders before the first stop, and the next one as each process is stopped (once
        # the one before is in): orders come in while it stops and starts, however long it takes.
        bounds = [n * order_count // (len(RESTARTS) + 1) for n in range(len(RESTARTS) + 2)]
        segments = [range(start, end) for start, end in itertools.pairwise(bounds)]
        submitting = asyncio.create_task(submit_segment(segments[0]))
        for name, segment in zip(RESTARTS, segments[1:], strict=True):
            await submitting
            submitting = asyncio.create_task(submit_segment(segment))
            async with flow:  # stopped with orders in flight
                await flow.wait_for(
                    lambda: _in_flight(subscriptions) >= MIN_IN_FLIGHT or submitting.done()  # noqa: B023
                )
            summary.stops.append(await _restart(roles[name], subscriptions, api_ports, redis_url))
        await submitting
        summary.orders_accepted = len(subscriptions)
        accepted = list(subscriptions)
        await asyncio.wait_for(asyncio.gather(*following), timeout=120)
        await until_all_ended(database_url, accepted, timeout_s=60)
        await until_projected(database_url, redis_url, timeout_s=60)
        outcome = await read_outcome(database_url, redis_url, market_url, accepted)
        summary.events, summary.outcomes = outcome.events, outcome.outcomes
        logged = {
            order_id: (await https[0].get(f"/api/orders/{order_id}/events")).json() for order_id in accepted
        }
        handed_back = _handed_back(log_dir)
    finally:
        for task in following:
            task.cancel()
        for http in https:
            await http.aclose()
        stop_processes(role.process for role in roles.values() if role.process is not None)
    summary.seconds = time.monotonic() - started
    _check(summary, outcome, subscriptions, logged, handed_back)
    return summary


def _in_flight(subscriptions: dict[str, Subscription]) -> int:
    return sum(not s.done for s in subscriptions.values())


async def _follow(subscription: Subscription, api_urls: list[str]) -> None:
    """Every message of the order's WebSocket until it closes 1000 after the order's end; when the API goes
    away (1001, or the connection drops or is refused) the other API's, resumed after the last message."""
    while True:
        messages = subscription.messages
        query = f"?orderId={subscription.order_id}" + (
            f"&afterVersion={messages[-1]['version']}" if messages else ""
        )
        url = api_urls[subscription.api].replace("http", "ws", 1) + "/api/orders/execute" + query
        try:
            async with websockets.connect(url, open_timeout=10) as socket:
                async for raw in socket:  # ends quietly at a close 1000 or 1001
                    messages.append(msgspec.json.decode(raw))
            code = socket.close_code
        except websockets.ConnectionClosed as closed:  # another close code, or none: the connection dropped
            code = closed.rcvd.code if closed.rcvd else 1006
        except (OSError, websockets.InvalidHandshake, TimeoutError):  # that API is down
            code = None
        if code == 1000:
            subscription.done = True
            return
        subscription.interruptions["refused" if code is None else str(code)] += 1
        if code is not None and code >= 4000:  # the request's fault: resuming would not mend it
            return
        subscription.api = 1 - subscription.api
        if code is None:
            await asyncio.sleep(0.1)  # both may be down for a moment: not in a tight loop


async def _restart(
    role: Role, subscriptions: dict[str, Subscription], api_ports: list[int], redis_url: str
) -> Stop:
    """SIGTERM, the exit within the grace period, a start, until the process is ready again."""
    assert role.process is not None
    in_flight = _in_flight(subscriptions)
    api = int(role.name.split("-")[1]) if role.name.startswith("api") else None
    sockets = sum(not s.done and s.api == api for s in subscriptions.values())
    grace_s = float(ROLLING_SETTINGS["shutdown_grace_s"])
    stopped_at = time.monotonic()
    role.process.send_signal(signal.SIGTERM)
    try:
        exit_code: int | None = await asyncio.to_thread(role.process.wait, grace_s + 10)
    except subprocess.TimeoutExpired:
        role.kill()
        exit_code = None
    seconds = time.monotonic() - stopped_at
    stop = Stop(role.name, exit_code, seconds, in_flight, _exited_cleanly(role, exit_code), sockets)
    if "HEARTBEAT_FILE" in role.env:  # the next one is the new process's
        await asyncio.to_thread(Path(role.env["HEARTBEAT_FILE"]).unlink, missing_ok=True)
    started_at = time.monotonic()
    role.start()
    await _ready(role, api_ports, redis_url)
    stop.back_after_s = time.monotonic() - started_at
    return stop


def _exited_cleanly(role: Role, exit_code: int | None) -> bool:
    """A worker or projector returns 0. An API or the market (uvicorn) ends its clean shutdown by raising
    SIGTERM again, as the default handler would (README, "Stopping gracefully"): its log says it got there."""
    if role.name.startswith(("worker", "projector")):
        return exit_code == 0
    return exit_code in (0, -signal.SIGTERM) and "Application shutdown complete" in role.log_file.read_text()


async def _ready(role: Role, api_ports: list[int], redis_url: str) -> None:
    assert role.process is not None
    if role.name.startswith("worker"):  # this very process among the live workers
        worker_id = f"{socket.gethostname()}:{role.process.pid}"
        redis = Redis.from_url(redis_url)
        try:
            async with asyncio.timeout(START_TIMEOUT_S):
                while worker_id not in await live_workers(redis):  # noqa: ASYNC110 (another process)
                    await asyncio.sleep(0.05)
        finally:
            await redis.aclose()
    elif role.name.startswith("projector"):
        await _heartbeat(role)
    else:
        port = (
            api_ports[int(role.name.split("-")[1])]
            if role.name.startswith("api")
            else role.env["MARKET_PORT"]
        )
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            await wait_until_healthy(http, START_TIMEOUT_S)


async def _heartbeat(role: Role) -> None:
    """Until the projector writes its first heartbeat (it runs; the file of the one before is gone)."""
    heartbeat = Path(role.env["HEARTBEAT_FILE"])
    async with asyncio.timeout(START_TIMEOUT_S):
        while not await asyncio.to_thread(heartbeat.exists):  # noqa: ASYNC110 (another process's file)
            await asyncio.sleep(0.05)


@dataclass
class HandBack:
    """A stopped worker's log line: the orders it handed back, and when."""

    at: datetime
    order_ids: list[str]


def _handed_back(log_dir: Path) -> list[HandBack]:
    """What each worker that stopped handed back, from its log's line (JSON lines)."""
    found = []
    for log in sorted(log_dir.glob("worker-*.log")):
        for line in log.read_text().splitlines():
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if "handed back" in str(record.get("event")) and "order_ids" in record:
                    found.append(HandBack(datetime.fromisoformat(record["timestamp"]), record["order_ids"]))
    return found


def _check(
    summary: Summary,
    outcome: RunOutcome,
    subscriptions: dict[str, Subscription],
    logged: dict[str, list[dict]],
    handed_back: list[HandBack],
) -> None:
    streams = outcome.streams
    lease_s = float(ROLLING_SETTINGS["worker_lease_s"])
    grace_s = float(ROLLING_SETTINGS["shutdown_grace_s"])
    for subscription in subscriptions.values():
        summary.interruptions.update(subscription.interruptions)
    summary.subscribers_resumed = sum(bool(s.interruptions) for s in subscriptions.values())
    starts = sorted(
        r.recorded_at.timestamp()
        for stream in streams.values()
        for r in stream
        if isinstance(r.event, RoutingStarted) and r.event.attempt == 1
    )
    summary.most_starts_in_a_window = _most_within(starts, float(ROLLING_SETTINGS["rate_limit_window_s"]))
    summary.most_in_execution_per_worker = _most_in_execution(streams)
    gaps = _handover_gaps(streams)
    summary.handovers, summary.longest_handover_s = len(gaps), max(gaps, default=0.0)
    waits = _waits_after_hand_back(streams, handed_back)
    summary.handed_back = sum(len(h.order_ids) for h in handed_back)
    summary.longest_wait_after_hand_back_s = max(waits, default=0.0)
    summary.cache_differences = outcome.cache_differences()
    summary.invariants = {
        "every process exited by itself on SIGTERM, within its grace period": all(
            s.clean and s.seconds < grace_s for s in summary.stops
        )
        and len(summary.stops) == len(RESTARTS),
        "every process was stopped with orders in flight": all(s.orders_in_flight for s in summary.stops),
        "the log holds exactly the orders accepted (a retried POST made none twice)": set(outcome.rows)
        == set(subscriptions),
        **outcome.invariants(),
        "every subscriber got every event of its order once, in order, as the log has it": all(
            s.done and s.messages == logged[order_id] for order_id, s in subscriptions.items()
        ),
        "the subscribers of each API stopped resumed on the other (1001)": summary.interruptions[
            str(CLOSE_GOING_AWAY)
        ]
        > 0,
        "no window of the rate limit started more orders than it allows": summary.most_starts_in_a_window
        <= int(ROLLING_SETTINGS["rate_limit_max"]),
        "no worker had more orders in execution than its concurrency": summary.most_in_execution_per_worker
        <= int(ROLLING_SETTINGS["worker_concurrency"]),
        "no order waited for a lease: each handed back moved on well within it": all(
            wait < lease_s / 2 for wait in [*waits, *gaps]
        ),
    }


# Recorded times come a moment after the grant they follow (the limiter stamps grants with Redis's clock;
# the append with the worker's, once the grant has come back): a window is taken this much shorter.
RECORDING_SLACK_S = 0.1


def _most_within(times: list[float], window_s: float) -> int:
    """The most of the sorted `times` within any window of `window_s` (less the recording slack)."""
    return max(
        (sum(1 for u in times[i:] if u < t + window_s - RECORDING_SLACK_S) for i, t in enumerate(times)),
        default=0,
    )


def _most_in_execution(streams: dict[str, list[RecordedEvent]]) -> int:
    """The most orders one worker had in execution at once, as the log shows it: an order is in a worker's
    hands (in one of its slots) at least from the first event the worker appends for it to its last; those
    spans, worker by worker, never overlap more than the concurrency."""
    spans: dict[str, list[tuple[float, int]]] = {}
    for stream in streams.values():
        by_worker: dict[str, list[float]] = {}
        for r in stream:
            if r.metadata.get("worker"):
                by_worker.setdefault(r.metadata["worker"], []).append(r.recorded_at.timestamp())
        for worker, times in by_worker.items():
            # An order's span ends (-1) before another's starting at the same instant: the slot is freed
            # after the last append returns, and taken before the first one is stamped.
            spans.setdefault(worker, []).extend([(min(times), 1), (max(times), -1)])
    most = 0
    for edges in spans.values():
        running = 0
        for _, change in sorted(edges):
            running += change
            most = max(most, running)
    return most


def _handover_gaps(streams: dict[str, list[RecordedEvent]]) -> list[float]:
    """For each order continued by another worker, the time between the last event of one and the first of
    the next: a worker that stops hands its orders back at once; one whose claim were left behind would have
    them wait for the lease."""
    gaps = []
    for stream in streams.values():
        steps = [r for r in stream if r.metadata.get("worker")]
        for before, after in itertools.pairwise(steps):
            if before.metadata["worker"] != after.metadata["worker"]:
                gaps.append((after.recorded_at - before.recorded_at).total_seconds())
    return gaps


def _waits_after_hand_back(
    streams: dict[str, list[RecordedEvent]], handed_back: list[HandBack]
) -> list[float]:
    """For each order a stopped worker handed back before it ended (started or not), the time from the hand
    back to the order's next event."""
    waits = []
    for hand_back in handed_back:
        for order_id in hand_back.order_ids:
            stream = streams.get(order_id, [])
            later = [r.recorded_at for r in stream if r.recorded_at > hand_back.at]
            if later:
                waits.append((later[0] - hand_back.at).total_seconds())
    return waits


if __name__ == "__main__":
    run_from_command_line(__doc__, "rolling", rolling_restart)
