"""JSON as the API writes it: exact decimals as JSON numbers, base-unit amounts as strings of digits.

msgspec writes a `Decimal` as a string by default and Litestar keeps that default; amounts are exact decimal
values and go out as numbers (`0.500000000`, rendered from the integer, never through a float), and every
`...Raw` amount as a string of digits, so that no JSON reader rounds it to a double.
"""

from __future__ import annotations

from decimal import Decimal
from functools import cache
from typing import TYPE_CHECKING, Any

import msgspec
from litestar import Response
from litestar.enums import MediaType
from litestar.openapi.spec import OpenAPIType, Schema
from litestar.plugins import OpenAPISchemaPlugin
from litestar.serialization import default_serializer
from litestar.types import Serializer
from litestar.typing import FieldDefinition

from domain.amounts import raw_as_text

if TYPE_CHECKING:
    from litestar._openapi.schema_generation import SchemaCreator

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


class DecimalsAsNumbers(OpenAPISchemaPlugin):
    """The OpenAPI schema of a `Decimal` as the API writes it: a number (Litestar's default says string)."""

    def is_plugin_supported_field(self, field_definition: FieldDefinition) -> bool:
        return field_definition.annotation is Decimal

    def to_openapi_schema(self, field_definition: FieldDefinition, schema_creator: SchemaCreator) -> Schema:
        return Schema(type=OpenAPIType.NUMBER)


def builtins(struct: msgspec.Struct) -> dict[str, Any]:
    """A record's fields as JSON-ready values: decimals kept (written as numbers), `...Raw` integers as
    strings of digits, at any depth."""
    fields: dict[str, Any] = raw_as_text(msgspec.to_builtins(struct, builtin_types=(Decimal,)))
    return fields


RAW_DIGITS = r"^(0|[1-9][0-9]*)$"


def wire_schema(schema: Any, key: str = "") -> Any:
    """A JSON schema msgspec generated for records, made to describe them as `builtins` writes them:
    decimals (`{"type": "string", "format": "decimal"}`) as numbers, `...Raw` integers as strings of
    digits."""
    if isinstance(schema, list):
        return [wire_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    if schema.get("type") == "string" and schema.get("format") == "decimal":
        return {**{name: value for name, value in schema.items() if name != "format"}, "type": "number"}
    if schema.get("type") == "integer" and key.endswith("Raw"):
        return {"type": "string", "pattern": RAW_DIGITS}
    properties = schema.get("properties")
    return {
        name: {prop: wire_schema(value, prop) for prop, value in properties.items()}
        if name == "properties" and isinstance(properties, dict)
        else wire_schema(value)
        for name, value in schema.items()
    }
