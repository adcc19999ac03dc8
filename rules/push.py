"""Good manners of alerts for followed shops (DESIGN.md section 9), and what an alert says.

Per subscription: at most one alert per shop per hour and PUSH_PER_DAY over any sliding
24 hours; with quiet hours (the default) nothing from 21:00 to 08:00 in the subscription's
time zone. What cannot go now waits and goes once allowed, flash offers first, then the
soonest to end; what ended meanwhile (or ends within PUSH_MIN_TTL_S) is dropped. Pure: the
caller passes the time, what waits and what was sent (workers.pusher, tested directly with
a controlled clock in tests/test_push_rules.py).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import msgspec

from schemas.limits import (
    PUSH_DAY_S,
    PUSH_MIN_TTL_S,
    PUSH_PER_DAY,
    PUSH_PLAINTEXT_MAX,
    PUSH_QUIET_FROM_HOUR,
    PUSH_QUIET_UNTIL_HOUR,
    PUSH_SHOP_INTERVAL_S,
)
from schemas.push import PushMessage, Waiting

__all__ = ["Plan", "alert_body", "in_quiet_hours", "plan", "quiet_until", "retry_delay",
           "topic_for", "ttl_for", "urgency_for"]

# Backoff after a 429, a 5xx or no answer: doubling from RETRY_BASE_S up to RETRY_CAP_S,
# or the push service's Retry-After (bounded by the same cap), until the post ends. No
# count of sends ends it sooner: five gave up after 16 s, so a push service's short outage
# lost every alert sent during it; a post lives at most a day, which bounds the tries
# (about 150 at the cap).
RETRY_BASE_S = 1.0
RETRY_CAP_S = 600.0
_ELLIPSIS = "…"
_decode = msgspec.json.Decoder(dict[str, Any]).decode
_encode = msgspec.json.Encoder().encode


@dataclass(frozen=True, slots=True)
class Plan:
    """What to do for one subscription now: `send` one alert (or none), forget `dropped`
    (ended, or given up), look again at `next_ts` (None: nothing waits)."""

    send: Waiting | None
    dropped: tuple[Waiting, ...]
    next_ts: float | None


def in_quiet_hours(when: datetime, zone: str) -> bool:
    hour = when.astimezone(ZoneInfo(zone)).hour
    return hour >= PUSH_QUIET_FROM_HOUR or hour < PUSH_QUIET_UNTIL_HOUR


def quiet_until(when: datetime, zone: str) -> datetime:
    """`when` if it is outside quiet hours, else the 08:00 that ends them (local, so DST
    moves it with the clocks)."""
    if not in_quiet_hours(when, zone):
        return when
    tz = ZoneInfo(zone)
    local = when.astimezone(tz)
    day = local.date() + timedelta(days=1 if local.hour >= PUSH_QUIET_FROM_HOUR else 0)
    return datetime.combine(day, time(PUSH_QUIET_UNTIL_HOUR), tzinfo=tz).astimezone(UTC)


def plan(now: datetime, waiting: Sequence[Waiting], sent: Sequence[tuple[str, float]], *,
         quiet_hours: bool, zone: str) -> Plan:
    """`waiting`: the subscription's posts not alerted yet; `sent`: (shop id, when) of its
    alerts (older than a day are ignored)."""
    now_ts = now.timestamp()
    dropped = tuple(w for w in waiting if w.expires_ts - now_ts < PUSH_MIN_TTL_S)
    live = [w for w in waiting if w not in dropped]
    if not live:
        return Plan(None, dropped, None)
    recent = sorted(ts for _, ts in sent if ts > now_ts - PUSH_DAY_S)
    # Past the daily number, the next may go when enough of the day's have left the window.
    day_free = (recent[len(recent) - PUSH_PER_DAY] + PUSH_DAY_S
                if len(recent) >= PUSH_PER_DAY else now_ts)
    last_of_shop: dict[str, float] = {}
    for shop_id, ts in sent:
        if ts > last_of_shop.get(shop_id, float("-inf")):
            last_of_shop[shop_id] = ts

    def ready_at(w: Waiting) -> float:
        at = max(now_ts, day_free, w.not_before_ts,
                 last_of_shop.get(w.shop_id, float("-inf")) + PUSH_SHOP_INTERVAL_S)
        if quiet_hours:
            at = quiet_until(datetime.fromtimestamp(at, UTC), zone).timestamp()
        return at

    ready = [w for w in live if ready_at(w) <= now_ts]
    if ready:
        first = min(ready, key=lambda w: (w.kind != "flash_offer", w.expires_ts, w.queued_ts,
                                          w.post_id))
        return Plan(first, dropped, now_ts)
    # Also when the first waiting post ends, so that it is dropped rather than kept.
    return Plan(None, dropped, min(min(ready_at(w) for w in live),
                                   min(w.expires_ts - PUSH_MIN_TTL_S for w in live)))


def retry_delay(attempts: int, retry_after_s: float | None) -> float:
    """Seconds before send number `attempts + 1`, after `attempts` failures: the push
    service's Retry-After when it gave one, else doubling; both capped."""
    if retry_after_s is not None and retry_after_s >= 0:
        return min(RETRY_CAP_S, max(RETRY_BASE_S, retry_after_s))
    return min(RETRY_CAP_S, RETRY_BASE_S * 2.0 ** max(0, attempts - 1))


def ttl_for(expires_ts: float, now_ts: float) -> int:
    """RFC 8030 `TTL`: how long the push service may keep the alert for an offline device,
    never past the post's end (so an ended offer is never shown)."""
    return max(0, int(expires_ts - now_ts))


def topic_for(shop_id: str) -> str:
    """RFC 8030 `Topic` (at most 32 characters of the base64url alphabet): one per shop, so
    that a newer alert of a shop replaces one still undelivered. A digest: shop ids may be
    longer than 32 characters."""
    digest = hashlib.sha256(b"streetfeed shop " + shop_id.encode()).digest()[:24]
    return base64.urlsafe_b64encode(digest).decode()


def urgency_for(kind: str) -> str:
    """RFC 8030 `Urgency`: a flash offer is worth waking the device for; the rest can wait
    for the device's next ordinary wake-up."""
    return "high" if kind == "flash_offer" else "normal"


def alert_body(post_json: bytes, post_id: str) -> bytes:
    """The alert's JSON, `{"type":"post","post":{...},"url":"/?post=<id>"}`, within what
    one aes128gcm record of a push message can carry (PUSH_PLAINTEXT_MAX bytes): the post's
    `text` is shortened (with an ellipsis) until it fits, never the JSON cut; a post still
    too long without text (four photos with every width, three producers) goes without
    its `media`, then its `producers`. The shop's name, the title and the end stay."""
    url = f"/?post={post_id}"

    def body(post: dict[str, Any]) -> bytes:
        return _encode(PushMessage(post=msgspec.Raw(_encode(post)), url=url))

    whole = body(_decode(post_json))
    if len(whole) <= PUSH_PLAINTEXT_MAX:
        return whole
    post = _decode(post_json)
    text = str(post.get("text", ""))
    post["text"] = ""
    for extra in ("media", "producers"):
        if len(body(post)) <= PUSH_PLAINTEXT_MAX:
            break
        post.pop(extra, None)
    # The longest prefix of the text that fits (bisection on code points).
    low, high = 0, len(text)
    while low < high:
        mid = (low + high + 1) // 2
        post["text"] = text[:mid].rstrip() + _ELLIPSIS
        if len(body(post)) <= PUSH_PLAINTEXT_MAX:
            low = mid
        else:
            high = mid - 1
    post["text"] = text[:low].rstrip() + _ELLIPSIS if low else ""
    fitted = body(post)
    if len(fitted) > PUSH_PLAINTEXT_MAX:
        raise ValueError(f"post {post_id} does not fit a push message even without its text")
    return fitted
