"""Content policy for posts: pure checks, run at the API edge and again in the enricher.

Size limits are in the schemas; this adds what a schema cannot say: no markup
or script, a bounded number of links, no control characters, a title that is
more than blanks, and the deployment's own word list.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from schemas.posts import FlashOfferIn, OpeningChangeIn, PostIn
from streetfeed.settings import FLASH_OFFER_MAX_AHEAD_S, Settings

_MARKUP = re.compile(r"<\s*/?\s*(script|iframe|object|embed|style|svg|img|a)\b|javascript:|"
                     r"\bon[a-z]+\s*=", re.IGNORECASE)
_LINK = re.compile(r"\bhttps?://|\bwww\.", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# An opening change announces the near future; a week covers "closed until Monday".
OPENING_UNTIL_MAX_AHEAD_S = 7 * 24 * 3600


@dataclass(frozen=True, slots=True)
class Rejection:
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class Policy:
    max_links: int = 1
    banned_words: frozenset[str] = frozenset()

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        return cls(max_links=settings.moderation_max_links,
                   banned_words=frozenset(w.lower() for w in settings.moderation_banned_words))


def check_post(post: PostIn, now: datetime, policy: Policy) -> Rejection | None:
    if not post.title.strip():
        return Rejection("invalid_title", "title must contain more than blanks")
    texts: Iterable[str] = (post.title, post.text, *getattr(post, "tags", ()))
    for text in texts:
        if _CONTROL.search(text):
            return Rejection("control_characters", "text contains control characters")
        if _MARKUP.search(text):
            return Rejection("markup_not_allowed", "HTML markup and scripts are not allowed")
    links = len(_LINK.findall(post.title)) + len(_LINK.findall(post.text))
    if links > policy.max_links:
        return Rejection("too_many_links", f"at most {policy.max_links} link(s) per post")
    if policy.banned_words:
        words = set(re.findall(r"\w+", f"{post.title} {post.text}".lower()))
        if words & policy.banned_words:
            return Rejection("content_rejected",
                             "the post contains words this street does not allow")
    if isinstance(post, FlashOfferIn):
        if post.ends_at <= now:
            return Rejection("ends_at_in_past", "ends_at must be in the future")
        if post.ends_at > now + timedelta(seconds=FLASH_OFFER_MAX_AHEAD_S):
            return Rejection("ends_at_too_far", "ends_at must be at most 24 hours ahead")
    if isinstance(post, OpeningChangeIn) and post.until is not None:
        if post.until <= now:
            return Rejection("until_in_past", "until must be in the future")
        if post.until > now + timedelta(seconds=OPENING_UNTIL_MAX_AHEAD_S):
            return Rejection("until_too_far", "until must be at most 7 days ahead")
    return None
