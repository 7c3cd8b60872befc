"""A scripted launch schedule for demos (MARKET_LAUNCH_SCHEDULE): tokens announced when the market starts,
each one's first pool created `afterS` seconds later.

The file is a JSON array (docs/launch-schedule.example.json):

    [{"afterS": 10, "symbol": "PEPE", "decimals": 6, "mintAuthority": null, "freezeAuthority": null,
      "venue": "raydium", "quote": "SOL", "amountRaw": "1000000000000000", "quoteAmountRaw": "50000000000"}]

`mintAuthority` and `freezeAuthority` may be left out (null: renounced, none). The schedule is played at
every start and skips what is done: a token announced already is not announced again, and a token that has
a pool already gets none (so a market restarted mid-schedule launches only what it had not).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import msgspec

from market.tokens import Address, Decimals, Symbol
from venues.chain_wire import POSITIVE_RAW

if TYPE_CHECKING:
    from market.market import Market

log = logging.getLogger(__name__)

PositiveRaw = Annotated[str, msgspec.Meta(pattern=POSITIVE_RAW)]


class ScheduledLaunch(msgspec.Struct, frozen=True, kw_only=True, rename="camel", forbid_unknown_fields=True):
    after_s: Annotated[float, msgspec.Meta(ge=0, le=86_400)]  # seconds after the market's start
    symbol: Symbol
    decimals: Decimals
    mint_authority: Address | None = None
    freeze_authority: Address | None = None
    venue: Literal["raydium", "meteora"]
    quote: Symbol
    amount_raw: PositiveRaw
    quote_amount_raw: PositiveRaw


class InvalidSchedule(ValueError):
    """The schedule file cannot be read or is not a schedule; the message says which and where."""


def load_schedule(path: str) -> tuple[ScheduledLaunch, ...]:
    """The launches of the JSON file at `path`, by `afterS`. Raises InvalidSchedule."""
    try:
        text = Path(path).read_bytes()
    except OSError as error:
        raise InvalidSchedule(f"MARKET_LAUNCH_SCHEDULE: cannot read {path}: {error.strerror}") from None
    try:
        launches = msgspec.json.decode(text, type=list[ScheduledLaunch])
    except msgspec.DecodeError as error:
        raise InvalidSchedule(f"MARKET_LAUNCH_SCHEDULE: {path} is not a launch schedule: {error}") from None
    return tuple(sorted(launches, key=lambda launch: launch.after_s))


async def play(
    market: Market,
    launches: tuple[ScheduledLaunch, ...],
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Announce every token of `launches` not known yet, then create each one's pool at its time (counted
    from now) unless it has one. A launch the chain refuses is logged and skipped."""
    for launch in launches:
        if launch.symbol not in market.registry:
            await _logged(
                launch,
                market.announce(
                    launch.symbol, launch.decimals, launch.mint_authority, launch.freeze_authority
                ),
            )
    waited = 0.0
    for launch in launches:
        await sleep(launch.after_s - waited)
        waited = launch.after_s
        if launch.symbol in market.registry and not market.registry.get(launch.symbol).tradable:
            pool = market.create_pool(
                launch.symbol,
                launch.venue,
                launch.quote,
                int(launch.amount_raw),
                int(launch.quote_amount_raw),
            )
            await _logged(launch, pool)


async def _logged(launch: ScheduledLaunch, step: Awaitable[object]) -> None:
    try:
        await step
    except (ValueError, LookupError) as error:  # refused by the chain: the schedule goes on
        log.warning("scheduled launch of %s refused: %s", launch.symbol, error)
