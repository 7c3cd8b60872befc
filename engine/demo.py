"""`order-engine demo`: fire orders at a running engine and watch them live in the terminal.

Market orders, and optionally limit orders (their limit set from the best price now, `GET /api/prices`) and
sniper orders on a token the demo announces and then launches on the market (which needs
MARKET_SCRIPTING=true)."""

from __future__ import annotations

import asyncio
import random
import string
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, localcontext
from typing import Any

import httpx
import msgspec
import websockets
from rich.console import Console
from rich.live import Live
from rich.measure import Measurement
from rich.table import Table

from domain.pairs import Pair, pair_of
from engine.launch import announce, launch

PAIRS = [
    ("SOL", "USDC", 0.5, 5.0),
    ("USDC", "SOL", 10, 200),
    ("USDC", "BONK", 5, 100),
    ("JUP", "USDT", 1, 50),
]
EXACT = msgspec.json.Decoder(float_hook=Decimal)  # amounts and prices read as the exact decimals sent
STATUS_STYLE = {
    "waiting": "blue",
    "pending": "white",
    "routing": "cyan",
    "building": "magenta",
    "submitted": "yellow",
    "confirmed": "bold green",
    "failed": "bold red",
    "cancelled": "dim",
    "expired": "yellow",
}
TERMINAL = {"confirmed", "failed", "cancelled", "expired"}
COLUMNS = ("order", "type", "pair", "amount", "status", "venue", "price", "attempts", "tx hash / reason")
LIMIT_DIGITS = 9  # significant digits of a limit price the demo sets
# The token a sniper demo launches: 1e9 of it against 50 SOL on Raydium (0.00000005 SOL each), its mint
# renounced and no freeze authority, so that it passes the sniper's checks.
SNIPER_DECIMALS = 6
SNIPER_POOL = {
    "venue": "raydium",
    "quoteToken": "SOL",
    "amountRaw": str(10**9 * 10**SNIPER_DECIMALS),
    "quoteAmountRaw": str(50 * 10**9),
}
SNIPER_AMOUNTS = (0.05, 0.5)  # SOL per sniper order
SNIPER_SLIPPAGE_BPS = 500  # a new pool moves a lot with each buy
SNIPER_MAX_DELAY_MS = 10_000


@dataclass(frozen=True)
class LimitPlan:
    """`count` limit orders, each with its limit `offset_bps` away from the best price now in its direction
    (tokenOut per tokenIn): below 0 it fires at once (the market already pays more), above 0 it waits for the
    market to rise that far; each expires after `expires_s`."""

    count: int
    offset_bps: int = 10
    expires_s: float = 30.0


@dataclass(frozen=True)
class SniperPlan:
    """`count` sniper orders on a token the demo announces on the market at `market_url` and launches
    `launch_after_s` after they are placed."""

    count: int
    market_url: str
    launch_after_s: float = 2.0


@dataclass
class Watched:
    order_id: str
    token_in: str
    token_out: str
    amount_in: Decimal
    order_type: str = "market"
    limit: Decimal | None = None  # a limit order's limitPrice: tokenOut per tokenIn
    started: float = field(default_factory=time.monotonic)
    status: str = "pending"
    venue: str = ""
    price: Decimal | None = None  # executionPrice: tokenOut per tokenIn
    attempts: int = 0
    tx_hash: str = ""
    reason: str = ""
    ended: float | None = None

    def apply(self, message: dict[str, Any]) -> None:
        self.status = message["status"]
        if route := message.get("routePlan"):  # `raydium 60% + meteora 40%` when the order is split
            legs = [f"{leg['venue']} {leg['percent']}%" for leg in route]
            self.venue = " + ".join(legs) if len(legs) > 1 else route[0]["venue"]
        self.attempts = message.get("attempt", self.attempts)
        self.price = message.get("executionPrice", self.price)
        self.tx_hash = message.get("txHash", self.tx_hash)
        self.reason = message.get("reason", self.reason)
        if self.status in TERMINAL:
            self.ended = time.monotonic()

    @property
    def pair(self) -> Pair:
        return pair_of(self.token_in, self.token_out)

    def shown_price(self) -> str:
        """The execution price as the pair reads it both ways, with its unit: `151.6 USDC per SOL`; while a
        limit order has not executed, its limit (`limit ≥ 160 USDC per SOL` when it sells the base, `≤`
        when it buys it)."""
        if self.price:
            return self.pair.show(self.token_in, self.price)
        if self.limit is not None and self.status not in ("confirmed", "failed"):
            sign = "≥" if self.token_in == self.pair.base else "≤"
            return f"limit {sign} {self.pair.show(self.token_in, self.limit)}"
        return ""


def _table(orders: list[Watched], expand: bool = True) -> Table:
    table = Table(title="order-engine demo", expand=expand)
    for column in (
        "order",
        "type",
        "pair",
        "amount",
        "status",
        "venue",
        "price",
        "attempts",
        "tx hash / reason",
    ):
        table.add_column(column, no_wrap=True)
    for o in orders:
        table.add_row(
            o.order_id[:8],
            o.order_type,
            f"{o.token_in}→{o.token_out}",
            f"{o.amount_in} {o.token_in}",
            f"[{STATUS_STYLE.get(o.status, 'white')}]{o.status}[/]",
            o.venue,
            o.shown_price(),
            str(o.attempts or ""),
            (o.tx_hash[:20] + "…") if o.tx_hash else o.reason[:40],
        )
    return table


async def run_demo(
    base_url: str,
    count: int,
    console: Console,
    *,
    limits: LimitPlan | None = None,
    snipers: SniperPlan | None = None,
) -> list[Watched]:
    """Submit `count` market orders at once (and the limit and sniper orders of the plans), follow each on
    its WebSocket to its end while showing them, then print a summary. Raises httpx's errors when the engine
    cannot be reached or refuses an order, `engine.launch.LaunchFailed` when the market refuses the launch."""
    rng = random.Random()
    ws_base = base_url.replace("http", "ws", 1)
    symbol = ""
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:

        async def submit(body: dict[str, Any], amount: Decimal, limit: Decimal | None = None) -> Watched:
            response = await http.post("/api/orders/execute", json={**body, "amountIn": str(amount)})
            response.raise_for_status()
            return Watched(
                response.json()["orderId"],
                body["tokenIn"],
                body["tokenOut"],
                amount,
                body["orderType"],
                limit,
            )

        def market_order() -> tuple[dict[str, Any], Decimal]:
            token_in, token_out, low, high = rng.choice(PAIRS)
            amount = Decimal(f"{rng.uniform(low, high):.4f}")  # 4 decimals: every token has as many
            return {"orderType": "market", "tokenIn": token_in, "tokenOut": token_out}, amount

        submissions = [submit(*market_order()) for _ in range(count)]
        if limits is not None and limits.count:
            best = await best_prices(http)
            expires_at = (datetime.now(UTC) + timedelta(seconds=limits.expires_s)).isoformat()
            for _ in range(limits.count):
                body, amount = market_order()
                limit = limit_price(best, body["tokenIn"], body["tokenOut"], limits.offset_bps)
                body |= {"orderType": "limit", "limitPrice": str(limit), "expiresAt": expires_at}
                submissions.append(submit(body, amount, limit))
        if snipers is not None and snipers.count:
            symbol = "DEMO" + "".join(rng.choices(string.ascii_uppercase, k=6))
            await announce(snipers.market_url, {"symbol": symbol, "decimals": SNIPER_DECIMALS})
            for _ in range(snipers.count):
                body = {
                    "orderType": "sniper",
                    "tokenIn": "SOL",
                    "tokenOut": symbol,
                    "slippageBps": SNIPER_SLIPPAGE_BPS,
                    "maxDelayMs": SNIPER_MAX_DELAY_MS,
                }
                submissions.append(submit(body, Decimal(f"{rng.uniform(*SNIPER_AMOUNTS):.4f}")))
        orders = list(await asyncio.gather(*submissions))

    async def follow(order: Watched) -> None:
        async with websockets.connect(f"{ws_base}/api/orders/execute?orderId={order.order_id}") as socket:
            async for raw in socket:
                order.apply(EXACT.decode(raw))

    async def launch_later(plan: SniperPlan) -> None:
        """The sniper orders are armed once placed: the launch comes after a pause to watch them wait."""
        await asyncio.sleep(plan.launch_after_s)
        await launch(plan.market_url, {"symbol": symbol, "decimals": SNIPER_DECIMALS}, SNIPER_POOL)

    tasks = [follow(order) for order in orders]
    if symbol and snipers is not None:
        tasks.append(launch_later(snipers))
    followers = asyncio.gather(*tasks)
    if console.is_terminal:
        with Live(_table(orders), console=console, refresh_per_second=8) as live:
            while not followers.done():
                live.update(_table(orders))
                await asyncio.wait([followers], timeout=0.125)
            live.update(_table(orders))
            await followers
    else:  # piped to a file or another program: the finished table once, nothing updated in place
        await followers
        print_whole(console, _table(orders, expand=False))
    console.print()
    console.print(summary(orders))
    return orders


async def best_prices(http: httpx.AsyncClient) -> dict[tuple[str, str], tuple[Decimal, Decimal]]:
    """(base, quote) -> (best bid, best ask) in quote per base, as GET /api/prices gives them."""
    response = await http.get("/api/prices")
    response.raise_for_status()
    return {(p["base"], p["quote"]): (Decimal(p["bid"]), Decimal(p["ask"])) for p in response.json()["pairs"]}


def limit_price(
    best: dict[tuple[str, str], tuple[Decimal, Decimal]], token_in: str, token_out: str, offset_bps: int
) -> Decimal:
    """A limit for selling `token_in` for `token_out` (tokenOut per tokenIn), `offset_bps` above the best
    price in that direction now: the bid when selling the base, 1 / the ask when buying it."""
    pair = pair_of(token_in, token_out)
    bid, ask = best[(pair.base, pair.quote)]
    with localcontext() as context:
        context.prec = LIMIT_DIGITS
        now = bid if token_in == pair.base else 1 / ask
        return +(now * (1 + Decimal(offset_bps) / 10_000))


def print_whole(console: Console, table: Table) -> None:
    """Print `table` as wide as its columns need: off a terminal there is no window to fit, so no cell is
    cut to the console's default 80 characters."""
    needed = Measurement.get(console, console.options.update(width=10_000), table).maximum
    console.width = max(console.width, needed)
    console.print(table)


def summary(orders: list[Watched]) -> str:
    """`5 orders: 4 confirmed, 1 failed; confirmed on meteora 3, raydium 1; average 2.41 s ...` (and
    `, 2 expired`, `, 1 cancelled` after `failed` when there are such)."""
    confirmed = [o for o in orders if o.status == "confirmed"]
    seconds = [o.ended - o.started for o in orders if o.ended is not None]
    by_venue = Counter(o.venue for o in confirmed)
    ended = Counter(o.status for o in orders)
    counts = f"{len(confirmed)} confirmed, {ended['failed']} failed"
    counts += "".join(f", {ended[status]} {status}" for status in ("expired", "cancelled") if ended[status])
    parts = [f"{len(orders)} orders: {counts}"]
    if by_venue:
        parts.append("confirmed on " + ", ".join(f"{venue} {n}" for venue, n in sorted(by_venue.items())))
    parts.append(f"average {sum(seconds) / max(len(seconds), 1):.2f} s from submission to the end")
    return "; ".join(parts)
