"""JSON as the API writes it: exact decimals as JSON numbers, base-unit amounts as strings of digits.

msgspec writes a `Decimal` as a string by default and Litestar keeps that default; amounts are exact decimal
values and go out as numbers (`0.500000000`, rendered from the integer, never through a float), and every
`...Raw` amount as a string of digits, so that no JSON reader rounds it to a double.
"""

from __future__ import annotations

from decimal import Decimal
from functools import cache
from typing import Any

import msgspec
from litestar import Response
from litestar.enums import MediaType
from litestar.serialization import default_serializer
from litestar.types import Serializer

ENCODER = msgspec.json.Encoder(decimal_format="number")


def encode(value: Any) -> bytes:
    return ENCODER.encode(value)


@cache
def _encoder(enc_hook: Serializer) -> msgspec.json.Encoder:
    return msgspec.json.Encoder(enc_hook=enc_hook, decimal_format="number")


class ExactJsonResponse(Response[Any]):
    """Litestar's response, writing JSON bodies with decimals as numbers (content already rendered, such as
    the OpenAPI document's bytes, goes out as it is, as Litestar's does)."""

    def render(self, content: Any, media_type: str, enc_hook: Serializer = default_serializer) -> bytes:
        rendered = isinstance(content, bytes | str)
        if not rendered and (media_type == MediaType.JSON or media_type.endswith("+json")):
            return _encoder(enc_hook).encode(content)
        return super().render(content, media_type, enc_hook)


def builtins(struct: msgspec.Struct) -> dict[str, Any]:
    """A record's fields as JSON-ready values: decimals kept (written as numbers), `...Raw` integers as
    strings of digits, at any depth."""
    return _raw_as_text(msgspec.to_builtins(struct, builtin_types=(Decimal,)))


def _raw_as_text(value: Any, key: str = "") -> Any:
    if isinstance(value, dict):
        return {name: _raw_as_text(item, name) for name, item in value.items()}
    if isinstance(value, list | tuple):
        return [_raw_as_text(item, key) for item in value]
    if isinstance(value, int) and not isinstance(value, bool) and key.endswith("Raw"):
        return str(value)
    return value
