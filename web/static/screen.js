// The in-shop screen (/screen/{shop_id}): a TV or tablet left on for weeks, nobody to
// touch it. It shows the shop's own posts highlighted, the neighbours' posts in turn,
// a QR code to the live feed and the time. It must never go blank nor grow:
//   - reconnects forever with its cursor (FeedClient: capped backoff, silence watchdog);
//   - while the feed is down it keeps the last cards, dimmed, under a banner saying for
//     how long (socket lost) or since when (the server says it cannot read the feed);
//     a reset keeps them until the new snapshot has replaced them;
//   - at most MAX_POSTS kept, expired ones dropped every second, only the cards on
//     screen exist in the DOM, a fixed set of timers;
//   - once a day at night, if the server answers, it reloads itself to shed anything
//     the browser itself may have grown.

import { buildCard, isPost, keepPhotos, openingState, photosOf, postTime } from "./cards.js";
import { FeedClient } from "./feedclient.js";
import { haversineM } from "./geo.js";
import { applyStatic, dateFormat, errorText, hhmm, plural, setLang, t } from "./i18n.js";
import { ProfileCache } from "./profiles.js";
import { registerServiceWorker } from "./pwa.js";

const MAX_POSTS = 200;
const ROTATE_MS = 8000;
const STALE_GRACE_MS = 3000; // a blip of a reconnect is not worth a banner
const RENDER_DELAY_MS = 60; // frames come in bursts: draw once per burst
const DEFAULT_RADIUS_M = 500;
const MAX_RADIUS_M = 5000;
const PROFILE_RETRY_MIN_MS = 1000;
const PROFILE_RETRY_MAX_MS = 60000;
const PROFILE_REFRESH_MS = 10 * 60 * 1000;
const RELOAD_AFTER_MS = 20 * 3600 * 1000;
const RELOAD_HOUR = 3; // local time, when shops are closed
// "3 held today" is read again when an own post's units left change, at most this often:
// a burst of holds (or a shop answering several) is one request.
const HELD_REFRESH_MS = 3000;
// ...and every minute while the screen shows: a hold the shop accepts moves no unit left,
// so no frame says the count changed. One read at a time (the next is planned when the
// last is over), given up after PROFILE_TIMEOUT_MS, so a slow server or a dead network
// never piles requests up; hidden, the profile's usual PROFILE_REFRESH_MS.
const HELD_POLL_MS = 60 * 1000;
const PROFILE_TIMEOUT_MS = 20 * 1000;

const $ = (id) => document.getElementById(id);
const screenEl = $("screen");
const ownEl = $("own-posts");
const neighboursEl = $("neighbours");
const staleEl = $("stale-banner");
const messageEl = $("screen-message");

const shopId = decodeURIComponent(location.pathname.split("/").filter(Boolean)[1] ?? "");
const params = new URLSearchParams(location.search);
const radius = (() => {
  const r = Number(params.get("radius_m"));
  return Number.isFinite(r) && r > 0 ? Math.min(r, MAX_RADIUS_M) : DEFAULT_RADIUS_M;
})();
const bootAt = Date.now();
const PROFILE_KEY = `streetfeed.screen.profile.${shopId}`;

let shop = null;
let client = null;
let state = "connecting";
let lostAt = bootAt; // not live since then (null: live)
let lastFrameAt = null;
let frames = 0; // received since the page started (a number: it does not grow memory)
let renderTimer = 0;
let ownStart = 0; // index of the first card on screen, in the sorted list
let neighbourStart = 0;
let ownNext = 0; // where the next rotation starts
let neighbourNext = 0;
// News shown out of turn (its page first) is no new start: the next turn resumes at the
// card that was next before it, found again by id (the news went in above it).
const resume = { own: null, neighbours: null }; // post id, or null
const nextId = { own: null, neighbours: null }; // the card the next turn starts with
let resetting = false; // between a reset and the end of the snapshot that follows it
let seenSinceReset = new Set();
let reloadTried = 0;
let hadSnapshot = false; // once one is in, an empty column means empty, not "loading"
let unknownShop = false; // the server said no such shop (the page was served while Redis was away)

const posts = new Map(); // id -> post
const shown = { own: [], neighbours: [] }; // cards on screen (for their countdowns)
// Neighbours' profiles, for each card's "open · closes at": a café advertised across the
// street must say when it is closed.
const profiles = new ProfileCache(refreshNeighbour);

window.streetfeedScreen = Object.freeze({
  get state() { return state; },
  get posts() { return posts.size; },
  get lastFrameAt() { return lastFrameAt; },
  get frames() { return frames; },
  get own() { return [...posts.values()].filter(isOwn).length; },
  get stale() { return !staleEl.hidden; },
  get shop() { return shop && { ...shop }; },
});

const isOwn = (post) => post.shop?.id === shopId;

const MAX_ROWS = 8;
// Long enough for a first snapshot over a slow line (under Lighthouse's throttling it came
// after 5 s, and the columns drawn at 3 s then jumped: CLS 0.15-0.23); a screen whose
// snapshot does not come shows its columns (and the outage banner) after this anyway.
const FIRST_DRAW_MS = 10000;
// The width screen.css gives an own post's photo (the page is .own-photo then): 66 % of
// the own column's card (2.4 parts of 3.4) in landscape, the text beside it; its card's
// whole width beside the QR code in portrait; the whole width on a phone-sized screen.
// The browser picks the variant for the screen's real pixels.
const OWN_PHOTO_SIZES = ["(max-width: 40rem) 100vw",
  "(orientation: portrait) calc(100vw - 18.9rem)",
  "calc(((100vw - 4.6rem) * 2.4 / 3.4 - 3.35rem) * 0.66)"].join(", ");

// --- Posts ---------------------------------------------------------------------------------

function upsert(post) {
  if (!isPost(post)) return;
  const expires = Date.parse(post.expires_at);
  if (!(expires > Date.now())) {
    posts.delete(post.id);
    return;
  }
  posts.delete(post.id); // re-insert: Map order is arrival order
  posts.set(post.id, post);
  if (resetting) seenSinceReset.add(post.id);
  while (posts.size > MAX_POSTS) evictOne();
}

/** Over the cap: drop the neighbour post that ends soonest (own posts last of all). */
function evictOne() {
  let victim = null;
  let victimScore = Infinity;
  for (const post of posts.values()) {
    const score = Date.parse(post.expires_at) + (isOwn(post) ? 1e15 : 0);
    if (score < victimScore) {
      victim = post.id;
      victimScore = score;
    }
  }
  if (victim === null) return;
  posts.delete(victim);
}

/** An opening post came or went: its shop's "open · closes at" line is asked for again. */
function openingChanged(post) {
  if (post?.kind !== "opening_change") return;
  if (isOwn(post)) loadProfile();
  else profiles.invalidate(post.shop.id);
}

/** Units left to hold on an own post, or null when it offers none. */
const leftOf = (post) => (Number.isInteger(post?.hold?.left) ? post.hold.left : null);

let heldTimer = 0;
let heldAskedAt = -Infinity;

/** The profile (its `held_today`) read again soon: at most once every HELD_REFRESH_MS. */
function refreshHeldToday(after = 0) {
  if (heldTimer) return;
  const wait = Math.max(after, heldAskedAt + HELD_REFRESH_MS - Date.now());
  heldTimer = setTimeout(() => {
    heldTimer = 0;
    if (profileLoading) { // its answer may predate the hold: ask again once it is in
      refreshHeldToday(500);
      return;
    }
    heldAskedAt = Date.now();
    loadProfile();
  }, wait);
}

function onFrame(frame, live) {
  lastFrameAt = Date.now();
  frames += 1;
  switch (frame.type) {
    case "post": {
      // A hold taken or ended on one of ours: how many were held today has moved.
      if (live && isPost(frame.post) && isOwn(frame.post) && posts.has(frame.post.id) &&
          leftOf(posts.get(frame.post.id)) !== leftOf(frame.post)) {
        refreshHeldToday();
      }
      const news = live && isPost(frame.post) && !posts.has(frame.post.id);
      upsert(frame.post);
      if (news) {
        // Show the news now rather than when its turn comes (newest first: the first
        // page), then go on where the turn was: news every few seconds on a busy street
        // kept the screen on its first pages (a cold try saw pages 1-3 of 15). An edit
        // (a hold taken, a title fixed) is shown where it is, in its turn.
        const which = isOwn(frame.post) ? "own" : "neighbours";
        resume[which] ??= nextId[which];
        if (which === "own") ownStart = 0;
        else neighbourStart = 0;
      }
      if (live && isPost(frame.post)) openingChanged(frame.post);
      break;
    }
    case "expired":
    case "withdrawn":
      // The shop's own opening post ending ends what it said: the open line follows.
      openingChanged(posts.get(frame.id));
      posts.delete(frame.id);
      seenSinceReset.delete(frame.id);
      break;
    case "reset":
      // Keep the old cards on screen until the new snapshot is in: no blank page.
      resetting = true;
      seenSinceReset = new Set();
      break;
    case "error":
      // What the server refused, in the screen's language (never its English message).
      messageEl.hidden = false;
      messageEl.textContent = errorText(frame.error);
      break;
    case "ping":
      hadSnapshot = true;
      if (resetting) {
        resetting = false;
        for (const id of [...posts.keys()]) if (!seenSinceReset.has(id)) posts.delete(id);
        seenSinceReset = new Set();
      }
      break;
    default:
      break;
  }
  scheduleRender();
}

function onState(next) {
  state = next;
  screenEl.dataset.state = next;
  if (next === "live") {
    lostAt = null;
    showStale(Date.now());
    if (!shop || !$("qr").naturalWidth) loadProfile(); // came back: fetch what failed
  } else {
    lostAt ??= Date.now();
    showStale(Date.now()); // now rather than at the next tick
  }
}

// --- Drawing -------------------------------------------------------------------------------

function scheduleRender() {
  if (renderTimer) return;
  renderTimer = setTimeout(() => {
    renderTimer = 0;
    render();
  }, RENDER_DELAY_MS);
}

const newestFirst = (a, b) => Date.parse(b.posted_at) - Date.parse(a.posted_at);

function distanceFromShop(post) {
  if (!shop) return 0;
  return haversineM(shop.lat, shop.lon, post.shop.lat, post.shop.lon);
}

/**
 * How many cards `container` shows at once: its --cols columns times the rows of at least
 * --card-min-rem that its height holds (screen.css). The screen's size decides, never the
 * cards: every card gets a cell of the same fixed size, so a page coming in moves nothing.
 */
function pageSize(container) {
  const style = getComputedStyle(container);
  const rem = parseFloat(getComputedStyle(document.documentElement).fontSize);
  const cols = Math.max(1, parseInt(style.getPropertyValue("--cols"), 10) || 1);
  const minHeight = (parseFloat(style.getPropertyValue("--card-min-rem")) || 12) * rem;
  const gap = parseFloat(style.rowGap) || 0;
  const rows = Math.min(MAX_ROWS,
    Math.max(1, Math.floor((container.clientHeight + gap) / (minHeight + gap))));
  // CSSOM, not a style attribute: allowed by the strict CSP.
  if (container.style.getPropertyValue("--rows") !== String(rows)) {
    container.style.setProperty("--rows", String(rows));
  }
  return cols * rows;
}

// What a card gives up, in this order, when its cell is too small for all of it (a long
// title, a countdown, a small screen): never its title, countdown or distance.
// Its text first, then the open line, its second and third producers, what is left to
// hold, the shop's category, its address and age, an offer's badge (its countdown takes
// the badge's place and says as much), its first producer, its price and discount (the
// point of a flash offer: a cold try saw "-30 %" dropped first while producers' badges
// stayed), and last the shop's name: a neighbour's "Closed, back at 14:00" or "-30 %"
// says nothing without whose it is (a cold try at 1280x720 saw cards without it).
const drop = (selector) => (cardEl) => cardEl.querySelector(selector)?.remove();
const countdownFirst = (cardEl) => {
  if (!cardEl.querySelector(".countdown")) return;
  cardEl.querySelector(".badge")?.remove();
  cardEl.classList.add("countdown-first");
};
const SHRINK = [(cardEl) => cardEl.classList.add("is-tight"), drop(".card-text"),
  drop(".open-state"), drop(".producer-item:nth-child(3)"),
  drop(".producer-item:nth-child(2)"), drop(".hold-line"), drop(".shop-category"),
  drop(".card-foot"), countdownFirst, drop(".producers"), drop(".facts"), drop(".shop")];

function fit(cardEl) {
  // Too narrow first: the distance under the badge (screen.css), then the height.
  if (cardEl.scrollWidth > cardEl.clientWidth + 1) cardEl.classList.add("is-narrow");
  for (const step of SHRINK) {
    if (cardEl.scrollHeight <= cardEl.clientHeight + 1) return;
    step(cardEl);
  }
}

function screenCard(post, own) {
  let profile = null;
  if (!own) {
    profiles.want(post.shop.id);
    profile = profiles.get(post.shop.id);
  }
  // The shop's own photos large; the neighbours' cells are sized for a title read from
  // across the shop, and keep it (screen.css).
  const photos = own ? { sizes: OWN_PHOTO_SIZES, eager: true, first: true } : null;
  // Own posts say how many are left to hold (asked for from a phone, in this very shop);
  // nobody taps a wall, so the neighbours' offers to hold are left to the phones.
  const card = buildCard(post, distanceFromShop(post), { hideDistance: own, shop: profile,
    photos, producerLinks: false, holds: own ? "count" : "none",
    openNow: own && typeof shop?.open_now === "boolean" ? shop.open_now : undefined });
  card.el.removeAttribute("tabindex"); // nothing to navigate on a wall screen
  card.el.classList.add(own ? "screen-card-own" : "screen-card");
  return { ...card, post };
}

/**
 * A neighbour's profile arrived or changed: its cards on screen are made again in place
 * (same cell, so nothing else moves), not the whole page.
 */
function refreshNeighbour(id) {
  shown.neighbours = shown.neighbours.map((old) => {
    if (old.post.shop.id !== id || !old.el.isConnected) return old;
    const card = screenCard(old.post, false);
    old.el.replaceWith(card.el);
    fit(card.el);
    return card;
  });
}

/** Fill `container` with the page of `list` that starts at `start`. */
function drawPage(container, pagerEl, list, start, own) {
  const size = pageSize(container);
  if (start >= list.length) start = 0;
  const cards = list.slice(start, start + size).map((post) => screenCard(post, own));
  // A page drawn again (every burst of frames) keeps the photos it already shows.
  for (const card of cards) keepPhotos(container, card.el);
  container.replaceChildren(...cards.map((card) => card.el));
  for (const card of cards) fit(card.el);
  const end = start + cards.length;
  pagerEl.textContent = list.length <= size ? ""
    : t("screen_page", { i: cards.length > 1 ? `${start + 1}–${end}` : start + 1,
      n: list.length });
  return { cards, start, next: end >= list.length ? 0 : end };
}

/** The posts of each column, newest first: the lists pages are cut from. */
function columns() {
  const all = [...posts.values()];
  return { own: all.filter(isOwn).sort(newestFirst),
    neighbours: all.filter((p) => !isOwn(p)).sort(newestFirst) };
}

function render() {
  const { own, neighbours } = columns();
  // An own post with a photo: the own posts take the larger share of the screen, so the
  // photo shows large (screen.css). Set before the pages are cut to the room there is.
  screenEl.classList.toggle("own-photo", own.some((post) => photosOf(post).length > 0));
  // The columns show once the first snapshot is in (or after FIRST_DRAW_MS without one):
  // drawn before, they would jump sideways when an own photo widens the own column.
  if (hadSnapshot || unknownShop || performance.now() >= FIRST_DRAW_MS) {
    screenEl.classList.add("is-drawn");
  }
  const ownResult = drawPage(ownEl, $("own-pager"), own, ownStart, true);
  const nResult = drawPage(neighboursEl, $("neighbours-pager"), neighbours, neighbourStart, false);
  ownStart = ownResult.start;
  neighbourStart = nResult.start;
  ownNext = ownResult.next;
  neighbourNext = nResult.next;
  nextId.own = own[ownNext]?.id ?? null;
  nextId.neighbours = neighbours[neighbourNext]?.id ?? null;
  shown.own = ownResult.cards;
  shown.neighbours = nResult.cards;
  profiles.prune(new Set(neighbours.map((p) => p.shop.id)));
  if (!own.length) ownEl.replaceChildren(emptyNote(shop ? "screen_empty_own" : "screen_loading"));
  if (!neighbours.length) {
    neighboursEl.replaceChildren(
      emptyNote(hadSnapshot ? "screen_empty_neighbours" : "screen_loading"));
  }
}

function emptyNote(key) {
  const p = document.createElement("p");
  p.className = "screen-empty";
  p.textContent = t(key);
  return p;
}

function rotate() {
  const lists = columns();
  const at = (which, otherwise) => {
    const id = resume[which];
    const i = id === null ? -1 : lists[which].findIndex((post) => post.id === id);
    return i >= 0 ? i : otherwise;
  };
  ownStart = at("own", ownNext);
  neighbourStart = at("neighbours", neighbourNext);
  resume.own = resume.neighbours = null;
  render();
}

function formatLost(ms) {
  const s = Math.max(1, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  return `${h} h ${String(m % 60).padStart(2, "0")}`;
}

function showStale(now) {
  // An unknown shop has no feed to lose: its message says what is wrong, not a banner.
  // The server saying it cannot read the feed is no blip (it waited before saying so):
  // no grace for that one.
  const notLive = !unknownShop && state === "not_live";
  const lost = !unknownShop && lostAt !== null && now - lostAt >= STALE_GRACE_MS;
  const stale = notLive || lost;
  staleEl.hidden = !stale;
  screenEl.classList.toggle("is-stale", stale);
  // The shop's time, as the clock beside it.
  if (notLive) {
    staleEl.textContent = t("not_live", { time: postTime(client.notLiveSince, shop?.timezone) });
  }
  else if (stale) staleEl.textContent = t("stale", { d: formatLost(now - lostAt) });
}

function showClock(now) {
  // The shop's time: a screen is often a kiosk left in UTC, and its clock sits beside
  // opening times given in the shop's zone.
  const timeZone = typeof shop?.timezone === "string" ? shop.timezone : undefined;
  let date;
  try {
    $("clock").textContent = hhmm(now, timeZone);
    date = dateFormat({ weekday: "long", day: "numeric", month: "long", timeZone }).format(now);
  } catch { // RangeError: a zone this browser lacks
    $("clock").textContent = hhmm(now);
    date = dateFormat({ weekday: "long", day: "numeric", month: "long" }).format(now);
  }
  $("clock").dateTime = new Date(now).toISOString();
  $("clock-date").textContent = date.charAt(0).toUpperCase() + date.slice(1);
}

function showShop() {
  if (!shop) return;
  $("screen-shop").textContent = shop.name;
  const held = shop.held_today;
  $("held-today").hidden = !(Number.isInteger(held) && held > 0);
  const opening = openingState(shop);
  const openEl = $("screen-open");
  openEl.hidden = !opening;
  if (opening) openEl.className = `screen-open ${opening.open ? "is-open" : "is-closed"}`;
  fitHead();
}

// What the head gives up, in this order, while it has no room for all of it (a long name,
// a 1280 px TV, a tablet stood up, French): the open line's time ("Open" stays), the logo,
// "today" of "3 held today", and last (a phone) the open line itself. Its height never
// changes (nothing below moves), the clock keeps its one line, and no pill is ever cut
// mid-word; only a name longer than all of that is, at its end.
const HEAD_SHRINK = ["short-open", "no-logo", "short-held", "no-open"];

function headTexts(top) {
  const opening = openingState(shop);
  if (opening) {
    $("screen-open").textContent = top.classList.contains("short-open")
      ? t(opening.open ? "shop_open" : "shop_closed") : opening.text;
  }
  const held = shop.held_today;
  if (Number.isInteger(held) && held > 0) {
    $("held-today").textContent = plural(
      top.classList.contains("short-held") ? "held_today_short" : "held_today", held);
  }
}

function headOverflows() {
  const cut = (node) => node.getClientRects().length > 0 && node.scrollWidth > node.clientWidth;
  const name = $("screen-shop");
  const lines = document.querySelector(".screen-lines");
  // A name cut counts where the lines share its row (landscape): giving them up makes it
  // room; on a row of its own (portrait) it would only cost them words.
  const sharing = lines.getBoundingClientRect().top < name.getBoundingClientRect().bottom;
  return (sharing && cut(name)) || [$("screen-open"), $("held-today"), lines,
    document.querySelector(".screen-brand")].some(cut);
}

function fitHead() {
  if (!shop) return;
  const top = document.querySelector(".screen-top");
  top.classList.remove(...HEAD_SHRINK);
  headTexts(top);
  for (const step of HEAD_SHRINK) {
    if (!headOverflows()) return;
    top.classList.add(step);
    headTexts(top);
  }
}

function tick() {
  const now = Date.now();
  let gone = false;
  for (const [id, post] of posts) {
    if (Date.parse(post.expires_at) <= now) {
      posts.delete(id);
      gone = true;
    }
  }
  if (gone) render();
  for (const card of shown.own) card.tick(now);
  for (const card of shown.neighbours) card.tick(now);
  showStale(now);
  showClock(now);
  if (shop?.next_change && Date.parse(shop.next_change.at) <= now - 2000 &&
      now - (shop.fetchedAt ?? 0) > 30000) {
    loadProfile(); // "open · closes at" is due to change
  }
  maybeReload(now);
}

/** Once a day, at night, if the server answers: start afresh. */
function maybeReload(now) {
  if (now - bootAt < RELOAD_AFTER_MS || new Date(now).getHours() !== RELOAD_HOUR) return;
  if (now - reloadTried < 60000) return;
  reloadTried = now;
  fetch("/healthz", { cache: "no-store" })
    .then((r) => {
      if (r.ok) location.reload();
    })
    .catch(() => {
      // server away: keep showing what we have, try again in a minute
    });
}

// --- Profile and start -----------------------------------------------------------------------

let profileRetry = PROFILE_RETRY_MIN_MS;
let profileTimer = 0;
let profileLoading = false;

const showing = () => document.visibilityState === "visible";

async function loadProfile() {
  if (profileLoading) return;
  profileLoading = true;
  clearTimeout(profileTimer);
  let next = showing() ? HELD_POLL_MS : PROFILE_REFRESH_MS;
  // A timer rather than AbortSignal.timeout(): the page's clock (and the tests') runs it.
  const abort = new AbortController();
  const giveUp = setTimeout(() => abort.abort(), PROFILE_TIMEOUT_MS);
  try {
    const response = await fetch(`/api/v1/shops/${encodeURIComponent(shopId)}`,
      { headers: { Accept: "application/json" }, signal: abort.signal });
    if (response.ok) {
      const profile = await response.json();
      setProfile({ ...profile, fetchedAt: Date.now() });
      try {
        localStorage.setItem(PROFILE_KEY, JSON.stringify(profile));
      } catch {
        // no storage: the next start needs the server
      }
      profileRetry = PROFILE_RETRY_MIN_MS;
      messageEl.hidden = true;
      unknownShop = false;
      showQr(true);
    } else if (response.status === 404) {
      unknownShop = true;
      messageEl.hidden = false;
      messageEl.textContent = t("screen_unknown_shop");
      showQr(false); // it would be a broken image: the QR of a shop that does not exist
      showStale(Date.now());
      next = PROFILE_RETRY_MAX_MS;
    } else {
      next = profileRetry;
      profileRetry = Math.min(PROFILE_RETRY_MAX_MS, profileRetry * 2);
    }
  } catch {
    next = profileRetry;
    profileRetry = Math.min(PROFILE_RETRY_MAX_MS, profileRetry * 2);
  } finally {
    clearTimeout(giveUp);
    profileLoading = false;
  }
  profileTimer = setTimeout(loadProfile, next);
}

/** Shown again (a screen woken up, a tab brought back): a count older than a minute is read. */
function onVisibility() {
  if (showing() && !profileLoading && Date.now() - (shop?.fetchedAt ?? 0) >= HELD_POLL_MS) {
    loadProfile();
  }
}

function showQr(show) {
  const qr = $("qr");
  qr.closest(".screen-qr").hidden = !show;
  if (show && !qr.naturalWidth) qr.src = `/api/v1/shops/${encodeURIComponent(shopId)}/qr.svg`;
}

function setProfile(profile) {
  const first = !shop;
  const moved = shop && (shop.lat !== profile.lat || shop.lon !== profile.lon);
  shop = profile;
  if (moved) client?.move({ lat: shop.lat, lon: shop.lon, radius_m: radius });
  showShop();
  showClock(Date.now()); // in the shop's zone from now on, not at the next tick
  $("qr").alt = t("qr_alt", { shop: profile.name });
  if (first) startFeed();
  render();
}

function startFeed() {
  if (client) return;
  client = new FeedClient({ lat: shop.lat, lon: shop.lon, radius_m: radius }, onFrame, onState,
    { params: { client: "screen" } });
  client.start();
}

function main() {
  const lang = params.get("lang");
  if (lang) setLang(lang);
  applyStatic();
  document.title = `${t("screen_title")}`;
  showClock(Date.now());
  render();
  setTimeout(render, FIRST_DRAW_MS);
  try {
    const cached = JSON.parse(localStorage.getItem(PROFILE_KEY) ?? "null");
    if (cached && cached.id === shopId && Number.isFinite(cached.lat)) setProfile(cached);
  } catch {
    // nothing cached
  }
  $("qr").src = `/api/v1/shops/${encodeURIComponent(shopId)}/qr.svg`;
  loadProfile();
  setInterval(tick, 1000);
  setInterval(rotate, ROTATE_MS);
  addEventListener("resize", () => { // the tablet was turned
    fitHead();
    scheduleRender();
  });
  document.addEventListener("visibilitychange", onVisibility);
  registerServiceWorker();
}

main();
