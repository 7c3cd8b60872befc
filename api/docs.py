"""The API's documentation, served by the engine itself: nothing comes from a CDN, so it works offline.

`/schema` is Swagger UI (its files ship in the `swagger-ui-bundle-v2` package and are served from
`/schema/assets`), `/schema/openapi.json` the OpenAPI document it shows."""

from __future__ import annotations

from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.router import Router
from litestar.static_files import create_static_files_router
from swagger_ui_bundle import swagger_ui_path

SCHEMA_PATH = "/schema"
ASSETS_PATH = f"{SCHEMA_PATH}/assets"

DESCRIPTION = """Market orders for Solana token swaps, routed to Raydium or Meteora, streamed live.

The OpenAPI document itself: [`/schema/openapi.json`](/schema/openapi.json)."""


def openapi_config(*, version: str) -> OpenAPIConfig:
    return OpenAPIConfig(
        title="Order execution engine",
        version=version,
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


def docs_assets() -> Router:
    """Swagger UI's scripts, styles and icon, from the installed package."""
    return create_static_files_router(
        path=ASSETS_PATH, directories=[swagger_ui_path], include_in_schema=False, name="docs-assets"
    )
