// The passer-by page: find the street, open the feed, keep the cards true to it.

import { buildCard } from "./cards.js";
import { FeedClient } from "./feedclient.js";
import { formatDistance, haversineM } from "./geo.js";
import { applyStatic, getLang, onLangChange, otherLang, setLang, t } from "./i18n.js";
import { DEFAULT_RADIUS_M, DEMO_STREET, follow, fromUrl, locate } from "./position.js";

const RADII_M = [100, 250, 500, 1000, 2000];
const LOCATE_TIMEOUT_MS = 5000;
// GPS wanders by a few metres standing still; re-subscribing on every wobble would reset
// the feed for nothing.
const MOVE_THRESHOLD_M = 25;

const $ = (id) => document.getElementById(id);
const feedEl = $("feed");
const emptyEl = $("empty");
const statusEl = $("status");
const noticeEl = $("notice");
const errorEl = $("error");
const announcerEl = $("announcer");
const radiusEl = $("radius");
const langEl = $("lang");

const fromLink = fromUrl();
let position = fromLink.position;
let radius = fromLink.radius ?? DEFAULT_RADIUS_M;
let onDemoStreet = false;
let loading = true; // until the first snapshot (or the one after a reset) is complete
let client = null;

const posts = new Map(); // id -> post exactly as the server sent it
const cards = new Map(); // id -> what buildCard returned

// For tests and curious developers: read it, don't write it.
window.streetfeed = Object.freeze({
  get state() { return client ? client.state : "connecting"; },
  get cursor() { return client ? client.cursor : null; },
  posts,
  get position() { return position && { ...position }; },
  get radius_m() { return radius; },
  get lang() { return getLang(); },
});

function setText(node, key, vars) {
  // Keeping the key on the node lets a language switch re-translate it with the rest.
  node.dataset.i18n = key;
  node.textContent = t(key, vars);
}

function showStatus(state) {
  statusEl.dataset.state = state;
  setText($("status-label"), `status_${state}`);
  if (state === "live") errorEl.hidden = true;
}

function showNotice(key) {
  noticeEl.hidden = !key;
  if (key) setText(noticeEl, key);
}

const distanceTo = (post) => haversineM(position.lat, position.lon, post.shop.lat, post.shop.lon);

const isPost = (p) => p && typeof p === "object" && typeof p.id === "string" && p.shop &&
  Number.isFinite(p.shop.lat) && Number.isFinite(p.shop.lon);

/** Run a change to the cards without stranding keyboard focus on a removed node. */
function mutate(change) {
  const active = document.activeElement;
  const focusedId = feedEl.contains(active) ? active.closest(".card")?.dataset.postId : null;
  const focusedIndex = focusedId ? [...feedEl.children].indexOf(active.closest(".card")) : -1;
  change();
  order();
  if (!focusedId) return;
  const target = cards.get(focusedId)?.el ??
    feedEl.children[Math.min(focusedIndex, feedEl.children.length - 1)];
  if (target && document.activeElement !== target) target.focus({ preventScroll: true });
}

/** Nearest first; at equal distance (same shop), newest first. */
function order() {
  const sorted = [...cards.values()].sort((a, b) => a.dist - b.dist || b.postedAt - a.postedAt);
  sorted.forEach((card, i) => {
    // Only move what is out of place: moving nodes is what makes screen readers lose track.
    if (feedEl.children[i] !== card.el) feedEl.insertBefore(card.el, feedEl.children[i] ?? null);
    card.el.setAttribute("aria-posinset", String(i + 1));
    card.el.setAttribute("aria-setsize", String(sorted.length));
  });
  feedEl.setAttribute("aria-busy", String(loading));
  emptyEl.hidden = cards.size > 0;
  if (!cards.size) setText(emptyEl, loading ? "loading" : "empty");
}

function place(post) {
  const card = buildCard(post, distanceTo(post));
  const old = cards.get(post.id);
  if (old) old.el.replaceWith(card.el);
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
  posts.set(post.id, post);
  const card = place(post);
  if (live && isNew) {
    card.el.classList.add("is-new");
    announcerEl.textContent = t("announce", {
      title: post.title, shop: post.shop.name, dist: formatDistance(card.dist, getLang()),
    });
  }
}

function remove(id) {
  posts.delete(id);
  cards.get(id)?.el.remove();
  cards.delete(id);
}

function clear() {
  posts.clear();
  cards.clear();
  feedEl.replaceChildren();
}

function rebuildAll() {
  mutate(() => posts.forEach(place));
}

function onFrame(frame, live) {
  switch (frame.type) {
    case "post":
      mutate(() => upsert(frame.post, live));
      break;
    case "expired":
    case "withdrawn":
      mutate(() => remove(frame.id));
      break;
    case "reset":
      loading = true;
      mutate(clear);
      break;
    case "ping":
      if (loading) {
        loading = false;
        order();
      }
      break;
    case "error":
      errorEl.hidden = false;
      setText(errorEl, "server_error", { message: String(frame.error?.message ?? "") });
      break;
    default:
      break; // newer server, older page: ignore what we don't know
  }
}

// Expiry is enforced here too: a phone in a pocket may miss the `expired` frame, and a
// passer-by must never walk to an offer that is over.
function tick() {
  const now = Date.now();
  const over = [...cards].filter(([, c]) => c.expiresAt <= now).map(([id]) => id);
  if (over.length) mutate(() => over.forEach(remove));
  cards.forEach((card) => card.tick(now));
}

function moveTo(next) {
  position = next;
  rebuildAll(); // distances changed
  client?.move({ ...position, radius_m: radius });
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
    client?.move({ ...position, radius_m: radius });
  });
  const labelLang = () => {
    langEl.textContent = t("switch_to");
    langEl.lang = otherLang(); // so the label is read with the right voice
    langEl.setAttribute("aria-label", t("switch_label"));
  };
  labelLang();
  langEl.addEventListener("click", () => setLang(otherLang()));
  onLangChange(() => {
    labelLang();
    for (const option of radiusEl.options) {
      option.textContent = formatDistance(Number(option.value), getLang());
    }
    rebuildAll();
  });
}

async function main() {
  applyStatic();
  setupControls();
  showStatus("connecting");
  order();
  if (!position) {
    showNotice("locating");
    position = await locate(LOCATE_TIMEOUT_MS);
    onDemoStreet = !position;
    position ??= { ...DEMO_STREET };
    showNotice(onDemoStreet ? "demo_street" : null);
    follow(onDevicePosition);
  }
  client = new FeedClient({ ...position, radius_m: radius }, onFrame, showStatus);
  client.start();
  setInterval(tick, 1000);
}

main();
