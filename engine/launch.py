"""`order-engine market launch`: launch a token on a running market, over its HTTP API.

The token is announced (`POST /tokens`) unless the market knows it already, then given a pool
(`POST /tokens/{symbol}/pools`); the answer is the token's record after it (`GET /tokens/{symbol}`). The
market must run with MARKET_SCRIPTING=true.
"""

from __future__ import annotations

from typing import Any

import httpx

TIMEOUT_S = 10.0


class LaunchFailed(Exception):
    """The market refused a step or could not be reached; the message says which and why."""


async def announce(base_url: str, announcement: dict[str, Any]) -> dict[str, Any]:
    """Announce `announcement` ({symbol, decimals, mintAuthority?, freezeAuthority?}) on the market at
    `base_url`: a token that exists and does not trade yet (what a sniper order waits for). Returns its
    record (the JSON of POST /tokens). Raises LaunchFailed (403 when the market's scripting is off, 409 for a
    symbol it knows)."""
    async with httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=TIMEOUT_S) as http:
        try:
            record: dict[str, Any] = _checked(
                await http.post("/tokens", json=announcement), "announcing it"
            ).json()
        except httpx.HTTPError as error:
            raise LaunchFailed(f"could not reach the market at {base_url}: {error}") from None
    return record


async def launch(base_url: str, announcement: dict[str, Any], pool: dict[str, Any]) -> dict[str, Any]:
    """Announce `announcement` ({symbol, decimals, mintAuthority, freezeAuthority}) if the market at
    `base_url` does not know its symbol, create `pool` ({venue, quoteToken, amountRaw, quoteAmountRaw})
    for it, and return the token's record (the JSON of GET /tokens/{symbol}). Raises LaunchFailed, also
    before any pool is made when the market knows the token otherwise (other decimals would misprice the
    pool's deposits by powers of ten)."""
    symbol = announcement["symbol"]
    async with httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=TIMEOUT_S) as http:
        try:
            known = await http.get(f"/tokens/{symbol}")
            if known.status_code == 404:
                _checked(await http.post("/tokens", json=announcement), "announcing it")
            else:
                _same_token(_checked(known, "reading it").json(), announcement)
            _checked(await http.post(f"/tokens/{symbol}/pools", json=pool), "creating its pool")
            record: dict[str, Any] = _checked(await http.get(f"/tokens/{symbol}"), "reading it").json()
        except httpx.HTTPError as error:
            raise LaunchFailed(f"could not reach the market at {base_url}: {error}") from None
    return record


def _same_token(record: dict[str, Any], announcement: dict[str, Any]) -> None:
    differs = [
        f"{name} {record.get(name)!r}, not {given!r}"
        for name, given in announcement.items()
        if name != "symbol" and record.get(name) != given
    ]
    if differs:
        raise LaunchFailed(f"{announcement['symbol']} is announced already, with {'; '.join(differs)}")


def _checked(response: httpx.Response, step: str) -> httpx.Response:
    if response.is_success:
        return response
    try:
        answer = response.json()
    except ValueError:
        answer = None
    message = answer.get("message") if isinstance(answer, dict) else None
    raise LaunchFailed(f"the market refused {step} (HTTP {response.status_code}): {message or response.text}")
