"""Hostile and careless HTTP and WebSocket input, one test per kind of fault: each is refused with a JSON 4xx
(a WebSocket: close 4400) naming what is wrong, never a 5xx or a logged traceback, never a double action,
and the embedded and PostgreSQL modes answer alike.

Requests go over a raw socket where a well-behaved client library would refuse to send them (trailing
whitespace in a header, bytes that are not UTF-8)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import websockets

from tests.harness import MARKET_ORDER, Engine, engine_settings, project_everything, running_engine

EXECUTE = "/api/orders/execute"
ORDER = json.dumps(MARKET_ORDER).encode()
JSON = (b"content-type", b"application/json")
Headers = list[tuple[bytes, bytes]]


class Answer:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    def json(self) -> Any:
        return json.loads(self.body)

    def __repr__(self) -> str:
        return f"{self.status} {self.body[:300]!r}"


async def send_raw(
    engine: Engine, method: str, target: bytes, headers: Headers = (), body: bytes = b""
) -> Answer:
    """One HTTP/1.1 request exactly as given, bytes and all; the answer read until the server closes."""
    host, port = str(engine.http.base_url).removeprefix("http://").rstrip("/").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    lines = [
        method.encode() + b" " + target + b" HTTP/1.1",
        f"host: {host}:{port}".encode(),
        b"connection: close",
    ]
    lines += [name + b": " + value for name, value in headers]
    lines.append(b"content-length: %d" % len(body))
    writer.write(b"\r\n".join(lines) + b"\r\n\r\n" + body)
    raw = await reader.read()
    writer.close()
    head, _, content = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    fields = dict(line.split(": ", 1) for line in header_lines)
    return Answer(int(status_line.split()[1]), {k.lower(): v for k, v in fields.items()}, content)


async def close_of(url: str) -> tuple[int | None, str]:
    async with websockets.connect(url) as socket:
        with contextlib.suppress(websockets.ConnectionClosed):
            while True:
                await socket.recv()
    return socket.close_code, socket.close_reason or ""


def cursor_of(micros: int | str, order_id: str) -> str:
    """A list cursor as the API writes them: creation time in microseconds since 1970, the order id in hex."""
    return f"{micros}-{order_id.replace('-', '')}"


def refused_naming(answer: Answer, field: str, status: int = 400) -> str | None:
    """Why `answer` is not a JSON `status` naming `field`, or None if it is."""
    if answer.status != status or not answer.headers.get("content-type", "").startswith("application/json"):
        return f"expected a JSON {status}, got {answer!r}"
    if field not in answer.json()["message"]:
        return f"does not name {field!r}: {answer!r}"
    return None


_COLLECTED_UNRETURNED = "The garbage collector is trying to clean up non-checked-in connection"


@pytest.fixture
def errors_logged() -> Iterator[list[logging.LogRecord]]:
    """Every ERROR (or worse) logged while the test runs: bad input must not log one.

    Not counted: SQLAlchemy's report of a pooled connection collected unreturned. A task stopped with the
    engine at the end of a test can drop one (a known leak at shutdown, not a reaction to input), and the
    collector reports it whenever it runs, in whichever test."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.ERROR)
    handler.addFilter(lambda record: not record.getMessage().startswith(_COLLECTED_UNRETURNED))
    handler.emit = records.append  # type: ignore[method-assign]
    logging.getLogger().addHandler(handler)
    yield records
    logging.getLogger().removeHandler(handler)


async def orders_created(engine: Engine) -> int:
    await project_everything(engine.services)
    return len((await engine.http.get("/api/orders", params={"limit": 200})).json()["orders"])


async def check_http(engine: Engine, cases: list[tuple[str, str, bytes, Headers, bytes, str]]) -> list[str]:
    problems = []
    for label, method, target, headers, body, field in cases:
        if (
            problem := refused_naming(await send_raw(engine, method, target, headers, body), field)
        ) is not None:
            problems.append(f"{label}: {problem}")
    return problems


async def check_ws(engine: Engine, cases: dict[str, str], code: int = 4400) -> list[str]:
    problems = []
    for path, field in cases.items():
        close_code, reason = await close_of(engine.ws_base + path)
        if close_code != code or field not in reason:
            problems.append(f"{path}: closed {close_code} {reason!r}, expected {code} naming {field!r}")
    return problems


# -- 1. input that is not UTF-8, anywhere ----------------------------------------------------------------


async def test_input_that_is_not_utf8_is_a_400_naming_where_it_was(backend, errors_logged):
    body_with = ORDER.replace(b'"SOL"', b'"S\xffL"')
    async with running_engine(engine_settings(backend)) as engine:
        problems = await check_http(
            engine,
            [
                ("body string", "POST", EXECUTE.encode(), [JSON], body_with, "body"),
                (
                    "body key",
                    "POST",
                    EXECUTE.encode(),
                    [JSON],
                    ORDER.replace(b'"tokenIn"', b'"t\xc0\xafkenIn"'),
                    "body",
                ),
                (
                    "truncated sequence",
                    "POST",
                    EXECUTE.encode(),
                    [JSON],
                    ORDER.replace(b'"USDC"', b'"\xe2\x82"'),
                    "body",
                ),
                (
                    "Idempotency-Key",
                    "POST",
                    EXECUTE.encode(),
                    [JSON, (b"idempotency-key", b"K\xff")],
                    ORDER,
                    "Idempotency-Key",
                ),
                (
                    "X-Request-ID",
                    "POST",
                    EXECUTE.encode(),
                    [JSON, (b"x-request-id", b"\xc3(")],
                    ORDER,
                    "X-Request-ID",
                ),
                ("query value", "GET", b"/api/orders?tokenIn=S%FFL", [], b"", "tokenIn"),
                ("query name", "GET", b"/api/orders?%FF=1", [], b"", "query"),
                ("cursor", "GET", b"/api/orders?cursor=%FF%FE", [], b"", "cursor"),
                ("path", "GET", b"/api/orders/%FF%FE/events", [], b"", "path"),
            ],
        )
        order_id = await engine.submit()
        problems += await check_ws(
            engine,
            {
                "/api/orders/stream?afterPosition=%FF": "afterPosition",
                f"/api/orders/execute?orderId={order_id}&afterVersion=%C0%AF": "afterVersion",
                "/api/orders/execute?orderId=%ED%A0%80": "orderId",  # a UTF-16 surrogate, not UTF-8
            },
        )
        created = await orders_created(engine)

    assert not problems, "\n".join(problems)
    assert created == 1  # the one valid submission
    assert not errors_logged, [r.getMessage() for r in errors_logged]


# -- 2. nesting ------------------------------------------------------------------------------------------


async def test_deeply_nested_json_is_refused_as_bad_input_without_a_traceback(sqlite_url, errors_logged):
    deep_list = b'{"x":' + b"[" * 1000 + b"]" * 1000 + b"}"
    deep_object = b'{"x":' + b'{"a":' * 1000 + b"1" + b"}" * 1000 + b"}"
    in_a_field = ORDER.replace(b"0.5", b"[" * 1000 + b"]" * 1000)
    top_level = b"[" * 5000 + b"]" * 5000
    async with running_engine(engine_settings({"database_url": sqlite_url, "redis_url": None})) as engine:
        answers = [
            await send_raw(engine, "POST", EXECUTE.encode(), [JSON], body)
            for body in (deep_list, deep_object, in_a_field, top_level)
        ]
        created = await orders_created(engine)

    assert [a.status for a in answers] == [400] * 4, answers
    assert all(a.json()["error"] == "invalid_request" for a in answers), answers
    assert created == 0
    assert not errors_logged, [r.getMessage() for r in errors_logged]


# -- 3. text the database cannot store -------------------------------------------------------------------


async def test_text_with_nul_never_reaches_the_database_in_either_mode(backend, errors_logged):
    nul_id = cursor_of(1704067200000000, "0" * 31 + "%00")
    async with running_engine(engine_settings(backend)) as engine:
        problems = await check_http(
            engine,
            [
                ("tokenIn", "GET", b"/api/orders?tokenIn=SOL%00", [], b"", "tokenIn"),
                ("tokenOut", "GET", b"/api/orders?tokenOut=%00", [], b"", "tokenOut"),
                ("venue", "GET", b"/api/orders?venue=raydium%00", [], b"", "venue"),
                ("status", "GET", b"/api/orders?status=pending%00", [], b"", "status"),
                ("createdAfter", "GET", b"/api/orders?createdAfter=2024-01-01%00", [], b"", "createdAfter"),
                ("cursor holding NUL", "GET", f"/api/orders?cursor={nul_id}".encode(), [], b"", "cursor"),
                ("order id", "GET", b"/api/orders/%00", [], b"", "path"),
                (
                    "body",
                    "POST",
                    EXECUTE.encode(),
                    [JSON],
                    ORDER.replace(b'"SOL"', b'"SOL\\u0000"'),
                    "tokenIn",
                ),
            ],  # (a NUL in a header never reaches the app: the HTTP parser refuses the request)
        )
        problems += await check_ws(engine, {"/api/orders/execute?orderId=%00": "orderId"})
        created = await orders_created(engine)

    assert not problems, "\n".join(problems)
    assert created == 0
    assert not errors_logged, [r.getMessage() for r in errors_logged]


async def test_a_stream_parameter_given_twice_is_refused_naming_it(backend, errors_logged):
    """Which of two values the client meant cannot be known: either would resume it somewhere else."""
    async with running_engine(engine_settings(backend)) as engine:
        order_id = await engine.submit()
        execute = f"/api/orders/execute?orderId={order_id}"
        problems = await check_ws(
            engine,
            {
                f"{execute}&afterVersion=1&afterVersion=3": "afterVersion is given more than once",
                f"{execute}&orderId={order_id}": "orderId is given more than once",
                "/api/orders/stream?afterPosition=1&afterPosition=2": "afterPosition is given more than once",
                "/api/orders/stream?afterToken=a&afterToken=b": "afterToken is given more than once",
            },
        )
        problems += await check_ws(engine, {f"{execute}&afterVersion=1": ""}, 1000)  # once is fine

    assert not problems, "\n".join(problems)
    assert not errors_logged, [r.getMessage() for r in errors_logged]


# -- 4. numbers beyond the database's range --------------------------------------------------------------


async def test_numbers_beyond_the_databases_range_are_bad_input_in_either_mode(backend, errors_logged):
    async with running_engine(engine_settings(backend)) as engine:
        order_id = await engine.submit()
        execute = f"/api/orders/execute?orderId={order_id}&afterVersion="
        problems = await check_ws(
            engine,
            {
                "/api/orders/stream?afterPosition=9223372036854775808": "afterPosition",
                "/api/orders/stream?afterPosition=" + "9" * 5000: "afterPosition",
                "/api/orders/stream?afterPosition=1_0": "afterPosition",
                execute + "2147483648": "afterVersion",
                execute + "9223372036854775808": "afterVersion",
                execute + "%EF%BC%91": "afterVersion",  # a full-width digit one, which int() would take
            },
        )
        # The largest numbers the database holds are fine: nothing there, not an error.
        problems += await check_ws(engine, {"/api/orders/stream?afterPosition=9223372036854775807": ""}, 4404)
        problems += await check_ws(engine, {execute + "2147483647": ""}, 1000)
        problems += await check_http(
            engine,
            [
                ("limit", "GET", b"/api/orders?limit=9223372036854775808", [], b"", "limit"),
                ("limit of 5,000 digits", "GET", b"/api/orders?limit=" + b"9" * 5000, [], b"", "limit"),
            ],
        )
        # Moments at the edges of what Python and the database hold are still moments: no order there.
        far = "9999-12-31T23:59:59-14:00"
        for params in (
            {"createdAfter": far},
            {"createdBefore": "0001-01-01T00:00:00+14:00"},
            {"cursor": cursor_of("9" * 16, order_id)},  # the latest moment a cursor can name
        ):
            if (answer := await engine.http.get("/api/orders", params=params)).status_code != 200:
                problems.append(f"{params}: {answer.status_code} {answer.text}")

    assert not problems, "\n".join(problems)
    assert not errors_logged, [r.getMessage() for r in errors_logged]


# -- 5. whitespace around header values ------------------------------------------------------------------


async def test_whitespace_around_a_header_value_is_not_part_of_it(backend):
    async with running_engine(engine_settings(backend, api_key="s3cret")) as engine:
        auth = (b"authorization", b"Bearer s3cret")
        answers = [
            await send_raw(engine, "POST", EXECUTE.encode(), [JSON, auth, (b"idempotency-key", key)], ORDER)
            for key in (b"K", b"K ", b"K\t", b" K", b"\tK \t")
        ]
        padded_auth = await send_raw(
            engine, "POST", EXECUTE.encode(), [JSON, (b"authorization", b"Bearer s3cret \t")], ORDER
        )
        padded_type = await send_raw(
            engine, "POST", EXECUTE.encode(), [(b"content-type", b"application/json \t"), auth], ORDER
        )
        created = await orders_created(engine)

    assert [a.status for a in answers] == [201, 200, 200, 200, 200], answers
    assert len({a.json()["orderId"] for a in answers}) == 1
    assert (padded_auth.status, padded_type.status) == (201, 201), (padded_auth, padded_type)
    assert created == 3


# -- 6. cross-site request forgery -----------------------------------------------------------------------


async def test_commands_from_foreign_pages_or_not_json_are_refused_before_anything_is_appended(backend):
    allowed = "https://ui.example"
    async with running_engine(engine_settings(backend, cors_origins=allowed)) as engine:
        own = str(engine.http.base_url).rstrip("/")
        refused = {
            "the issue's request": (
                [(b"origin", b"http://evil.example"), (b"content-type", b"text/plain")],
                403,
            ),
            "foreign origin, JSON": ([(b"origin", b"http://evil.example"), JSON], 403),
            "opaque origin": ([(b"origin", b"null"), JSON], 403),
            "allowed origin's lookalike": ([(b"origin", b"https://ui.example.evil.example"), JSON], 403),
            "text/plain": ([(b"content-type", b"text/plain")], 415),
            "form": ([(b"content-type", b"application/x-www-form-urlencoded")], 415),
            "multipart": ([(b"content-type", b"multipart/form-data; boundary=x")], 415),
            "no content type": ([], 415),
            "a +json type": ([(b"content-type", b"application/vnd.api+json")], 415),
        }
        accepted = {
            "no origin": [JSON],
            "same origin": [(b"origin", own.encode()), JSON],
            "a CORS origin": [(b"origin", allowed.encode()), JSON],
            "with a charset": [(b"content-type", b"Application/JSON; charset=utf-8")],
        }
        problems = []
        for label, (headers, status) in refused.items():
            answer = await send_raw(engine, "POST", EXECUTE.encode(), headers, ORDER)
            field = "Origin" if status == 403 else "Content-Type"
            if (problem := refused_naming(answer, field, status)) is not None:
                problems.append(f"{label}: {problem}")
        for label, headers in accepted.items():
            answer = await send_raw(engine, "POST", EXECUTE.encode(), headers, ORDER)
            if answer.status != 201:
                problems.append(f"{label}: {answer!r}")
        created = await orders_created(engine)

    assert not problems, "\n".join(problems)
    assert created == len(accepted)


# -- 7. a client that leaves mid-upload ------------------------------------------------------------------


async def test_clients_leaving_mid_upload_are_not_logged_as_server_errors(sqlite_url, errors_logged):
    left = asyncio.Event()
    noticed: list[logging.LogRecord] = []

    def notice(record: logging.LogRecord) -> None:
        if "client left" in record.getMessage():
            noticed.append(record)
            if len(noticed) == 20:
                left.set()

    watcher = logging.Handler(logging.DEBUG)
    watcher.emit = notice  # type: ignore[method-assign]
    errors_log = logging.getLogger("api.errors")
    errors_log.addHandler(watcher)
    level = errors_log.level
    errors_log.setLevel(logging.DEBUG)
    try:
        async with running_engine(engine_settings({"database_url": sqlite_url, "redis_url": None})) as engine:
            host, port = str(engine.http.base_url).removeprefix("http://").rstrip("/").split(":")
            for _ in range(20):
                _, writer = await asyncio.open_connection(host, int(port))
                writer.write(
                    b"POST /api/orders/execute HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                    b'content-length: 1000\r\n\r\n{"orderType":'
                )
                await writer.drain()
                writer.close()
            async with asyncio.timeout(10):
                await left.wait()
            health = await engine.http.get("/health")
    finally:
        errors_log.removeHandler(watcher)
        errors_log.setLevel(level)

    assert not errors_logged, [r.getMessage() for r in errors_logged]
    assert all(record.levelno <= logging.INFO for record in noticed)
    assert health.status_code == 200


# -- 8. HEAD, and what a 405 allows ----------------------------------------------------------------------

HTTP_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"}


async def test_every_get_resource_answers_head_and_a_405_allows_http_methods_only(sqlite_url):
    async with running_engine(engine_settings({"database_url": sqlite_url, "redis_url": None})) as engine:
        order_id = await engine.submit()
        await engine.stream(order_id)  # to its end: GET and HEAD must see the same lists and figures
        await project_everything(engine.services)
        schema = (await engine.http.get("/schema/openapi.json")).json()
        documented = [path for path, operations in schema["paths"].items() if "get" in operations]
        # The market's routes, mounted at /market by serve, are there too: shown with the order's swap.
        (landed,) = (await engine.http.get("/market/transactions", params={"order": order_id})).json()
        pool = landed["fills"][0]["pool"]
        known = {"orderId": order_id, "clientTxId": landed["clientTxId"], "poolId": pool, "symbol": "SOL"}
        paths = [path.format_map(known) for path in documented]
        assert "/market/pools" in paths, "the market's routes are documented"
        paths += ["/", "/index.html", "/schema", "/schema/openapi.json", "/api/orders/not-a-uuid"]
        paths += [
            f"/market/transactions?order={order_id}",
            "/market/pools/no-such-pool",
            "/market/tokens/NOPE",
        ]
        problems = []
        for path in paths:
            get = await engine.http.get(path)
            head = await send_raw(engine, "HEAD", path.encode())
            if head.status != get.status_code or head.body:
                problems.append(f"HEAD {path}: {head!r}, GET answered {get.status_code}")
            elif head.headers.get("content-length") != get.headers.get("content-length"):
                problems.append(f"HEAD {path}: content-length {head.headers} vs GET {dict(get.headers)}")
        allows = {}
        for path in [*paths, EXECUTE, "/api/orders/stream"]:
            refused = await engine.http.request("DELETE", path)
            allows[path] = refused.headers.get("allow", "")
            if refused.status_code != 405 or not set(filter(None, allows[path].split(", "))) <= HTTP_METHODS:
                problems.append(f"DELETE {path}: {refused.status_code}, Allow: {allows[path]!r}")

        plain_get = await engine.http.get("/api/orders/stream")

    assert not problems, "\n".join(problems)
    assert allows[EXECUTE] == "OPTIONS, POST"  # its GET is the WebSocket's upgrade, not an HTTP method
    assert allows["/api/orders/stream"] == ""
    assert allows["/health"] == "GET, HEAD, OPTIONS"
    # A GET without the upgrade on a WebSocket path is told how to ask.
    assert (plain_get.status_code, plain_get.headers["allow"]) == (405, "")
    assert "Upgrade: websocket" in plain_get.json()["message"]
    assert plain_get.json()["error"] == "method_not_allowed"
