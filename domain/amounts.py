"""Token amounts: integers in the token's base units, shown as exact decimals (never through a float).

SOL has 9 decimals, so 0.5 SOL is 500,000,000 lamports; USDC has 6. A request may give an amount as a decimal
value (`amountIn`: a JSON number or a decimal string) or in base units (`amountInRaw`: a string of digits);
every amount the engine records and shows is both: the integer, and the decimal value rendered from it.
"""

from __future__ import annotations

import re
from decimal import MAX_EMAX, MIN_EMIN, Decimal, InvalidOperation, localcontext
from typing import Any

RAW_PATTERN = r"^[1-9][0-9]{0,37}$"  # a positive integer in base units, as a string of digits
DECIMAL_TEXT = re.compile(r"[0-9]+(\.[0-9]+)?")  # a decimal as text: ASCII digits, one point, nothing else
MAX_DIGITS = 38  # no amount of any token comes near 10**38 base units; refused before any arithmetic


class AmountError(ValueError):
    """An amount that is not a whole number of base units; the message is the rule it breaks."""


def to_base_units(value: Decimal | str, decimals: int) -> int:
    """`value` whole tokens as base units: `to_base_units(Decimal("0.5"), 9) == 500_000_000`.

    Raises `AmountError` for a value that is not a finite decimal, or that has more decimals than the token
    (after removing trailing zeros, so `1.50` and `15E-1` are fine for a token with one decimal). Text is
    plain ASCII digits with at most one point (`0.5`): not the spaces, underscores, signs, exponents or other
    scripts' digits that Python's `Decimal` would also read.
    """
    if isinstance(value, str) and DECIMAL_TEXT.fullmatch(value) is None:
        raise AmountError("must be a decimal number of plain digits, such as 0.5")
    try:
        number = Decimal(value)
    except (InvalidOperation, ValueError):
        raise AmountError("must be a decimal number such as 0.5") from None
    if not number.is_finite():
        raise AmountError("must be a finite decimal number")
    if number and number.adjusted() + decimals >= MAX_DIGITS:
        raise AmountError("is far too large")
    with localcontext() as context:  # scaled exactly: the default 28 digits would round `1.000...0001` to 1
        context.prec = max(1, len(number.as_tuple().digits))
        context.Emin, context.Emax = MIN_EMIN, MAX_EMAX
        scaled = number.scaleb(decimals)
    if scaled != scaled.to_integral_value():
        raise AmountError(f"has more than {decimals} decimals, the token's smallest unit")
    return int(scaled)


def to_decimal(raw: int, decimals: int) -> Decimal:
    """Base units as whole tokens, exactly: `to_decimal(500_000_000, 9) == Decimal("0.500000000")`."""
    return Decimal(raw).scaleb(-decimals)


def raw_as_text(value: Any) -> Any:
    """`value` (JSON-ready builtins) with every integer under a `...Raw` key, at any depth, as a string of
    digits: how amounts in base units travel in JSON, where a reader taking numbers as doubles would round
    them past 2^53."""
    if isinstance(value, dict):
        return {
            key: str(item) if key.endswith("Raw") and type(item) is int else raw_as_text(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [raw_as_text(item) for item in value]
    return value


def shown(raw: int, decimals: int) -> str:
    """`0.5`: the exact value without trailing zeros or exponent, for messages to people."""
    text = f"{to_decimal(raw, decimals):f}"
    return text.rstrip("0").rstrip(".") if "." in text else text
