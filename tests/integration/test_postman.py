"""The Postman collection (postman/collection.json) names only real routes, and newman runs it green."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
from pathlib import Path
from typing import Any

import pytest

from tests.harness import engine_settings, running_engine
from tests.services import require_tool

ROOT = Path(__file__).resolve().parents[2]
POSTMAN = ROOT / "postman"
COLLECTION = POSTMAN / "collection.json"
NEWMAN_IN_README = "postman/node_modules/.bin/newman"
NEWMAN = ROOT / NEWMAN_IN_README
README = ROOT / "README.md"
NEWMAN_TIMEOUT_S = 90

# The docs page and the OpenAPI and AsyncAPI documents are served outside the OpenAPI document itself.
SCHEMA_ROUTES = {("GET", "/schema"), ("GET", "/schema/openapi.json"), ("GET", "/schema/asyncapi.json")}
VARIABLE = re.compile(r"^\{\{(\w+)\}\}$")  # a whole path segment taken from a Postman variable
PARAMETER = re.compile(r"\{[^/{}]*\}")  # an OpenAPI path parameter, whatever its name


def requests_of(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every request of a collection, folders flattened."""
    found = []
    for item in items:
        if "item" in item:
            found.extend(requests_of(item["item"]))
        else:
            found.append(item["request"])
    return found


def route_of(request: dict[str, Any]) -> tuple[str, str]:
    """(method, path template): `{{baseUrl}}` and the query dropped, `{{orderId}}` segments as `{orderId}`."""
    url = request["url"]
    raw = url if isinstance(url, str) else url["raw"]
    path = raw.removeprefix("{{baseUrl}}").split("?", 1)[0].split("#", 1)[0]
    segments = [VARIABLE.sub(r"{\1}", segment) for segment in path.split("/") if segment]
    return request["method"].upper(), "/" + "/".join(segments)


def unnamed(path: str) -> str:
    """`/api/orders/{order_id}` and `/api/orders/{orderId}` both become `/api/orders/{}`."""
    return PARAMETER.sub("{}", path).rstrip("/") or "/"


def matches(path: str, template: str) -> bool:
    """Whether a collection path (parameters unnamed) fits a schema path (parameters unnamed): a `{}` in the
    template takes any one segment, so the bad-input requests' literal ids match `/api/orders/{}` too."""
    given, wanted = path.split("/"), template.split("/")
    return len(given) == len(wanted) and all(w == "{}" or g == w for g, w in zip(given, wanted, strict=True))


def collection_routes() -> set[tuple[str, str]]:
    collection = json.loads(COLLECTION.read_text())
    return {route_of(request) for request in requests_of(collection["item"])}


def test_the_collection_covers_every_endpoint_of_the_api():
    routes = {(method, unnamed(path)) for method, path in collection_routes()}
    for route in [
        ("POST", "/api/orders/execute"),
        ("GET", "/api/orders/{}"),
        ("GET", "/api/orders/{}/events"),
        ("GET", "/api/orders"),
        ("GET", "/api/stats"),
        ("POST", "/api/orders/{}/cancel"),
        ("GET", "/api/prices"),
        ("GET", "/api/tokens"),
        ("GET", "/health"),
        ("GET", "/schema/openapi.json"),
    ]:
        assert route in routes, route


async def test_every_collection_route_exists_in_the_openapi_schema(sqlite_url):
    async with running_engine(engine_settings({"database_url": sqlite_url, "redis_url": None})) as engine:
        response = await engine.http.get("/schema/openapi.json")
        assert response.status_code == 200, response.text
        schema = response.json()
        for _, path in SCHEMA_ROUTES:
            assert (await engine.http.get(path)).status_code == 200, path

    documented = {
        (method.upper(), unnamed(path))
        for path, operations in schema["paths"].items()
        for method in operations
        if method in {"get", "post", "put", "patch", "delete", "head", "options"}
    }
    bad_method_probes = {("DELETE", "/api/orders/{}")}  # the "Method not allowed" request, meant to be absent
    missing = [
        (method, path)
        for method, path in sorted(collection_routes())
        if (method, path) not in SCHEMA_ROUTES
        and not any(method == m and matches(unnamed(path), t) for m, t in bad_method_probes)
        and not any(method == m and matches(unnamed(path), t) for m, t in documented)
    ]
    assert not missing, f"collection requests with no route in the OpenAPI schema: {missing}"
    assert not bad_method_probes & documented, "a route the collection expects 405 from now exists"


def readme_newman_command() -> list[str]:
    """README's newman line, as a user would paste it (from the repository's root)."""
    (line,) = [
        line for line in README.read_text().splitlines() if line.startswith(f"{NEWMAN_IN_README} run ")
    ]
    return shlex.split(line.split("#", 1)[0])


def test_readme_s_newman_line_shows_how_to_point_base_url_at_another_port():
    command = readme_newman_command()
    assert command[:2] == [NEWMAN_IN_README, "run"]
    (base_url,) = [i for i, argument in enumerate(command) if argument.startswith("baseUrl=http://")]
    assert command[base_url - 1] == "--env-var"


async def test_readme_s_newman_line_passes_against_a_running_engine(sqlite_url):
    newman_path = require_tool("newman", "npm ci --prefix postman", NEWMAN)
    async with running_engine(engine_settings({"database_url": sqlite_url, "redis_url": None})) as engine:
        base_url = str(engine.http.base_url).rstrip("/")  # a port of its own, not README's 3000
        _, *arguments = [
            f"baseUrl={base_url}" if argument.startswith("baseUrl=") else argument
            for argument in readme_newman_command()
        ]
        newman = await asyncio.create_subprocess_exec(
            newman_path,
            *arguments,
            "--reporters",
            "cli",
            "--color",
            "off",
            "--disable-unicode",
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, "NO_COLOR": "1"},
        )
        try:
            output, _ = await asyncio.wait_for(newman.communicate(), NEWMAN_TIMEOUT_S)
        except TimeoutError:
            newman.kill()
            output, _ = await newman.communicate()
            pytest.fail(f"newman ran over {NEWMAN_TIMEOUT_S} s:\n{output.decode(errors='replace')}")
    report = output.decode(errors="replace")
    assert newman.returncode == 0, f"newman exited {newman.returncode}:\n{report}"
