"""What a shop is, without storage: tokens, ids, the profile and summary shown of it.

Tokens are 256-bit random strings shown once; only their SHA-256 is stored
(a token has full entropy, so a salt or slow hash adds nothing) and it is
compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import secrets
import unicodedata
from collections.abc import Sequence
from datetime import date, datetime

from rules.clock import Clock
from rules.errors import InvalidInput
from rules.hours import is_time_zone
from rules.opening import effective_state, revisit_ts
from schemas.hours import OpeningOverride, ShopHours
from schemas.posts import ShopSummary
from schemas.shops import ShopProfile, ShopRecord

__all__ = ["hash_token", "new_shop_id", "new_token", "profile_of",
           "profile_valid_until", "slugify", "summary_of", "token_matches", "validate_hours"]


def new_token() -> str:
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_matches(token: str, token_hash: str) -> bool:
    return hmac.compare_digest(hash_token(token), token_hash)


def slugify(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")
    return slug[:40].strip("-") or "shop"


def new_shop_id(name: str) -> str:
    # Readable in URLs (/screen/{id}) and unguessable enough not to collide.
    return f"{slugify(name)}-{secrets.token_hex(3)}"


def profile_of(record: ShopRecord, clock: Clock | None = None,
               overrides: Sequence[OpeningOverride] = ()) -> ShopProfile:
    """The public profile; open_now and next_change at the clock's time, from the hours and
    the shop's own opening_change posts (`overrides`: storage.openings)."""
    state = effective_state(record.hours, overrides, clock.now()) if clock is not None else None
    return ShopProfile(id=record.id, name=record.name, category=record.category,
                       lat=record.lat, lon=record.lon, address=record.address,
                       open_now=state.open_now if state else None,
                       next_change=state.next_change if state else None,
                       timezone=record.hours.timezone if record.hours is not None else None,
                       holds=record.holds)


def profile_valid_until(record: ShopRecord, profile: ShopProfile,
                        overrides: Sequence[OpeningOverride], at: datetime) -> float:
    """The POSIX time until which `profile` (profile_of at `at`) stays what profile_of
    says, the record and overrides unchanged: its next_change; an override starting or
    ending (a shop without hours is open only while its own post says so, with no
    next_change); a day ahead for a shop closed past the hours' horizon; else never."""
    if profile.next_change is not None:
        until = profile.next_change.at.timestamp()
    elif record.hours is not None:  # closed past the horizon: look again tomorrow
        until = at.timestamp() + 86_400
    else:
        until = math.inf
    return min(until, revisit_ts(overrides, at.timestamp()) or math.inf)


def summary_of(record: ShopRecord, default_timezone: str | None = None) -> ShopSummary:
    """The shop as a post shows it; its zone is its hours' or else `default_timezone`."""
    timezone = record.hours.timezone if record.hours is not None else default_timezone
    return ShopSummary(id=record.id, name=record.name, category=record.category,
                       lat=record.lat, lon=record.lon, address=record.address,
                       timezone=timezone)


def validate_hours(hours: ShopHours) -> None:
    if not is_time_zone(hours.timezone):
        raise InvalidInput(f"unknown time zone {hours.timezone!r}: an IANA name such as "
                           "'Europe/Paris'", code="invalid_hours")
    seen: set[date] = set()
    for exception in hours.exceptions:
        # Two for one date (closed, and open all day) would leave one of them silently
        # ignored: which one is the shopkeeper's?
        if exception.date in seen:
            raise InvalidInput(f"two exceptions for {exception.date.isoformat()}: give each "
                               "date once", code="duplicate_exception_date")
        seen.add(exception.date)
    for ranges in [*hours.weekly.values(), *(e.ranges for e in hours.exceptions)]:
        for rng in ranges:
            if rng.open == rng.close:
                raise InvalidInput(f"empty range {rng.open}-{rng.close}", code="invalid_hours")
