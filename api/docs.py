"""The API's documentation, served by the engine itself: nothing comes from a CDN, so it works offline.

`/schema` is Swagger UI (its files ship in the `swagger-ui-bundle-v2` package and are served from
`/schema/assets`), `/schema/openapi.json` the OpenAPI document it shows, `/schema/asyncapi.json` the
AsyncAPI document of the two WebSockets."""

from __future__ import annotations

from typing import Any

from litestar import get
from litestar.handlers import HTTPRouteHandler
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.router import Router
from litestar.static_files import create_static_files_router
from swagger_ui_bundle import swagger_ui_path

from api.asyncapi import asyncapi_document

SCHEMA_PATH = "/schema"
ASSETS_PATH = f"{SCHEMA_PATH}/assets"

API_VERSION = "0.1.0"

DESCRIPTION = """Market, limit and sniper orders for Solana token swaps, routed to Raydium or Meteora,
streamed live. A limit order waits (`waiting`) until a quote for its whole amount reaches its limit; a
sniper order waits for its token's first pool; either then runs as a market order, or ends `cancelled`
(`POST /api/orders/{orderId}/cancel`) or `expired`.

This page's document: [`/schema/openapi.json`](/schema/openapi.json).

**WebSockets** (GET upgrade; one JSON text frame per event; their AsyncAPI document, with every message's
schema: [`/schema/asyncapi.json`](/schema/asyncapi.json)):

- `/api/orders/execute?orderId=<uuid>[&afterVersion=N]`: one order's events, so far and then live, in
  version order, no gap, no duplicate; closes `1000` after the terminal event, `4404` for an unknown order,
  `4400` for a malformed request, `1001` when the API shuts down (resume elsewhere with `afterVersion`).
  The POST answers this address as `wsUrl`.
- `/api/orders/stream[?afterToken=T]`: every event of every order in log order, replay then live, each
  message with its `resumeToken`; resume with the last token received (tokens increase along the stream;
  positions do not always).

A message is `orderId`, `version`, `type` (the event), `status` (after it), `timestamp`, then the event's
own fields in camelCase: the same objects `GET /api/orders/{orderId}/events` lists."""


def openapi_config() -> OpenAPIConfig:
    return OpenAPIConfig(
        title="Order execution engine",
        version=API_VERSION,
        description=DESCRIPTION,
        path=SCHEMA_PATH,
        render_plugins=[
            SwaggerRenderPlugin(
                path="/",
                js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
                css_url=f"{ASSETS_PATH}/swagger-ui.css",
                standalone_preset_js_url=f"{ASSETS_PATH}/swagger-ui-standalone-preset.js",
                favicon=f"<link rel='icon' type='image/png' href='{ASSETS_PATH}/favicon-32x32.png'>",
            )
        ],
    )


def docs_routes() -> list[Router | HTTPRouteHandler]:
    """Swagger UI's scripts, styles and icon, from the installed package, and the AsyncAPI document."""
    document = asyncapi_document(version=API_VERSION)

    @get(f"{SCHEMA_PATH}/asyncapi.json", include_in_schema=False, sync_to_thread=False)
    def asyncapi() -> dict[str, Any]:
        return document

    assets = create_static_files_router(
        path=ASSETS_PATH, directories=[swagger_ui_path], include_in_schema=False, name="docs-assets"
    )
    return [assets, asyncapi]
