"""Every Redis key name, in one place.

Keys of one region share the hash tag `{region}` so that each command (and each
Lua script) touches one Redis Cluster slot, while regions spread over shards.
"""

from __future__ import annotations

PREFIX = "sf"


def in_stream(region: str) -> str:
    """Raw posts as accepted by the API; durable; read by the enricher group."""
    return f"{PREFIX}:{{{region}}}:in"


def fsync_marker(region: str) -> str:
    """A counter written after a post when no replica took it, so that WAITAOF on a second
    connection covers the post (durability `replica-preferred`)."""
    return f"{PREFIX}:{{{region}}}:fsync-marker"


def feed_stream(region: str) -> str:
    """Enriched posts and tombstones in order; an entry id is a resume cursor."""
    return f"{PREFIX}:{{{region}}}:feed"


def dead_letter_stream(region: str) -> str:
    return f"{PREFIX}:{{{region}}}:dead"


def active_geo(region: str) -> str:
    """GEO set of live post ids by shop position."""
    return f"{PREFIX}:{{{region}}}:active"


def expiry_zset(region: str) -> str:
    """Live post ids scored by expiry (unix seconds): the scheduler's catch-up list."""
    return f"{PREFIX}:{{{region}}}:expiry"


def post(region: str, post_id: str) -> str:
    """The live post (hash: `json`, `feed_id`, `expires_at`, `shop_id`)."""
    return f"{PREFIX}:{{{region}}}:post:{post_id}"


def shop_posts(region: str, shop_id: str) -> str:
    """Set of a shop's live post ids (withdraw, disable)."""
    return f"{PREFIX}:{{{region}}}:shop-posts:{shop_id}"


def idempotency(region: str, shop_id: str, key: str) -> str:
    return f"{PREFIX}:{{{region}}}:idem:{shop_id}:{key}"


def hours_checked(region: str, shop_id: str) -> str:
    """Up to when the scheduler has turned this shop's hours into opening_change posts."""
    return f"{PREFIX}:{{{region}}}:hours-checked:{shop_id}"


def presence(region: str, gateway: str) -> str:
    """One gateway's watcher counts per small cell (numbers only), short-lived."""
    return f"{PREFIX}:{{{region}}}:presence:{gateway}"


def gateways(region: str) -> str:
    """Live gateways of a region, scored by their last stats flush (unix seconds)."""
    return f"{PREFIX}:{{{region}}}:gateways"


def reach(region: str, post_id: str) -> str:
    """Deliveries of a post so far (hash: phone, screen)."""
    return f"{PREFIX}:{{{region}}}:reach:{post_id}"


def session(session_hash: str) -> str:
    """A shopkeeper's console session, by the SHA-256 of its cookie."""
    return f"{PREFIX}:session:{session_hash}"


def rate(limit: str, subject: str, window: int) -> str:
    """One rate-limit counter: a limit, who it counts (shop id or hashed address), a minute."""
    return f"{PREFIX}:rl:{limit}:{subject}:{window}"


def salt(day: int) -> str:
    """The day's salt for hashing client addresses (never stored in clear)."""
    return f"{PREFIX}:salt:{day}"


def shop(shop_id: str) -> str:
    """A shop record (JSON of schemas.shops.ShopRecord)."""
    return f"{PREFIX}:shop:{shop_id}"


def shops_index() -> str:
    return f"{PREFIX}:shops"


def shops_version() -> str:
    """A counter moved by every shop write: web processes' shop lists (web.directory)
    know from one GET whether to look again."""
    return f"{PREFIX}:shops:version"


ENRICHER_GROUP = "enrichers"
