"""Holds' rules (DESIGN.md section 9 "Hold it for me"), free of I/O: the states and who may
move a hold between them, the units left, the code said at the till.

    pending --accept--> accepted
    pending | accepted --collected--> collected   (the unit left the shop)
    pending | accepted --decline--> declined      (by the shop; a pending one also when
                                                    its post is withdrawn or expires; any
                                                    open one when the shop is disabled)
    pending | accepted --cancel--> cancelled      (by the passer-by)
    pending | accepted --expire--> expired        (at expires_at, if still open)

A hold takes a unit from its post while open (pending or accepted); declined, cancelled
and expired give it back; collected keeps it (sold). An ended hold never moves again.

A declined hold says why (its passer-by reads it): the shop said no, its post ended before
the shop answered, or the shop was disabled; an expired one, when the shop never answered.
The shop's "held today" counts a hold once, when the shop puts it aside: accepted, or
collected straight from pending; never what was only asked for (anyone could ask and
cancel to inflate a shop's screen).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from schemas.holds import OPEN_STATUSES, EndReason, HoldStatus
from schemas.limits import HOLD_CODE_ALPHABET, HOLD_CODE_LEN

__all__ = ["ACTIONS", "ENDINGS", "END_REASONS", "HELD_FROM", "Action", "code_from",
           "hold_expires_at", "left_of", "releases", "typed_code"]

Action = Literal["accept", "decline", "collected", "cancel", "expire", "post_ended",
                 "shop_disabled"]

# Each action: the statuses it applies to, and the status it leaves.
ACTIONS: dict[Action, tuple[tuple[HoldStatus, ...], HoldStatus]] = {
    "accept": (("pending",), "accepted"),
    "collected": (OPEN_STATUSES, "collected"),
    "decline": (OPEN_STATUSES, "declined"),
    "cancel": (OPEN_STATUSES, "cancelled"),
    "expire": (OPEN_STATUSES, "expired"),
    # A post withdrawn or expired: what the shop had not answered is declined; what it
    # accepted is still kept aside for the customer until its time.
    "post_ended": (("pending",), "declined"),
    # The shop was taken off Streetfeed (`streetfeed shops disable`): nobody can answer or
    # hand over what is open, accepted or not, so the passer-by must not walk there for it.
    "shop_disabled": (OPEN_STATUSES, "declined"),
}
ENDINGS: tuple[HoldStatus, ...] = ("declined", "collected", "expired", "cancelled")

# Why each action that declines does: the passer-by is told which.
# Each action that says why a hold ended: the reason, and the statuses it says it from
# (an accepted hold that expires was put aside and not collected: nothing to explain; a
# pending one expired because the shop never answered).
END_REASONS: dict[Action, tuple[EndReason, tuple[HoldStatus, ...]]] = {
    "decline": ("shop", OPEN_STATUSES),
    "post_ended": ("post_ended", ("pending",)),
    "shop_disabled": ("shop_disabled", OPEN_STATUSES),
    "expire": ("no_answer", ("pending",)),
}

# The statuses from which an action puts a hold aside, so that it counts in the shop's
# "held today" (storage.holds checks them in the change's script): an accepted hold then
# collected was counted at its accept.
HELD_FROM: dict[Action, tuple[HoldStatus, ...]] = {"accept": ("pending",),
                                                   "collected": ("pending",)}


def releases(status: HoldStatus) -> bool:
    """Whether a hold ending in `status` gives its unit back to the post."""
    return status in ("declined", "expired", "cancelled")


def left_of(quantity: int, taken: int) -> int:
    """Units a passer-by may still hold (never below 0: a quantity lowered under what is
    already held leaves those holds alone)."""
    return max(0, quantity - taken)


def hold_expires_at(now: datetime, minutes: int) -> datetime:
    return now + timedelta(minutes=minutes)


def code_from(entropy: bytes) -> str:
    """A code of HOLD_CODE_LEN characters from HOLD_CODE_ALPHABET, from random bytes (one
    byte per character, rejection-free: 256 % 25 = 6 makes the first 6 letters a little
    likelier, which a code unique among a shop's open holds does not mind)."""
    if len(entropy) < HOLD_CODE_LEN:
        raise ValueError(f"code_from needs {HOLD_CODE_LEN} bytes")
    return "".join(HOLD_CODE_ALPHABET[b % len(HOLD_CODE_ALPHABET)]
                   for b in entropy[:HOLD_CODE_LEN])


def typed_code(typed: str) -> str:
    """A code as typed or scanned at the till, case, spaces and dashes folded; "" when it
    cannot be a code. (The alphabet has no look-alikes, so none needs guessing.)"""
    folded = "".join(c for c in typed.upper() if not c.isspace() and c != "-")
    if len(folded) != HOLD_CODE_LEN or any(c not in HOLD_CODE_ALPHABET for c in folded):
        return ""
    return folded
