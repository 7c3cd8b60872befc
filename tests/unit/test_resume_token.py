"""A log position's resume token compares, as a string, exactly as the position does."""

from __future__ import annotations

import random

import pytest

from eventstore.base import MAX_POSITION, LogPosition


def random_position(rng: random.Random) -> LogPosition:
    def number() -> int:
        return rng.choice([0, 1, rng.randrange(2**8), rng.randrange(2**32), rng.randrange(MAX_POSITION + 1)])

    return LogPosition(number(), number())


def test_tokens_order_as_their_positions_and_read_back():
    rng = random.Random(7)
    for _ in range(5_000):
        a, b = random_position(rng), random_position(rng)
        assert (a.resume_token < b.resume_token) == (a < b)
        assert (a.resume_token == b.resume_token) == (a == b)
        assert LogPosition.from_resume_token(a.resume_token) == a


def test_tokens_have_one_fixed_shape():
    assert LogPosition(0x628F, 300_000).resume_token == "000000000000628f-00000000000493e0"
    assert LogPosition(MAX_POSITION, MAX_POSITION).resume_token == "7fffffffffffffff-7fffffffffffffff"


@pytest.mark.parametrize(
    "token",
    [
        "",
        "0",
        "000000000000628f",
        "000000000000628F-00000000000493e0",
        "000000000000628f:00000000000493e0",
        " 000000000000628f-00000000000493e0",
        "000000000000628f-00000000000493e0\n",
        "0000000000000628f-00000000000493e0",
        "8000000000000000-0000000000000000",
        "0000000000000000-ffffffffffffffff",
        "-00000000000628f-00000000000493e0",
        "\u0660" * 16 + "-0000000000000000",  # Arabic-Indic zeros: int() would take them
    ],
)
def test_anything_else_is_refused(token):
    with pytest.raises(ValueError):
        LogPosition.from_resume_token(token)
