"""Schemathesis hooks for tests/integration/test_fuzzing.py (loaded through SCHEMATHESIS_HOOKS).

A rejection of a request the schema calls valid is a failure of the schema, except for the rules the API
documents that a JSON Schema cannot state, which `filter_failure` drops, and only those:

- a decimal given as a JSON number with more decimals than its token has (`amountIn: 0.1234567` of USDC):
  JSON Schema's `multipleOf` on floats cannot say it (0.3 is no multiple of 0.1 in binary), while the
  decimal string form states it exactly with a pattern;
- a submission's `422 unprocessable`, which depends on the moment or the market, not on the request's
  shape: an `expiresAt` already past, a sniper order's token the market has not announced or already
  trades, a limit no pool could ever pay.
"""

from __future__ import annotations

import json
from typing import Any

import schemathesis

from domain.tokens import TOKENS

SUBMIT = "POST /api/orders/execute"
TOO_FINE = "decimals, the token's smallest unit"
# The decimal fields, each with the field naming its token.
DECIMAL_FIELDS = {"amountIn": "tokenIn", "minLiquidity": "tokenIn", "takingAmount": "tokenOut"}


@schemathesis.hook
def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    """False (drop it) for a rejection of a schema-valid submission by one of the rules above."""
    if failure.code != "ST202" or f"{case.method.upper()} {case.path}" != SUBMIT:
        return True
    try:
        error = json.loads(response.content)
    except ValueError:
        return True
    body = case.body if isinstance(case.body, dict) else {}
    if response.status_code == 422 and error.get("error") == "unprocessable":
        return False
    field = error.get("field")
    too_fine = (
        response.status_code == 400
        and field in DECIMAL_FIELDS
        and TOO_FINE in error.get("message", "")
        and isinstance(body.get(field), float)
        and body.get(DECIMAL_FIELDS[field]) in TOKENS
    )
    return not too_fine
