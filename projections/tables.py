"""The read side's tables: `orders` (one row per order) and the projectors' checkpoints."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator

from eventstore.tables import UtcDateTime
from projections.order_view import RouteLegView

metadata = sa.MetaData()


class ExactDecimal(TypeDecorator[Decimal]):
    """A decimal kept as its text, so it reads back exactly on SQLite too (which has no exact numeric)."""

    impl = sa.String(64)
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: sa.Dialect) -> str | None:
        return None if value is None else str(value)

    def process_result_value(self, value: str | None, dialect: sa.Dialect) -> Decimal | None:
        return None if value is None else Decimal(value)


class BaseUnits(TypeDecorator[str]):
    """An amount in base units: an integer column (sums in SQL stay exact) read as its string of digits,
    as the read model gives it."""

    impl = sa.BigInteger
    cache_ok = True

    def process_bind_param(self, value: str | int | None, dialect: sa.Dialect) -> int | None:
        return None if value is None else int(value)

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> str | None:
        return None if value is None else str(int(value))


class RoutePlan(TypeDecorator[tuple[RouteLegView, ...]]):
    """The route's legs as JSON."""

    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value: tuple[RouteLegView, ...] | None, dialect: sa.Dialect) -> str | None:
        return None if value is None else msgspec.json.encode(value).decode()

    def process_result_value(self, value: str | None, dialect: sa.Dialect) -> tuple[RouteLegView, ...] | None:
        return None if value is None else msgspec.json.decode(value, type=tuple[RouteLegView, ...])


orders = sa.Table(
    "orders",
    metadata,
    sa.Column("order_id", sa.String(36), primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("order_type", sa.String(16), nullable=False),
    sa.Column("token_in", sa.String(16), nullable=False),
    sa.Column("token_out", sa.String(16), nullable=False),
    sa.Column("amount_in", ExactDecimal, nullable=False),
    sa.Column("amount_in_raw", BaseUnits, nullable=False),
    sa.Column("slippage_bps", sa.Integer, nullable=False),
    sa.Column("selected_venue", sa.String(16)),
    sa.Column("route_plan", RoutePlan),
    sa.Column("min_amount_out", ExactDecimal),
    sa.Column("min_amount_out_raw", BaseUnits),
    sa.Column("execution_price", ExactDecimal),
    sa.Column("amount_out", ExactDecimal),
    sa.Column("amount_out_raw", BaseUnits),
    sa.Column("tx_hash", sa.String(100)),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("failure_reason", sa.Text),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("price_improvement_bps", ExactDecimal),
    sa.Column("limit_price", ExactDecimal),
    sa.Column("taking_amount", ExactDecimal),
    sa.Column("taking_amount_raw", BaseUnits),
    sa.Column("expires_at", UtcDateTime),
    sa.Column("token_out_decimals", sa.SmallInteger),
    sa.Column("min_liquidity", ExactDecimal),
    sa.Column("min_liquidity_raw", BaseUnits),
    sa.Column("max_delay_ms", sa.Integer),
)

projection_checkpoints = sa.Table(
    "projection_checkpoints",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    # The checkpoint's transaction id (LogPosition.transaction_id); the column keeps its first name.
    sa.Column("commit_id", sa.BigInteger, nullable=False, key="transaction_id"),
    sa.Column("position", sa.BigInteger, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)
