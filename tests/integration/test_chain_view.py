"""What the engine relays from the chain to clients, in both modes: each pair's best spot prices
(`GET /api/prices`) as the trigger watcher reads them, and the market's tokens as they are announced and
launched (`GET /api/tokens`); `503` when the market does not answer."""

from __future__ import annotations

from decimal import Decimal
from itertools import combinations

from domain.pairs import pair_of
from domain.pools import PoolState
from domain.tokens import TOKENS
from engine.services import Services
from tests.harness import Engine, engine_settings, running_engine
from tests.integration.test_limit_orders import push_sol_price
from tests.integration.test_sniper_orders import SNIPER_ORDER
from venues.base import VenueError
from venues.chain import Chain, TokenRecord

SEED = {"mock_seed": 7}
PEPE = {"symbol": "PEPE", "decimals": 6}
PEPE_POOL = {
    "venue": "raydium",
    "quoteToken": "SOL",
    "amountRaw": str(10**15),
    "quoteAmountRaw": str(50 * 10**9),
}


async def pools_of(engine: Engine, base: str, quote: str) -> list[PoolState]:
    chain = engine.services.chain
    return [pool for venue in chain.venues for pool in await chain.pools(venue, base, quote)]


async def prices_by_pair(engine: Engine) -> dict[tuple[str, str], dict]:
    response = await engine.http.get("/api/prices")
    assert response.status_code == 200, response.text
    return {(p["base"], p["quote"]): p for p in response.json()["pairs"]}


async def test_prices_give_every_pair_s_best_bid_and_ask_exactly_in_its_unit_and_follow_the_pools(backend):
    async with running_engine(engine_settings(backend, **SEED), worker=False) as engine:
        listed = await prices_by_pair(engine)
        pairs = {pair_of(a, b) for a, b in combinations(TOKENS, 2)}
        assert set(listed) == {(pair.base, pair.quote) for pair in pairs}
        for pair in pairs:
            shown = listed[(pair.base, pair.quote)]
            pools = await pools_of(engine, pair.base, pair.quote)
            assert shown["unit"] == pair.unit and shown["pools"] == len(pools) > 0
            assert isinstance(shown["bid"], str) and isinstance(shown["ask"], str), "exact decimals as text"
            bid, ask = Decimal(shown["bid"]), Decimal(shown["ask"])
            # The bid is the best pool's spot price for selling the base, to 18 significant digits.
            best = max(pool.spot_price(pair.base) for pool in pools)
            assert abs(bid - best) <= best.scaleb(-17), (pair, bid, best)
            assert len(bid.normalize().as_tuple().digits) <= 18
            # The ask is what the cheapest pool asks for one base token: 1 / the most base per quote.
            cheapest = 1 / max(pool.spot_price(pair.quote) for pool in pools)
            assert abs(ask - cheapest) <= cheapest.scaleb(-17), (pair, ask, cheapest)
            assert ask >= bid * Decimal("0.99"), "no pool gives away a base token far below another's bid"
        sol = listed[("SOL", "USDC")]
        assert 100 < Decimal(sol["bid"]) < 200 and sol["unit"] == "USDC per SOL"

        await push_sol_price(engine, Decimal("0.02"))  # every SOL/USDC pool 2 % up

        moved = (await prices_by_pair(engine))[("SOL", "USDC")]
        assert Decimal(moved["bid"]) >= Decimal(sol["bid"]) * Decimal("1.02")
        assert Decimal(moved["ask"]) >= Decimal(sol["ask"]) * Decimal("1.019")
        assert (await prices_by_pair(engine))[("BONK", "USDC")] == listed[("BONK", "USDC")], "others unmoved"


async def test_tokens_relay_the_market_s_records_as_a_token_is_announced_then_launched(backend):
    async with running_engine(engine_settings(backend, **SEED), worker=False) as engine:
        before = (await engine.http.get("/api/tokens")).json()
        assert {t["symbol"] for t in before} == set(TOKENS)
        assert all(t["launchedAt"] is not None and t["firstPool"] for t in before)

        assert (await engine.http.post("/market/tokens", json=PEPE)).status_code == 201
        (announced,) = [t for t in (await engine.http.get("/api/tokens")).json() if t["symbol"] == "PEPE"]
        assert announced["launchedAt"] is None and announced["firstPool"] is None
        assert announced["decimals"] == 6 and announced["announcedAt"] > 0

        assert (await engine.http.post("/market/tokens/PEPE/pools", json=PEPE_POOL)).status_code == 201
        (launched,) = [t for t in (await engine.http.get("/api/tokens")).json() if t["symbol"] == "PEPE"]
        market_record = (await engine.http.get("/market/tokens/PEPE")).json()
        assert launched == market_record
        assert launched["firstPool"].startswith("raydium-cpmm-PEPE-SOL")
        assert launched["launchedAt"] >= announced["announcedAt"]
        # A launched token outside the engine's list has no price in the engine's pairs.
        assert all("PEPE" not in pair for pair in await prices_by_pair(engine))


class UnreachableChain:
    """The port with a market that does not answer."""

    venues = ("raydium", "meteora")

    async def pools(self, venue: str, token_in: str, token_out: str) -> list[PoolState]:
        raise VenueError("market unreachable")

    async def tokens(self) -> list[TokenRecord]:
        raise TimeoutError


async def test_what_needs_the_market_answers_503_market_unavailable_when_it_does_not_answer(sqlite_url):
    """Prices, tokens, and a sniper order, whose token is looked up on the chain before it is accepted:
    nothing is recorded for it."""

    def unreachable(_: Services) -> Chain:
        return UnreachableChain()  # type: ignore[return-value]

    settings = engine_settings({"database_url": sqlite_url, "redis_url": None})
    async with running_engine(settings, worker=False, chain=unreachable) as engine:
        for path in ("/api/prices", "/api/tokens"):
            response = await engine.http.get(path)
            assert response.status_code == 503, (path, response.text)
            assert response.json()["error"] == "market_unavailable"
        sniper = await engine.http.post(
            "/api/orders/execute", json=SNIPER_ORDER, headers={"Idempotency-Key": "sniper-while-away"}
        )
        assert sniper.status_code == 503, sniper.text
        assert sniper.json()["error"] == "market_unavailable"
        assert (await engine.http.get("/api/orders")).json()["orders"] == []


async def test_the_openapi_document_states_both_endpoints_shapes(sqlite_url):
    settings = engine_settings({"database_url": sqlite_url, "redis_url": None})
    async with running_engine(settings, worker=False) as engine:
        schema = (await engine.http.get("/schema/openapi.json")).json()
    components = schema["components"]["schemas"]
    for path, component in (("/api/prices", "Prices"), ("/api/tokens", "TokenRecord")):
        answers = schema["paths"][path]["get"]["responses"]
        assert set(answers) == {"200", "503"}, (path, answers)
        assert component in str(answers["200"]), (path, answers["200"])
    (price,) = [s for name, s in components.items() if name.endswith("PairPrice")]
    assert {name: price["properties"][name]["type"] for name in ("bid", "ask", "unit")} == {
        "bid": "string",
        "ask": "string",
        "unit": "string",
    }
    (token,) = [s for name, s in components.items() if name.endswith("TokenRecord")]
    assert {
        "symbol",
        "decimals",
        "mintAuthority",
        "freezeAuthority",
        "announcedAt",
        "launchedAt",
        "firstPool",
    } <= set(token["properties"])
