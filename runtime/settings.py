"""One frozen settings object, read once from the environment and passed explicitly.

Every environment variable the product reads is named in `ENVIRONMENT` and decoded
to its field's type (msgspec, from the annotation; a few parsers for lists, files and
regions), and every limit a deployment may tune is a field here. The fixed limits of
the public contract are in schemas/limits.py.
"""

from __future__ import annotations

import hmac
import os
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal, get_args, get_origin, get_type_hints
from urllib.parse import urlsplit

import msgspec

from rules.errors import ConfigError
from rules.hours import is_time_zone
from rules.media_url import S3Location, parse_media_url
from rules.moderation import Policy
from rules.proxies import TrustedProxies
from rules.push_endpoint import parse_allowed_hosts
from rules.regions import REGION_NAME, Region, parse_regions

# /metrics without STREETFEED_METRICS_TOKEN: only to a direct connection from one of these
# (a Prometheus on the same host, the tests). Exact addresses, not all of 127.0.0.0/8.
METRICS_LOCAL_ADDRESSES = frozenset({"127.0.0.1", "::1", "::ffff:127.0.0.1"})
# What a 202 promises: in Redis with AOF (fsync every second); fsynced to the local AOF;
# received by a replica; received by a replica, else fsynced to the master's AOF.
DURABILITY_MODES = ("aof", "fsync", "replica", "replica-preferred")
# HTTP connections one address may hold open beside its feed sockets.
HTTP_CONNECTIONS_PER_ADDRESS = 100
# The deployment's secret, from which each day's key for hashing client addresses is derived
# (storage.ratelimit). `streetfeed up` hands its own to its children under this name.
SECRET_ENV = "STREETFEED_SECRET"
# The VAPID `sub` of a deployment that set neither STREETFEED_VAPID_SUBJECT nor an https
# STREETFEED_PUBLIC_URL (a developer's machine): a contact that reaches nobody.
DEFAULT_VAPID_SUBJECT = "mailto:push@streetfeed.invalid"
# A shorter feed retention is refused at start (see validate).
FEED_RETENTION_MIN_S = 60
# Shorter is refused at start: a guessable key would let addresses be brute-forced back.
SECRET_MIN_CHARS = 32


class Secret:
    """A value that must never be logged, printed or stored: its repr and str hide it, and
    only `reveal()` gives it, to the code that keys a hash with it or hands it to a child."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    @classmethod
    def generate(cls) -> Secret:
        """A process's own secret, when none is given: 256 random bits."""
        return cls(secrets.token_urlsafe(32))

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and hmac.compare_digest(self._value, other._value)

    def __hash__(self) -> int:
        return hash(Secret)


@dataclass(frozen=True, slots=True)
class Settings:
    redis_url: str | None = None
    # The Redis-compatible server binary `streetfeed up` starts when REDIS_URL is unset;
    # None: the bundled valkey-server, else one on PATH (streetfeed/embedded.py).
    redis_server: str | None = None
    # A Redis Cluster node: every component then runs against the cluster.
    redis_cluster_url: str | None = None
    # arq's queue (a sorted set plus job keys, not cluster-aware) may live apart.
    arq_redis_url: str | None = None
    data_dir: Path = Path("var")
    # Where processed photos are kept (storage.media.media_store_for): None, the data dir's media/;
    # else an S3-compatible bucket (STREETFEED_MEDIA_URL=s3://bucket?endpoint=...), which
    # web processes on several hosts share. Its credentials are not settings: the S3 client
    # reads the standard AWS environment itself (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
    # AWS_SESSION_TOKEN...), so they never pass through settings or a log.
    media_bucket: S3Location | None = None
    # The default region, and the one used when no regions are configured.
    region: str = "main"
    # Named bounding boxes (rules.regions); empty: one region covering the world.
    regions: tuple[Region, ...] = ()
    timezone: str = "Europe/Paris"
    host: str = "127.0.0.1"
    port: int = 8000

    # What a 202 promises (storage.inbox.Inbox._durably), one of DURABILITY_MODES.
    durability: str = "aof"
    # How long a 202 waits for a replica (WAIT) or an fsync (WAITAOF), each.
    durability_timeout_ms: int = 2_000

    max_body_bytes: int = 8 * 1024
    # Opening hours may list a year of dated exceptions.
    max_hours_body_bytes: int = 64 * 1024
    max_ws_frame_bytes: int = 4 * 1024
    # Feed retention (docs/architecture.md, "Feed retention by age, capped by count"): a
    # region's `feed` stream keeps the entries of the last feed_retention_s
    # (STREETFEED_FEED_RETENTION_S; a day: a screen switched off overnight resumes, and
    # the end of every day's posts at midnight leaves an older cursor nothing worth
    # replaying), and at most feed_maxlen (STREETFEED_FEED_MAXLEN) of them, a cap for a
    # runaway region. A resume that needs an entry past either gets `reset` and a fresh
    # snapshot.
    feed_retention_s: int = 24 * 3600
    feed_maxlen: int = 100_000
    idempotency_ttl_s: int = 24 * 3600
    # A withdrawn post's id is remembered this long so that a late redelivery of its raw
    # entry cannot bring it back; longer than any post can live.
    withdrawn_ttl_s: int = 48 * 3600
    # A post's reach counters (the console's "seen by") outlive the post by this much.
    reach_ttl_s: int = 3 * 24 * 3600
    # A console session (its cookie and its record in Redis).
    session_ttl_s: int = 30 * 24 * 3600
    # /healthz and /readyz, and a screen page asking whether its shop exists, answer within
    # this even when Redis stalls (a probe must not time out).
    probe_timeout_s: float = 2.0
    snapshot_limit: int = 200
    # A resume replays at most this many feed entries (STREETFEED_REPLAY_MAX); further back
    # gets `reset` and a fresh snapshot (at most snapshot_limit posts) instead. Entries
    # read, not frames sent: the cost of a handshake is reading the stream. Without it a
    # day-old cursor replayed 97,994 frames (52 MB) in one handshake.
    replay_max: int = 500
    # GET /api/v1/shops serves cached profiles (services.directory): re-read every record at
    # least this often, besides on every shop write and each opening change.
    shops_cache_max_age_s: float = 60.0

    enricher_batch: int = 100
    enricher_block_ms: int = 2_000
    # An entry pending this long on a consumer is presumed abandoned (dead consumer).
    enricher_claim_idle_ms: int = 15_000
    enricher_max_attempts: int = 5
    # How often the enricher trims the in stream below what is still pending.
    enricher_trim_interval_s: float = 60.0
    # Entries kept in a region's dead-letter stream (the oldest go first).
    dead_letter_maxlen: int = 10_000

    # A read that has not come back within this (plus reader_stall_grace_s) is
    # stalled: sockets must hear of it within 5 s (DESIGN.md section 9).
    gateway_block_ms: int = 2_000
    reader_stall_grace_s: float = 1.5
    # A region nobody has watched for this long is no longer read.
    reader_idle_stop_s: float = 300.0
    # A resume on a process whose reader is behind the client's cursor waits this long
    # for it; a socket waits this long for the reader's first position before a snapshot.
    gateway_resume_wait_s: float = 2.0
    gateway_position_wait_s: float = 5.0
    # Frames held for a socket while its snapshot is being read; past this it is dropped
    # (resumable) like a socket that lags.
    socket_pending_max: int = 5_000
    # Posts remembered as dispatched (id, content, when): enough to recognise a post that
    # the enricher publishes again after Redis lost its last second of writes in a crash.
    recent_posts_max: int = 5_000
    gateway_batch: int = 500
    # A socket whose unsent bytes exceed this is closed (resumable) instead of slowing others.
    gateway_socket_buffer_max: int = 256 * 1024
    gateway_ping_interval_s: float = 25.0
    # The web process's cyclic garbage collector (runtime/collector.py): what survives
    # start-up and each full collection is frozen, never walked again, so that a full
    # collection is short with 10,000 sockets open (docs/performance.md, "Garbage
    # collection and the tail"); everything is unfrozen this often, so that the next
    # full collection frees whatever a freeze caught that ended in a reference cycle.
    gc_freeze: bool = True
    gc_thaw_interval_s: float = 3600.0
    # ... and as soon as this many sockets have closed since a freeze caught open ones:
    # each may leave ~3-6 KiB frozen in its transport's reference cycle (docs/performance.md,
    # "Garbage collection and the tail"), so 10,000 bound that to some 30-60 MiB, for one
    # full collection of everything (~330 ms at 10,000 open sockets) per 10,000 closes.
    gc_thaw_after_closed: int = 10_000
    # Server-Sent Events (GET /api/v1/feed/stream, feed.sse): the `retry:` an EventSource
    # waits before reconnecting with its Last-Event-ID, and a stream's longest life (a
    # client that stops reading while nothing fills its buffer is cut off by this; one
    # that reads resumes at once, nothing lost).
    sse_retry_ms: int = 2_000
    sse_max_life_s: float = 600.0
    gateway_use_index: bool = True
    # Size of a geo cell in degrees of latitude (~550 m); longitude cells keep that width in metres.
    geo_cell_deg: float = 0.005

    # Where the passer-by page looks while it has no position of its own (GET /api/v1/config
    # `fallback`): the middle of the demo street (streetfeed/demo.py).
    fallback_centre: tuple[float, float] = (44.8370, -0.5735)
    # Map tiles for the passer-by map view; the page works without them.
    tile_url: str = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
    tile_attribution: str = "© OpenStreetMap contributors"
    # Where in-shop screens may be embedded (CSP frame-ancestors); other pages: nowhere.
    screen_frame_ancestors: str = "'none'"

    # Abuse limits (per minute, shared by all processes through Redis)...
    shop_posts_per_minute: int = 30
    # Photo uploads a shop makes per hour (each is up to a second of a core to process).
    shop_media_per_hour: int = 60
    # Photos processed at once per web process, each in a child process of its own
    # (services/image_pool.py): each may hold ~0.7 GB while a 40 MP photo is processed, and
    # the machine's cores also serve the sockets. More uploads wait their turn.
    media_workers: int = 2
    # What a shop's kept photos may weigh in all (MB of stored WebP; a photo is ~0.1-0.5 MB
    # in its three widths, and is kept a day unposted or for its post's lifetime).
    shop_media_quota_mb: int = 200
    # Local producers: a post is "local" (`local=1` on the feed) when it names a producer at
    # most this far from its shop (km, as the delivered `distance_km` says, one decimal); the
    # console's producer search looks this far around too.
    local_km: float = 100.0
    # "Hold it for me": holds one address may ask for per hour, and may have open at once
    # (pending or accepted) across every shop: a hold keeps an item off the shelf.
    holds_per_address_per_hour: int = 10
    open_holds_per_address: int = 3
    # One-time console sign-in links a shop makes from its console (each kept 24 h).
    signin_links_per_minute: int = 10
    address_requests_per_minute: int = 600
    address_sockets_per_minute: int = 120
    # ...and per process: open sockets from one address (NAT: phones share addresses).
    max_sockets_per_address: int = 500
    # A feed socket's `subscribe` moves (each a reset and a snapshot): at most one served
    # per interval (later ones folded into the latest), and past this many messages a
    # minute the socket is closed (1008 too_many_moves).
    move_interval_s: float = 1.0
    moves_per_minute: int = 60
    # Open TCP connections per process, whatever they are: below the 20,000 open files a
    # process may have, so that a flood is answered 503 instead of failing accept().
    max_connections: int = 15_000
    # A request head must arrive within this (from the connection, or from the previous
    # response); a body must not stall this long, nor trickle below the rate after it.
    head_timeout_s: float = 10.0
    body_idle_timeout_s: float = 10.0
    body_min_bytes_per_s: int = 1024
    # A keep-alive connection idle this long after a response is closed.
    keepalive_timeout_s: int = 5
    # A response the client stops reading (its buffer full, no progress) is dropped after
    # this: it held memory and a descriptor for ever (cold try: 2.8 MB per connection).
    write_stall_timeout_s: float = 30.0
    # A request head (request line and headers) past this is answered 431 and closed.
    max_head_bytes: int = 32 * 1024
    # Peers whose X-Forwarded-For / X-Forwarded-Proto are believed, for HTTP and feed
    # sockets alike (rules/proxies.py): addresses and networks (10.0.0.0/8). Their
    # own address is not capped per address (every client behind them shares it).
    trusted_proxies: tuple[str, ...] = ("127.0.0.1",)
    # WebSocket Origin allow-list; empty: same origin only (and clients sending none).
    allowed_origins: tuple[str, ...] = ()
    # A shop's profile change republishes its live posts (a frame each to every socket
    # nearby) at most once per this many seconds; later changes are folded into one.
    profile_republish_interval_s: float = 60.0
    # How often each web process looks for folded changes whose turn came (how much later
    # than the interval a card may show a change), and how many shops per region and look.
    republish_poll_s: float = 0.5
    republish_batch: int = 100

    # Where passers-by reach this deployment (QR codes): `https://host[:port]`, never
    # taken from a request's Host header. None: http://<host>:<port> this process serves.
    public_url: str | None = None
    # Bearer token for /metrics; None: /metrics answers only direct loopback requests
    # (METRICS_LOCAL_ADDRESSES). Kept out of repr: settings may be logged.
    metrics_token: str | None = field(default=None, repr=False)
    # Presence (people watching, per ~110 m cell) goes between processes over Pub/Sub, never
    # into the keyspace: each gateway publishes its counts this often; a process answering
    # the console drops a gateway silent for `presence_silence_s`, and stops listening to a
    # region no console asked about for `presence_idle_s`.
    presence_interval_s: float = 1.0
    presence_silence_s: float = 3.5
    presence_idle_s: float = 300.0

    # Keys the daily hash of client addresses (STREETFEED_SECRET). Processes that share rate
    # limits must share it; without one given, each process makes its own at start, and
    # `streetfeed up` hands its own to its children. Never in Redis, logs or files.
    secret: Secret = field(default_factory=Secret.generate, repr=False)

    # Content policy of this deployment (rules.moderation): links per post, banned words.
    moderation_max_links: int = 1
    moderation_banned_words: tuple[str, ...] = ()

    # /readyz turns 503 when more in-stream entries than this wait for an enricher.
    ready_max_lag: int = 1_000
    # A post waiting this long for an enricher (unread, or held past the claim delay)
    # means the enrichers are stuck: sockets are told `live: false` and /readyz is 503
    # (rules.pipeline). Posts are published within milliseconds when all is well.
    enricher_stall_s: float = 10.0

    # Log lines as JSON (one object per line) or as plain text for a terminal.
    log_format: Literal["json", "text"] = "json"

    # Alerts for followed shops (Web Push, DESIGN.md section 9; workers/pusher.py). The
    # VAPID key (RFC 8292) signing every push: STREETFEED_VAPID_PRIVATE_KEY (the raw 32-byte
    # P-256 scalar, base64url, as web-push tools print it), else one generated once in the
    # data dir (storage.vapid). Every web and pusher process of a deployment must use the
    # same: browsers subscribed with its public key. Never in a log.
    vapid_private_key: Secret | None = field(default=None, repr=False)
    # Who the push services may contact about our pushes (the JWT's `sub`): `mailto:` or
    # `https:`. None: STREETFEED_PUBLIC_URL when it is https, else a placeholder address.
    vapid_subject: str | None = None
    # Push endpoints on other hosts than the well-known push services (rules.push_endpoint):
    # `host:port` entries, `http` allowed there (a test's receiver, a self-hosted service).
    push_allowed_hosts: tuple[str, ...] = ()
    # A subscription not changed (PUT) for this many days expires with all it kept.
    push_subscription_days: int = 90
    # Subscriptions made (POST) per address (its day's keyed hash) per hour.
    push_subscribes_per_address_per_hour: int = 20
    # One request to a push service: each of connect, write and read within this; at most
    # push_concurrency at once per pusher process; a due subscription is leased to one
    # pusher for push_lease_s (another takes it over after that if that one died).
    push_timeout_s: float = 5.0
    push_concurrency: int = 32
    push_lease_s: float = 30.0
    # How often the pusher looks for subscriptions whose alerts may go now.
    push_poll_s: float = 0.5
    # The pushers' group on each feed stream: entries read at once, how long a read blocks,
    # and after how long an entry left pending by a dead pusher is taken over.
    pusher_batch: int = 100
    pusher_block_ms: int = 2_000
    pusher_claim_idle_ms: int = 15_000

    demo: bool = True
    demo_interval_s: float = 4.0

    def with_(self, **changes: object) -> Settings:
        # mypy cannot match `**object` to each field's type; callers name fields directly.
        return replace(self, **changes)  # type: ignore[arg-type]

    def child_environment(self) -> dict[str, str]:
        """What a child process (`streetfeed up`'s enricher, scheduler and pusher) needs
        beside this one's environment to load the same settings: the Redis URL resolved
        here (the embedded server's), the secret, so every process keys client addresses
        alike, and the data dir (resolved), so that its files are the same (the VAPID key
        the pusher signs with, the photos the scheduler sweeps)."""
        env = {SECRET_ENV: self.secret.reveal(),
               "STREETFEED_DATA_DIR": str(Path(self.data_dir).resolve())}
        if self.redis_url:
            env["REDIS_URL"] = self.redis_url
        return env

    def moderation_policy(self) -> Policy:
        """This deployment's content policy (links per post, word list)."""
        return Policy(max_links=self.moderation_max_links,
                      banned_words=frozenset(self.moderation_banned_words))

    @property
    def max_sockets(self) -> int:
        """Feed and console sockets and event streams per process: the connection cap less
        a tenth kept for plain HTTP (pages, the API, shops' posts, health checks), which
        sockets filling the process answered 503 (a cold attacker's: 1,000 sockets at
        max_connections 1,000 took /healthz and every POST down with them)."""
        return self.max_connections - max(1, self.max_connections // 10)

    @property
    def max_connections_per_address(self) -> int:
        """Feed sockets plus a browser's few HTTP connections (about 6 each)."""
        return self.max_sockets_per_address + HTTP_CONNECTIONS_PER_ADDRESS

    @property
    def public_base_url(self) -> str:
        """Scheme, host and port passers-by use (QR codes), with no trailing slash."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(self.host, self.host)
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}"

    @property
    def push_subject(self) -> str:
        """The VAPID JWT's `sub`: who a push service may contact about our pushes."""
        if self.vapid_subject:
            return self.vapid_subject
        if self.public_url and self.public_url.startswith("https://"):
            return self.public_url.rstrip("/")
        return DEFAULT_VAPID_SUBJECT

    @property
    def push_subscription_ttl_s(self) -> int:
        return self.push_subscription_days * 86_400

    @property
    def all_regions(self) -> tuple[Region, ...]:
        return self.regions or (Region(self.region),)

    @property
    def region_names(self) -> list[str]:
        return [r.name for r in self.all_regions]


# Every environment variable Streetfeed reads, and the setting it fills: the one place a
# variable is named. A variable set to "" counts as unset, except those in EMPTY_MEANS_NONE
# ("" switches the map tiles off, trusts no proxy) and the secret (refused as too short).
# Not here: the AWS_* credentials of an S3 media bucket, read by the S3 client (obstore).
ENVIRONMENT: dict[str, str] = {
    "REDIS_URL": "redis_url",
    "REDIS_CLUSTER_URL": "redis_cluster_url",
    "ARQ_REDIS_URL": "arq_redis_url",
    "STREETFEED_REDIS_SERVER": "redis_server",
    "STREETFEED_DATA_DIR": "data_dir",
    "STREETFEED_MEDIA_URL": "media_bucket",
    "STREETFEED_REGIONS": "regions",
    "STREETFEED_REGION": "region",
    "STREETFEED_TIMEZONE": "timezone",
    "STREETFEED_DURABILITY": "durability",
    "STREETFEED_REPLAY_MAX": "replay_max",
    "STREETFEED_FEED_MAXLEN": "feed_maxlen",
    "STREETFEED_FEED_RETENTION_S": "feed_retention_s",
    "STREETFEED_ENRICHER_CLAIM_IDLE_MS": "enricher_claim_idle_ms",
    "STREETFEED_ENRICHER_STALL_S": "enricher_stall_s",
    "STREETFEED_GATEWAY_INDEX": "gateway_use_index",
    "STREETFEED_GC_FREEZE": "gc_freeze",
    "STREETFEED_GC_THAW_AFTER_CLOSED": "gc_thaw_after_closed",
    "STREETFEED_TILE_URL": "tile_url",
    "STREETFEED_SCREEN_FRAME_ANCESTORS": "screen_frame_ancestors",
    "STREETFEED_SHOP_POSTS_PER_MINUTE": "shop_posts_per_minute",
    "STREETFEED_SHOP_MEDIA_PER_HOUR": "shop_media_per_hour",
    "STREETFEED_MEDIA_WORKERS": "media_workers",
    "STREETFEED_SHOP_MEDIA_QUOTA_MB": "shop_media_quota_mb",
    "STREETFEED_LOCAL_KM": "local_km",
    "STREETFEED_HOLDS_PER_ADDRESS_PER_HOUR": "holds_per_address_per_hour",
    "STREETFEED_OPEN_HOLDS_PER_ADDRESS": "open_holds_per_address",
    "STREETFEED_ADDRESS_REQUESTS_PER_MINUTE": "address_requests_per_minute",
    "STREETFEED_ADDRESS_SOCKETS_PER_MINUTE": "address_sockets_per_minute",
    "STREETFEED_MAX_SOCKETS_PER_ADDRESS": "max_sockets_per_address",
    "STREETFEED_MAX_CONNECTIONS": "max_connections",
    "STREETFEED_TRUSTED_PROXIES": "trusted_proxies",
    "STREETFEED_ALLOWED_ORIGINS": "allowed_origins",
    "STREETFEED_PUBLIC_URL": "public_url",
    "STREETFEED_METRICS_TOKEN": "metrics_token",
    SECRET_ENV: "secret",
    "STREETFEED_MAX_LINKS": "moderation_max_links",
    "STREETFEED_BANNED_WORDS_FILE": "moderation_banned_words",
    "STREETFEED_LOG_FORMAT": "log_format",
    "STREETFEED_DEMO_INTERVAL_S": "demo_interval_s",
    "STREETFEED_VAPID_PRIVATE_KEY": "vapid_private_key",
    "STREETFEED_VAPID_SUBJECT": "vapid_subject",
    "STREETFEED_PUSH_ALLOWED_HOSTS": "push_allowed_hosts",
    "STREETFEED_PUSH_SUBSCRIPTION_DAYS": "push_subscription_days",
    "STREETFEED_PUSH_SUBSCRIBES_PER_ADDRESS_PER_HOUR": "push_subscribes_per_address_per_hour",
}
EMPTY_MEANS_NONE = frozenset({"STREETFEED_TILE_URL", "STREETFEED_TRUSTED_PROXIES", SECRET_ENV})


def _comma_list(value: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in value.split(",") if item.strip())


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"expected a boolean (1/0, true/false), got {value!r}")


def _int(value: str) -> int:
    try:
        return int(value)  # as Python reads it: blanks around, a sign, 1_000
    except ValueError:
        raise ValueError(f"expected an integer, got {value!r}") from None


def _float(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"expected a number, got {value!r}") from None


def _regions(value: str) -> tuple[Region, ...]:
    return parse_regions(value)


def _words_file(value: str) -> tuple[str, ...]:
    try:
        return tuple(Path(value).read_text(encoding="utf-8").split())
    except OSError as exc:
        raise ValueError(f"cannot read {value}: {exc}") from None


# Numbers and booleans are read from text as Python reads them (an env file's trailing
# newline or blanks are fine); a choice (Literal) by msgspec, case and blanks aside.
_BY_TYPE: dict[object, Callable[[str], object]] = {int: _int, float: _float, bool: _bool}
# Settings whose variable is not simply the field's type spelled as text (the rest are
# converted by msgspec from the field's annotation: str, str | None, Literal...).
_PARSERS: dict[str, Callable[[str], object]] = {
    "data_dir": Path,
    "media_bucket": parse_media_url,
    "regions": _regions,
    "trusted_proxies": _comma_list,
    "allowed_origins": _comma_list,
    "public_url": str.strip,
    "metrics_token": str.strip,
    "secret": Secret,
    "vapid_private_key": lambda value: Secret(value.strip()),
    "vapid_subject": str.strip,
    "push_allowed_hosts": _comma_list,
    "moderation_banned_words": _words_file,
}


def _from_environment(env: Mapping[str, str]) -> dict[str, object]:
    hints = get_type_hints(Settings)
    values: dict[str, object] = {}
    for name, field_name in ENVIRONMENT.items():
        raw = env.get(name)
        if raw is None or (raw == "" and name not in EMPTY_MEANS_NONE):
            continue
        hint = hints[field_name]
        parse = _PARSERS.get(field_name) or _BY_TYPE.get(hint)
        try:
            if parse is not None:
                values[field_name] = parse(raw)
            elif get_origin(hint) is Literal:  # a choice: "JSON " is json
                values[field_name] = msgspec.convert(raw.strip().lower(), hint)
            else:
                values[field_name] = msgspec.convert(raw, hint, strict=False)
        except (ValueError, msgspec.ValidationError) as exc:
            raise ConfigError(f"{name}: {_said(exc, raw, hints.get(field_name))}") from None
    regions = values.get("regions")
    if isinstance(regions, tuple) and regions and "region" not in values:
        values["region"] = regions[0].name  # the first listed is the default
    return values


def _said(exc: Exception, raw: str, hint: object) -> str:
    """msgspec says "Invalid enum value 'xml'": say what was expected of the text given."""
    if not isinstance(exc, msgspec.ValidationError):
        return str(exc)
    choices = get_args(hint) if get_origin(hint) is Literal else ()
    expected = f"one of {', '.join(map(str, choices))}" if choices else str(hint)
    return f"expected {expected}, got {raw!r}"


def load_settings(env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Build settings from `env` (default: os.environ), then apply explicit overrides."""
    values = _from_environment(os.environ if env is None else env)
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        # Each value was decoded to its field's type above (or given so by the caller).
        settings = Settings(**values)  # type: ignore[arg-type]
    except TypeError as exc:  # an override naming no setting: a bug, said plainly
        raise ConfigError(str(exc)) from None
    validate(settings)
    return settings


# A VAPID JWT's `sub` (RFC 8292 section 2.1): a contact, mail or web.
_VAPID_SUBJECT = re.compile(r"^(mailto:[^@\s]+@[^@\s]+|https://[^\s/]+(/\S*)?)$")

# Limits under which the service refuses everyone.
_AT_LEAST_ONE = ("holds_per_address_per_hour", "open_holds_per_address",
                 "max_connections", "max_sockets_per_address", "shop_posts_per_minute",
                 "address_requests_per_minute", "address_sockets_per_minute",
                 "signin_links_per_minute", "shop_media_per_hour", "shop_media_quota_mb",
                 "media_workers", "push_subscription_days",
                 "push_subscribes_per_address_per_hour", "push_concurrency")


def _variable(field_name: str) -> str:
    """A setting as a message names it: with its variable when it has one."""
    names = [name for name, field_ in ENVIRONMENT.items() if field_ == field_name]
    return f"{field_name} ({names[0]})" if names else field_name


def validate(settings: Settings) -> None:
    # The same rule as the names in STREETFEED_REGIONS (keys are built from them).
    if not REGION_NAME.match(settings.region):
        raise ConfigError(f"region: expected lowercase letters, digits and '-', "
                          f"got {settings.region!r}")
    if settings.regions and settings.region not in settings.region_names:
        raise ConfigError(f"region: {settings.region!r} is not one of the configured regions")
    for name in _AT_LEAST_ONE:
        if getattr(settings, name) < 1:
            # 0 connections or a rate of 0 refuses every client: a typo, not a policy.
            raise ConfigError(f"{_variable(name)}: expected at least 1, "
                              f"got {getattr(settings, name)}")
    if not 0.0005 <= settings.geo_cell_deg <= 1.0:
        raise ConfigError(f"geo_cell_deg: expected 0.0005..1, got {settings.geo_cell_deg}")
    if settings.durability not in DURABILITY_MODES:
        raise ConfigError(f"durability (STREETFEED_DURABILITY): expected one of "
                          f"{', '.join(DURABILITY_MODES)}, got {settings.durability!r}")
    if settings.public_url is not None:
        url = urlsplit(settings.public_url)
        if (url.scheme not in ("http", "https") or not url.hostname or url.username
                or url.password or url.path not in ("", "/") or url.query or url.fragment):
            raise ConfigError(f"public_url (STREETFEED_PUBLIC_URL): expected "
                              f"https://host[:port], got {settings.public_url!r}")
    try:
        TrustedProxies(settings.trusted_proxies)
    except ValueError as exc:
        # Said at start: a typo would otherwise trust nobody (or somebody) silently.
        raise ConfigError(f"trusted_proxies (STREETFEED_TRUSTED_PROXIES): {exc}") from None
    if settings.metrics_token is not None and len(settings.metrics_token) < 16:
        # Compared in constant time, but a short token is guessed, not timed.
        raise ConfigError("metrics_token (STREETFEED_METRICS_TOKEN): expected at least 16 "
                          "characters (e.g. python3 -c 'import secrets; "
                          "print(secrets.token_urlsafe(32))')")
    if settings.profile_republish_interval_s <= 0:
        raise ConfigError(f"profile_republish_interval_s: expected > 0, got "
                          f"{settings.profile_republish_interval_s}")
    if len(settings.secret.reveal()) < SECRET_MIN_CHARS:
        # Its length only: the value itself is never echoed.
        raise ConfigError(f"{SECRET_ENV}: expected at least {SECRET_MIN_CHARS} characters "
                          f"(e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
                          f"), got {len(settings.secret.reveal())}")
    if not 0 < settings.presence_interval_s < settings.presence_silence_s:
        raise ConfigError(f"presence_silence_s ({settings.presence_silence_s}) must exceed "
                          f"presence_interval_s ({settings.presence_interval_s}) > 0")
    if not 0 < settings.local_km <= 20_000:
        raise ConfigError(f"local_km (STREETFEED_LOCAL_KM): expected a distance in km, more "
                          f"than 0 and at most 20000, got {settings.local_km}")
    if not settings.enricher_stall_s * 1000 > 2 * settings.enricher_block_ms:
        # A live enricher tries every enricher_block_ms, plus a batch's work: a stall
        # shorter than twice that would call it stuck between two of its reads.
        raise ConfigError(f"enricher_stall_s (STREETFEED_ENRICHER_STALL_S): expected more "
                          f"than twice the enricher's read block "
                          f"({settings.enricher_block_ms / 1000:g} s), got "
                          f"{settings.enricher_stall_s}")
    if settings.replay_max < 1:
        raise ConfigError(f"replay_max (STREETFEED_REPLAY_MAX): expected at least 1, "
                          f"got {settings.replay_max}")
    if settings.feed_maxlen < 100:
        raise ConfigError(f"feed_maxlen (STREETFEED_FEED_MAXLEN): expected at least 100, "
                          f"got {settings.feed_maxlen}")
    if settings.feed_retention_s < FEED_RETENTION_MIN_S:
        # Shorter than a page's reconnection (backoff, silence watchdog): every resume
        # would be a reset.
        raise ConfigError(f"feed_retention_s (STREETFEED_FEED_RETENTION_S): expected at "
                          f"least {FEED_RETENTION_MIN_S} seconds, got "
                          f"{settings.feed_retention_s}")
    try:
        parse_allowed_hosts(settings.push_allowed_hosts)
    except ValueError as exc:
        raise ConfigError(f"push_allowed_hosts (STREETFEED_PUSH_ALLOWED_HOSTS): {exc}") from None
    if settings.vapid_subject is not None and not _VAPID_SUBJECT.match(settings.vapid_subject):
        # Push services refuse a JWT whose `sub` is neither (Apple's answers 403).
        raise ConfigError(f"vapid_subject (STREETFEED_VAPID_SUBJECT): expected mailto:"
                          f"someone@example.org or https://example.org, got "
                          f"{settings.vapid_subject!r}")
    if not is_time_zone(settings.timezone):
        raise ConfigError(f"timezone (STREETFEED_TIMEZONE): unknown time zone "
                          f"{settings.timezone!r}")
