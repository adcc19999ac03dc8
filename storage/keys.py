"""Every Redis key name, in one place.

Keys of one region share the hash tag `{region}` so that each command (and each
Lua script) touches one Redis Cluster slot, while regions spread over shards.
"""

from __future__ import annotations

import hashlib

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


def enricher_beats(region: str) -> str:
    """Each enricher consumer's last try to read, scored by the server's time (ms): when a
    post waits, whether any enricher is at work (storage.inbox, rules.pipeline)."""
    return f"{PREFIX}:{{{region}}}:enricher-beats"


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


def withdrawn(region: str, post_id: str) -> str:
    """Set when a post is withdrawn, so a late redelivery or edit cannot bring it back."""
    return post(region, post_id) + ":gone"


def arq_queue() -> str:
    """arq's job queue (a sorted set, plus a key per job under arq's own prefix)."""
    return "sf:arq:queue"


def shop_posts(region: str, shop_id: str) -> str:
    """Set of a shop's live post ids (withdraw, disable)."""
    return f"{PREFIX}:{{{region}}}:shop-posts:{shop_id}"


def demo_posts(region: str, shop_id: str) -> str:
    """Hash of the posts the demo simulator made for a shop (post id -> JSON `kind`, `at`): it
    withdraws only these, never a shopkeeper's, also after a restart on the same data."""
    return f"{PREFIX}:{{{region}}}:demo-posts:{shop_id}"


def idempotency(region: str, shop_id: str, key: str) -> str:
    return f"{PREFIX}:{{{region}}}:idem:{shop_id}:{key}"


def hours_checked(region: str, shop_id: str) -> str:
    """Up to when the scheduler has turned this shop's hours into opening_change posts."""
    return f"{PREFIX}:{{{region}}}:hours-checked:{shop_id}"


def openings(region: str, shop_id: str) -> str:
    """Hash: the shop's own opening_change posts as overrides of its hours (post id -> JSON of
    schemas.hours.OpeningOverride), written by the live index's scripts with the post, kept a
    while after they end so the scheduler sees the end (storage.openings)."""
    return f"{PREFIX}:{{{region}}}:openings:{shop_id}"


def opening_shops(region: str) -> str:
    """Set of the shops of a region that have an `openings` hash."""
    return f"{PREFIX}:{{{region}}}:opening-shops"


def openings_version(region: str) -> str:
    """A counter moved by every change to a region's `openings`: shop lists look again."""
    return f"{PREFIX}:{{{region}}}:openings-version"


def republished(region: str, shop_id: str) -> str:
    """When a shop's live posts were last republished for a profile change (ms), expiring
    after the republish interval: while it exists, another change waits (services.republish)."""
    return f"{PREFIX}:{{{region}}}:republished:{shop_id}"


def republish_due(region: str) -> str:
    """ZSET: shops with a profile change not yet republished, scored by when it may go (ms)."""
    return f"{PREFIX}:{{{region}}}:republish-due"


def republish_claims(region: str) -> str:
    """ZSET: shops being republished, scored by when the claim lapses (ms) if its process dies."""
    return f"{PREFIX}:{{{region}}}:republish-claims"


def presence_channel(region: str) -> str:
    """A Pub/Sub channel, not a key: gateways publish their watcher counts per presence cell
    on it once a second (schemas.presence.PresenceReport). Pub/Sub never enters the keyspace,
    so presence is in no key, no AOF and no snapshot."""
    return f"{PREFIX}:{{{region}}}:presence"


def reach(region: str, post_id: str) -> str:
    """Deliveries of a post so far (hash: phone, screen)."""
    return f"{PREFIX}:{{{region}}}:reach:{post_id}"


def session(session_hash: str) -> str:
    """A shopkeeper's console session, by the SHA-256 of its cookie."""
    return f"{PREFIX}:session:{session_hash}"


def signin_link(code_hash: str) -> str:
    """A one-time console sign-in link (hash: `shop_id`, `token_hash`, then `used`), by the
    SHA-256 of its code, expiring with the link (schemas.limits.SIGNIN_LINK_TTL_S)."""
    return f"{PREFIX}:signin-link:{code_hash}"


def rate(limit: str, subject: str, window: int) -> str:
    """One rate-limit counter: a limit, who it counts (shop id, or an address under the day's
    keyed hash: storage.ratelimit), a minute."""
    return f"{PREFIX}:rl:{limit}:{subject}:{window}"


def shop(shop_id: str) -> str:
    """A shop record (JSON of schemas.shops.ShopRecord)."""
    return f"{PREFIX}:shop:{shop_id}"


def shops_index() -> str:
    return f"{PREFIX}:shops"


def shops_version() -> str:
    """A counter moved by every shop write: web processes' shop lists (services.directory)
    know from one GET whether to look again."""
    return f"{PREFIX}:shops:version"


def shop_changes_channel() -> str:
    """A Pub/Sub channel, not a key: every shop write publishes the shop's id on it, so a
    process with a console of that shop open pushes the new profile (feed.console)."""
    return f"{PREFIX}:shops:changed"


ENRICHER_GROUP = "enrichers"


def media_records(region: str) -> str:
    """Hash: media id -> its MediaRecord (JSON), for the region's shops' kept photos."""
    return f"{PREFIX}:{{{region}}}:media"


def media_owner(region: str) -> str:
    """Hash: media id -> the shop that uploaded it (checked by a script, without JSON)."""
    return f"{PREFIX}:{{{region}}}:media-shop"


def media_keep(region: str) -> str:
    """Sorted set: media id scored by until when it is kept (unix seconds)."""
    return f"{PREFIX}:{{{region}}}:media-keep"


def media_bytes(region: str) -> str:
    """Hash: shop id -> total bytes of its kept photos (the quota)."""
    return f"{PREFIX}:{{{region}}}:media-bytes"


# Producers are shared by shops of every region (a mill supplies both sides of a region's
# border), so they are not a region's: all their keys share the one hash tag `{producers}`,
# hence one Cluster slot, so that creating-or-linking is one script (storage.producers).
_PRODUCERS = f"{PREFIX}:{{producers}}"


def producers_geo() -> str:
    """GEO set of every producer id ever created, listed or not: the register a layout
    upgrade reads (storage.producers.ProducerStore.upgrade)."""
    return f"{_PRODUCERS}:geo"


def producers_named(fold: str) -> str:
    """GEO set of every producer ever created under one folded name (rules.producers
    .fold_name), where a new name looks for its twin: only the same name can be the same
    producer, and two of one name are never within 2 km of each other, so the look costs
    a few members whatever was created nearby. Producers are never deleted, so its size is
    the compare-and-set version of a creation under that name. Keyed by a digest: the
    name is user text of up to 60 code points."""
    digest = hashlib.sha256(fold.encode()).hexdigest()[:32]
    return f"{_PRODUCERS}:named:{digest}"


def producers_listed_geo() -> str:
    """GEO set of the listed producers only (linked to at least one shop), the one the
    console's search reads: what was created then unlinked costs a search nothing. Kept
    in step with the links by the scripts that change them (storage.producers)."""
    return f"{_PRODUCERS}:listed-geo"


def producers_layout() -> str:
    """The layout the producer keys are in (storage.producers.LAYOUT), set once an upgrade
    has built the indexes a newer layout reads from the records."""
    return f"{_PRODUCERS}:layout"


def producer(producer_id: str) -> str:
    """A producer (hash: `json` (schemas.producers.ProducerRecord), `fold` and `fold_place`,
    its folded name and place for the scripts)."""
    return f"{_PRODUCERS}:producer:{producer_id}"


def producer_shops(producer_id: str) -> str:
    """Set of the shop ids linked to a producer; empty (absent): the producer is unlisted."""
    return f"{_PRODUCERS}:producer-shops:{producer_id}"


def shop_producers(shop_id: str) -> str:
    """Set of the producer ids a shop names (its side of the same links, in the same slot)."""
    return f"{_PRODUCERS}:shop:{shop_id}"


def media_deleting(region: str) -> str:
    """Hash: media id -> when the sweep forgot it (unix seconds), until its files are gone:
    an upload of the same photo meanwhile must not register files about to be deleted."""
    return f"{PREFIX}:{{{region}}}:media-deleting"


# Holds ("Hold it for me", storage.holds): a post's, so in its region's slot, and each
# hold's own keys there too, so that taking a unit and recording the hold is one script.


def hold(region: str, hold_id: str) -> str:
    """A hold (hash: `json`, schemas.holds.HoldRecord; `status`; `ended_at`), expiring
    HOLD_KEEP_AFTER_END_S after it ends."""
    return f"{PREFIX}:{{{region}}}:hold:{hold_id}"


def hold_stock(region: str, post_id: str) -> str:
    """A post's units to hold (hash: `quantity` and `minutes` as the post offers them,
    `taken` by open or collected holds): written by the enricher as it publishes the post,
    gone with the post."""
    return f"{PREFIX}:{{{region}}}:hold-stock:{post_id}"


def shop_holds(region: str, shop_id: str) -> str:
    """ZSET of a shop's open holds, scored by when they expire (unix seconds)."""
    return f"{PREFIX}:{{{region}}}:shop-holds:{shop_id}"


def shop_hold_codes(region: str, shop_id: str) -> str:
    """SET of the codes of a shop's open holds: a code names one open hold at the till."""
    return f"{PREFIX}:{{{region}}}:hold-codes:{shop_id}"


def post_holds(region: str, post_id: str) -> str:
    """SET of a live post's open holds: those to decline when it ends."""
    return f"{PREFIX}:{{{region}}}:post-holds:{post_id}"


def holds_due(region: str) -> str:
    """ZSET of every open hold by when it expires: the scheduler's catch-up sweep."""
    return f"{PREFIX}:{{{region}}}:holds-due"


def address_holds(region: str, address: str) -> str:
    """SET of the open holds asked from one address (its day's keyed hash, never in
    clear): what caps open holds per address."""
    return f"{PREFIX}:{{{region}}}:address-holds:{address}"


def address_hold_times(region: str, address: str) -> str:
    """ZSET of the holds one address took (its day's keyed hash), scored by when: what
    caps holds per address over a sliding hour."""
    return f"{PREFIX}:{{{region}}}:address-hold-times:{address}"


def holds_today(region: str, shop_id: str, day: str) -> str:
    """Holds a shop put aside on `day` (its local date; counted when accepted, or collected
    straight from pending): the screen's "3 held today"."""
    return f"{PREFIX}:{{{region}}}:holds-today:{shop_id}:{day}"


# --- Alerts for followed shops (storage.push) ------------------------------------------
# One hash tag of their own, `{push}`: a subscription follows shops of any region, and each
# step (subscribe, follow, queue, claim, send) is one script over one slot. A subscription
# is ~600 bytes; a shard carries millions.
PUSHER_GROUP = "pushers"
PUSH_PREFIX = f"{PREFIX}:{{push}}:"


def push_subscription(sub_id: str) -> str:
    """STRING: the `PushRecord` JSON; expires when unused (settings.push_subscription_ttl_s,
    refreshed by PUT)."""
    return f"{PUSH_PREFIX}sub:{sub_id}"


def push_endpoint(endpoint: str) -> str:
    """STRING: the subscription id of a push endpoint, keyed by the endpoint's SHA-256 (a
    second subscribe of one browser replaces its subscription; the URL itself, a
    capability, is only in the record)."""
    digest = hashlib.sha256(endpoint.encode()).hexdigest()[:32]
    return f"{PUSH_PREFIX}endpoint:{digest}"


def push_shop(shop_id: str) -> str:
    """SET of the subscriptions following a shop (members of expired ones are dropped when
    the pusher meets them)."""
    return f"{PUSH_PREFIX}shop:{shop_id}"


def push_waiting(sub_id: str) -> str:
    """HASH post id -> `Waiting` JSON: the subscription's alerts waiting their turn."""
    return f"{PUSH_PREFIX}waiting:{sub_id}"


def push_sent(sub_id: str) -> str:
    """ZSET `<shop id> <post id>` -> when alerted: the limits' memory, and what makes a
    post alert a subscription once."""
    return f"{PUSH_PREFIX}sent:{sub_id}"


def push_due() -> str:
    """ZSET subscription id -> when the pusher should look at it next."""
    return f"{PUSH_PREFIX}due"
