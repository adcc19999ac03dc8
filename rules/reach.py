"""What a shop is told of a post's reach: the "fewer than 5" rule of people watching."""

from __future__ import annotations

from schemas.feed import Reach
from schemas.limits import AUDIENCE_COUNT_MIN

__all__ = ["shown_reach"]


def shown_reach(phones: int, screens: int) -> Reach:
    """Each count from AUDIENCE_COUNT_MIN up, else null with `fewer_than` (0 included).

    Per field rather than on their sum: a sum of 5 or more would make both exact, and a
    shop running five screens of its own would then read 0 or 1 phone, which is the
    passer-by its floor is there to hide."""
    phone = phones if phones >= AUDIENCE_COUNT_MIN else None
    screen = screens if screens >= AUDIENCE_COUNT_MIN else None
    hidden = phone is None or screen is None
    return Reach(phone=phone, screen=screen,
                 fewer_than=AUDIENCE_COUNT_MIN if hidden else None)
