"""Alerts for followed shops, the page's side (issue 18, DESIGN.md section 9), in real
headless Chromium against the real server and enricher, on a 320 px phone, FR and EN.

Headless Chromium has no push service (and this machine no internet): a real
`PushManager.subscribe` fails. Where a test needs a subscription, an init script replaces
only the browser's `PushManager.prototype.subscribe`/`getSubscription` with a subscription
whose endpoint and keys the test chose (a stand-in for the browser's API, not for our code).
A push reaches the service worker through Chromium's own DevTools protocol
(`ServiceWorker.deliverPushMessage`), and the notification it shows is read back with
`registration.getNotifications()`. What headless Chromium cannot do: show a permission
prompt (it answers "denied" at once unless the test granted the permission), display a
notification on screen, or click one; the click's code (`openAlertUrl` in sw.js) is run
inside the real service worker instead, which is the path a click takes without the
click's user activation.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from redis.asyncio import Redis

from runtime.settings import Settings
from storage.push import PushStore
from tests.helpers import (
    add_shop,
    arrival,
    auth,
    enricher,
    feed_card,
    flash,
    live_post,
    new_page,
    pusher,
    wait_for,
    web_server,
)
from tests.push_receiver import PushReceiver
from tests.test_browser_holds import serious_axe

# One Chromium and one event loop for every browser test (conftest.py, `on_session_loop`).
pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

STREET = (44.8370, -0.5735)
FAR = (44.8500, -0.5500)  # about 2.4 km away: out of a 500 m feed
LIVE = "() => window.streetfeed && window.streetfeed.state === 'live'"
PARIS = ZoneInfo("Europe/Paris")
# The page is in the service worker's hands (sw.js claims its clients on activation).
CONTROLLED = "() => navigator.serviceWorker.controller !== null"

TEXTS = {
    "fr": {
        "alert_me": "M'alerter",
        "switch": "Alertes de mes boutiques suivies",
        "denied": "Notifications bloquées pour ce site : autorisez-les dans les réglages du "
                  "navigateur, puis réessayez.",
        "unsupported": "Ce navigateur ne peut pas recevoir d'alertes.",
        "ios": "Sur iPhone et iPad, ajoutez d'abord Streetfeed à l'écran d'accueil (Partager, "
               "puis « Sur l'écran d'accueil ») et ouvrez-le de là.",
        "until": "jusqu'à {time} · encore {left}",
        "ended": "Cette annonce est terminée.",
        "gone": "Cette annonce est terminée",
        "back": "Retour au fil",
    },
    "en": {
        "alert_me": "Alert me",
        "switch": "Alerts for my followed shops",
        "denied": "Notifications are blocked for this site: allow them in the browser's "
                  "settings, then try again.",
        "unsupported": "This browser cannot receive alerts.",
        "ios": "On iPhone and iPad, first add Streetfeed to the home screen (Share, then "
               "“Add to Home Screen”) and open it from there.",
        "until": "until {time} · {left} left",
        "ended": "This post has ended.",
        "gone": "This post has ended",
        "back": "Back to the feed",
    },
}

# What the note adds once alerts are on (quiet hours kept, or "also at night").
MANNERS = "At most one alert per shop an hour, five a day, none from 21:00 to 08:00."
MANNERS_AT_NIGHT = "At most one alert per shop an hour, five a day."

# Counts the page's permission requests and push subscriptions, leaving them as they are.
COUNT_ASKS = """
  window.__asks = { permission: 0, subscribe: 0 };
  const request = Notification.requestPermission.bind(Notification);
  Notification.requestPermission = (...a) => {
    window.__asks.permission += 1;
    return request(...a);
  };
  const subscribe = PushManager.prototype.subscribe;
  PushManager.prototype.subscribe = function (...a) {
    window.__asks.subscribe += 1;
    return subscribe.apply(this, a);
  };
"""

NOTIFICATIONS = """async () => (await (await navigator.serviceWorker.ready).getNotifications())
  .map((n) => ({ title: n.title, body: n.body, tag: n.tag, data: n.data, silent: n.silent,
                 icon: n.icon }))"""


async def phone(browser: Any, base: str, lang: str, path: str = "", width: int = 320) -> Any:
    page = await new_page(browser, width, 640, lang=lang)
    await page.add_init_script(COUNT_ASKS)
    await page.goto(f"{base}/{path or f'?lat={STREET[0]}&lon={STREET[1]}&radius_m=500'}")
    await page.wait_for_function(LIVE)
    return page


async def no_sideways_scroll(page: Any) -> None:
    assert await page.evaluate(
        "() => document.documentElement.scrollWidth <= innerWidth"), "the page scrolls sideways"


async def note_is(page: Any, text: str) -> None:
    await page.wait_for_function(
        "(text) => document.querySelector('#alerts-note')?.textContent === text", arg=text)


async def open_filters(page: Any) -> None:
    if await page.get_attribute("#filters-toggle", "aria-expanded") == "false":
        await page.click("#filters-toggle")


@pytest.mark.parametrize("lang", ["fr", "en"])
async def test_nothing_is_asked_before_the_tap_and_a_refusal_is_said(
        redis: Redis, settings: Settings, browser: Any, lang: str) -> None:
    words = TEXTS[lang]
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http:
        shop = await add_shop(redis, settings, "Primeur du Marché", *STREET)
        post_id = await live_post(http, shop, redis, arrival("Fraises de Plougastel"))
        page = await phone(browser, web.http, lang)
        card = feed_card(post_id)
        await page.wait_for_selector(card)
        # Not followed: no "Alert me" on its card.
        assert await page.locator(f"{card} .alert-me").count() == 0
        await page.click(f"{card} .star")
        alert = f"{card} .alert-me"
        await page.wait_for_selector(alert)
        assert await page.inner_text(alert) == words["alert_me"]
        assert await page.get_attribute(alert, "aria-pressed") == "false"
        await open_filters(page)
        assert await page.inner_text(".alerts-switch") == words["switch"]
        assert await page.get_attribute("#alerts-switch", "role") == "switch"
        assert not await page.is_checked("#alerts-switch")
        await no_sideways_scroll(page)
        assert await serious_axe(page) == []
        # Following, opening the filters, reading: nothing asked of the browser.
        assert await page.evaluate("() => window.__asks") == {"permission": 0, "subscribe": 0}
        assert await page.evaluate("() => Notification.permission") == "default"

        # The tap asks; headless Chromium refuses at once (nobody to answer a prompt).
        await page.click(alert)
        await note_is(page, words["denied"])
        # Said by the button tapped, and aloud: the switch's note sits in the filters,
        # folded on a phone (regression: a tap on a card then showed nothing).
        await page.wait_for_selector(f"{card} .alert-note")
        assert await page.inner_text(f"{card} .alert-note") == words["denied"]
        assert await page.text_content("#announcer") == words["denied"]
        assert await page.evaluate("() => window.__asks") == {"permission": 1, "subscribe": 0}
        assert await page.get_attribute(alert, "aria-pressed") == "false"
        assert not await page.is_checked("#alerts-switch")
        assert await page.evaluate("() => window.streetfeed.alerts.shops") == []
        # The switch says the same, without asking again (a refusal is the browser's now).
        await page.click("#alerts-switch")
        await note_is(page, words["denied"])
        assert not await page.is_checked("#alerts-switch")
        assert await page.evaluate("() => window.__asks.permission") == 1
        assert await page.get_attribute("#alerts-note", "aria-live") == "polite"
        await no_sideways_scroll(page)
        assert page.errors == []


async def test_a_browser_that_cannot_push_says_so(redis: Redis, settings: Settings,
                                                  chromium: Any) -> None:
    """A browser without PushManager (a private window of some), and iOS Safari outside a
    home-screen app, which says how to get there."""
    async with web_server(settings) as web:
        for agent, text in ((None, TEXTS["en"]["unsupported"]),
                            ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) "
                             "AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 "
                             "Mobile/15E148 Safari/604.1", TEXTS["en"]["ios"])):
            context = await chromium.new_context(
                locale="en-GB", timezone_id="Europe/Paris",
                **({"user_agent": agent} if agent else {}))
            try:
                await context.add_init_script("delete window.PushManager;")
                page = await phone(context, web.http, "en")
                await open_filters(page)
                await page.click("#alerts-switch")
                await note_is(page, text)
                assert not await page.is_checked("#alerts-switch")
                assert await page.evaluate("() => window.__asks.permission") == 0
                assert await page.get_attribute("#alerts-note", "data-state") == "refused"
                await no_sideways_scroll(page)
            finally:
                await context.close()


async def registration_id(cdp: Any, page: Any) -> str:
    """The service worker's registration id, as DevTools knows it."""
    found: list[dict[str, Any]] = []
    cdp.on("ServiceWorker.workerRegistrationUpdated",
           lambda event: found.extend(event["registrations"]))
    await page.wait_for_function(CONTROLLED)
    await cdp.send("ServiceWorker.enable")
    origin = page.url.split("/", 3)[:3]

    def ours() -> list[dict[str, Any]]:
        # This page's own: the browser process is the test run's, and its events may
        # name other registrations.
        return [r for r in found if not r.get("isDeleted")
                and r.get("scopeURL", "").split("/", 3)[:3] == origin]
    await wait_for(lambda: bool(ours()), message="the service worker's registration")
    return str(ours()[-1]["registrationId"])


async def deliver(cdp: Any, base: str, registration: str, payload: dict[str, Any]) -> None:
    await cdp.send("ServiceWorker.deliverPushMessage", {
        "origin": base, "registrationId": registration, "data": json.dumps(payload)})


async def notifications(page: Any) -> list[dict[str, Any]]:
    shown: list[dict[str, Any]] = await page.evaluate(NOTIFICATIONS)
    return shown


async def notifications_when(page: Any, condition: Callable[[list[dict[str, Any]]], bool],
                             ) -> list[dict[str, Any]]:
    """The notifications shown once `condition` holds of them (a push is handled out of
    the page: polled). A push may have to start the service worker again, which took more
    than wait_for's 5 s once or twice in a whole suite on two loaded cores."""
    seen: list[dict[str, Any]] = []

    async def holds() -> bool:
        seen[:] = await notifications(page)
        return condition(seen)
    try:
        await wait_for(holds, 20, message="the notifications")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; shown: {seen}") from None
    return seen


def shop_clock(iso: str) -> str:
    return datetime.fromisoformat(iso).astimezone(PARIS).strftime("%H:%M")


@pytest.mark.parametrize("lang", ["fr", "en"])
async def test_a_pushed_post_is_shown_and_an_ended_one_is_not(
        redis: Redis, settings: Settings, browser: Any, lang: str) -> None:
    words = TEXTS[lang]
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http:
        shop = await add_shop(redis, settings, "Fromagerie Deluc", *STREET, category="cheese")
        offer_id = await live_post(http, shop, redis, flash("Comté 18 mois -20 %", minutes=25))
        offer = (await http.get(f"/api/v1/posts/{offer_id}")).json()
        await browser.grant_permissions(["notifications"], origin=web.http)
        page = await phone(browser, web.http, lang)
        cdp = await browser.new_cdp_session(page)
        registration = await registration_id(cdp, page)

        await deliver(cdp, web.http, registration,
                      {"type": "post", "post": offer, "url": f"/?post={offer_id}"})
        [shown] = await notifications_when(page, lambda n: len(n) == 1)
        assert shown["title"] == "Fromagerie Deluc"
        title, when = shown["body"].split("\n")
        assert title == "Comté 18 mois -20 %"
        # "until 18:00 · 25 min left" (24 when the delivery took a while); past 23:35 in
        # Paris its end is tomorrow, and the day is said too ("until Tue 00:10").
        time = shop_clock(offer["ends_at"])
        ends = datetime.fromisoformat(offer["ends_at"]).astimezone(PARIS)
        if ends.date() != datetime.now(PARIS).date():
            time = await page.evaluate(
                "([ms, locale]) => new Intl.DateTimeFormat(locale, {weekday: 'short', "
                "timeZone: 'Europe/Paris'}).format(ms)",
                [ends.timestamp() * 1000, {"fr": "fr-FR", "en": "en-GB"}[lang]]) + " " + time
        assert when in {words["until"].format(time=time, left=f"{n} min")
                        for n in (24, 25)}, when
        assert shown["tag"] == f"shop:{shop.id}"
        assert shown["data"] == {"url": f"/?post={offer_id}"}
        assert shown["icon"].endswith("/static/icons/icon-192.png")
        assert not shown["silent"]

        # An offer ending another day says which ("until Tue 15:57 · 30 h left" read as
        # today: regression).
        later_end = datetime.now(UTC) + timedelta(hours=30)
        later = {**offer, "expires_at": later_end.isoformat(), "ends_at": later_end.isoformat()}
        await deliver(cdp, web.http, registration,
                      {"type": "post", "post": later, "url": f"/?post={offer_id}"})
        [longer] = await notifications_when(page, lambda n: len(n) == 1
                                            and n[0]["body"] != shown["body"])
        weekday = await page.evaluate(
            "([ms, locale]) => new Intl.DateTimeFormat(locale, {weekday: 'short', "
            "timeZone: 'Europe/Paris'}).format(ms)",
            [later_end.timestamp() * 1000, {"fr": "fr-FR", "en": "en-GB"}[lang]])
        until = longer["body"].split("\n")[1]
        assert f"{weekday} {shop_clock(later_end.isoformat())}" in until, until

        # A payload for a post already over (delivered late): the shop's notification
        # says so instead, silently, replacing the earlier one (same tag).
        over = {**offer, "expires_at": (datetime.now(UTC) - timedelta(minutes=1)).isoformat(),
                "ends_at": (datetime.now(UTC) - timedelta(minutes=1)).isoformat()}
        await deliver(cdp, web.http, registration,
                      {"type": "post", "post": over, "url": f"/?post={offer_id}"})
        [replaced] = await notifications_when(page, lambda n: len(n) == 1 and n[0]["silent"])
        assert replaced["title"] == "Fromagerie Deluc"
        assert replaced["body"] == words["ended"]
        assert replaced["tag"] == f"shop:{shop.id}"
        # A link that is not a post's on this site is never followed: the feed instead.
        await deliver(cdp, web.http, registration,
                      {"type": "post", "post": offer, "url": "https://evil.example/"})
        [again] = await notifications_when(page, lambda n: len(n) == 1 and not n[0]["silent"])
        assert again["data"] == {"url": "/"}
        assert page.errors == []


async def test_the_notification_s_link_takes_the_open_page_to_the_post(
        redis: Redis, settings: Settings, browser: Any) -> None:
    """What a tap on the notification runs (sw.js openAlertUrl): the open page goes to
    /?post=<id>, which scrolls to the post's card and marks it."""
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http:
        shop = await add_shop(redis, settings, "Primeur du Marché", *STREET)
        post_id = await live_post(http, shop, redis, arrival("Fraises de Plougastel"))
        page = await phone(browser, web.http, "en")
        await page.wait_for_function(CONTROLLED)
        [worker] = browser.service_workers
        await worker.evaluate("(url) => openAlertUrl(url)", f"/?post={post_id}")
        await page.wait_for_url(f"**/?post={post_id}")
        await page.wait_for_function(LIVE)
        card = feed_card(post_id)
        await page.wait_for_selector(f"{card}.is-highlighted")
        assert await page.evaluate(
            "(sel) => document.activeElement === document.querySelector(sel)", card)
        assert await page.evaluate("() => window.streetfeed.postView") is None
        assert page.errors == []


@pytest.mark.parametrize("lang", ["fr", "en"])
async def test_a_post_out_of_the_feed_is_shown_alone_and_an_ended_one_says_so(
        redis: Redis, settings: Settings, browser: Any, lang: str) -> None:
    words = TEXTS[lang]
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http:
        far = await add_shop(redis, settings, "Cave des Chartrons", *FAR, category="wine")
        # Hours that say closed: the post on its own says so, as its card in a feed would.
        assert (await http.put(f"/api/v1/shops/{far.id}/hours", headers=auth(far), json={
            "timezone": "Europe/Paris", "weekly": {"mon": []}})).status_code == 200
        post_id = await live_post(http, far, redis, flash("Saint-Émilion 2019 -15 %",
                                                          minutes=90))
        where = f"?lat={STREET[0]}&lon={STREET[1]}&radius_m=500"
        page = await phone(browser, web.http, lang, f"{where}&post={post_id}")
        await page.wait_for_function("() => window.streetfeed.postView === 'ready'")
        assert await page.is_hidden("#empty") and await page.is_hidden("#filters")
        assert await page.inner_text("#post-view-heading") == "Cave des Chartrons"
        card = f'#post-view [data-post-id="{post_id}"]'
        assert "Saint-Émilion 2019 -15 %" in await page.inner_text(card)
        assert "km" in await page.inner_text(f"{card} .distance")  # ~2.4 km from here
        # Regression: the shop's profile came after the view was drawn, and was not shown.
        await page.wait_for_selector(f"{card} .open-state.is-closed")
        assert await page.evaluate("() => document.activeElement.id") == "post-view-heading"
        await no_sideways_scroll(page)
        assert await serious_axe(page) == []
        # Back: the feed, and the address without the post.
        await page.click(".post-view-back")
        await page.wait_for_function("() => window.streetfeed.postView === null")
        assert await page.is_visible("#empty")  # the feed: nothing within 500 m
        assert "post=" not in page.url

        # The same link once the shop withdrew the post: said kindly, the feed a tap away.
        withdrawn = await http.delete(f"/api/v1/shops/{far.id}/posts/{post_id}",
                                      headers=auth(far))
        assert withdrawn.status_code == 200
        await page.goto(f"{web.http}/{where}&post={post_id}")
        await page.wait_for_function("() => window.streetfeed.postView === 'gone'")
        assert await page.inner_text("#post-view-heading") == words["gone"]
        assert await page.inner_text(".post-view-back") == words["back"]
        await no_sideways_scroll(page)
        assert page.errors == []


# --- With the server's push routes and its pusher (branch `push`) -------------------------

# The browser's PushManager, stood in for: subscribe() answers a subscription to the test's
# receiver with the test's keys (headless Chromium has no push service to ask).
STAND_IN = """([endpoint, p256dh, auth]) => {
  const bytes = (s) => Uint8Array.from(atob(s.replace(/-/g, "+").replace(/_/g, "/") +
    "=".repeat((4 - (s.length % 4)) % 4)), (c) => c.charCodeAt(0)).buffer;
  let current = null;
  window.__push = { subscribed: 0, unsubscribed: 0 };
  PushManager.prototype.subscribe = async function (options) {
    window.__push.subscribed += 1;
    if (options.userVisibleOnly !== true) throw new DOMException("no", "NotAllowedError");
    current = {
      endpoint, expirationTime: null,
      options: { userVisibleOnly: true, applicationServerKey: options.applicationServerKey },
      getKey: (name) => bytes(name === "p256dh" ? p256dh : auth),
      toJSON: () => ({ endpoint, expirationTime: null, keys: { p256dh, auth } }),
      unsubscribe: async () => { current = null; window.__push.unsubscribed += 1; return true; },
    };
    return current;
  };
  PushManager.prototype.getSubscription = async function () { return current; };
}"""


@contextlib.contextmanager
def receiver() -> Iterator[PushReceiver]:
    """The suite's local push service (tests/push_receiver.py): it checks the VAPID JWT
    and decrypts each push with the browser keys it made."""
    server = PushReceiver().start()
    try:
        yield server
    finally:
        server.stop()


def push_settings(settings: Settings, got: PushReceiver) -> Settings:
    return settings.with_(push_allowed_hosts=(got.host,), push_poll_s=0.05,
                          pusher_block_ms=100)


DEVICE = "device-1"  # the browser's name at the receiver


async def subscribed_phone(browser: Any, base: str, got: PushReceiver, lang: str = "en",
                           ) -> Any:
    """A phone whose PushManager subscribes to the receiver (STAND_IN), notifications
    granted; `page.calls` the requests it makes to the subscriptions API."""
    sub = got.subscription(DEVICE)
    async with httpx.AsyncClient(base_url=base) as http:
        got.public_key = (await http.get("/api/v1/push/key")).json()["public_key"]
    await browser.grant_permissions(["notifications"], origin=base)
    stand_in = [sub["endpoint"], sub["keys"]["p256dh"], sub["keys"]["auth"]]
    await browser.add_init_script(f"({STAND_IN})({json.dumps(stand_in)})")
    page = await phone(browser, base, lang)
    page.subscription = sub
    calls: list[tuple[str, str, Any]] = []
    page.on("request", lambda r: calls.append(
        (r.method, r.url.split("/api/v1/push/")[1], r.post_data_json if r.post_data else None))
        if "/api/v1/push/subscriptions" in r.url else None)
    page.calls = calls
    return page


async def kept(page: Any) -> dict[str, Any]:
    stored: dict[str, Any] = await page.evaluate(
        "() => JSON.parse(localStorage.getItem('streetfeed.alerts'))")
    return stored


async def settled(page: Any, calls: int) -> None:
    """The page made `calls` requests to the subscriptions API, and their answers are in."""
    await wait_for(lambda: len(page.calls) >= calls, message=f"{calls} calls")
    await page.wait_for_function("() => window.streetfeed.alerts.busy === false")
    assert len(page.calls) == calls, page.calls


async def test_the_tap_subscribes_and_every_change_of_follows_is_told(
        redis: Redis, settings: Settings, browser: Any) -> None:
    with receiver() as got:
        settings = push_settings(settings, got)
        async with web_server(settings) as web, enricher(redis, settings), \
                httpx.AsyncClient(base_url=web.http) as http:
            baker = await add_shop(redis, settings, "Au Pain Doré", *STREET)
            cheese = await add_shop(redis, settings, "Fromagerie", *STREET, category="cheese")
            bread = await live_post(http, baker, redis, arrival("Pain de seigle"))
            comte = await live_post(http, cheese, redis, arrival("Comté 24 mois"))
            page = await subscribed_phone(browser, web.http, got)
            store = PushStore(redis)

            async def server_shops() -> list[str] | None:
                record = await store.get((await kept(page))["id"])
                return None if record is None else sorted(record.shops)

            # Follow the baker, then "Alert me": one question, one subscription.
            await page.click(f"{feed_card(bread)} .star")
            assert await page.evaluate("() => window.__asks") == {"permission": 0,
                                                                 "subscribe": 0}
            await page.click(f"{feed_card(bread)} .alert-me")
            await settled(page, 1)
            # Its card made again: the focus still on its "Alert me".
            assert await page.evaluate("(sel) => document.activeElement === "
                                       "document.querySelector(sel)",
                                       f"{feed_card(bread)} .alert-me")
            method, path, body = page.calls[0]
            assert (method, path) == ("POST", "subscriptions")
            assert body["subscription"] == {"endpoint": got.endpoint(DEVICE),
                                            "keys": page.subscription["keys"]}
            assert body["shops"] == [baker.id] and body["quiet_hours"] is True
            # Nothing else: not even the device's time zone (a hint of where it lives).
            assert set(body) == {"subscription", "shops", "quiet_hours"}
            # Granted already (by the test): nothing more to ask, one subscribe.
            assert await page.evaluate("() => window.__asks") == {"permission": 0,
                                                                 "subscribe": 1}
            stored = await kept(page)
            assert stored["id"].startswith("s_") and stored["secret"]
            assert "lat" not in json.dumps(stored) and "lon" not in json.dumps(stored)
            assert await server_shops() == [baker.id]
            assert await page.get_attribute(f"{feed_card(bread)} .alert-me",
                                            "aria-pressed") == "true"
            # Its label says so too (a filled bell alone read as "not yet").
            assert await page.inner_text(f"{feed_card(bread)} .alert-me") == "Alerts on"
            await open_filters(page)
            assert not await page.is_checked("#alerts-switch")  # one shop, from its card
            await note_is(page, f"Alerts on for 1 shop. {MANNERS}")

            # Following another: nothing told (only the baker alerts); the switch: both.
            await page.click(f"{feed_card(comte)} .star")
            await page.click("#alerts-switch")
            await settled(page, 2)
            assert page.calls[1][:2] == ("PUT", f"subscriptions/{stored['id']}")
            assert sorted(page.calls[1][2]["shops"]) == sorted([baker.id, cheese.id])
            assert await server_shops() == sorted([baker.id, cheese.id])
            assert await page.is_checked("#alerts-switch")
            await note_is(page, f"Alerts on for 2 shops. {MANNERS}")
            # Also at night: told with the same PUT.
            await page.check("#alerts-night")
            await settled(page, 3)
            assert page.calls[2][2]["quiet_hours"] is False
            record = await store.get(stored["id"])
            assert record is not None and record.quiet_hours is False

            # "Alert me" off on the cheese shop: PUT without it.
            await page.click(f"{feed_card(comte)} .alert-me")
            await settled(page, 4)
            assert page.calls[3][2]["shops"] == [baker.id]
            # The server forgot the subscription (its push service said 410): the next
            # change subscribes again, without a word.
            assert await store.delete(record)
            await page.click(f"{feed_card(comte)} .alert-me")
            await settled(page, 6)
            assert [c[0] for c in page.calls[4:]] == ["PUT", "POST"]
            again = await kept(page)
            assert again["id"] != stored["id"]
            assert await server_shops() == sorted([baker.id, cheese.id])
            await note_is(page, f"Alerts on for 2 shops. {MANNERS_AT_NIGHT}")

            # Unfollowing both: the last one DELETEs; alerts are off.
            await page.click(f"{feed_card(comte)} .star")
            await settled(page, 7)
            assert page.calls[6][2]["shops"] == [baker.id]
            await page.click(f"{feed_card(bread)} .star")
            await settled(page, 8)
            assert page.calls[7][:2] == ("DELETE", f"subscriptions/{again['id']}")
            assert await store.get(again["id"]) is None
            assert not await page.is_checked("#alerts-switch")
            assert (await kept(page))["id"] is None
            assert await page.evaluate("() => window.__push.unsubscribed") == 1

            # The switch on, then off: POST, then DELETE.
            await page.click(f"{feed_card(bread)} .star")
            await page.click("#alerts-switch")
            await settled(page, 9)
            assert page.calls[8][0] == "POST"
            await page.click("#alerts-switch")
            await settled(page, 10)
            assert page.calls[9][0] == "DELETE"
            assert (await kept(page))["shops"] == []
            await no_sideways_scroll(page)
            assert page.errors == []


async def test_end_to_end_a_shop_posts_and_the_notification_shows(
        redis: Redis, settings: Settings, browser: Any) -> None:
    """The page subscribes; the shop posts a flash offer; the pusher sends it, encrypted,
    to the receiver, which decrypts it; that payload, delivered to the service worker,
    shows the notification."""
    with receiver() as got:
        settings = push_settings(settings, got)
        async with web_server(settings) as web, enricher(redis, settings), \
                pusher(redis, settings), httpx.AsyncClient(base_url=web.http) as http:
            shop = await add_shop(redis, settings, "Fromagerie Deluc", *STREET,
                                  category="cheese")
            first = await live_post(http, shop, redis, arrival("Tomme de brebis"))
            page = await subscribed_phone(browser, web.http, got, "fr")
            await page.click(f"{feed_card(first)} .star")
            await open_filters(page)
            await page.click("#alerts-switch")
            # Quiet hours are the server's to keep (tests/test_push*): this test may run
            # at night, so the passer-by opts in.
            await page.check("#alerts-night")
            await settled(page, 2)

            offer_id = await live_post(http, shop, redis, flash("Comté -20 %", minutes=40))
            await wait_for(lambda: bool(got.delivered(DEVICE)), 15, "the pusher's alert")
            assert got.errors() == []  # VAPID verified, the body decrypted
            payload = got.delivered(DEVICE)[0].message
            assert payload is not None
            assert payload["type"] == "post" and payload["url"] == f"/?post={offer_id}"
            assert payload["post"]["id"] == offer_id

            cdp = await browser.new_cdp_session(page)
            await deliver(cdp, web.http, await registration_id(cdp, page), payload)
            [shown] = await notifications_when(page, lambda n: len(n) == 1)
            assert shown["title"] == "Fromagerie Deluc"
            assert shown["body"].startswith("Comté -20 %\njusqu'à ")
            assert shown["tag"] == f"shop:{shop.id}"
            assert shown["data"] == {"url": f"/?post={offer_id}"}
            assert page.errors == []


async def test_also_at_night_ticked_while_subscribing_reaches_the_server(
        redis: Redis, settings: Settings, browser: Any) -> None:
    """"Also at night" ticked while the first POST is on its way (its body left with quiet
    hours on) is told after it: a PUT once the POST is answered (it was dropped: no
    subscription id yet)."""
    with receiver() as got:
        settings = push_settings(settings, got)
        async with web_server(settings) as web, enricher(redis, settings), \
                httpx.AsyncClient(base_url=web.http) as http:
            shop = await add_shop(redis, settings, "Au Pain Doré", *STREET)
            bread = await live_post(http, shop, redis, arrival("Pain de seigle"))
            page = await subscribed_phone(browser, web.http, got)
            held: list[Any] = []
            # The POST reaches the real server only when the test lets it go.
            await page.route("**/api/v1/push/subscriptions", lambda route: held.append(route))
            await page.click(f"{feed_card(bread)} .star")
            await page.click(f"{feed_card(bread)} .alert-me")
            await wait_for(lambda: bool(held), message="the POST under way")
            assert json.loads(held[0].request.post_data)["quiet_hours"] is True
            await open_filters(page)
            await page.check("#alerts-night")
            await held[0].continue_()
            await settled(page, 2)
            assert page.calls[1][0] == "PUT" and page.calls[1][2]["quiet_hours"] is False
            record = await PushStore(redis).get((await kept(page))["id"])
            assert record is not None and record.quiet_hours is False


async def test_an_update_that_failed_is_retried_once_online_and_its_note_cleared(
        redis: Redis, settings: Settings, browser: Any) -> None:
    """Regression: the retry on `online` succeeded but "Alerts not updated: try again in a
    moment" stayed."""
    async with alerting_phone(redis, settings, browser, "Au Pain Doré",
                              "Pain de seigle") as (page, card):
        sub_id = (await kept(page))["id"]
        # Offline as far as the API goes: turning the last shop off cannot be told.
        await page.route("**/api/v1/push/subscriptions/*", lambda route: route.abort())
        await page.click(f"{card} .alert-me")
        await settled(page, 2)
        failed = "Alerts not updated: try again in a moment."
        await page.wait_for_selector(f"{card} .alert-note")
        assert await page.inner_text(f"{card} .alert-note") == failed
        assert await PushStore(redis).get(sub_id) is not None
        # Back online: told, and the note goes.
        await page.unroute("**/api/v1/push/subscriptions/*")
        await page.evaluate("() => dispatchEvent(new Event('online'))")
        await settled(page, 3)
        assert page.calls[2][:2] == ("DELETE", f"subscriptions/{sub_id}")
        assert await PushStore(redis).get(sub_id) is None
        await page.wait_for_function("() => window.streetfeed.alerts.note === null")
        await page.wait_for_selector(f"{card} .alert-note", state="detached")
        assert await page.is_hidden("#alerts-note")
        assert page.errors == []


async def test_a_failed_change_of_the_switch_s_options_is_said_there_not_on_a_card(
        redis: Redis, settings: Settings, browser: Any) -> None:
    """Regression: "Also at night" ticked offline put "try again" under the "Alert me" last
    tapped, on a card that had nothing to do with it."""
    async with alerting_phone(redis, settings, browser, "Boucherie Martin",
                              "Merguez maison") as (page, card):
        await page.route("**/api/v1/push/subscriptions/*", lambda route: route.abort())
        await open_filters(page)
        await page.check("#alerts-night")
        await settled(page, 2)
        await note_is(page, "Alerts not updated: try again in a moment.")
        assert await page.locator(f"{card} .alert-note").count() == 0
        assert page.errors == []


@contextlib.asynccontextmanager
async def alerting_phone(redis: Redis, settings: Settings, browser: Any, shop_name: str,
                         title: str) -> AsyncIterator[tuple[Any, str]]:
    """A street with one shop's post, and a subscribed phone that follows the shop and
    tapped "Alert me" on its card (the POST answered): the page and the card's selector."""
    with receiver() as got:
        settings = push_settings(settings, got)
        async with web_server(settings) as web, enricher(redis, settings), \
                httpx.AsyncClient(base_url=web.http) as http:
            shop = await add_shop(redis, settings, shop_name, *STREET)
            post_id = await live_post(http, shop, redis, arrival(title))
            page = await subscribed_phone(browser, web.http, got)
            card = feed_card(post_id)
            await page.click(f"{card} .star")
            await page.click(f"{card} .alert-me")
            await settled(page, 1)
            yield page, card
