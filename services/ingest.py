"""POST/PATCH -> `in` stream: validate, moderate, append.

A 202 is answered only once the raw post is in the region's `in` stream. An
edit is appended as a new raw entry with the same id: the enricher publishes
it in order after the original, and every client replaces the card.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar
from zoneinfo import ZoneInfo

import msgspec
from redis.asyncio import Redis

from rules.clock import Clock
from rules.errors import Conflict, InvalidInput, NotFound
from rules.expiry import expires_at
from rules.json_keys import refuse_duplicate_keys
from rules.moderation import Policy, check_post
from runtime.settings import Settings
from schemas.limits import IDEMPOTENCY_KEY_MAX, MEDIA_AFTER_POST_KEEP_S
from schemas.media import MediaOut
from schemas.posts import FlashOfferIn, NewArrivalIn, PostIn, PostPatch, RawPost
from schemas.shops import ShopRecord
from services.media import take_media
from services.producers import Producers
from storage import keys
from storage.inbox import Inbox, new_post_id
from storage.media_index import MediaIndexes
from storage.redis_conn import async_reply

__all__ = ["Ingest"]

_decode_post = msgspec.json.Decoder(PostIn).decode
_decode_patch = msgspec.json.Decoder(PostPatch).decode
_decode_raw = msgspec.json.Decoder(RawPost).decode
# Every field, defaults included, in one order: equal posts encode to equal bytes.
_canonical = msgspec.json.Encoder(order="sorted").encode


T = TypeVar("T")


def _decode(decode: Callable[[bytes], T], body: bytes) -> T:
    try:
        value = decode(body)
    except msgspec.ValidationError as exc:
        refuse_duplicate_keys(body)  # the cause, if a key is named twice
        raise InvalidInput(str(exc), code="invalid_post") from None
    except msgspec.DecodeError as exc:
        raise InvalidInput(f"malformed JSON: {exc}", code="malformed_json", status=400) from None
    refuse_duplicate_keys(body)  # valid JSON: msgspec read it
    return value


def decode_post(body: bytes) -> PostIn:
    return _decode(_decode_post, body)


def apply_patch(original: PostIn, patch: PostPatch) -> PostIn:
    """The original post with the patch's fields replaced, validated as a whole again."""
    merged = msgspec.to_builtins(original)
    merged.update({k: v for k, v in msgspec.to_builtins(patch).items()})
    merged["kind"] = type(original).__struct_config__.tag
    try:
        # convert() is typed to return Any when the target is a union, not a class.
        post: PostIn = msgspec.convert(merged, PostIn)
        return post
    except msgspec.ValidationError as exc:
        kind = merged["kind"]
        article = "an" if kind[0] in "aeiou" else "a"  # an opening_change, a flash_offer
        raise InvalidInput(f"this change does not fit {article} {kind}: {exc}",
                           code="invalid_post") from None


class Ingest:
    def __init__(self, redis: Redis, settings: Settings, clock: Clock, policy: Policy) -> None:
        self.redis = redis
        self.settings = settings
        self.clock = clock
        self.policy = policy
        self.tz = ZoneInfo(settings.timezone)
        self.producers = Producers(redis, clock, policy)
        self.media_indexes = MediaIndexes(redis)

    def _moderate(self, post: PostIn) -> None:
        rejection = check_post(post, self.clock.now(), self.policy)
        if rejection is not None:
            raise InvalidInput(rejection.message, code=rejection.code)

    async def _media(self, shop: ShopRecord, post: PostIn, posted_at: datetime) -> list[MediaOut]:
        """The post's photos, kept until its lifetime is over (the enricher's own rule) and
        a margin for pages still showing it."""
        if not isinstance(post, NewArrivalIn | FlashOfferIn) or not post.media_ids:
            return []
        keep_until = expires_at(post, posted_at, self.tz).timestamp() + MEDIA_AFTER_POST_KEEP_S
        return await take_media(self.media_indexes[shop.region], shop, post.media_ids,
                                keep_until)

    async def accept(self, shop: ShopRecord, body: bytes, idempotency_key: str | None) -> str:
        """Validate and append a new post; its public id."""
        post = decode_post(body)
        self._moderate(post)
        now = self.clock.now()
        media = await self._media(shop, post, now)
        producers = await self.producers.take(shop, post.producer_ids)
        raw = RawPost(id=new_post_id(), shop_id=shop.id, accepted_at=now, body=post,
                      media=media, producers=producers)
        inbox = Inbox(self.redis, shop.region, self.settings)
        if idempotency_key is None:
            await inbox.append(raw)
            return raw.id
        key_ok = 1 <= len(idempotency_key) <= IDEMPOTENCY_KEY_MAX
        if not key_ok or not idempotency_key.isprintable():
            raise InvalidInput(f"Idempotency-Key: expected 1..{IDEMPOTENCY_KEY_MAX} printable "
                               "characters", code="invalid_idempotency_key", status=400)
        # The post as decoded, not its bytes: a retry of the same JSON re-serialised (keys
        # reordered, spaces, a default spelled out) is the same post and gets the same id.
        fingerprint = hashlib.sha256(_canonical(post)).hexdigest()
        first_id, first_fingerprint = await inbox.append_once(raw, idempotency_key, fingerprint)
        # Keys stored before this rule held the hash of the bytes: honoured for their
        # remaining life (idempotency_ttl_s) rather than answered 409 across a deploy.
        if first_fingerprint not in (fingerprint, hashlib.sha256(body).hexdigest()):
            raise Conflict("this Idempotency-Key was used for a different post",
                           code="idempotency_key_reused")
        return first_id

    async def live_raw(self, shop: ShopRecord, post_id: str) -> RawPost:
        """The raw form of one of the shop's live posts (to edit or republish it)."""
        stored = await async_reply(
            self.redis.hmget(keys.post(shop.region, post_id), ["raw", "shop_id"]))
        if stored[0] is None or stored[1] != shop.id.encode():
            raise NotFound(f"no live post {post_id!r} for this shop", code="unknown_post")
        return _decode_raw(stored[0])

    async def edit(self, shop: ShopRecord, post_id: str, body: bytes) -> str:
        patch: PostPatch = _decode(_decode_patch, body)
        if not msgspec.to_builtins(patch):
            raise InvalidInput("nothing to change", code="empty_patch")
        original = await self.live_raw(shop, post_id)
        post = apply_patch(original.body, patch)
        self._moderate(post)
        posted_at = original.posted_at or original.accepted_at
        # Taken again even when the photos stay: an edit may move the post's end later.
        media = await self._media(shop, post, posted_at)
        # Resolved again only when the edit names them: a producer unlinked since the post
        # was made stays on it through an edit of its title.
        producers = (original.producers if patch.producer_ids is msgspec.UNSET
                     else await self.producers.take(shop, post.producer_ids))
        raw = RawPost(id=original.id, shop_id=original.shop_id, accepted_at=self.clock.now(),
                      body=post, edit=True, posted_at=posted_at, media=media,
                      producers=producers)
        await Inbox(self.redis, shop.region, self.settings).append(raw)
        return post_id
