"""The pure rules of alerts for followed shops (rules.push, rules.push_endpoint), with a
controlled clock: good manners, what an alert says, which endpoints may be reached."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import http_ece
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from rules.errors import InvalidInput
from rules.push import (
    alert_body,
    in_quiet_hours,
    plan,
    quiet_until,
    retry_delay,
    topic_for,
    ttl_for,
    urgency_for,
)
from rules.push_endpoint import check_endpoint, decode_keys, parse_allowed_hosts
from schemas.limits import (
    PUSH_MESSAGE_MAX,
    PUSH_PLAINTEXT_MAX,
    TEXT_MAX,
    TITLE_MAX,
)
from schemas.push import Waiting
from tests.push_receiver import BrowserKeys, b64url, decrypt_aes128gcm

PARIS = "Europe/Paris"
# A Wednesday in winter (UTC+1): 10:00 in Paris.
MORNING = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
HOUR = 3600.0


def waiting(post: str, shop: str = "shop-a", kind: str = "new_arrival", *,
            ends_in_h: float = 5, at: datetime = MORNING, **extra: object) -> Waiting:
    return Waiting(post_id=post, region="main", shop_id=shop, kind=kind,  # type: ignore[arg-type]
                   expires_ts=at.timestamp() + ends_in_h * HOUR, queued_ts=at.timestamp(),
                   **extra)  # type: ignore[arg-type]


def pid(n: int) -> str:
    return f"p_{n:016d}"


# --- Good manners -------------------------------------------------------------------------


def test_a_post_goes_at_once_when_nothing_holds_it_back() -> None:
    w = waiting(pid(1))
    decided = plan(MORNING, [w], [], quiet_hours=True, zone=PARIS)
    assert decided.send == w and decided.dropped == ()


def test_one_alert_per_shop_per_hour_then_the_next() -> None:
    now = MORNING.timestamp()
    sent = [("shop-a", now - 20 * 60)]
    decided = plan(MORNING, [waiting(pid(2))], sent, quiet_hours=True, zone=PARIS)
    assert decided.send is None
    assert decided.next_ts == pytest.approx(now + 40 * 60)
    later = MORNING + timedelta(minutes=40)
    assert plan(later, [waiting(pid(2))], sent, quiet_hours=True, zone=PARIS).send is not None
    # Another shop is not held back by shop-a's hour.
    other = waiting(pid(3), shop="shop-b")
    assert plan(MORNING, [waiting(pid(2)), other], sent, quiet_hours=True,
                zone=PARIS).send == other


def test_five_a_day_over_a_sliding_day() -> None:
    now = MORNING.timestamp()
    sent = [(f"shop-{i}", now - (20 - i) * HOUR) for i in range(5)]  # 20 h ago .. 16 h ago
    decided = plan(MORNING, [waiting(pid(1), shop="shop-z", ends_in_h=10)], sent,
                   quiet_hours=False, zone=PARIS)
    assert decided.send is None
    # The oldest leaves the window 24 h after it went: 4 h from now.
    assert decided.next_ts == pytest.approx(now + 4 * HOUR)
    four_h = MORNING + timedelta(hours=4, seconds=1)
    assert plan(four_h, [waiting(pid(1), shop="shop-z", ends_in_h=10)], sent,
                quiet_hours=False, zone=PARIS).send is not None


@pytest.mark.parametrize(("local", "quiet"), [("20:59", False), ("21:00", True),
                                              ("03:00", True), ("07:59", True),
                                              ("08:00", False), ("12:00", False)])
def test_quiet_hours_are_21_to_8_local(local: str, quiet: bool) -> None:
    hour, minute = map(int, local.split(":"))
    when = datetime(2026, 12, 2, hour, minute, tzinfo=UTC).replace(tzinfo=None)
    from zoneinfo import ZoneInfo
    aware = when.replace(tzinfo=ZoneInfo(PARIS))
    assert in_quiet_hours(aware, PARIS) is quiet
    assert in_quiet_hours(aware, "America/New_York") is in_quiet_hours(
        aware.astimezone(ZoneInfo("America/New_York")), "America/New_York")


def test_quiet_hours_hold_alerts_until_8_local_across_dst() -> None:
    from zoneinfo import ZoneInfo
    paris = ZoneInfo(PARIS)
    # The night the clocks go forward (29 March 2026): 08:00 is UTC+2 that morning.
    night = datetime(2026, 3, 28, 23, 30, tzinfo=paris)
    assert quiet_until(night, PARIS) == datetime(2026, 3, 29, 8, 0, tzinfo=paris)
    assert quiet_until(night, PARIS).astimezone(UTC).hour == 6
    w = waiting(pid(1), at=night, ends_in_h=12)
    decided = plan(night, [w], [], quiet_hours=True, zone=PARIS)
    assert decided.send is None
    assert decided.next_ts == datetime(2026, 3, 29, 8, 0, tzinfo=paris).timestamp()
    # Opted out: at once.
    assert plan(night, [w], [], quiet_hours=False, zone=PARIS).send == w
    # The device's zone decides: 23:30 in Paris is 17:30 in New York.
    assert plan(night, [w], [], quiet_hours=True, zone="America/New_York").send == w


def test_flash_offers_first_then_the_soonest_to_end() -> None:
    arrival_soon = waiting(pid(1), shop="a", ends_in_h=2)
    flash_late = waiting(pid(2), shop="b", kind="flash_offer", ends_in_h=6)
    flash_soon = waiting(pid(3), shop="c", kind="flash_offer", ends_in_h=3)
    arrival_late = waiting(pid(4), shop="d", ends_in_h=8)
    queue = [arrival_soon, flash_late, arrival_late, flash_soon]
    order = []
    sent: list[tuple[str, float]] = []
    for _ in range(4):
        decided = plan(MORNING, queue, sent, quiet_hours=True, zone=PARIS)
        assert decided.send is not None
        order.append(decided.send.post_id)
        queue.remove(decided.send)
        sent.append((decided.send.shop_id, MORNING.timestamp()))
    assert order == [pid(3), pid(2), pid(1), pid(4)]


def test_what_ended_meanwhile_is_dropped_never_sent() -> None:
    ended = waiting(pid(1), ends_in_h=-0.1)
    ending = waiting(pid(2), shop="b", ends_in_h=30 / 3600)  # 30 s left: would vanish as shown
    live = waiting(pid(3), shop="c")
    decided = plan(MORNING, [ended, ending, live], [], quiet_hours=True, zone=PARIS)
    assert {w.post_id for w in decided.dropped} == {pid(1), pid(2)}
    assert decided.send == live
    # A night's wait outlasting a post: dropped at 08:00, not sent.
    from zoneinfo import ZoneInfo
    night = datetime(2026, 12, 2, 22, 0, tzinfo=ZoneInfo(PARIS))
    short = waiting(pid(4), at=night, ends_in_h=2)
    first = plan(night, [short], [], quiet_hours=True, zone=PARIS)
    assert first.send is None and first.next_ts is not None
    at_8 = datetime.fromtimestamp(first.next_ts, UTC)
    assert at_8 <= night + timedelta(hours=2)  # looked at again when it ends
    assert plan(night + timedelta(hours=10), [short], [], quiet_hours=True,
                zone=PARIS).dropped == (short,)


def test_retries_back_off_honour_retry_after_and_last_until_the_post_ends() -> None:
    assert [retry_delay(n, None) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 8.0]
    assert retry_delay(1, 30) == 30
    assert retry_delay(1, 10**9) == 600  # bounded
    assert retry_delay(12, None) == 600
    w = waiting(pid(1), attempts=2, not_before_ts=MORNING.timestamp() + 4)
    decided = plan(MORNING, [w], [], quiet_hours=True, zone=PARIS)
    assert decided.send is None and decided.next_ts == MORNING.timestamp() + 4
    # Many failed sends: tried again while the post lives (regression: given up after 5,
    # 16 s of a push service's outage), dropped once it ends.
    tried = waiting(pid(2), attempts=40)
    assert plan(MORNING, [tried], [], quiet_hours=True, zone=PARIS).send == tried
    ended = datetime.fromtimestamp(tried.expires_ts, UTC)
    assert plan(ended, [tried], [], quiet_hours=True, zone=PARIS).dropped == (tried,)


def test_headers_ttl_topic_urgency() -> None:
    assert ttl_for(1000.0, 400.4) == 599
    assert ttl_for(1000.0, 2000.0) == 0
    topic = topic_for("a-very-long-shop-id-that-is-more-than-thirty-two-characters-long")
    assert len(topic) <= 32 and set(topic) <= set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert topic_for("a") != topic_for("b") and topic_for("a") == topic_for("a")
    assert urgency_for("flash_offer") == "high" and urgency_for("new_arrival") == "normal"


# --- What an alert says -----------------------------------------------------------------


def _longest_post() -> dict[str, object]:
    """A post at every limit, in four-byte characters where text is free."""
    emoji = "🍓"
    return {
        "kind": "flash_offer", "id": pid(9), "title": emoji * TITLE_MAX,
        "text": emoji * TEXT_MAX,
        "posted_at": "2026-12-02T09:00:00Z", "expires_at": "2026-12-02T10:00:00Z",
        "ends_at": "2026-12-02T10:00:00Z", "price": 999999.99, "discount_pct": 90,
        "shop": {"id": "s" * 64, "name": emoji * 60, "category": "bakery", "lat": 44.8,
                 "lon": -0.57, "address": emoji * 120,
                 "timezone": "America/Argentina/Buenos_Aires"},
        "media": [{"id": f"m_{i:016d}", "url": f"/media/m_{i:016d}/1600.webp", "width": 1600,
                   "height": 1200, "variants": [{"width": w, "url": f"/media/m_{i:016d}/{w}.webp"}
                                                for w in (400, 800, 1600)]}
                  for i in range(4)],
        "producers": [{"id": f"pr_{i:016d}", "name": emoji * 60, "place": emoji * 60,
                       "distance_km": 999.9} for i in range(3)],
        "hold": {"left": 50, "minutes": 240},
    }


def test_a_short_post_goes_whole() -> None:
    post = {"kind": "new_arrival", "id": pid(1), "title": "Fraises", "text": "Gariguette",
            "shop": {"name": "Au Pain Doré"}}
    body = json.loads(alert_body(json.dumps(post).encode(), pid(1)))
    assert body == {"type": "post", "post": post, "url": f"/?post={pid(1)}"}


def test_the_longest_post_fits_one_push_message_by_trimming_its_text() -> None:
    post = _longest_post()
    raw = json.dumps(post, ensure_ascii=False).encode()
    assert len(raw) > PUSH_PLAINTEXT_MAX
    body = alert_body(raw, pid(9))
    assert len(body) <= PUSH_PLAINTEXT_MAX
    out = json.loads(body)
    assert out["type"] == "post" and out["url"] == f"/?post={pid(9)}"
    # The notification's parts stay: shop name, title, the offer's end.
    assert out["post"]["shop"]["name"] == post["shop"]["name"]  # type: ignore[index]
    assert out["post"]["title"] == post["title"]
    assert out["post"]["ends_at"] == post["ends_at"]
    assert out["post"]["text"].endswith("…")
    # Encrypted as the pusher does, it is within the 4096 bytes every push service takes,
    # and a browser decrypts it.
    keys = BrowserKeys()
    encrypted = http_ece.encrypt(body, private_key=ec.generate_private_key(ec.SECP256R1()),
                                 dh=keys.public, auth_secret=keys.auth, version="aes128gcm")
    assert len(encrypted) <= PUSH_MESSAGE_MAX
    assert decrypt_aes128gcm(encrypted, keys) == body


def test_text_is_trimmed_before_anything_else_goes() -> None:
    post = _longest_post()
    post["shop"] = {"id": "au-pain-dore", "name": "Au Pain Doré", "category": "bakery",
                    "lat": 44.8, "lon": -0.57}
    post["producers"] = post["producers"][:1]  # type: ignore[index]
    raw = json.dumps(post, ensure_ascii=False).encode()
    assert len(raw) > PUSH_PLAINTEXT_MAX
    out = json.loads(alert_body(raw, pid(9)))
    assert out["post"]["media"] == post["media"]
    assert out["post"]["producers"] == post["producers"]
    assert 0 < len(out["post"]["text"]) < TEXT_MAX


# --- Which endpoints (SSRF) ---------------------------------------------------------------


@pytest.mark.parametrize("url", [
    "https://fcm.googleapis.com/fcm/send/abc:APA91b",
    "https://fcm.googleapis.com/wp/abc",
    "https://android.googleapis.com/gcm/send/abc",
    "https://updates.push.services.mozilla.com/wpush/v2/gAAAA",
    "https://web.push.apple.com/QGx3",
    "https://api.push.apple.com/3/device/x",
    "https://wns2-par02p.notify.windows.com/w/?token=BQYAAA",
    "https://FCM.googleapis.com:443/fcm/send/abc",
])
def test_the_browsers_push_services_are_accepted(url: str) -> None:
    target = check_endpoint(url)
    assert target.scheme == "https" and target.port == 443
    assert target.origin == "https://" + target.host


@pytest.mark.parametrize("url", [
    "http://fcm.googleapis.com/fcm/send/abc",  # not https
    "https://fcm.googleapis.com:8443/fcm/send/abc",  # not 443
    "https://evil.example.com/push",  # not a push service
    "https://fcm.googleapis.com.evil.example/x",
    "https://evilfcm.googleapis.com/x",
    "https://push.apple.com.evil.example/x",
    "https://.push.apple.com/x",
    "https://a..notify.windows.com/x",
    "https://127.0.0.1/x", "http://127.0.0.1:8080/x", "https://169.254.169.254/latest",
    "https://[::1]/x", "https://[::ffff:127.0.0.1]/x", "https://2130706433/x",
    "https://user:pw@fcm.googleapis.com/fcm/send/abc",
    "https://fcm.googleapis.com@evil.example/x",
    "https://fcm.googleapis.com/x#frag",
    "https://fcm.googleapis.com./x",
    "https://fcm.googleapis.com/a b", "https://fcm.googleapis.com/\u00e9",
    "file:///etc/passwd", "gopher://fcm.googleapis.com/x", "//fcm.googleapis.com/x",
    "https://fcm.googleapis.com:99999/x",
    "https://fcm.googleapis.com/" + "a" * 1100,
])
def test_anything_else_is_refused(url: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        check_endpoint(url)
    assert refused.value.code == "push_endpoint_not_allowed"
    assert url not in refused.value.message  # a capability is never echoed


def test_allowed_hosts_take_http_and_ip_literals_on_their_port_only() -> None:
    allowed = parse_allowed_hosts(("127.0.0.1:8123", "[::1]:9000", "push.internal:80"))
    assert check_endpoint("http://127.0.0.1:8123/push/x", allowed).origin == \
        "http://127.0.0.1:8123"
    assert check_endpoint("http://[::1]:9000/p", allowed).origin == "http://[::1]:9000"
    assert check_endpoint("http://push.internal/p", allowed).port == 80
    for refused in ("http://127.0.0.1:8124/push/x", "http://127.0.0.1/push/x",
                    "http://u@127.0.0.1:8123/push/x"):
        with pytest.raises(InvalidInput):
            check_endpoint(refused, allowed)
    with pytest.raises(ValueError):
        parse_allowed_hosts(("127.0.0.1",))


def test_keys_must_be_a_p256_point_and_a_16_byte_secret() -> None:
    keys = BrowserKeys()
    point, auth = decode_keys(b64url(keys.public), b64url(keys.auth))
    assert point == keys.public and auth == keys.auth
    off_curve = bytearray(keys.public)
    off_curve[-1] ^= 1
    for p256dh, secret in [(b64url(bytes(off_curve)), b64url(keys.auth)),
                           (b64url(keys.public[1:] + b"\0"), b64url(keys.auth)),
                           (b64url(b"\x04" + b"\xff" * 64), b64url(keys.auth)),
                           (b64url(keys.public), b64url(keys.auth[:15])),
                           (b64url(keys.public), "!!!!"),
                           (base64.b64encode(keys.public).decode().replace("A", "+"),
                            b64url(keys.auth))]:
        with pytest.raises(InvalidInput) as refused:
            decode_keys(p256dh, secret)
        assert refused.value.code == "invalid_push_keys"
