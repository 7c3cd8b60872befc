"""The market's HTTP wire format, both ways: the API (api/market.py) writes it, the HTTP adapter
(venues/market_http.py) reads it.

camelCase keys. Amounts in base units are strings of digits (JavaScript's numbers lose digits above 2^53,
and a BONK pool's reserves are above it): the transactions' `*Raw` fields, a CPMM pool's `reserveXRaw` /
`reserveYRaw`, a DLMM pool's bins (`{"<binId>": ["<amountXRaw>", "<amountYRaw>"]}`). Rates, decimals, bin ids
and times stay numbers. A pool also carries `spotPrice`, whole `tokenY` per whole `tokenX`, as an exact
decimal string (ignored when read back: the pool's maths give it). A transaction's outcome carries `status`:
"pending", "landed" or "dropped". A token record is its struct's camelCase fields (`mintAuthority`,
`freezeAuthority`, `firstPool` null when absent; `announcedAt`, `launchedAt` in unix milliseconds).
"""

from __future__ import annotations

import re
from typing import Any, get_args

import msgspec

from domain.amounts import raw_as_text
from domain.pools import PoolState
from venues.chain import Dropped, Landed, Pending, TokenRecord, TransactionStatus

# Amounts in base units on the wire: a u64, as on Solana (at most 19 digits keeps below 2^64).
POSITIVE_RAW = r"^[1-9][0-9]{0,18}$"
RAW = r"^(0|[1-9][0-9]{0,18})$"
# Pool fields that are amounts in base units (strings on the wire).
POOL_AMOUNTS = frozenset({"reserve_x", "reserve_y", "bins"})
STATUS_TYPES: dict[str, type[Landed | Dropped | Pending]] = {
    "landed": Landed,
    "dropped": Dropped,
    "pending": Pending,
}


def _camel(name: str) -> str:
    return re.sub(r"_(\w)", lambda m: m.group(1).upper(), name)


def _wire_name(field: str) -> str:
    return _camel(field) + ("Raw" if field in POOL_AMOUNTS and field != "bins" else "")


# Field name -> wire name, for every kind of pool (and the tag telling them apart), and back.
_WIRE_NAMES = {"kind": "kind"} | {
    field.encode_name: _wire_name(field.encode_name)
    for kind in get_args(PoolState)
    for field in msgspec.structs.fields(kind)
}
_POOL_FIELDS = {wire: name for name, wire in _WIRE_NAMES.items()}


def _amounts_as_text(name: str, value: Any) -> Any:
    """The builtins of pool field `name`, one of POOL_AMOUNTS, with its amounts as strings of digits: a
    reserve's integer, a DLMM pool's bins ({"<binId>": [amount_x, amount_y]})."""
    if name == "bins":
        return {bin_id: [str(amount_x), str(amount_y)] for bin_id, (amount_x, amount_y) in value.items()}
    return str(value)


def pool_to_wire(pool: PoolState) -> dict[str, Any]:
    fields = msgspec.to_builtins(pool, str_keys=True)
    wire = {
        _WIRE_NAMES[name]: _amounts_as_text(name, value) if name in POOL_AMOUNTS else value
        for name, value in fields.items()
    }
    wire["spotPrice"] = f"{pool.spot_price(pool.token_x):f}"
    return wire


def pool_wire_json(pool: PoolState) -> bytes:
    """`pool_to_wire(pool)` encoded as JSON, as the API sends it."""
    return msgspec.json.encode(pool_to_wire(pool))


def pool_from_wire(wire: dict[str, Any]) -> PoolState:
    """Raises msgspec.ValidationError for what is not a pool."""
    fields = {_POOL_FIELDS[key]: value for key, value in wire.items() if key in _POOL_FIELDS}
    pool: PoolState = msgspec.convert(fields, PoolState, strict=False, str_keys=True)
    return pool


def to_wire(value: msgspec.Struct) -> dict[str, Any]:
    """A transaction, a fill or an outcome: its `*Raw` fields as strings; an outcome with its `status`."""
    wire: dict[str, Any] = raw_as_text(msgspec.to_builtins(value))
    for status, kind in STATUS_TYPES.items():
        if isinstance(value, kind):
            wire = {"status": status, **wire}
    return wire


def status_from_wire(wire: dict[str, Any]) -> TransactionStatus:
    """An outcome or status as `to_wire` wrote it; msgspec.ValidationError for anything else."""
    kind = STATUS_TYPES.get(wire.get("status", ""))
    if kind is None:
        raise msgspec.ValidationError(f"unknown transaction status {wire.get('status')!r}")
    status: TransactionStatus = msgspec.convert(
        {k: v for k, v in wire.items() if k != "status"}, kind, strict=False
    )
    return status


def token_to_wire(record: TokenRecord) -> dict[str, Any]:
    wire: dict[str, Any] = msgspec.to_builtins(record)
    return wire


def token_from_wire(wire: Any) -> TokenRecord:
    """A token record as `token_to_wire` wrote it; msgspec.ValidationError for anything else."""
    return msgspec.convert(wire, TokenRecord)
