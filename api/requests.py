"""The request class of the app (a JSON body that cannot be decoded is the client's error, not ours), and
the strict reading of a body."""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec
from litestar import Request
from litestar.exceptions import ValidationException

T = TypeVar("T")


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


def strictly_typed(body: bytes, shape: type[T]) -> T:
    """The body read into `shape` strictly, from its own text: what Litestar's lenient conversion lets
    through (`"slippageBps": "50"` for a number) is refused, and a JSON number read as a Decimal keeps every
    digit written (Litestar reads numbers as floats first: `1.00000000000000000001` would become 1)."""
    try:
        return msgspec.json.decode(body, type=shape)
    except msgspec.ValidationError as error:
        # No key: the error handler names the field msgspec's message points at ("- at `$.amountIn`").
        raise ValidationException(extra=[{"message": str(error)}]) from None
