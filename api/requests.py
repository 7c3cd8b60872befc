"""The request class of the app (a JSON body that cannot be decoded is the client's error, not ours), and
the strict reading of a body."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request
from litestar.exceptions import ValidationException


class CheckedJsonRequest(Request[Any, Any, Any]):
    async def json(self) -> Any:
        """Litestar lets the decoder's UnicodeDecodeError (a string that is not UTF-8) and RecursionError
        (nesting deeper than the interpreter's recursion limit, found by msgspec in C before it costs
        anything) escape as server errors; each one is bad input."""
        try:
            return await super().json()
        except UnicodeDecodeError:
            raise ValidationException(extra=[{"message": "body: must be valid UTF-8"}]) from None
        except RecursionError:
            raise ValidationException(extra=[{"message": "body: JSON nested too deeply"}]) from None


def strictly_typed(body: bytes, shape: type) -> None:
    """Refuse what Litestar's lenient conversion of a body into `shape` lets through, such as
    `"amountIn": "0.5"` for a number or `"expiresAt": "5"` for an integer."""
    try:
        msgspec.json.decode(body, type=shape)
    except msgspec.ValidationError as error:
        # No key: the error handler names the field msgspec's message points at ("- at `$.amountIn`").
        raise ValidationException(extra=[{"message": str(error)}]) from None
