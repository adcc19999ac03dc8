"""One frozen settings object, read once from the environment and passed explicitly.

Every limit the product enforces is defined here and nowhere else.
"""

from __future__ import annotations

import hmac
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

from rules.errors import ConfigError
from rules.moderation import Policy
from rules.proxies import TrustedProxies
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
# (streetfeed.ratelimit). `streetfeed up` hands its own to its children under this name.
SECRET_ENV = "STREETFEED_SECRET"
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
    # A Redis Cluster node: every component then runs against the cluster.
    redis_cluster_url: str | None = None
    # arq's queue (a sorted set plus job keys, not cluster-aware) may live apart.
    arq_redis_url: str | None = None
    data_dir: Path = Path("var")
    # The default region, and the one used when no regions are configured.
    region: str = "main"
    # Named bounding boxes (streetfeed.regions); empty: one region covering the world.
    regions: tuple[Region, ...] = ()
    timezone: str = "Europe/Paris"
    host: str = "127.0.0.1"
    port: int = 8000

    # What a 202 promises (streetfeed.inbox.Inbox._durably), one of DURABILITY_MODES.
    durability: str = "aof"
    # How long a 202 waits for a replica (WAIT) or an fsync (WAITAOF), each.
    durability_timeout_ms: int = 2_000

    max_body_bytes: int = 8 * 1024
    # Opening hours may list a year of dated exceptions.
    max_hours_body_bytes: int = 64 * 1024
    max_ws_frame_bytes: int = 4 * 1024
    # Feed retention: older cursors get a `reset` and a fresh snapshot.
    feed_maxlen: int = 100_000
    idempotency_ttl_s: int = 24 * 3600
    snapshot_limit: int = 200
    # A resume replays at most this many feed entries (STREETFEED_REPLAY_MAX); further back
    # gets `reset` and a fresh snapshot (at most snapshot_limit posts) instead. Entries
    # read, not frames sent: the cost of a handshake is reading the stream. Without it a
    # day-old cursor replayed 97,994 frames (52 MB) in one handshake.
    replay_max: int = 500
    # GET /api/v1/shops serves cached profiles (web.directory): re-read every record at
    # least this often, besides on every shop write and each opening change.
    shops_cache_max_age_s: float = 60.0

    enricher_batch: int = 100
    enricher_block_ms: int = 2_000
    # An entry pending this long on a consumer is presumed abandoned (dead consumer).
    enricher_claim_idle_ms: int = 15_000
    enricher_max_attempts: int = 5

    # A read that has not come back within this (plus feed.reader.STALL_GRACE_S) is
    # stalled: sockets must hear of it within 5 s (DESIGN.md section 9).
    gateway_block_ms: int = 2_000
    gateway_batch: int = 500
    # A socket whose unsent bytes exceed this is closed (resumable) instead of slowing others.
    gateway_socket_buffer_max: int = 256 * 1024
    gateway_ping_interval_s: float = 25.0
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
    keepalive_timeout_s: float = 5.0
    # A response the client stops reading (its buffer full, no progress) is dropped after
    # this: it held memory and a descriptor for ever (cold try: 2.8 MB per connection).
    write_stall_timeout_s: float = 30.0
    # Peers whose X-Forwarded-For / X-Forwarded-Proto are believed, for HTTP and feed
    # sockets alike (streetfeed/proxies.py): addresses and networks (10.0.0.0/8). Their
    # own address is not capped per address (every client behind them shares it).
    trusted_proxies: tuple[str, ...] = ("127.0.0.1",)
    # WebSocket Origin allow-list; empty: same origin only (and clients sending none).
    allowed_origins: tuple[str, ...] = ()
    # A shop's profile change republishes its live posts (a frame each to every socket
    # nearby) at most once per this many seconds; later changes are folded into one.
    profile_republish_interval_s: float = 60.0

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

    # Content policy of this deployment (streetfeed.moderation): links per post, banned words.
    moderation_max_links: int = 1
    moderation_banned_words: tuple[str, ...] = ()

    # /readyz turns 503 when more in-stream entries than this wait for an enricher.
    ready_max_lag: int = 1_000

    demo: bool = True
    demo_interval_s: float = 4.0

    extra: Mapping[str, str] = field(default_factory=dict)

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]

    def moderation_policy(self) -> Policy:
        """This deployment's content policy (links per post, word list)."""
        return Policy(max_links=self.moderation_max_links,
                      banned_words=frozenset(self.moderation_banned_words))

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
    def all_regions(self) -> tuple[Region, ...]:
        return self.regions or (Region(self.region),)

    @property
    def region_names(self) -> list[str]:
        return [r.name for r in self.all_regions]


def _bool(value: str, name: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name}: expected a boolean (1/0, true/false), got {value!r}")


def _int(value: str, name: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"{name}: expected an integer, got {value!r}") from None


def _float(value: str, name: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ConfigError(f"{name}: expected a number, got {value!r}") from None


def load_settings(env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Build settings from `env` (default: os.environ), then apply explicit overrides."""
    env = os.environ if env is None else env
    values: dict[str, object] = {}
    if env.get("REDIS_URL"):
        values["redis_url"] = env["REDIS_URL"]
    if env.get("STREETFEED_DATA_DIR"):
        values["data_dir"] = Path(env["STREETFEED_DATA_DIR"])
    if env.get("REDIS_CLUSTER_URL"):
        values["redis_cluster_url"] = env["REDIS_CLUSTER_URL"]
    if env.get("ARQ_REDIS_URL"):
        values["arq_redis_url"] = env["ARQ_REDIS_URL"]
    if env.get("STREETFEED_REGIONS"):
        try:
            values["regions"] = parse_regions(env["STREETFEED_REGIONS"])
        except ValueError as exc:
            raise ConfigError(f"STREETFEED_REGIONS: {exc}") from None
        values["region"] = values["regions"][0].name  # type: ignore[index]
    if env.get("STREETFEED_REGION"):
        values["region"] = env["STREETFEED_REGION"]
    if env.get("STREETFEED_TIMEZONE"):
        values["timezone"] = env["STREETFEED_TIMEZONE"]
    if env.get("STREETFEED_TILE_URL") is not None:
        values["tile_url"] = env["STREETFEED_TILE_URL"]
    if env.get("STREETFEED_SCREEN_FRAME_ANCESTORS"):
        values["screen_frame_ancestors"] = env["STREETFEED_SCREEN_FRAME_ANCESTORS"]
    for name, field_name in (("STREETFEED_SHOP_POSTS_PER_MINUTE", "shop_posts_per_minute"),
                             ("STREETFEED_ADDRESS_REQUESTS_PER_MINUTE",
                              "address_requests_per_minute"),
                             ("STREETFEED_ADDRESS_SOCKETS_PER_MINUTE",
                              "address_sockets_per_minute"),
                             ("STREETFEED_MAX_SOCKETS_PER_ADDRESS", "max_sockets_per_address"),
                             ("STREETFEED_MAX_CONNECTIONS", "max_connections")):
        if env.get(name):
            values[field_name] = _int(env[name], name)
    if env.get("STREETFEED_TRUSTED_PROXIES") is not None:
        values["trusted_proxies"] = tuple(p.strip() for p in
                                          env["STREETFEED_TRUSTED_PROXIES"].split(",") if p.strip())
    if env.get(SECRET_ENV) is not None:
        values["secret"] = Secret(env[SECRET_ENV])
    if env.get("STREETFEED_ALLOWED_ORIGINS"):
        values["allowed_origins"] = tuple(o.strip() for o in
                                          env["STREETFEED_ALLOWED_ORIGINS"].split(",") if o.strip())
    if env.get("STREETFEED_MAX_LINKS"):
        values["moderation_max_links"] = _int(env["STREETFEED_MAX_LINKS"], "STREETFEED_MAX_LINKS")
    if env.get("STREETFEED_BANNED_WORDS_FILE"):
        path = Path(env["STREETFEED_BANNED_WORDS_FILE"])
        try:
            words = path.read_text(encoding="utf-8").split()
        except OSError as exc:
            raise ConfigError(f"STREETFEED_BANNED_WORDS_FILE: cannot read {path}: {exc}") from None
        values["moderation_banned_words"] = tuple(words)
    if env.get("STREETFEED_PUBLIC_URL"):
        values["public_url"] = env["STREETFEED_PUBLIC_URL"].strip()
    if env.get("STREETFEED_METRICS_TOKEN"):
        values["metrics_token"] = env["STREETFEED_METRICS_TOKEN"].strip()
    if env.get("STREETFEED_DURABILITY"):
        values["durability"] = env["STREETFEED_DURABILITY"]
    if env.get("STREETFEED_REPLAY_MAX"):
        values["replay_max"] = _int(env["STREETFEED_REPLAY_MAX"], "STREETFEED_REPLAY_MAX")
    if env.get("STREETFEED_FEED_MAXLEN"):
        values["feed_maxlen"] = _int(env["STREETFEED_FEED_MAXLEN"], "STREETFEED_FEED_MAXLEN")
    if env.get("STREETFEED_GATEWAY_INDEX"):
        values["gateway_use_index"] = _bool(
            env["STREETFEED_GATEWAY_INDEX"], "STREETFEED_GATEWAY_INDEX"
        )
    if env.get("STREETFEED_ENRICHER_CLAIM_IDLE_MS"):
        values["enricher_claim_idle_ms"] = _int(env["STREETFEED_ENRICHER_CLAIM_IDLE_MS"],
                                                "STREETFEED_ENRICHER_CLAIM_IDLE_MS")
    if env.get("STREETFEED_DEMO_INTERVAL_S"):
        values["demo_interval_s"] = _float(
            env["STREETFEED_DEMO_INTERVAL_S"], "STREETFEED_DEMO_INTERVAL_S"
        )
    values.update({k: v for k, v in overrides.items() if v is not None})
    settings = Settings(**values)  # type: ignore[arg-type]
    validate(settings)
    return settings


def validate(settings: Settings) -> None:
    # The same rule as the names in STREETFEED_REGIONS (keys are built from them).
    if not REGION_NAME.match(settings.region):
        raise ConfigError(f"region: expected lowercase letters, digits and '-', "
                          f"got {settings.region!r}")
    if settings.regions and settings.region not in settings.region_names:
        raise ConfigError(f"region: {settings.region!r} is not one of the configured regions")
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
                          "characters (e.g. python -c 'import secrets; "
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
    if settings.replay_max < 1:
        raise ConfigError(f"replay_max (STREETFEED_REPLAY_MAX): expected at least 1, "
                          f"got {settings.replay_max}")
    if settings.feed_maxlen < 100:
        raise ConfigError(f"feed_maxlen: expected at least 100, got {settings.feed_maxlen}")
    try:
        from zoneinfo import ZoneInfo

        ZoneInfo(settings.timezone)
    except Exception:
        raise ConfigError(f"timezone: unknown time zone {settings.timezone!r}") from None
