"""`order-engine demo`: fire orders at a running engine and watch them live in the terminal."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx
import msgspec
import websockets
from rich.console import Console
from rich.live import Live
from rich.measure import Measurement
from rich.table import Table

from domain.pairs import Pair, pair_of

PAIRS = [
    ("SOL", "USDC", 0.5, 5.0),
    ("USDC", "SOL", 10, 200),
    ("USDC", "BONK", 5, 100),
    ("JUP", "USDT", 1, 50),
]
EXACT = msgspec.json.Decoder(float_hook=Decimal)  # amounts and prices read as the exact decimals sent
STATUS_STYLE = {
    "pending": "white",
    "routing": "cyan",
    "building": "magenta",
    "submitted": "yellow",
    "confirmed": "bold green",
    "failed": "bold red",
}


@dataclass
class Watched:
    order_id: str
    token_in: str
    token_out: str
    amount_in: Decimal
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
        if self.status in ("confirmed", "failed"):
            self.ended = time.monotonic()

    @property
    def pair(self) -> Pair:
        return pair_of(self.token_in, self.token_out)

    def shown_price(self) -> str:
        """The execution price as the pair reads it both ways, with its unit: `151.6 USDC per SOL`."""
        return self.pair.show(self.token_in, self.price) if self.price else ""


def _table(orders: list[Watched], expand: bool = True) -> Table:
    table = Table(title="order-engine demo", expand=expand)
    for column in ("order", "pair", "amount", "status", "venue", "price", "attempts", "tx hash / reason"):
        table.add_column(column, no_wrap=True)
    for o in orders:
        table.add_row(
            o.order_id[:8],
            f"{o.token_in}→{o.token_out}",
            f"{o.amount_in} {o.token_in}",
            f"[{STATUS_STYLE.get(o.status, 'white')}]{o.status}[/]",
            o.venue,
            o.shown_price(),
            str(o.attempts or ""),
            (o.tx_hash[:20] + "…") if o.tx_hash else o.reason[:40],
        )
    return table


async def run_demo(base_url: str, count: int, console: Console) -> list[Watched]:
    rng = random.Random()
    ws_base = base_url.replace("http", "ws", 1)
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:

        async def submit() -> Watched:
            token_in, token_out, low, high = rng.choice(PAIRS)
            amount = Decimal(f"{rng.uniform(low, high):.4f}")  # 4 decimals: every token has as many
            body = {"orderType": "market", "tokenIn": token_in, "tokenOut": token_out}
            body["amountIn"] = str(amount)
            response = await http.post("/api/orders/execute", json=body)
            response.raise_for_status()
            return Watched(response.json()["orderId"], token_in, token_out, amount)

        orders = list(await asyncio.gather(*(submit() for _ in range(count))))

    async def follow(order: Watched) -> None:
        async with websockets.connect(f"{ws_base}/api/orders/execute?orderId={order.order_id}") as socket:
            async for raw in socket:
                order.apply(EXACT.decode(raw))

    followers = asyncio.gather(*(follow(order) for order in orders))
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


def print_whole(console: Console, table: Table) -> None:
    """Print `table` as wide as its columns need: off a terminal there is no window to fit, so no cell is
    cut to the console's default 80 characters."""
    needed = Measurement.get(console, console.options.update(width=10_000), table).maximum
    console.width = max(console.width, needed)
    console.print(table)


def summary(orders: list[Watched]) -> str:
    """`5 orders: 4 confirmed, 1 failed; confirmed on meteora 3, raydium 1; average 2.41 s ...`"""
    confirmed = [o for o in orders if o.status == "confirmed"]
    seconds = [o.ended - o.started for o in orders if o.ended is not None]
    by_venue = Counter(o.venue for o in confirmed)
    parts = [f"{len(orders)} orders: {len(confirmed)} confirmed, {len(orders) - len(confirmed)} failed"]
    if by_venue:
        parts.append("confirmed on " + ", ".join(f"{venue} {n}" for venue, n in sorted(by_venue.items())))
    parts.append(f"average {sum(seconds) / max(len(seconds), 1):.2f} s from submission to the end")
    return "; ".join(parts)
