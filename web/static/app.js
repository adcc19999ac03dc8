// The passer-by page: find the street, open the feed, keep the cards true to it.

import {
  autoTitle, buildCard, el, isPost, isProducerId, keepPhotos, openingState, postTime, postZone,
  producerHref, producersOf,
} from "./cards.js";
import { categoryText } from "./categories.js";
import { Alerts } from "./alerts.js";
import { FeedClient } from "./feedclient.js";
import { FreshPosts } from "./fresh.js";
import { formatDistance, haversineM } from "./geo.js";
import { applyStatic, errorKey, getLang, onLangChange, otherLang, plural, setLang, t }
  from "./i18n.js";
import { HoldsUi } from "./holds.js";
import { loadKept, saveKept } from "./kept.js";
import { FeedMap, loadConfig } from "./map.js";
import {
  DEFAULT_RADIUS_M, DEMO_STREET, follow, fromUrl, locate, mayLocateUnasked, rememberChoice,
} from "./position.js";
import { POST_ID, PostView } from "./postview.js";
import { ProducerView } from "./producer.js";
import { ProfileCache } from "./profiles.js";
import { registerServiceWorker } from "./pwa.js";

const RADII_M = [100, 250, 500, 1000, 2000];
const LOCATE_TIMEOUT_MS = 5000;
// The fallback centre comes from /api/v1/config; a server slower than this is not
// waited for (the built-in demo street is shown).
const CONFIG_WAIT_MS = 1500;
// GPS wanders by a few metres standing still; re-subscribing on every wobble would reset
// the feed for nothing.
const MOVE_THRESHOLD_M = 25;
const SAVE_DELAY_MS = 1000; // frames come in bursts: write the kept posts once per burst
const SEEN_REFRESH_MS = 60000; // while live, what is shown is seen: say so now and then
// /?post=<id> waits this long at most for the feed's first snapshot to know whether the
// post is among its cards (else it is shown on its own).
const SNAPSHOT_WAIT_MS = 4000;

const $ = (id) => document.getElementById(id);
const feedEl = $("feed");
const emptyEl = $("empty");
const statusEl = $("status");
const noticeEl = $("notice");
const errorEl = $("error");
const announcerEl = $("announcer");
const radiusEl = $("radius");
const langEl = $("lang");
const categoryEl = $("category");
const followedOnlyEl = $("followed-only");
const localOnlyEl = $("local-only");
const viewToggleEl = $("view-toggle");
const mapPanelEl = $("map-panel");
const offlineEl = $("offline");
const notLiveEl = $("not-live");
const locateEl = $("locate");
const locateTextEl = $("locate-text");
const locateButtonEl = $("locate-button");
const filtersToggleEl = $("filters-toggle");
const filtersCountEl = $("filters-count");
const filterPanelEl = $("filter-panel");
const pillEl = $("new-pill");

const FOLLOWS_KEY = "streetfeed.follows";
const VIEW_KEY = "streetfeed.view";
const LOCAL_KEY = "streetfeed.local";
const MAX_FOLLOWS = 200;

const fromLink = fromUrl();
let position = fromLink.position;
let radius = fromLink.radius ?? DEFAULT_RADIUS_M;
let onDemoStreet = false;
let loading = true; // until the first snapshot (or the one after a reset) is complete
// Between a reset and the end of the snapshot after it, the cards already shown stay
// (no blank page while a server in an outage holds the snapshot back); those the new
// snapshot does not bring back go when it ends.
let resetting = false;
let seenSinceReset = new Set();
let client = null;

const posts = new Map(); // id -> post exactly as the server sent it
const cards = new Map(); // id -> what buildCard returned
const EAGER_PHOTOS = 2; // cards at the top whose photo is not lazy
const seenAt = new Map(); // id -> when the post was last seen live (ms), for the kept copy
// Posts shown from the device's copy (kept.js) that the server has not sent again yet:
// their cards say "seen at HH:MM" rather than pass for live.
const keptOnly = new Set();
const ended = new Set(); // ids whose post is over, their card left in view (see end())
let saveTimer = 0;
let savedAt = 0;
// Only a page that has had the live feed rewrites the kept copy: one started offline, or
// away from where the posts were kept (so none shows), must not wipe it.
let wasLive = false;

// What the passer-by chose to see. Followed shops live in this browser only.
const filters = { kind: "", category: "", followedOnly: false, local: loadLocal() };
const follows = new Set(loadFollows());
const profiles = new ProfileCache((shopId) => {
  refreshShop(shopId);
  producerView.refreshShop(shopId);
  // A post shown alone (an alert's link) says "open now" once its shop's profile is in.
  if (postView.post?.shop?.id === shopId) postView.render();
});
const holdsUi = new HoldsUi({
  entry: $("my-holds"), toggle: $("my-holds-toggle"), panel: $("my-holds-panel"),
  list: $("my-holds-list"), note: $("holds-note"), dialog: $("hold-dialog"),
});
const onHold = (post, button) => holdsUi.ask(post, button);
const producerView = new ProducerView($("producer-view"), {
  position: () => position && { ...position },
  profiles,
  onBack: () => leaveProducer(),
  onHold,
});
const alerts = new Alerts({
  switchEl: $("alerts-switch"), nightEl: $("alerts-night"), nightRow: $("alerts-night-row"),
  noteEl: $("alerts-note"), follows: () => [...follows],
  onChange: (alerted) => alertsChanged(alerted),
});
let shownAlerted = new Set(alerts.snapshot.shops); // the shops whose cards say "alerting"
let shownNote = { shop: null, text: "" }; // the note a card shows under its "Alert me"
const postView = new PostView($("post-view"), {
  position: () => position && { ...position },
  onBack: () => leavePost(),
  cardOptions: (post) => cardOptions(post),
});
let highlighted = null; // the post an alert's link opened, its card marked in the feed
let snapshotIn = () => {};
const firstSnapshot = new Promise((resolve) => { snapshotIn = resolve; });
let feedMap = null;
let mapOpen = false;
const fresh = new FreshPosts(pillEl, $("new-pill-label"), (id) => cards.get(id)?.el);

function loadFollows() {
  try {
    const ids = JSON.parse(localStorage.getItem(FOLLOWS_KEY) ?? "[]");
    return Array.isArray(ids) ? ids.filter((id) => typeof id === "string").slice(0, MAX_FOLLOWS)
      : [];
  } catch {
    return []; // storage disabled or damaged: start with none
  }
}

// "Local" is the one filter the server applies (the socket's `local`): kept like the
// follows, so the passer-by who wants local produce gets it on every visit.
function loadLocal() {
  try {
    return localStorage.getItem(LOCAL_KEY) === "1";
  } catch {
    return false;
  }
}

function saveLocal() {
  try {
    if (filters.local) localStorage.setItem(LOCAL_KEY, "1");
    else localStorage.removeItem(LOCAL_KEY);
  } catch {
    // Private browsing: the choice lasts for this visit.
  }
}

/** What the feed's socket is asked for: the area, and whether only local posts. */
const subscription = () => ({ ...position, radius_m: radius, local: filters.local });

function saveFollows() {
  try {
    localStorage.setItem(FOLLOWS_KEY, JSON.stringify([...follows].slice(-MAX_FOLLOWS)));
  } catch {
    // Private browsing: following lasts for this visit.
  }
}

// For tests and curious developers: read it, don't write it.
window.streetfeed = Object.freeze({
  get state() { return client ? client.state : "connecting"; },
  get cursor() { return client ? client.cursor : null; },
  posts,
  get position() { return position && { ...position }; },
  get radius_m() { return radius; },
  get lang() { return getLang(); },
  get follows() { return [...follows]; },
  get filters() { return { ...filters }; },
  get map() { return feedMap && feedMap.isReady ? { pins: feedMap.pins.size } : null; },
  get producer() { return producerView.id; },
  get holds() { return holdsUi.snapshot; },
  get alerts() { return alerts.snapshot; },
  get postView() { return postView.isOpen ? postView.state : null; },
});

function setText(node, key, vars) {
  // Keeping the key on the node lets a language switch re-translate it with the rest.
  node.dataset.i18n = key;
  node.textContent = t(key, vars);
}

/** The zone of the shops shown (a region's), the one their cards' times are in: the
 * device's may be another (a kiosk left in UTC). */
function feedZone() {
  for (const post of posts.values()) {
    const zone = postZone(post);
    if (zone) return zone;
  }
  return null;
}

function showStatus(state) {
  statusEl.dataset.state = state;
  setText($("status-label"), `status_${state}`);
  if (state === "live") {
    errorEl.hidden = true;
    wasLive = true;
  }
  // The server cannot read the feed: the cards are as of then, and the page says so.
  const notLive = state === "not_live";
  notLiveEl.hidden = !notLive;
  document.body.classList.toggle("is-not-live", notLive);
  if (notLive) setText(notLiveEl, "not_live", { time: postTime(client.notLiveSince, feedZone()) });
  showOffline();
}

const isOffline = () => navigator.onLine === false || client?.state === "offline";

function showOffline() {
  const offline = isOffline();
  offlineEl.hidden = !offline;
  document.body.classList.toggle("is-offline", offline);
  order(); // "looking for what's new" is not true offline
}

function visible(post) {
  if (filters.kind && post.kind !== filters.kind) return false;
  if (filters.category && post.shop.category !== filters.category) return false;
  if (filters.followedOnly && !follows.has(post.shop.id)) return false;
  // The server judges which producers are near enough; a post naming none is not local
  // (a card kept from before the chip was pressed leaves at once, not at the snapshot).
  if (filters.local && !producersOf(post).length) return false;
  return true;
}

function showNotice(key) {
  noticeEl.hidden = !key;
  if (key) setText(noticeEl, key);
}

const distanceTo = (post) => haversineM(position.lat, position.lon, post.shop.lat, post.shop.lon);

/**
 * The card the reader is looking at: the first one shown whose bottom is in the view
 * (null while the top of the feed is in view: a new card lands there in sight, pushing
 * the others down, which is where the passer-by expects it).
 */
function readerAnchor() {
  if (feedEl.getBoundingClientRect().top >= 0) return null;
  for (const el of feedEl.children) {
    if (el.hidden) continue;
    const box = el.getBoundingClientRect();
    if (box.bottom > 0 && box.top < innerHeight) return { el, top: box.top };
  }
  return null;
}

/**
 * Run a change to the cards without moving what the reader sees (cards added, ended or
 * removed above it shift the page by as much, so it scrolls by as much: the eye stays on
 * the same line), nor stranding keyboard focus on a removed node. Whether the browser's
 * own scroll anchoring did part of it or not, the card read ends where it was.
 */
function mutate(change) {
  const active = document.activeElement;
  const focusedCard = feedEl.contains(active) ? active.closest(".card") : null;
  const focusedId = focusedCard?.dataset.postId;
  const focusedIndex = focusedId ? [...feedEl.children].indexOf(focusedCard) : -1;
  // A control inside the card (its "Hold it" button, say): the same one in the card made
  // again, not the card around it, where a keyboard user would lose their place.
  const control = active !== focusedCard && active?.classList[0];
  const anchor = readerAnchor();
  change();
  order();
  if (anchor?.el.isConnected && !anchor.el.hidden) {
    const moved = anchor.el.getBoundingClientRect().top - anchor.top;
    if (Math.abs(moved) >= 1) scrollBy({ top: moved, behavior: "instant" });
  }
  scheduleSave();
  if (!focusedId) return;
  const card = cards.get(focusedId)?.el;
  const target = (control && card?.querySelector(`.${CSS.escape(control)}`)) || card ||
    feedEl.children[Math.min(focusedIndex, feedEl.children.length - 1)];
  if (target && document.activeElement !== target) target.focus({ preventScroll: true });
}

/** Nearest first; at equal distance (same shop), newest first. Filtered-out cards hide. */
function order() {
  const sorted = [...cards.values()].sort((a, b) => a.dist - b.dist || b.postedAt - a.postedAt);
  const shown = [];
  sorted.forEach((card, i) => {
    // Only move what is out of place: moving nodes is what makes screen readers lose track.
    if (feedEl.children[i] !== card.el) feedEl.insertBefore(card.el, feedEl.children[i] ?? null);
    const show = visible(posts.get(card.el.dataset.postId));
    card.el.hidden = !show;
    if (show) shown.push(card);
  });
  shown.forEach((card, i) => {
    card.el.setAttribute("aria-posinset", String(i + 1));
    card.el.setAttribute("aria-setsize", String(shown.length));
    // The first cards' photos are in the first view, the one the page is judged on (its
    // largest paint): asked for now, not once layout finds them in view. The others
    // wait until they come near. Not before the snapshot is in: the first card to
    // arrive is not the first card.
    if (!loading && i < EAGER_PHOTOS) {
      const img = card.el.querySelector("img.card-photo");
      if (img?.loading === "lazy") img.loading = "eager";
    }
  });
  feedEl.setAttribute("aria-busy", String(loading));
  // A feed role promises articles inside: an empty street is said by emptyEl instead.
  if (shown.length) feedEl.setAttribute("role", "feed");
  else feedEl.removeAttribute("role");
  emptyEl.hidden = shown.length > 0;
  if (!shown.length) {
    const waiting = isOffline() ? "empty_offline" : "loading";
    const nothing = filters.local ? "empty_local" : "empty";
    setText(emptyEl, loading ? waiting : cards.size ? "empty_filtered" : nothing);
  }
  syncCategories();
  syncMap(shown);
  fresh.sync();
}

function syncCategories() {
  const present = new Set([...posts.values()].map((p) => p.shop.category).filter(Boolean));
  if (filters.category) present.add(filters.category); // keep the choice while it is empty
  // Codes shown by their label in the page's language: a language switch relabels them.
  const wanted = [...present].map((code) => [code, categoryText(code)])
    .sort(([, a], [, b]) => a.localeCompare(b, getLang()));
  const have = [...categoryEl.options].slice(1).map((o) => [o.value, o.textContent]);
  if (wanted.join("\n") === have.join("\n")) return;
  while (categoryEl.options.length > 1) categoryEl.remove(1);
  for (const [category, label] of wanted) {
    const option = document.createElement("option");
    option.value = category;
    option.textContent = label;
    categoryEl.append(option);
  }
  categoryEl.value = filters.category;
}

function syncMap(shown) {
  if (!mapOpen || !feedMap?.isReady) return;
  const live = shown.filter((card) => !ended.has(card.el.dataset.postId));
  feedMap.show(live.map((card) => posts.get(card.el.dataset.postId)),
    (shopId) => follows.has(shopId), (shopId) => openingState(profiles.get(shopId)));
}

/** What a card of `post` offers on this page: follow its shop, alerts once followed,
 * "Hold it for me"; its shop's profile for "open now". */
function cardOptions(post) {
  const shopId = post.shop.id;
  profiles.want(shopId);
  const followed = follows.has(shopId);
  return {
    shop: profiles.get(shopId),
    follow: { followed, onToggle: () => toggleFollow(post.shop) },
    alert: followed ? { on: alerts.isAlerted(shopId), onToggle: () => alerts.toggleShop(shopId),
      note: alerts.noteFor(shopId) } : undefined,
    onHold,
  };
}

function place(post) {
  const card = buildCard(post, distanceTo(post), {
    ...cardOptions(post),
    seenAt: keptOnly.has(post.id) ? seenAt.get(post.id) : undefined,
  });
  if (post.id === highlighted) card.el.classList.add("is-highlighted");
  const old = cards.get(post.id);
  if (old) {
    keepPhotos(old.el, card.el);
    old.el.replaceWith(card.el);
  }
  if (ended.has(post.id)) markEnded(card.el); // rebuilt (a language switch): still over
  cards.set(post.id, card);
  return card;
}

function upsert(post, live) {
  if (!isPost(post)) return;
  if (Date.parse(post.expires_at) <= Date.now()) {
    remove(post.id); // a replay can carry a post whose time is already up
    return;
  }
  const isNew = !posts.has(post.id);
  ended.delete(post.id); // back (an edit replayed): a live card again
  posts.set(post.id, post);
  keptOnly.delete(post.id); // the server sent it: live, not a kept copy
  seenAt.set(post.id, Date.now());
  if (resetting) seenSinceReset.add(post.id);
  const card = place(post);
  if (live && isNew) {
    card.el.classList.add("is-new");
    fresh.add(post.id); // the pill counts it while its card is out of view
    announcerEl.textContent = t("announce", {
      title: autoTitle(post) ?? post.title, shop: post.shop.name,
      dist: formatDistance(card.dist, getLang()),
    });
  }
}

/** Whether any of the card is on screen now. */
function inView(el) {
  if (el.hidden || !el.isConnected) return false;
  const box = el.getBoundingClientRect();
  return box.bottom > 0 && box.top < innerHeight && box.height > 0;
}

/** Whether taking the card away moves nothing else on screen: the last one shown, with
 * the page not so short then that the browser would have to scroll it back. */
function goesUnnoticed(cardEl) {
  const after = [...feedEl.children].slice([...feedEl.children].indexOf(cardEl) + 1);
  if (after.some((e) => !e.hidden)) return false;
  const height = cardEl.getBoundingClientRect().height;
  return scrollY === 0 || scrollY + innerHeight <= document.documentElement.scrollHeight - height;
}

/**
 * A post that ended live (expired, withdrawn): a card on screen stays where it is, said
 * ended, so the one being read neither vanishes nor pulls the others up under the eye;
 * it goes once out of view (sweepEnded). Elsewhere (or when its going moves nothing) it
 * goes at once.
 */
function end(id) {
  holdsUi.postEnded(id);
  const card = cards.get(id);
  if (!card || !inView(card.el) || goesUnnoticed(card.el)) {
    remove(id);
    return;
  }
  if (ended.has(id)) return;
  ended.add(id);
  fresh.forget(id);
  markEnded(card.el);
}

function markEnded(cardEl) {
  cardEl.classList.add("is-ended");
  cardEl.setAttribute("aria-disabled", "true");
  const ask = cardEl.querySelector(".hold-ask");
  if (ask) ask.disabled = true; // nothing left to hold there
  // Said in a line of the card, in its place: nothing covered, nothing moved. An offer's
  // countdown line says it (laid over the foot, the mark hid the address and left the
  // hidden countdown's gap: a cold user's find); elsewhere the foot's line, its address
  // and age of no use once it is over (laid over it, the mark read "31 rue Sainte-Ca
  // [Terminé]enant": the next cold user).
  const timer = cardEl.querySelector(".countdown");
  const foot = cardEl.querySelector(".card-foot");
  const mark = timer ?? el("p");
  if (timer) timer.classList.remove("soon"); // cards.js counts it down no more
  mark.classList.add("ended-mark");
  setText(mark, "card_ended");
  if (timer) return;
  if (foot) {
    foot.hidden = true;
    mark.classList.add("in-foot");
    foot.before(mark);
  } else {
    cardEl.querySelector(".card-head")?.after(mark);
  }
}

/** The ended cards now out of view go (the reader's card stays put: see mutate). */
function sweepEnded() {
  const gone = [...ended].filter((id) => !cards.has(id) || !inView(cards.get(id).el));
  if (gone.length) mutate(() => gone.forEach(remove));
}

function remove(id) {
  holdsUi.postEnded(id); // gone from the list: over, as far as this page knows
  ended.delete(id);
  fresh.forget(id);
  posts.delete(id);
  keptOnly.delete(id);
  seenAt.delete(id);
  seenSinceReset.delete(id);
  cards.get(id)?.el.remove();
  cards.delete(id);
}

/** The snapshot after a reset is complete: drop the cards it did not bring back. */
function endReset() {
  resetting = false;
  for (const id of [...posts.keys()]) if (!seenSinceReset.has(id)) remove(id);
  seenSinceReset = new Set();
}

function rebuildAll() {
  mutate(() => posts.forEach(place));
}

/** Rebuild the cards of one shop (followed, or its opening hours changed). */
function refreshShop(shopId) {
  const mine = [...posts.values()].filter((p) => p.shop.id === shopId);
  if (mine.length) mutate(() => mine.forEach(place));
}

function toggleFollow(shop) {
  const shopId = shop.id;
  const name = String(shop.name ?? "");
  if (follows.has(shopId)) follows.delete(shopId);
  else follows.add(shopId);
  saveFollows();
  announcerEl.textContent = t(follows.has(shopId) ? "now_following" : "not_following",
    { shop: name });
  refreshShop(shopId);
  alerts.followsChanged(); // an unfollowed shop alerts no more
  postView.render();
  // Keep the focus on the star the passer-by just pressed (its card was rebuilt).
  const card = [...cards.values()].find((c) => posts.get(c.el.dataset.postId)?.shop.id === shopId &&
    !c.el.hidden);
  card?.el.querySelector(".star")?.focus({ preventScroll: true });
}

/**
 * The alerted shops changed (a tap, or the server's answer undoing it): the cards of the
 * shops concerned are made again, the focus kept on the "Alert me" it was on.
 */
function alertsChanged(alerted) {
  const now = new Set(alerted);
  const changed = [...new Set([...now, ...shownAlerted])]
    .filter((id) => now.has(id) !== shownAlerted.has(id));
  shownAlerted = now;
  // The tapped card's note came or went (a refusal may leave the shops as they were).
  const shop = alerts.tapped;
  const note = { shop, text: shop ? alerts.noteFor(shop) : "" };
  if (note.shop !== shownNote.shop || note.text !== shownNote.text) {
    for (const id of [shownNote.shop, note.shop]) if (id && !changed.includes(id)) changed.push(id);
    if (note.text) announcerEl.textContent = note.text;
    shownNote = note;
  }
  if (!changed.length) return;
  const active = document.activeElement;
  const focusedPost = active?.classList.contains("alert-me") ?
    active.closest("#feed .card")?.dataset.postId : null;
  changed.forEach(refreshShop);
  postView.render();
  const button = focusedPost && cards.get(focusedPost)?.el.querySelector(".alert-me");
  button?.focus({ preventScroll: true });
}

function onFrame(frame, live) {
  producerView.onFrame(frame);
  postView.onFrame(frame);
  switch (frame.type) {
    case "post":
      mutate(() => upsert(frame.post, live));
      // Its hours changed: "open now · closes at" on its cards must follow.
      if (live && frame.post?.kind === "opening_change" && frame.post.shop?.id) {
        profiles.invalidate(frame.post.shop.id);
      }
      break;
    case "expired":
    case "withdrawn": {
      // A shop's own opening post ending ends what it said about the shop: ask again.
      const gone = posts.get(frame.id);
      mutate(() => end(frame.id));
      if (gone?.kind === "opening_change" && gone.shop?.id) profiles.invalidate(gone.shop.id);
      break;
    }
    case "reset":
      loading = true;
      resetting = true;
      seenSinceReset = new Set();
      mutate(() => {}); // aria-busy while the snapshot comes
      break;
    case "ping":
      if (loading) {
        loading = false;
        mutate(() => {
          if (resetting) endReset();
        });
        snapshotIn();
      }
      break;
    case "error":
      errorEl.hidden = false;
      setText(errorEl, errorKey(frame.error));
      break;
    default:
      break; // newer server, older page: ignore what we don't know
  }
}

/** The posts shown, as the device keeps them: nearest first (what the page shows first). */
function saveNow() {
  clearTimeout(saveTimer);
  saveTimer = 0;
  if (!wasLive) return;
  const now = Date.now();
  const live = client?.state === "live";
  const entries = [];
  for (const el of feedEl.children) {
    const id = el.dataset.postId;
    // While live, every card shown is the street as it is now: seen now.
    if (live && !keptOnly.has(id)) seenAt.set(id, now);
    if (posts.has(id) && !ended.has(id)) entries.push({ post: posts.get(id), seenAt: seenAt.get(id) ?? now });
  }
  saveKept(entries, now);
  savedAt = now;
}

function scheduleSave() {
  if (!saveTimer) saveTimer = setTimeout(saveNow, SAVE_DELAY_MS);
}

/** Show what the device kept from the last visit, within the radius, until the feed answers. */
function restoreKept() {
  const now = Date.now();
  for (const { post, seenAt: at } of loadKept(now)) {
    if (!isPost(post) || posts.has(post.id) || distanceTo(post) > radius) continue;
    posts.set(post.id, post);
    seenAt.set(post.id, at);
    keptOnly.add(post.id);
  }
  mutate(() => posts.forEach(place));
}

// Expiry is enforced here too: a phone in a pocket may miss the `expired` frame, and a
// passer-by must never walk to an offer that is over.
function tick() {
  const now = Date.now();
  const over = [...cards].filter(([id, c]) => c.expiresAt <= now && !ended.has(id))
    .map(([id]) => id);
  if (over.length) mutate(() => over.forEach(end));
  sweepEnded();
  cards.forEach((card) => card.tick(now));
  producerView.tick(now);
  postView.tick(now);
  if (client?.state === "live" && now - savedAt >= SEEN_REFRESH_MS) scheduleSave();
  const inView = new Set([...posts.values()].map((p) => p.shop.id));
  inView.forEach((shopId) => profiles.want(shopId, now)); // due ones only
  profiles.prune(inView);
}

function moveTo(next) {
  position = next;
  rebuildAll(); // distances changed
  client?.move(subscription());
  feedMap?.move(position, radius);
  if (producerView.isOpen) producerView.render(); // "km from here" and the shops' order
}

function onDevicePosition(next) {
  if (!onDemoStreet &&
      haversineM(position.lat, position.lon, next.lat, next.lon) < MOVE_THRESHOLD_M) return;
  onDemoStreet = false; // a real fix arrived late: leave the demo street
  showNotice(null);
  moveTo(next);
}

function setupControls() {
  const radii = RADII_M.includes(radius) ? RADII_M : [...RADII_M, radius].sort((a, b) => a - b);
  for (const r of radii) {
    const option = document.createElement("option");
    option.value = String(r);
    option.textContent = formatDistance(r, getLang());
    option.selected = r === radius;
    radiusEl.append(option);
  }
  radiusEl.addEventListener("change", () => {
    radius = Number(radiusEl.value);
    client?.move(subscription());
    feedMap?.move(position, radius);
  });
  setupFilters();
  const labelLang = () => {
    langEl.textContent = t("switch_to");
    langEl.lang = otherLang(); // so the label is read with the right voice
    langEl.setAttribute("aria-label", t("switch_label"));
  };
  labelLang();
  langEl.addEventListener("click", () => setLang(otherLang()));
  onLangChange(() => {
    labelLang();
    showStatus(client ? client.state : "connecting"); // "not live since" has a time in it
    for (const option of radiusEl.options) {
      option.textContent = formatDistance(Number(option.value), getLang());
    }
    rebuildAll();
    labelView();
    labelFilters();
    fresh.relabel();
    producerView.render();
    holdsUi.relabel();
    alerts.relabel();
    postView.render();
  });
}

/** On a phone the filters fold behind one button, which says how many are on. */
function labelFilters() {
  const active = [filters.kind, filters.category, filters.followedOnly, filters.local]
    .filter(Boolean).length;
  filtersCountEl.hidden = active === 0;
  filtersCountEl.textContent = String(active);
  // The badge's number alone would be read as "2": the button's name says what it counts.
  if (active) {
    filtersToggleEl.setAttribute("aria-label",
      `${t("filters_show")}, ${plural("filters_active", active)}`);
  } else {
    filtersToggleEl.removeAttribute("aria-label");
  }
}

function setupFilters() {
  const filtersChanged = () => {
    labelFilters();
    mutate(() => {});
  };
  filtersToggleEl.addEventListener("click", () => {
    const open = filtersToggleEl.getAttribute("aria-expanded") !== "true";
    filtersToggleEl.setAttribute("aria-expanded", String(open));
    filterPanelEl.classList.toggle("is-open", open);
  });
  const kindButtons = [...document.querySelectorAll("#kind-filter [data-kind]")];
  for (const button of kindButtons) {
    button.addEventListener("click", () => {
      filters.kind = button.dataset.kind;
      kindButtons.forEach((b) => b.setAttribute("aria-pressed", String(b === button)));
      filtersChanged();
    });
  }
  followedOnlyEl.addEventListener("click", () => {
    filters.followedOnly = !filters.followedOnly;
    followedOnlyEl.setAttribute("aria-pressed", String(filters.followedOnly));
    filtersChanged();
  });
  localOnlyEl.setAttribute("aria-pressed", String(filters.local));
  labelFilters(); // a "local" kept from the last visit counts
  localOnlyEl.addEventListener("click", () => {
    filters.local = !filters.local;
    localOnlyEl.setAttribute("aria-pressed", String(filters.local));
    saveLocal();
    client?.move(subscription()); // the server sends the local posts anew
    filtersChanged();
  });
  categoryEl.addEventListener("change", () => {
    filters.category = categoryEl.value;
    filtersChanged();
  });
  viewToggleEl.addEventListener("click", () => setMapOpen(!mapOpen));
  let saved = null;
  try {
    saved = localStorage.getItem(VIEW_KEY);
  } catch {
    // no storage: list view
  }
  if (new URLSearchParams(location.search).get("view") === "map" || saved === "map") {
    setMapOpen(true, false);
  }
}

function labelView() {
  setText($("view-toggle-label"), mapOpen ? "show_list" : "show_map");
  viewToggleEl.setAttribute("aria-pressed", String(mapOpen));
}

function setMapOpen(open, remember = true) {
  mapOpen = open;
  mapPanelEl.hidden = !open;
  document.body.classList.toggle("map-open", open);
  labelView();
  if (remember) {
    try {
      localStorage.setItem(VIEW_KEY, open ? "map" : "list");
    } catch {
      // the choice lasts for this visit
    }
  }
  if (!open || !position) return;
  feedMap ??= new FeedMap($("map"), $("map-note"), { onHold });
  feedMap.open(position, radius).then(() => order()).catch(() => {
    // map-note says the map could not load; the list still works
  });
}

// --- Producer pages (/?producer=<id>) -----------------------------------------------------
// A view of this page with its own history entry: a badge opens it, Back (the browser's or
// the page's) returns to the feed where it was, and the address can be shared. The feed
// keeps running behind it.

let feedScroll = 0;
let openedFrom = null; // {postId, producerId}: the badge to give the focus back to

function producerIdOf(search = location.search) {
  const id = new URLSearchParams(search).get("producer");
  return isProducerId(id) ? id : null;
}

function showProducer(id, hint = null) {
  if (!producerView.isOpen) feedScroll = scrollY;
  document.body.classList.add("producer-open");
  producerView.show(id, hint);
  scrollTo(0, 0);
  producerView.heading?.focus({ preventScroll: true });
}

function showFeed() {
  if (!producerView.isOpen) return;
  producerView.hide();
  document.body.classList.remove("producer-open");
  scrollTo(0, feedScroll);
  const from = openedFrom;
  openedFrom = null;
  const card = from && cards.get(from.postId)?.el;
  const badge = card && [...card.querySelectorAll("a.producer")]
    .find((a) => a.dataset.producerId === from.producerId);
  (badge ?? card)?.focus({ preventScroll: true });
}

function openProducer(link) {
  const id = link.dataset.producerId;
  if (!isProducerId(id)) return;
  const postId = link.closest(".card")?.dataset.postId;
  if (link.closest("#feed") && postId) openedFrom = { postId, producerId: id };
  // The badge's own words: the page still names a producer no shop sells any more.
  const named = producersOf(posts.get(postId) ?? producerView.postById(postId))
    .find((p) => p.id === id);
  const hint = named ? { name: named.name, place: String(named.place ?? "") } : null;
  history.pushState({ producer: id, fromFeed: true, hint }, "", producerHref(id));
  showProducer(id, hint);
}

function leaveProducer() {
  if (history.state?.fromFeed) {
    history.back(); // popstate shows the feed, as the browser's own Back would
    return;
  }
  // Opened from a shared link: the feed takes this history entry's place.
  const params = new URLSearchParams(location.search);
  params.delete("producer");
  const query = params.toString();
  history.replaceState(null, "", query ? `/?${query}` : "/");
  showFeed();
}

function setupProducers() {
  document.addEventListener("click", (ev) => {
    const link = ev.target.closest?.("a.producer[data-producer-id]");
    // A new tab or window (modifier keys, middle button) gets the link as it is.
    if (!link || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
    ev.preventDefault();
    openProducer(link);
  });
  addEventListener("popstate", () => {
    const id = producerIdOf();
    if (id) showProducer(id, history.state?.hint ?? null);
    else showFeed();
  });
  const id = producerIdOf();
  if (id) showProducer(id);
}

// --- An alert's link (/?post=<id>) ----------------------------------------------------------
// The page opens at that post: its card in the feed, scrolled to and marked, when the feed
// has it; otherwise the post on its own (postview.js), and Back to the feed.

function postIdOf() {
  const id = new URLSearchParams(location.search).get("post");
  return POST_ID.test(id ?? "") ? id : null;
}

async function openPostLink() {
  const id = postIdOf();
  if (!id || producerView.isOpen) return;
  await Promise.race([firstSnapshot,
    new Promise((resolve) => { setTimeout(resolve, SNAPSHOT_WAIT_MS); })]);
  const card = cards.get(id);
  if (card && !card.el.hidden && !ended.has(id)) {
    highlighted = id;
    card.el.classList.add("is-highlighted");
    card.el.scrollIntoView({ block: "center" });
    card.el.focus({ preventScroll: true });
    return;
  }
  feedScroll = scrollY;
  document.body.classList.add("post-open");
  postView.show(id);
  scrollTo(0, 0);
  postView.heading?.focus({ preventScroll: true });
}

/** Back to the feed: the link's post leaves the address (a reload shows the feed). */
function leavePost() {
  const params = new URLSearchParams(location.search);
  params.delete("post");
  const query = params.toString();
  history.replaceState(null, "", query ? `/?${query}` : "/");
  postView.hide();
  document.body.classList.remove("post-open");
  scrollTo(0, feedScroll);
  feedEl.querySelector(".card:not([hidden])")?.focus({ preventScroll: true });
}

/** The deployment's fallback centre, or the built-in demo street without an answer. */
async function fallbackCentre() {
  const config = await Promise.race([loadConfig().catch(() => null),
    new Promise((resolve) => { setTimeout(() => resolve(null), CONFIG_WAIT_MS); })]);
  const at = config?.fallback;
  return Number.isFinite(at?.lat) && Number.isFinite(at?.lon) ? { lat: at.lat, lon: at.lon }
    : { ...DEMO_STREET };
}

/** Show the fallback centre with a "Use my position" button (`key` says why). */
function offerLocate(key) {
  locateEl.hidden = false;
  setText(locateTextEl, key);
}

/** The device's position, now: asked only on a tap, or when this device chose it before. */
async function useDevicePosition() {
  if (locateButtonEl.disabled) return; // already asking
  locateButtonEl.disabled = true;
  showNotice("locating");
  const fix = await locate(LOCATE_TIMEOUT_MS);
  showNotice(null);
  locateButtonEl.disabled = false;
  if (!fix || fix.refused) {
    if (fix?.refused) rememberChoice(false);
    offerLocate(fix?.refused ? "locate_refused" : "demo_street");
    return;
  }
  rememberChoice(true);
  locateEl.hidden = true;
  onDevicePosition(fix);
  follow(onDevicePosition);
}

async function main() {
  applyStatic();
  setupControls();
  setupProducers();
  showStatus("connecting");
  order();
  if (!position) {
    // No prompt on load: the street is shown, and the position asked for on a tap.
    const [centre, unasked] = await Promise.all([fallbackCentre(), mayLocateUnasked()]);
    position = centre;
    onDemoStreet = true;
    locateButtonEl.addEventListener("click", () => useDevicePosition());
    if (unasked) await useDevicePosition();
    else offerLocate("locate_demo");
    if (producerView.isOpen) producerView.render(); // its distances, now that "here" is known
  }
  restoreKept();
  client = new FeedClient(subscription(), onFrame, showStatus);
  client.start();
  openPostLink();
  if (mapOpen) setMapOpen(true, false); // asked for before the position was known
  // A reload or a closed tab must not lose the last second's changes.
  addEventListener("pagehide", saveNow);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "hidden") saveNow();
  });
  addEventListener("online", showOffline);
  addEventListener("offline", showOffline);
  showOffline();
  setInterval(tick, 1000);
  // A card left ended in view goes once the reader has scrolled it away (or on the tick).
  addEventListener("scrollend", sweepEnded);
  registerServiceWorker();
}

main();
