"""GET /api/v1/shops: every active shop's public profile, a page at a time, from a cache.

It sits beside the data path, not on it: the gateway's event loop also writes every
live frame, and computing the opening state of each shop there on every request
(~110 us a shop with weekly hours: decode, then intervals over the coming week) let
four clients listing 3,000 shops push other users' latency from 3 ms to 315 ms.

So each web process keeps the profiles encoded, one per shop, and a request only
slices and joins them. A profile is computed again when its record changes (a counter,
keys.shops_version(), moves on every shop write: one GET per request says whether to
look), when the shop's own opening_change posts change (each region's
keys.openings_version(), read in the same round trip) or when its opening state is due
to change (its next_change, or an override starting or ending); a full re-read of
the records (compared as bytes, so unchanged shops cost nothing) every
`shops_cache_max_age_s` covers a counter that went back (Redis restored). The
computing runs in a worker thread, so the loop keeps writing frames meanwhile.

Pages are in shop id order; a page's cursor is its last id (keyset pagination), so a
shop added or removed during a walk neither repeats nor shifts another one.
"""

from __future__ import annotations

import asyncio
import bisect
import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

import msgspec
from redis.asyncio import Redis

from rules.clock import Clock, ManualClock
from rules.shops import profile_of, profile_valid_until
from schemas.hours import OpeningOverride
from schemas.shops import ShopRecord
from storage import keys, openings
from storage.redis_conn import async_reply, get_many
from storage.shops import decode_record

__all__ = ["ShopDirectory"]

_encode = msgspec.json.Encoder().encode
_UNSEEN = object()  # no version read yet: the first request loads


@dataclass(frozen=True, slots=True)
class _Entry:
    raw: bytes  # the stored record, to tell a changed one by comparing bytes
    record: ShopRecord | None  # None: undecodable, left out of the list
    overrides: tuple[OpeningOverride, ...]  # its own opening_change posts (storage.openings)
    profile: bytes | None  # encoded ShopProfile; None for a disabled shop
    valid_until: float  # POSIX time the opening state may change; inf without hours


_Todo = tuple[str, bytes, ShopRecord | None, tuple[OpeningOverride, ...]]


def _compute(items: list[_Todo], at: datetime) -> list[_Entry]:
    """Profiles of the given shops at `at` (pure CPU: run in a worker thread)."""
    clock = ManualClock(at)
    out: list[_Entry] = []
    for _, raw, record, overrides in items:
        if record is None:
            try:
                record = decode_record(raw)
            except (msgspec.DecodeError, msgspec.ValidationError):
                out.append(_Entry(raw, None, overrides, None, math.inf))
                continue
        if record.disabled:
            out.append(_Entry(raw, record, overrides, None, math.inf))
            continue
        profile = profile_of(record, clock, overrides)
        valid_until = profile_valid_until(record, profile, overrides, at)
        out.append(_Entry(raw, record, overrides, _encode(profile), valid_until))
    return out


class ShopDirectory:
    """One per web process (AppState.shops)."""

    def __init__(self, redis: Redis, clock: Clock, *, max_age_s: float,
                 regions: Sequence[str] = ("main",)) -> None:
        self.redis = redis
        self.clock = clock
        self.max_age_s = max_age_s
        self.regions = list(regions)
        self._entries: dict[str, _Entry] = {}
        self._ids: list[str] = []  # listed shops (active, decodable), sorted
        self._version: object = _UNSEEN
        self._loaded_at = -math.inf
        self._next_due = math.inf  # the earliest valid_until
        self._lock = asyncio.Lock()
        # Profiles computed since start: the work requests cost (tests and docs read it).
        self.computed = 0

    async def page(self, after: str | None, limit: int) -> tuple[list[bytes], str | None]:
        """Up to `limit` encoded profiles of shops whose id sorts after `after`, and the
        cursor of the next page (None on the last)."""
        await self._refresh()
        start = bisect.bisect_right(self._ids, after) if after is not None else 0
        ids = self._ids[start:start + limit]
        more = start + limit < len(self._ids)
        profiles = [p for p in (self._entries[i].profile for i in ids) if p is not None]
        return profiles, ids[-1] if more and ids else None

    def _stale(self, version: object, now: float) -> bool:
        return (version != self._version or now >= self._next_due
                or now >= self._loaded_at + self.max_age_s)

    async def _versions(self) -> object:
        """The shop records' counter and each region's openings counter, in one round trip."""
        return tuple(await get_many(self.redis, [keys.shops_version(), *(
            keys.openings_version(r) for r in self.regions)]))

    async def _refresh(self) -> None:
        version = await self._versions()
        if not self._stale(version, self.clock.now().timestamp()):
            return
        async with self._lock:  # one refresh at a time; the others wait, then find it done
            version = await self._versions()
            at = self.clock.now()
            now = at.timestamp()
            if not self._stale(version, now):
                return
            if version != self._version or now >= self._loaded_at + self.max_age_s:
                await self._reload(at)
                self._version = version
                self._loaded_at = now
            else:
                due = [(i, e.raw, e.record, e.overrides) for i, e in self._entries.items()
                       if e.valid_until <= now]
                await self._apply(due, at)

    async def _reload(self, at: datetime) -> None:
        """Read every record and override; compute the profiles of those new or changed, or
        due."""
        ids = sorted(i.decode() for i in await async_reply(
            self.redis.smembers(keys.shops_index())))
        raws = await get_many(self.redis, [keys.shop(i) for i in ids])
        overrides: dict[str, list[OpeningOverride]] = {}
        for region in self.regions:
            overrides.update(await openings.of_region(self.redis, region))
        now = at.timestamp()
        present = {i: raw for i, raw in zip(ids, raws, strict=True) if raw is not None}
        todo: list[_Todo] = []
        for shop_id, raw in present.items():
            entry = self._entries.get(shop_id)
            own = tuple(overrides.get(shop_id, ()))
            if entry is None or entry.raw != raw:
                todo.append((shop_id, raw, None, own))
            elif entry.overrides != own or entry.valid_until <= now:
                todo.append((shop_id, raw, entry.record, own))
        await self._apply(todo, at, keep=present.keys())

    async def _apply(self, todo: list[_Todo], at: datetime,
                     keep: Collection[str] | None = None) -> None:
        """Compute `todo`, then swap the new state in at once: requests served while the
        thread computes read the old one whole (`keep`: the shops still there)."""
        computed = await asyncio.to_thread(_compute, todo, at) if todo else []
        self.computed += len(todo)
        entries = dict(self._entries) if keep is None else {
            i: e for i, e in self._entries.items() if i in keep}
        for (shop_id, _, _, _), entry in zip(todo, computed, strict=True):
            entries[shop_id] = entry
        self._entries = entries
        self._ids = sorted(i for i, e in entries.items() if e.profile is not None)
        self._next_due = min((e.valid_until for e in self._entries.values()), default=math.inf)
