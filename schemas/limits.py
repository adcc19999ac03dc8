"""The fixed limits of the public contract (DESIGN.md section 8) and of privacy.

Clients rely on them, so they are not settings; the formats in schemas/ declare them
(msgspec `Meta`, hence JSON Schema in /openapi.json) and the code checks against them
here. Everything a deployment may tune is in runtime/settings.py.
"""

from __future__ import annotations

__all__ = [
           "ADDRESS_MAX",
           "AUDIENCE_COUNT_MIN",
           "AUDIENCE_RADII_M",
           "CATEGORY_MAX",
           "FLASH_OFFER_MAX_AHEAD_S",
           "GEO_LAT_MAX",
           "HOLD_CODE_ALPHABET",
           "HOLD_CODE_LEN",
           "HOLD_KEEP_AFTER_END_S",
           "HOLD_MINUTES_MAX",
           "HOLD_MINUTES_MIN",
           "HOLD_NAME_MAX",
           "HOLD_QUANTITY_MAX",
           "IDEMPOTENCY_KEY_MAX",
           "MEDIA_AFTER_POST_KEEP_S",
           "MEDIA_ASPECT_MAX",
           "MEDIA_PER_POST_MAX",
           "MEDIA_PIXELS_MAX",
           "MEDIA_TYPES",
           "MEDIA_UNPOSTED_KEEP_S",
           "MEDIA_UPLOAD_MAX_BYTES",
           "MEDIA_WIDTHS",
           "MEDIA_WIDTH_MAX",
           "PRODUCERS_PER_POST_MAX",
           "PRODUCERS_PER_SHOP_MAX",
           "PRODUCER_NAME_MAX",
           "PRODUCER_PLACE_MAX",
           "PRODUCER_SAME_WITHIN_M",
           "PRODUCER_SEARCH_KM",
           "PRODUCER_SEARCH_MAX",
           "PRODUCER_SEARCH_Q_MAX",
           "PRODUCER_SEARCH_SCAN",
           "PUSH_DAY_S",
           "PUSH_ENDPOINT_MAX",
           "PUSH_MESSAGE_MAX",
           "PUSH_MIN_TTL_S",
           "PUSH_PER_DAY",
           "PUSH_PLAINTEXT_MAX",
           "PUSH_QUIET_FROM_HOUR",
           "PUSH_QUIET_UNTIL_HOUR",
           "PUSH_SHOPS_MAX",
           "PUSH_SHOP_INTERVAL_S",
           "PUSH_WAITING_MAX",
           "RADIUS_MAX_M",
           "SHOPS_PAGE_DEFAULT",
           "SHOPS_PAGE_MAX",
           "SHOP_NAME_MAX",
           "SIGNIN_CODE_BYTES",
           "SIGNIN_CODE_MAX",
           "SIGNIN_LINK_TTL_S",
           "TAGS_MAX",
           "TAG_MAX",
           "TEXT_MAX",
           "TITLE_MAX",
]

TITLE_MAX = 80
TEXT_MAX = 500
TAG_MAX = 24
TAGS_MAX = 8
RADIUS_MAX_M = 5_000
# Redis GEO indexes Web Mercator latitudes only: shops must lie within this.
GEO_LAT_MAX = 85.05112878
FLASH_OFFER_MAX_AHEAD_S = 24 * 3600
SHOP_NAME_MAX = 80
CATEGORY_MAX = 40
ADDRESS_MAX = 160
IDEMPOTENCY_KEY_MAX = 128
# GET /api/v1/shops pages (?limit=): what a client that asks nothing gets, and the most
# it may ask for (a page is this many encoded profiles, ~150 bytes each).
SHOPS_PAGE_DEFAULT = 100
SHOPS_PAGE_MAX = 500
# The console's audience (GET /api/v1/shops/{id}/stats), always around the shop's registered
# position: the radii it is counted within, none under 250 m (the privacy floor), and the count
# under which it is "fewer than AUDIENCE_COUNT_MIN", never a number. Not configurable: they
# are what stops a shop from cornering a passer-by with its counts (issue 12).
AUDIENCE_RADII_M = (250, 500, 1000, 2000)
AUDIENCE_COUNT_MIN = 5
# Presence is counted in cells of ~280 m (as wide as tall): every count a shop can read
# is a sum over whole cells, so no number of shops pooling their answers can place
# someone more finely than a cell, which is wider than the 250 m privacy floor (cold try
# of issue 12: twelve shop tokens pooled located a passer-by to 66 m with ~110 m cells).
PRESENCE_CELL_DEG = 0.0025
# A console sign-in link (`streetfeed shops link`, "Sign in on another device") works once,
# within this long; its code has this many random bytes (128 bits, 22 URL-safe characters:
# unguessable, and short enough for a QR a phone reads off a terminal). A code longer than
# SIGNIN_CODE_MAX characters is refused unread.
SIGNIN_LINK_TTL_S = 24 * 3600
SIGNIN_CODE_BYTES = 16
SIGNIN_CODE_MAX = 128
# Photos (DESIGN.md section 9). An upload is at most 10 MB (counted in MiB: a client that
# sends exactly 10,000,000 bytes is within it); more than 40 megapixels is refused from the
# header, before any pixel is decoded (a 40 MP RGBA frame is already 160 MB of memory).
# The stored image is re-encoded at these widths, never wider than the upload and never
# wider than MEDIA_WIDTH_MAX; a post carries at most MEDIA_PER_POST_MAX of them.
MEDIA_UPLOAD_MAX_BYTES = 10 * 1024 * 1024
MEDIA_PIXELS_MAX = 40_000_000
MEDIA_WIDTH_MAX = 1600
MEDIA_WIDTHS = (400, 800, MEDIA_WIDTH_MAX)
MEDIA_PER_POST_MAX = 4
# Long side over short side: a card shows a photo, not a 1x20,000 strip (which WebP, at
# most 16,383 px a side, could not even store once scaled to MEDIA_WIDTH_MAX).
MEDIA_ASPECT_MAX = 4
# The declared Content-Types accepted, each checked against the bytes' own signature
# (HEIC, as iPhones take photos, is sent as either of the last two).
MEDIA_TYPES = ("image/jpeg", "image/png", "image/webp", "image/heic", "image/heif")
# How long photos are kept (storage.media_index, swept by workers.media_sweep): one
# uploaded and not (yet) posted, a day (the shopkeeper may post it this evening); one in
# a post, until the post's lifetime is over, plus a margin for pages still showing it.
MEDIA_UNPOSTED_KEEP_S = 24 * 3600
MEDIA_AFTER_POST_KEEP_S = 3600
# Local producers (DESIGN.md section 9). A producer's name and place are 1-60 code points;
# a post names at most PRODUCERS_PER_POST_MAX of its shop's producers. Two producers of the
# same folded name (rules.producers.fold_name) at most PRODUCER_SAME_WITHIN_M apart are one
# (the boundary included: "within 2 km", as a feed radius includes its edge).
PRODUCER_NAME_MAX = 60
PRODUCER_PLACE_MAX = 60
PRODUCERS_PER_POST_MAX = 3
PRODUCER_SAME_WITHIN_M = 2_000
# Not in the contract, a bound on what one token can write: a shop links at most this many
# producers (a grocer with many suppliers names its main ones; each link is kept forever).
PRODUCERS_PER_SHOP_MAX = 50
# GET /api/v1/producers (the console's search-as-you-type, an extension): at most this many
# answers, and a query of at most this many code points.
PRODUCER_SEARCH_MAX = 20
PRODUCER_SEARCH_Q_MAX = 60
# ...among the listed producers this far from the point (the shop): a shop sells a cheese
# from a valley 200 km away, and a neighbour naming it again must find that record rather
# than create a twin by tapping a map 3 km off (a cold try of issue 16). STREETFEED_LOCAL_KM
# says what is "local", not what can be found.
PRODUCER_SEARCH_KM = 1_000
# The search reads at most this many listed producers, nearest first, and filters them by
# the query: one search costs the same however many producers exist. A query matching
# only producers farther than this many nearer listed ones finds nothing; naming the
# producer (POST .../producers) still links its twin, found by name whatever the count.
PRODUCER_SEARCH_SCAN = 500
# "Hold it for me" (DESIGN.md section 9). A post offers 1-50 units to hold, each kept
# 15-240 minutes; the passer-by gives a first name of 1-40 code points and gets a code of 4
# characters to say at the till, from an alphabet without look-alikes (no 0/O, 1/I/L, 5/S,
# 2/Z, 8/B) so that it is read aloud and typed without doubt. An ended hold is deleted this
# long after it ends (the passer-by's page can still say how it ended).
HOLD_QUANTITY_MAX = 50
HOLD_MINUTES_MIN = 15
HOLD_MINUTES_MAX = 240
HOLD_NAME_MAX = 40
HOLD_CODE_LEN = 4
HOLD_CODE_ALPHABET = "ACDEFGHJKMNPQRTUVWXY34679"
HOLD_KEEP_AFTER_END_S = 24 * 3600
# Alerts for followed shops (Web Push, DESIGN.md section 9). A subscription follows 1-50
# shops; its push service's endpoint is a URL of at most PUSH_ENDPOINT_MAX characters (the
# browsers' are ~200-500; bounded so that neither storage nor a log line can be flooded).
# Good manners: at most one alert per shop per PUSH_SHOP_INTERVAL_S and PUSH_PER_DAY over
# any sliding PUSH_DAY_S per subscription; with quiet hours (the default), nothing from
# PUSH_QUIET_FROM_HOUR to PUSH_QUIET_UNTIL_HOUR local time. A push message body is at most
# PUSH_MESSAGE_MAX bytes once encrypted (RFC 8030 section 7.2: what every push service must
# take); aes128gcm adds a header of 86 bytes (salt, record size, the 65-byte key id) and a
# padding delimiter and tag of 17 to the JSON. An alert is not sent for a post ending within
# PUSH_MIN_TTL_S: it would vanish as it shows.
PUSH_SHOPS_MAX = 50
PUSH_ENDPOINT_MAX = 1024
PUSH_SHOP_INTERVAL_S = 3600
PUSH_PER_DAY = 5
PUSH_DAY_S = 24 * 3600
PUSH_QUIET_FROM_HOUR = 21
PUSH_QUIET_UNTIL_HOUR = 8
PUSH_MESSAGE_MAX = 4096
PUSH_PLAINTEXT_MAX = PUSH_MESSAGE_MAX - 86 - 17
PUSH_MIN_TTL_S = 60
# Posts waiting for their turn, per subscription (the furthest to end go first past it).
PUSH_WAITING_MAX = 50
