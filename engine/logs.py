"""Logging: JSON lines when not on a terminal, readable lines on one; every line carries the order and
correlation id of the work it belongs to (bound with `structlog.contextvars`), whichever library wrote it,
and the fields a line was given (`log.info("...", extra={...})`) as fields of its own.

Libraries' lines that tell nothing the engine's own lines do not (taskiq's task ids, uvicorn's WebSocket
handshakes) are left out; `engine/websocket_log.py` writes each WebSocket's open and close instead."""

from __future__ import annotations

import logging
import sys

import structlog


def configure_logging(level: str) -> None:
    renderer = (
        structlog.dev.ConsoleRenderer(colors=True)
        if sys.stderr.isatty()
        else structlog.processors.JSONRenderer()
    )
    shared = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.ExtraAdder(),
        _without_color_message,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    handler = logging.StreamHandler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request is noise here
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)  # seven lines per migration run
    logging.getLogger("taskiq.receiver.receiver").setLevel(logging.WARNING)  # "Executing task <task id>"
    logging.getLogger("taskiq.receiver").addFilter(_not_a_normal_stop)
    logging.getLogger("uvicorn.error").addFilter(_not_a_websocket_handshake)
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )


def _not_a_normal_stop(record: logging.LogRecord) -> bool:
    """taskiq reports its listener's normal stop as a warning."""
    return not record.getMessage().startswith("The listenig task was cancelled")


def _not_a_websocket_handshake(record: logging.LogRecord) -> bool:
    """uvicorn's lines for each WebSocket ("[accepted]", "connection open", "connection closed")."""
    message = record.msg if isinstance(record.msg, str) else ""
    return '"WebSocket ' not in message and message not in ("connection open", "connection closed")


def _without_color_message(_logger: object, _method: str, event_dict: dict[str, object]) -> dict[str, object]:
    """uvicorn passes a coloured copy of some messages as an extra field."""
    event_dict.pop("color_message", None)
    return event_dict
