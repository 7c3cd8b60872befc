"""The shape of an event on the wire (WebSocket messages and the events endpoint), as DESIGN.md gives it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from api.wire import builtins
from domain.events import OrderSubmitted
from domain.pairs import pair_of
from domain.transitions import status_after
from eventstore.base import RecordedEvent


def iso_timestamp(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def event_message(recorded: RecordedEvent) -> dict[str, Any]:
    fields = builtins(recorded.event)
    if isinstance(recorded.event, OrderSubmitted):
        fields["pair"] = pair_message(recorded.event.token_in, recorded.event.token_out)
    return {
        "orderId": recorded.order_id,
        "version": recorded.version,
        "type": fields.pop("type"),
        "status": str(status_after(recorded.event)),
        "timestamp": iso_timestamp(recorded.recorded_at),
        **fields,
    }


def pair_message(token_in: str, token_out: str) -> dict[str, str]:
    """How to read the order's prices: events give them as tokenOut per tokenIn, the swap's direction; they
    read as `quote` per `base`, the pair's one orientation, once inverted when tokenIn is the quote."""
    pair = pair_of(token_in, token_out)
    return {"base": pair.base, "quote": pair.quote, "unit": pair.unit}


def log_message(recorded: RecordedEvent) -> dict[str, Any]:
    """A message of the whole-log stream: the event's message plus where it stands in the log: `position`
    (unique) and `resumeToken` (greater, as a string, than every token sent before it on the stream)."""
    return {
        **event_message(recorded),
        "position": recorded.log_position.position,
        "resumeToken": recorded.log_position.resume_token,
    }
