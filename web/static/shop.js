// The shopkeeper console (/shop): sign in once with the shop's token (the server answers
// with an HttpOnly session cookie: this page never keeps the token), post in a few taps,
// see who is around and how far each post went, withdraw or correct, set opening hours.
// Everything live (people watching, reach, the shop's own posts, open or closed) is pushed
// over the console's own socket, /ws/shop: an idle console makes no request at all.
// "Hold it for me" (the offer on a post, the holds panel, the till) is in shopholds.js.

import { buildCard, confirmTwice, el, holdOf, keepPhotos, openingState, postTime } from "./cards.js";
import { formatDistance } from "./geo.js";
import { HoursEditor, HoursError } from "./hours.js";
import {
  applyStatic, errorKey, errorText, getLang, onLangChange, otherLang, plural, setLang, t,
} from "./i18n.js";
import { PhotoTray, loadPhotoLimits, mediaIds, smallestVariant } from "./photos.js";
import { registerServiceWorker } from "./pwa.js";
import { ProducerPicker, ProducersPanel } from "./shopproducers.js";
import { HoldOfferField, HoldsPanel, holdLine, ownHoldLine } from "./shopholds.js";
import { forgetDeviceLink, redeemLinkCode, setLinkError, setupDeviceLink, takeLinkCode } from "./signin.js";
import { ProfileForm } from "./shopprofile.js";

// Reconnecting the console's socket: jittered, doubling from the first delay to the cap.
const RECONNECT_FIRST_MS = 1000;
const RECONNECT_MAX_MS = 30000;
// The radii the server counts within (none under 250 m: see /api/v1/shops/{id}/stats).
const WATCH_RADII = [250, 500, 1000, 2000];
const RADIUS_KEY = "streetfeed.console.radius";
const PREVIEW_DIST_M = 80;
const FLASH_DEFAULT_MIN = 60;
const OWN_THUMB_PX = 64;
const PRODUCERS_WAIT_MS = 2000; // the most the console waits for the shop's producers
// The contract's lengths count Unicode code points, on the server as here
// (docs/architecture.md): `[...s]` iterates code points, `s.length` counts UTF-16 units
// and filled the title with 40 emoji. An input's maxlength counts UTF-16 units too, so
// the fields' maxlength is twice the limit (the most UTF-16 units it can take) and
// clampChars enforces the limit itself.
const TITLE_MAX = 80;
const TEXT_MAX = 500;
const chars = (s) => [...s].length;

/** Cut the field's value to `max` code points (typing or pasting past the limit). */
function clampChars(input, max) {
  const points = [...input.value];
  if (points.length > max) input.value = points.slice(0, max).join("");
}

const $ = (id) => document.getElementById(id);

let shop = null; // the signed-in shop's profile
let closesAt = null; // "until closing" for an offer posted now (ms), from the socket
let closesKnown = false; // the socket has said (closesAt null then means "none")
let socket = null; // the console's WebSocket, while signed in
let socketLive = false; // its snapshot received: what is shown is current
let reconnectTimer = 0;
let reconnectDelay = RECONNECT_FIRST_MS;
let lastStats = null;
// Notes shown by key, not text, so that they follow a language switch.
const notes = new Map(); // element -> [key, vars]
let watchRadius = initialRadius();
const ownPosts = new Map(); // post id -> {post, li, card, signature, editing}
let previewCard = null;
const hoursEditor = new HoursEditor($("weekly"), $("exceptions"), $("add-exception"));
const profileForm = new ProfileForm({ name: $("profile-name"), category: $("profile-category"),
  address: $("profile-address") });
// The new post's photos (its edit forms have their own trays).
const postPhotos = new PhotoTray({ uploadUrl: () => shopPath("/media"), onChange: photosChanged,
  sessionLost, announce });
let publishing = false;
// The shop's producers (pushed by the console's socket, and read at sign-in), and
// those the new post names.
let shopProducers = [];
const postProducers = new ProducerPicker({ onChange: renderPreview });
const producersPanel = new ProducersPanel({ api, shopPath: (suffix) => shopPath(suffix), // declared below
  shop: () => shop, sessionLost, announce, onChange: producersChanged });
// What the new post offers to hold, and the shop's holds (pushed by the console's socket).
const postHold = new HoldOfferField({ prefix: "post-hold", onChange: renderPreview });
const holdsPanel = new HoldsPanel({ api, shopPath: (suffix) => shopPath(suffix), sessionLost,
  announce, onChange: () => ownPosts.forEach(showOwnHold) });

// For tests: read it, don't write it.
window.streetfeedConsole = Object.freeze({
  get shop() { return shop && { ...shop }; },
  get stats() { return lastStats; },
  get posts() { return [...ownPosts.keys()]; },
  get live() { return socketLive; },
  get reconnecting() { return Boolean(reconnectTimer); }, // a retry is scheduled
  get holds() {
    return { count: holdsPanel.holds.length, pending: holdsPanel.pendingCount,
      beeps: holdsPanel.beeps };
  },
});

function initialRadius() {
  try {
    const saved = Number(localStorage.getItem(RADIUS_KEY));
    return WATCH_RADII.includes(saved) ? saved : 500;
  } catch {
    return 500;
  }
}

// --- Time helpers: <input type="datetime-local"> is in the browser's local time -----------

const pad = (n) => String(n).padStart(2, "0");

function toLocalInput(ms) {
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

function fromLocalInput(value) {
  if (!value) return null;
  const ms = new Date(value).getTime(); // a date-time without offset is local time
  return Number.isNaN(ms) ? null : ms;
}

/** RFC 3339 with the local offset, e.g. 2026-11-26T18:00:00+01:00. */
function rfc3339(ms) {
  const d = new Date(ms);
  const off = -d.getTimezoneOffset();
  const sign = off >= 0 ? "+" : "-";
  const abs = Math.abs(off);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}` +
    `${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
}

const nextMinute = (ms) => Math.ceil(ms / 60000) * 60000;

/** "Until closing" for an offer posted now: the server's answer (the end of this opening,
 * or of today's next one), or null: no hours, or not open again today. Never a guess. */
function closingTime(now = Date.now()) {
  return closesAt !== null && closesAt > now ? closesAt : null;
}

/** The "at closing" button, usable only when there is a closing time, else saying why. */
function showClosing() {
  const button = document.querySelector('[data-ends="closing"]');
  const at = closingTime();
  button.disabled = at === null;
  const why = at !== null || !closesKnown ? null
    : shop?.open_now == null ? "closing_no_hours" : "closing_none_today";
  sayKey($("closing-note"), why);
  if (why) button.setAttribute("aria-describedby", "closing-note");
  else button.removeAttribute("aria-describedby");
}

// --- API ------------------------------------------------------------------------------

/** @returns {Promise<{ok: boolean, status: number, data: any, error: {code, message}|null}>} */
async function api(method, path, body) {
  const init = { method, headers: { Accept: "application/json" }, credentials: "same-origin" };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    return { ok: false, status: 0, data: null, error: { code: "network", message: "" } };
  }
  let data = null;
  if (response.status !== 204) {
    try {
      data = await response.json();
    } catch {
      data = null;
    }
  }
  if (response.ok) {
    serverAnswered();
    return { ok: true, status: response.status, data, error: null };
  }
  const error = data?.error && typeof data.error === "object" ? data.error
    : { code: response.status === 503 ? "redis_unavailable" : "http_error",
      message: `HTTP ${response.status}` };
  return { ok: false, status: response.status, data, error };
}


const shopPath = (suffix = "") => `/api/v1/shops/${encodeURIComponent(shop.id)}${suffix}`;

function say(node, text) {
  notes.delete(node);
  node.hidden = !text;
  node.textContent = text ?? "";
}

/** `say` by i18n key: the note is written again in the new language on a switch. */
function sayKey(node, key, vars = {}) {
  say(node, key ? t(key, vars) : null);
  if (key) notes.set(node, [key, vars]);
}

function announce(text) {
  $("announcer").textContent = text;
}

/** Any 401 while signed in: the session ended (token rotated, expired): back to sign-in. */
function sessionLost(result) {
  if (shop && result.status === 401) {
    leave();
    sayKey($("signin-error"), "err_not_signed_in");
    return true;
  }
  return false;
}

/**
 * One change sent with its button held down. A failure is said in `errorNode` (an ended
 * session goes back to sign-in); the answer is returned only when it went through.
 */
async function sendChange(button, errorNode, method, path, body) {
  button.disabled = true;
  const result = await api(method, path, body);
  button.disabled = false;
  if (sessionLost(result)) return null;
  if (!result.ok) {
    say(errorNode, errorText(result.error));
    return null;
  }
  return result;
}

// --- Sign in / out ---------------------------------------------------------------------

function showSignIn() {
  $("signin").hidden = false;
  $("console").hidden = true;
  $("signout").hidden = true;
  $("shop-heading").hidden = true;
}

async function signIn(event) {
  event.preventDefault();
  const shopId = $("shop-id").value.trim();
  const token = $("token").value.trim();
  if (!shopId || !token) {
    sayKey($("signin-error"), "need_credentials");
    (shopId ? $("token") : $("shop-id")).focus();
    return;
  }
  const button = $("signin-submit");
  button.disabled = true;
  button.textContent = t("signing_in");
  const result = await api("POST", "/api/v1/session", { shop_id: shopId, token });
  button.disabled = false;
  button.textContent = t("signin");
  $("token").value = ""; // never kept, whatever happened
  if (!result.ok) {
    sayKey($("signin-error"), errorKey(result.error));
    $(result.error.code === "unknown_shop" ? "shop-id" : "token").focus();
    return;
  }
  say($("signin-error"), null);
  setLinkError(null);
  enter(result.data);
}

async function signOut() {
  const result = await api("DELETE", "/api/v1/session");
  if (!result.ok && result.status !== 401) {
    sayKey($("console-error"), errorKey(result.error));
    return;
  }
  leave();
  announce(t("signed_out"));
  document.querySelector("#token-signin > summary").focus(); // the token form may be folded
}

function leave() {
  shop = null;
  closesAt = null;
  closesKnown = false;
  disconnect();
  lastStats = null;
  forgetOwnPosts();
  postPhotos.clear();
  producersPanel.forget();
  producersChanged([]);
  holdsPanel.forget();
  $("watching-count").textContent = "–";
  say($("console-error"), null);
  forgetDeviceLink();
  showSignIn();
}

function enter(profile) {
  shop = profile;
  $("signin").hidden = true;
  $("signout").hidden = false;
  $("shop-id").value = profile.id;
  showShop();
  const feedUrl = `/?lat=${profile.lat}&lon=${profile.lon}&radius_m=500&shop=${encodeURIComponent(profile.id)}`;
  $("screen-link").href = `/screen/${encodeURIComponent(profile.id)}`;
  $("feed-link").href = feedUrl;
  $("console-qr").src = shopPath("/qr.svg");
  $("console-qr").alt = t("qr_alt", { shop: profile.name });
  resetForm();
  showClosing();
  loadPhotoLimits(); // asked again if the first ask failed
  profileForm.load(profile);
  showTakesHolds();
  loadHours();
  // The console shows once the shop's producers are in (or after PRODUCERS_WAIT_MS): the
  // new post's producer chips drawn afterwards grew the form under the reader's eyes (a
  // layout shift of 0.12 on a portrait screen).
  const shown = () => {
    if (shop?.id === profile.id) $("console").hidden = false;
  };
  Promise.race([producersPanel.load(),
    new Promise((resolve) => { setTimeout(resolve, PRODUCERS_WAIT_MS); })]).then(shown);
  connect();
}

function showShop() {
  if (!shop) return;
  $("shop-heading").hidden = false;
  $("shop-name").textContent = shop.name;
  const opening = openingState(shop);
  const openEl = $("shop-open");
  openEl.textContent = opening ? opening.text : "";
  openEl.className = `shop-open ${opening ? (opening.open ? "is-open" : "is-closed") : ""}`;
}

// --- Live panel and own posts (pushed over /ws/shop) ----------------------------------------

function connect() {
  clearTimeout(reconnectTimer);
  reconnectTimer = 0;
  if (!shop || socket) return;
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(`${scheme}//${location.host}/ws/shop`);
  socket = ws;
  holdsPanel.connected(); // the holds there on (re)connecting make no sound
  ws.addEventListener("message", (event) => {
    if (socket !== ws) return;
    let frame;
    try {
      frame = JSON.parse(event.data);
    } catch {
      return;
    }
    onFrame(frame);
  });
  ws.addEventListener("close", () => {
    if (socket !== ws) return; // replaced or closed on purpose
    socket = null;
    socketLive = false;
    if (!shop) return;
    sayKey($("stats-note"), "status_reconnecting");
    // Jittered so that consoles cut off together do not all come back at once; a fresh
    // snapshot on reconnection replaces whatever was missed.
    const delay = reconnectDelay * (0.5 + Math.random());
    reconnectDelay = Math.min(reconnectDelay * 2, RECONNECT_MAX_MS);
    reconnectTimer = setTimeout(connect, delay);
  });
}

/**
 * The server has just answered a request: a socket waiting out its backoff (up to 30 s
 * after an outage) comes back now, or a post just published would reach "Your live
 * posts" that much later.
 */
function serverAnswered() {
  if (shop && !socket && reconnectTimer) {
    reconnectDelay = RECONNECT_FIRST_MS;
    connect();
  }
}

function disconnect() {
  clearTimeout(reconnectTimer);
  const ws = socket;
  socket = null;
  socketLive = false;
  reconnectDelay = RECONNECT_FIRST_MS;
  ws?.close();
}

function onFrame(frame) {
  switch (frame?.type) {
    case "shop":
      if (frame.shop?.id !== shop?.id) return;
      shop = frame.shop;
      closesAt = frame.closes_at ? Date.parse(frame.closes_at) : null;
      if (Number.isNaN(closesAt)) closesAt = null;
      closesKnown = true;
      showShop();
      showClosing();
      showTakesHolds();
      renderPreview();
      refreshOwnCards();
      break;
    case "producers":
      producersPanel.pushedList(frame.producers);
      break;
    case "holds":
      holdsPanel.pushed(frame);
      break;
    case "posts":
      if (!Array.isArray(frame.posts)) return;
      renderOwnPosts(frame.posts);
      socketLive = true;
      reconnectDelay = RECONNECT_FIRST_MS;
      if (notes.get($("stats-note"))?.[0] === "status_reconnecting") say($("stats-note"), null);
      break;
    case "post":
      if (frame.post && typeof frame.post.id === "string") showOwnPost(frame.post);
      break;
    case "withdrawn":
    case "expired":
      dropOwnPost(String(frame.id));
      break;
    case "stats":
      lastStats = frame;
      showWatching();
      updateReach();
      break;
    case "status":
      if (frame.live === false) {
        const since = Date.parse(frame.since);
        sayKey($("stats-note"), "not_live",
          { time: Number.isNaN(since) ? "?" : postTime(since, shop?.timezone) });
      } else {
        say($("stats-note"), null);
      }
      break;
    case "error": {
      const code = String(frame.error?.code ?? "");
      if (code === "not_signed_in" || code === "invalid_token") {
        leave();
        sayKey($("signin-error"), "err_not_signed_in");
      } else {
        sayKey($("console-error"), errorKey(frame.error));
      }
      break;
    }
    default:
      break; // a frame of a later version: ignored
  }
}

function showWatching() {
  const entry = lastStats?.watching?.find((w) => w.radius_m === watchRadius);
  const count = entry && Number.isFinite(entry.count) ? entry.count : null;
  // Under 5 the server never says how many, only "fewer than 5" (count null).
  const fewer = entry && count === null && Number.isFinite(entry.fewer_than) ? entry.fewer_than : null;
  const countEl = $("watching-count");
  if (count !== null) countEl.textContent = String(count);
  else if (fewer !== null) countEl.textContent = t("fewer_than", { n: fewer });
  else countEl.textContent = "–";
  countEl.classList.toggle("is-fewer", fewer !== null);
  countEl.dataset.radius = String(watchRadius);
  const r = formatDistance(watchRadius, getLang());
  // Not known yet ("–"): the plural form, as "fewer than 5" reads; French's singular
  // for 0 read "– personne regarde", i.e. "nobody watches".
  const label = count === null && fewer === null ? t("watching_other", { r })
    : plural("watching", count ?? fewer, { r });
  $("watching-label").textContent = label;
}

/** A count from 5 up, else "fewer than 5" (the server sends null and `fewer_than`). */
function reachCount(base, count, fewer) {
  if (Number.isInteger(count)) return plural(base, count);
  return Number.isInteger(fewer) ? t(`${base}_fewer`, { n: fewer }) : "–";
}

function reachText(postId) {
  const reach = lastStats?.reach?.[postId];
  if (!reach) return ""; // not counted yet: the next stats frame says
  const fewer = reach.fewer_than;
  return t("reach", { phones: reachCount("phones", reach.phone, fewer),
                      screens: reachCount("screens", reach.screen, fewer) });
}

function updateReach() {
  for (const [id, entry] of ownPosts) entry.reach.textContent = reachText(id);
}

/** The whole list, newest first (a snapshot): what is not in it is gone. */
function renderOwnPosts(list) {
  const seen = new Set();
  list.forEach((post, index) => {
    if (!post || typeof post.id !== "string") return;
    seen.add(post.id);
    showOwnPost(post, index);
  });
  for (const [id, entry] of ownPosts) {
    if (!seen.has(id) && !entry.busy) dropOwnPost(id);
  }
  // The shop's own opening posts decide its open/closed line: the server pushes the
  // profile again (a `shop` frame) when one appears, changes or goes.
  $("own-empty").hidden = ownPosts.size > 0;
}

/** Show a post made or corrected: a new one first (the newest), or at `index`. */
function showOwnPost(post, index = null) {
  const listEl = $("own-posts");
  // The open line comes from the shop's profile, not the post: it is in the signature so
  // that a pushed profile (an "open late" post live or withdrawn) redraws the card.
  const signature = JSON.stringify([post.updated_at, post.title, post.text, post.expires_at,
    post.ends_at, post.price, post.discount_pct, post.status, post.until, post.tags, getLang(),
    openingState(shop)?.text ?? null, mediaIds(post), producerIds(post), post.hold ?? null]);
  let entry = ownPosts.get(post.id);
  if (!entry) {
    entry = makeOwnPost(post);
    ownPosts.set(post.id, entry);
    listEl.insertBefore(entry.li, listEl.children[index ?? 0] ?? null);
  } else if (index !== null && listEl.children[index] !== entry.li) {
    listEl.insertBefore(entry.li, listEl.children[index] ?? null);
  }
  if (entry.signature !== signature) {
    entry.post = post;
    entry.signature = signature;
    // The list shows a post's first photo as a small thumbnail, not the passer-by's large
    // picture: the shopkeeper scans the list for the post to change.
    // Producers as text: a link to a producer's page would leave the console.
    // Its holds said from the shop's side under it (showOwnHold), not the passer-by's offer.
    // No distance: every post of the list is the shop's own, at 0 m from it (a cold try
    // read the preview's example "80 m · 1 min on foot" on each of them).
    const card = buildCard({ ...post, media: [] }, 0, { shop, producerLinks: false,
      holds: "none", hideDistance: true });
    const thumb = ownThumb(post);
    if (thumb) card.el.insertBefore(thumb, card.el.querySelector(".card-title"));
    const hadFocus = entry.cardBox.contains(document.activeElement);
    entry.cardBox.replaceChildren(card.el);
    if (hadFocus) card.el.focus();
    entry.card = card;
    entry.editLabel();
    showOwnHold(entry);
  }
  entry.reach.textContent = reachText(post.id);
  $("own-empty").hidden = ownPosts.size > 0;
}

/** What a post offers to hold, under its card, from the shop's side: "2 held · 3 left of 5 ·
 * kept 30 min" (units left from the post, those held from the `holds` frame). */
function showOwnHold(entry) {
  const hold = holdOf(entry.post);
  entry.hold.hidden = !hold;
  const text = hold ? ownHoldLine(hold, holdsPanel.takenOf(entry.post.id)) : "";
  if (entry.hold.textContent !== text) entry.hold.textContent = text;
}

/**
 * Withdrawing a post with open holds: what it does to them, said before it is done ("2
 * open holds: 1 waiting for your answer will be declined; 1 put aside stays kept"), with
 * "Withdraw anyway" and "Keep the post". `show()` opens it when the post has open holds
 * (the `holds` frame says which) and says whether it did. A language switch makes the
 * own posts again, this with them.
 */
function withdrawWarning(entry, withdrawBtn, withdraw) {
  const box = el("div", "withdraw-warning");
  box.setAttribute("role", "group");
  box.hidden = true;
  const text = el("p", "withdraw-warning-text");
  text.id = `withdraw-warning-${entry.post.id}`;
  box.setAttribute("aria-labelledby", text.id);
  const buttons = el("div", "form-buttons");
  const anyway = el("button", "danger withdraw-anyway");
  anyway.type = "button";
  const keep = el("button", "secondary withdraw-keep");
  keep.type = "button";
  buttons.append(anyway, keep);
  box.append(text, buttons);
  anyway.textContent = t("hc_withdraw_anyway");
  keep.textContent = t("hc_withdraw_keep");
  const tell = ({ pending, accepted }) => {
    const parts = [];
    if (pending) parts.push(plural("hc_withdraw_pending", pending));
    if (accepted) parts.push(plural("hc_withdraw_accepted", accepted));
    text.textContent = plural("hc_withdraw_holds", pending + accepted,
      { detail: parts.join(t("hc_withdraw_sep")) });
  };
  const close = () => {
    box.hidden = true;
  };
  anyway.addEventListener("click", () => {
    close();
    withdrawBtn.focus();
    withdraw();
  });
  keep.addEventListener("click", () => {
    close();
    withdrawBtn.focus();
  });
  return {
    el: box,
    show: () => {
      const open = holdsPanel.openOf(entry.post.id);
      if (!open.pending && !open.accepted) return false;
      tell(open);
      box.hidden = false;
      keep.focus(); // the safe choice under the finger; the text is read with the group
      return true;
    },
  };
}

/** The first photo of a post in the list, small (its narrowest variant, square-cropped). */
function ownThumb(post) {
  const first = Array.isArray(post.media) ? post.media[0] : null;
  if (!first) return null;
  const img = el("img", "own-thumb");
  img.src = String(smallestVariant(first).url);
  img.alt = String(post.title ?? "");
  img.width = OWN_THUMB_PX;
  img.height = OWN_THUMB_PX;
  img.decoding = "async";
  return img;
}

/** Redraw the own cards whose open line the profile just changed. */
function refreshOwnCards() {
  for (const entry of ownPosts.values()) showOwnPost(entry.post);
}

/** Producer ids a delivered post names, in order. */
const producerIds = (post) => (Array.isArray(post?.producers)
  ? post.producers.map((p) => String(p?.id)) : []);

/** The shop's producers, as the server said after a change (or [] once signed out): the
 * pickers offer them, a ticked one no longer named is let go. */
function producersChanged(list) {
  shopProducers = list;
  postProducers.setChoices(list);
  for (const entry of ownPosts.values()) entry.producers?.setChoices(list);
  renderPreview();
}

/** Empty the list; an open edit's uploads are abandoned and its local previews released. */
function forgetOwnPosts() {
  for (const entry of ownPosts.values()) entry.dropPhotos?.();
  ownPosts.clear();
  $("own-posts").replaceChildren();
}

function dropOwnPost(id) {
  const entry = ownPosts.get(id);
  if (!entry) return;
  const hadFocus = entry.li.contains(document.activeElement);
  entry.dropPhotos?.();
  entry.li.remove();
  ownPosts.delete(id);
  $("own-empty").hidden = ownPosts.size > 0;
  if (hadFocus) $("posts-heading").focus();
}

function makeOwnPost(post) {
  const li = el("li", "own-post");
  li.dataset.postId = post.id;
  const cardBox = el("div", "own-card");
  const hold = el("p", "own-hold");
  hold.hidden = true;
  const reach = el("p", "reach");
  reach.id = `reach-${post.id}`;
  reach.setAttribute("aria-describedby", "reach-help");
  const actions = el("div", "own-actions");
  const editBtn = el("button", "secondary edit", t("edit"));
  editBtn.type = "button";
  const withdrawBtn = el("button", "danger withdraw", t("withdraw"));
  withdrawBtn.type = "button";
  actions.append(editBtn, withdrawBtn);
  const editBox = el("div", "edit-box");
  editBox.hidden = true;
  const message = el("p", "form-error");
  message.setAttribute("role", "alert");
  message.hidden = true;
  li.append(cardBox, hold, reach, actions, editBox, message);
  if (post.auto) li.insertBefore(el("p", "hint auto", t("auto_post")), reach);

  const entry = { post, li, cardBox, hold, reach, card: null, signature: "", busy: false,
    editLabel: () => {
      const title = String(entry.post.title ?? "");
      editBtn.setAttribute("aria-label", t("edit_label", { title }));
      withdrawBtn.setAttribute("aria-label", t("withdraw_label", { title }));
    } };

  const withdraw = async () => {
    withdrawBtn.disabled = true;
    entry.busy = true;
    const result = await api("DELETE", shopPath(`/posts/${encodeURIComponent(post.id)}`));
    entry.busy = false;
    if (sessionLost(result)) return;
    if (result.ok || result.error.code === "unknown_post") {
      announce(t("withdrawn", { title: String(entry.post.title ?? "") }));
      dropOwnPost(post.id);
      return;
    }
    withdrawBtn.disabled = false;
    disarm();
    say(message, errorText(result.error));
  };
  // A post with open holds asks first, in words, what withdrawing does to them (heard
  // before the two taps below, which then never see the tap).
  const warning = withdrawWarning(entry, withdrawBtn, withdraw);
  li.insertBefore(warning.el, editBox);
  withdrawBtn.addEventListener("click", (ev) => {
    if (withdrawBtn.classList.contains("confirming") || !warning.show()) return;
    ev.stopImmediatePropagation();
  });
  // Two taps: a post cannot be brought back, and a pocket tap should not remove it.
  const disarm = confirmTwice(withdrawBtn, {
    arm: () => { withdrawBtn.textContent = t("withdraw_confirm"); },
    disarm: () => { withdrawBtn.textContent = t("withdraw"); },
    act: withdraw,
  });

  editBtn.addEventListener("click", () => {
    if (!editBox.hidden) {
      entry.dropPhotos?.();
      entry.producers = null;
      editBox.hidden = true;
      editBox.replaceChildren();
      editBtn.setAttribute("aria-expanded", "false");
      return;
    }
    editBox.replaceChildren(editForm(entry, () => {
      editBox.hidden = true;
      editBox.replaceChildren();
      editBtn.setAttribute("aria-expanded", "false");
      editBtn.focus();
    }, message));
    editBox.hidden = false;
    editBtn.setAttribute("aria-expanded", "true");
    editBox.querySelector("input")?.focus();
  });
  editBtn.setAttribute("aria-expanded", "false");
  return entry;
}

/** A price as the shopkeeper reads it: "1,30" (a decimal comma in French), not "1,3". */
const priceText = (price) => (typeof price === "number"
  ? price.toFixed(2).replace(".", getLang() === "fr" ? "," : ".") : "");

const localOf = (iso) => (Number.isNaN(Date.parse(iso)) ? "" : toLocalInput(Date.parse(iso)));

/** Every field PATCH accepts for the post's kind (schemas.posts.PostPatch); only what was
 * changed is sent, and an emptied price, discount or "until" is sent as null (removed). */
function editForm(entry, closeForm, message) {
  const post = entry.post;
  const id = post.id;
  const form = el("form", "form edit-form");
  let photos = null; // a new arrival's or an offer's photos, changed here
  // Uploads under way abandoned, local previews released: on closing, and when the list
  // goes (signed out, a language switch, the post withdrawn elsewhere).
  entry.dropPhotos = () => photos?.clear();
  const close = () => {
    entry.dropPhotos();
    entry.producers = null;
    closeForm();
  };
  form.noValidate = true;
  const field = (name, labelKey, input, { optional = false, row = form } = {}) => {
    const wrap = el("div", "field");
    input.id = `edit-${name}-${id}`;
    input.name = name;
    const label = el("label", null, t(labelKey));
    if (optional) label.append(" ", el("span", "optional", t("optional")));
    label.htmlFor = input.id;
    wrap.append(label, input);
    row.append(wrap);
    return input;
  };
  const textInput = (value, extra = {}) => {
    const input = el("input");
    input.type = "text";
    input.autocomplete = "off";
    Object.assign(input, extra);
    input.value = value;
    return input;
  };
  const row = () => {
    const box = el("div", "field-row");
    form.append(box);
    return box;
  };
  const title = textInput(String(post.title ?? ""), { maxLength: 2 * TITLE_MAX, dir: "auto",
    required: true });
  title.addEventListener("input", () => clampChars(title, TITLE_MAX));
  field("title", "post_title", title);
  const text = el("textarea");
  text.rows = 3;
  text.maxLength = 2 * TEXT_MAX;
  text.dir = "auto";
  text.addEventListener("input", () => clampChars(text, TEXT_MAX));
  text.value = String(post.text ?? "");
  field("text", "post_text", text, { optional: true });

  const inputs = {};
  if (post.kind === "new_arrival") {
    const box = row();
    inputs.price = field("price", "price", textInput(priceText(post.price),
      { inputMode: "decimal" }), { optional: true, row: box });
    inputs.tags = field("tags", "tags", textInput((post.tags ?? []).join(", ")),
      { optional: true, row: box });
    inputs.tags.parentElement.classList.add("field-grow");
  } else if (post.kind === "flash_offer") {
    inputs.endsAt = el("input");
    inputs.endsAt.type = "datetime-local";
    inputs.endsAt.value = localOf(post.ends_at);
    field("ends_at", "ends_at", inputs.endsAt).parentElement.classList.add("field-full");
    const box = row();
    inputs.discount = field("discount_pct", "discount_label", textInput(
      post.discount_pct == null ? "" : String(post.discount_pct), { inputMode: "numeric" }),
    { optional: true, row: box });
    inputs.price = field("price", "price", textInput(priceText(post.price),
      { inputMode: "decimal" }), { optional: true, row: box });
  } else if (post.kind === "opening_change") {
    const box = row();
    inputs.status = el("select");
    for (const value of ["closed_now", "open_now", "open_late", "closed_exceptionally"]) {
      const option = el("option", null, t(`opening_${value}`));
      option.value = value;
      option.selected = value === (post.status ?? "open_now");
      inputs.status.append(option);
    }
    field("status", "status_label", inputs.status, { row: box });
    inputs.until = el("input");
    inputs.until.type = "datetime-local";
    inputs.until.value = localOf(post.until);
    field("until", "until_label", inputs.until, { optional: true, row: box });
  }

  // The offer to hold: its quantity counts the units already taken (schemas.posts.PostPatch),
  // which the post does not say (only what is `left`) but the `holds` frame does.
  let holdOffer = null;
  if (post.kind === "new_arrival" || post.kind === "flash_offer") {
    holdOffer = new HoldOfferField({ prefix: `edit-hold-${id}` });
    const offered = post.hold && Number.isInteger(post.hold.left) ? post.hold : null;
    holdOffer.load(offered && { quantity: Math.max(1, offered.left + holdsPanel.takenOf(id)),
      minutes: offered.minutes });
    holdOffer.setShopTakes(shop?.holds);
    form.append(holdOffer.el);
  }

  // Every kind may name producers (docs/architecture.md, "On posts").
  const producers = new ProducerPicker({ onChange: () => {} });
  producers.setChoices(shopProducers);
  producers.load(post.producers);
  entry.producers = producers;
  form.append(producers.el);

  const buttons = el("div", "form-buttons");
  const save = el("button", "primary", t("save"));
  save.type = "submit";
  if (post.kind === "new_arrival" || post.kind === "flash_offer") {
    const wait = el("p", "hint photos-wait", t("photos_wait"));
    wait.id = `edit-photos-wait-${id}`;
    wait.hidden = true;
    photos = new PhotoTray({ uploadUrl: () => shopPath("/media"), sessionLost, announce,
      onChange: () => {
        // Saved once every photo is up (its id is what the edit sends) and none refused.
        const blocker = photos?.blocker() ?? null;
        save.disabled = Boolean(blocker);
        wait.hidden = !blocker;
        if (blocker) {
          wait.textContent = t(blocker);
          save.setAttribute("aria-describedby", wait.id);
        } else save.removeAttribute("aria-describedby");
      } });
    photos.load(post.media);
    form.append(photos.el, wait);
  }
  const cancel = el("button", "secondary", t("cancel"));
  cancel.type = "button";
  cancel.addEventListener("click", close);
  buttons.append(save, cancel);
  form.append(buttons);

  /** The changes as PATCH takes them, or {error, focus}. */
  const readPatch = () => {
    const patch = {};
    const newTitle = title.value.trim();
    if (!newTitle) return { error: t("need_title"), focus: title };
    if (newTitle !== post.title) patch.title = newTitle;
    if (text.value.trim() !== String(post.text ?? "")) patch.text = text.value.trim();
    if (inputs.price) {
      const price = numberOrNull(inputs.price);
      if (Number.isNaN(price) || (price !== null && price < 0)) {
        return { error: t("bad_price"), focus: inputs.price };
      }
      if (price !== (post.price ?? null)) patch.price = price;
    }
    if (inputs.tags) {
      const tags = inputs.tags.value.split(",").map((s) => s.trim()).filter(Boolean);
      if (tags.length > 8) return { error: t("too_many_tags"), focus: inputs.tags };
      if (JSON.stringify(tags) !== JSON.stringify(post.tags ?? [])) patch.tags = tags;
    }
    if (inputs.endsAt) {
      const ms = fromLocalInput(inputs.endsAt.value);
      if (ms === null) return { error: t("need_ends_at"), focus: inputs.endsAt };
      if (inputs.endsAt.value !== localOf(post.ends_at)) {
        if (ms <= Date.now()) return { error: t("err_ends_at_in_past"), focus: inputs.endsAt };
        patch.ends_at = rfc3339(ms);
      }
    }
    if (inputs.discount) {
      const discount = numberOrNull(inputs.discount);
      if (discount !== null && (!Number.isInteger(discount) || discount < 1 || discount > 99)) {
        return { error: t("bad_discount"), focus: inputs.discount };
      }
      if (discount !== (post.discount_pct ?? null)) patch.discount_pct = discount;
    }
    if (inputs.status && inputs.status.value !== (post.status ?? "open_now")) {
      patch.status = inputs.status.value;
    }
    if (inputs.until && inputs.until.value !== localOf(post.until)) {
      const ms = fromLocalInput(inputs.until.value);
      if (ms !== null && ms <= Date.now()) return { error: t("err_until_in_past"), focus: inputs.until };
      patch.until = ms === null ? null : rfc3339(ms);
    }
    if (photos) {
      const ids = photos.ids();
      if (JSON.stringify(ids) !== JSON.stringify(mediaIds(post))) patch.media_ids = ids;
    }
    if (holdOffer) {
      const offer = holdOffer.change(); // only when changed; null stops the offer
      if (offer.error) return { error: offer.error, focus: offer.focus };
      if ("hold" in offer) patch.hold = offer.hold;
    }
    // Sent only when changed: an edit without keeps the post's own, even one the shop
    // has unlinked since (which a resent list would have refused).
    const chosen = producers.ids();
    if (JSON.stringify(chosen) !== JSON.stringify(producerIds(post))) patch.producer_ids = chosen;
    return { patch };
  };

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (photos?.blocker()) return; // its button says why it waits
    const { patch, error, focus } = readPatch();
    if (error) {
      say(message, error);
      focus.focus();
      return;
    }
    if (!Object.keys(patch).length) {
      close();
      return;
    }
    const path = shopPath(`/posts/${encodeURIComponent(id)}`);
    if (!(await sendChange(save, message, "PATCH", path, patch))) return;
    say(message, null);
    announce(t("edit_sent"));
    close(); // the corrected post comes back over the socket
  });
  return form;
}

// --- Compose -----------------------------------------------------------------------------

const kind = () => document.querySelector('input[name="kind"]:checked')?.value ?? "new_arrival";

function setKind(value) {
  const radio = $(`kind-${value}`);
  if (radio) radio.checked = true;
  showKindFields();
}

function showKindFields() {
  const current = kind();
  for (const box of document.querySelectorAll(".kind-fields")) {
    const active = box.dataset.kind === current;
    box.hidden = !active;
    for (const input of box.querySelectorAll("input, select")) input.disabled = !active;
  }
  // Kept while hidden: switching to opening hours and back does not lose them.
  $("post-photos").hidden = !kindHasPhotos();
  $("post-hold").hidden = !kindHasHold();
  photosChanged();
}

/** Opening-hours posts carry no photo (DESIGN.md section 9). */
const kindHasPhotos = () => kind() !== "opening_change";
/** Nor an offer to hold: only a new arrival or a flash offer does (DESIGN.md section 9). */
const kindHasHold = () => kind() !== "opening_change";

/** The photos changed (added, uploaded, moved, removed): the preview and "Publish" follow. */
function photosChanged() {
  renderPreview();
  // "Publish" waits for uploads under way (their ids are part of the post), and for
  // refused photos to be removed or retried: the post never goes out without them unsaid.
  const blocker = kindHasPhotos() ? postPhotos.blocker() : null;
  const button = $("publish");
  if (!publishing) button.disabled = Boolean(blocker);
  sayKey($("photos-wait"), blocker);
  if (blocker) button.setAttribute("aria-describedby", "photos-wait");
  else button.removeAttribute("aria-describedby");
}

/** A new post in the form; `keepPicked` keeps the photos and producers already picked (a
 * template). */
function resetForm(keepKind = false, keepPicked = false) {
  const form = $("post-form");
  const current = kind();
  const picked = postProducers.ids();
  if (!keepPicked) postPhotos.clear();
  form.reset(); // unticks the producers' boxes too: the picker draws them again
  if (keepPicked) postProducers.restore(picked);
  else postProducers.clear();
  postHold.load(null);
  if (keepKind) setKind(current);
  $("ends-at").value = toLocalInput(nextMinute(Date.now() + FLASH_DEFAULT_MIN * 60000));
  pressEnds(null);
  $("status").value = "closed_now";
  showKindFields();
  counters();
}

/** Mark the quick "ends" button that set the end (null: none did, or it was typed). */
function pressEnds(which) {
  for (const button of document.querySelectorAll("[data-ends]")) {
    button.setAttribute("aria-pressed", String(button.dataset.ends === which));
  }
}

function counters() {
  clampChars($("title"), TITLE_MAX);
  clampChars($("text"), TEXT_MAX);
  $("title-count").textContent = `${chars($("title").value)}/${TITLE_MAX}`;
  $("text-count").textContent = `${chars($("text").value)}/${TEXT_MAX}`;
}

// Prices are text fields, not type=number: a number field drops the decimal comma of
// "3,50" in some locales (350 € was published), and refuses "3,50 €" as typed.
function numberOrNull(input) {
  const raw = input.value.replace(/[\s\u00a0\u202f€]/g, "").replace(",", ".");
  if (raw === "") return null;
  const n = Number(raw);
  return Number.isFinite(n) ? n : NaN;
}

/** The post body from the form, or {error, focus} saying what to fix first. */
function readForm() {
  const body = { kind: kind(), title: $("title").value.trim() };
  const text = $("text").value.trim();
  if (text) body.text = text;
  if (!body.title) return { error: t("need_title"), focus: "title" };
  if (body.kind === "new_arrival") {
    const price = numberOrNull($("price"));
    if (Number.isNaN(price) || (price !== null && price < 0)) return { error: t("bad_price"), focus: "price" };
    if (price !== null) body.price = price;
    const tags = $("tags").value.split(",").map((s) => s.trim()).filter(Boolean);
    if (tags.length > 8) return { error: t("too_many_tags"), focus: "tags" };
    if (tags.length) body.tags = tags;
  } else if (body.kind === "flash_offer") {
    const ends = fromLocalInput($("ends-at").value);
    if (ends === null) return { error: t("need_ends_at"), focus: "ends-at" };
    if (ends <= Date.now()) return { error: t("err_ends_at_in_past"), focus: "ends-at" };
    body.ends_at = rfc3339(ends);
    const discount = numberOrNull($("discount"));
    if (discount !== null) {
      if (!Number.isInteger(discount) || discount < 1 || discount > 99) {
        return { error: t("bad_discount"), focus: "discount" };
      }
      body.discount_pct = discount;
    }
    const price = numberOrNull($("flash-price"));
    if (Number.isNaN(price) || (price !== null && price < 0)) return { error: t("bad_price"), focus: "flash-price" };
    if (price !== null) body.price = price;
  } else {
    body.status = $("status").value;
    const until = fromLocalInput($("until").value);
    if (until !== null) {
      if (until <= Date.now()) return { error: t("err_until_in_past"), focus: "until" };
      body.until = rfc3339(until);
    }
  }
  if (kindHasPhotos()) {
    const ids = postPhotos.ids();
    if (ids.length) body.media_ids = ids;
  }
  if (kindHasHold()) {
    const { hold, error, focus } = postHold.value();
    if (error) return { error, focus: focus.id };
    if (hold) body.hold = hold;
  }
  const producerIdsPicked = postProducers.ids();
  if (producerIdsPicked.length) body.producer_ids = producerIdsPicked;
  return { body };
}

async function publish(event) {
  event.preventDefault();
  if (!shop || (kindHasPhotos() && postPhotos.blocker())) return; // the button says why it waits
  const { body, error, focus } = readForm();
  say($("post-ok"), null);
  if (error) {
    say($("post-error"), error);
    $(focus)?.focus();
    return;
  }
  say($("post-error"), null);
  const button = $("publish");
  button.textContent = t("publishing");
  publishing = true;
  const result = await sendChange(button, $("post-error"), "POST", shopPath("/posts"), body);
  publishing = false;
  button.textContent = t("publish");
  photosChanged(); // a photo added meanwhile holds the button again
  if (!result) return;
  // Until the next post is started (an input in the form hides it); the post itself comes
  // back over the socket.
  sayKey($("post-ok"), "published");
  resetForm(true);
}

function applyTemplate(name) {
  const now = Date.now();
  resetForm(false, true); // a photo taken first stays: the template only writes the words
  if (name === "arrival") {
    setKind("new_arrival");
    $("title").value = t("tpl_arrival");
  } else if (name === "discount") {
    setKind("flash_offer");
    $("title").value = t("tpl_discount");
    $("discount").value = "20";
    // No closing time (no hours, or closed for the day): the default end stays, and the
    // note under "at closing" says why.
    const closing = closingTime(now);
    if (closing !== null) {
      $("ends-at").value = toLocalInput(closing);
      pressEnds("closing");
    }
  } else if (name === "lunch") {
    setKind("opening_change");
    $("title").value = t("tpl_lunch");
    $("status").value = "closed_now";
    const back = new Date(now);
    back.setHours(14, 0, 0, 0);
    $("until").value = toLocalInput(back.getTime());
  }
  counters();
  renderPreview();
  say($("post-ok"), null);
  say($("post-error"), null);
  const title = $("title");
  title.focus();
  title.setSelectionRange(title.value.length, title.value.length);
}

/**
 * The profile as it will be once this post is live: an opening post is the shop's word
 * (rules/opening.py), so "open late until 23:30" previews as open, not as the "closed" the
 * hours say now. Its end is `until`, taken as a change back (the usual case: open late
 * past closing, closed over lunch); published, its own card shows the server's.
 */
function previewProfile(post) {
  if (post.kind !== "opening_change") return shop;
  const open = post.status === "open_now" || post.status === "open_late";
  const until = Date.parse(post.until);
  return { ...shop, open_now: open,
    next_change: Number.isNaN(until) ? null : { at: post.until, open: !open } };
}

function renderPreview() {
  if (!shop) return;
  const now = Date.now();
  const current = kind();
  const post = {
    id: "preview",
    kind: current,
    title: $("title").value.trim() || t("preview_title"),
    text: $("text").value.trim(),
    posted_at: new Date(now).toISOString(),
    expires_at: new Date(now + 86400000).toISOString(),
    shop: { id: shop.id, name: shop.name, category: shop.category, lat: shop.lat,
      lon: shop.lon, address: shop.address },
  };
  if (current === "new_arrival") {
    const price = numberOrNull($("price"));
    if (Number.isFinite(price)) post.price = price;
    post.tags = $("tags").value.split(",").map((s) => s.trim()).filter(Boolean).slice(0, 8);
  } else if (current === "flash_offer") {
    const ends = fromLocalInput($("ends-at").value);
    if (ends !== null) post.ends_at = new Date(ends).toISOString();
    const discount = numberOrNull($("discount"));
    if (Number.isInteger(discount)) post.discount_pct = discount;
    const price = numberOrNull($("flash-price"));
    if (Number.isFinite(price)) post.price = price;
  } else {
    post.status = $("status").value;
    const until = fromLocalInput($("until").value);
    if (until !== null) post.until = new Date(until).toISOString();
  }
  // Once uploaded, the photos as the street's card shows them (its strip, from the
  // served copies); until then, as picked, from the local files.
  const media = current === "opening_change" ? null : postPhotos.media();
  if (media) post.media = media;
  // Their badges as the passer-by's card draws them, as text (no producer page to open).
  post.producers = postProducers.chosen();
  const offer = current === "opening_change" ? null : postHold.value().hold;
  if (offer) post.hold = { left: offer.quantity, minutes: offer.minutes };
  const before = previewCard;
  previewCard = buildCard(post, PREVIEW_DIST_M, { shop: previewProfile(post), producerLinks: false });
  previewCard.el.removeAttribute("tabindex"); // a picture of a card, not one to visit
  if (before) keepPhotos(before.el, previewCard.el); // no reload nor blink at each key
  const photos = current === "opening_change" || media ? null
    : postPhotos.previewPhotos(post.title);
  if (photos) previewCard.el.insertBefore(photos, previewCard.el.querySelector(".card-title"));
  // The street's card says it is held once cards.js draws `hold`; until then, its line.
  if (offer && !previewCard.el.querySelector('[class*="hold"]')) {
    const line = el("p", "card-hold-line", holdLine(offer.quantity));
    previewCard.el.insertBefore(line, previewCard.el.querySelector(".card-foot"));
  }
  previewCard.el.classList.toggle("is-placeholder", !$("title").value.trim());
  $("preview").replaceChildren(previewCard.el);
}

// --- Opening hours ------------------------------------------------------------------------

async function loadHours() {
  const result = await api("GET", shopPath("/hours"));
  if (result.ok) hoursEditor.load(result.data);
  else {
    hoursEditor.load(null);
    sayKey($("hours-error"), errorKey(result.error));
  }
}

async function saveHours(event) {
  event.preventDefault();
  if (!shop) return;
  say($("hours-ok"), null);
  let body;
  try {
    body = hoursEditor.value();
  } catch (err) {
    if (!(err instanceof HoursError)) throw err;
    sayKey($("hours-error"), err.key, err.vars);
    $(err.focus)?.focus();
    return;
  }
  say($("hours-error"), null);
  const result = await sendChange($("save-hours"), $("hours-error"), "PUT", shopPath("/hours"), body);
  if (!result) return;
  shop = result.data ?? shop;
  showShop();
  renderPreview();
  refreshOwnCards();
  sayKey($("hours-ok"), "hours_saved");
}

// --- The shop's name, category and address -------------------------------------------------

async function saveProfile(event) {
  event.preventDefault();
  if (!shop) return;
  say($("profile-ok"), null);
  const changes = profileForm.changes(shop);
  if (changes.name === "") {
    sayKey($("profile-error"), "need_shop_name");
    $("profile-name").focus();
    return;
  }
  say($("profile-error"), null);
  if (!Object.keys(changes).length) {
    sayKey($("profile-ok"), "profile_saved");
    return;
  }
  const result = await sendChange($("save-profile"), $("profile-error"), "PATCH", shopPath(), changes);
  if (!result) return;
  shop = result.data ?? shop;
  profileForm.load(shop);
  showShop();
  renderPreview();
  refreshOwnCards();
  sayKey($("profile-ok"), "profile_saved");
}

/** The "Take holds" switch and the new post's offer follow the shop's profile. */
function showTakesHolds() {
  $("profile-holds").checked = shop?.holds !== false;
  postHold.setShopTakes(shop?.holds);
}

async function saveTakesHolds() {
  if (!shop) return;
  const box = $("profile-holds");
  const takes = box.checked;
  say($("profile-holds-ok"), null);
  say($("profile-holds-error"), null);
  const result = await sendChange(box, $("profile-holds-error"), "PATCH", shopPath(),
    { holds: takes });
  if (!result) {
    box.checked = !takes; // as the server still has it
    return;
  }
  shop = result.data ?? shop;
  showTakesHolds();
  sayKey($("profile-holds-ok"), takes ? "hc_holds_takes_on" : "hc_holds_takes_off");
}

// --- Setup -------------------------------------------------------------------------------

function setup() {
  applyStatic();
  const langEl = $("lang");
  const labelLang = () => {
    langEl.textContent = t("switch_to");
    langEl.lang = otherLang();
    langEl.setAttribute("aria-label", t("switch_label"));
  };
  labelLang();
  langEl.addEventListener("click", () => setLang(otherLang()));

  $("to-compose").addEventListener("click", () => {
    $("compose").scrollIntoView({ block: "start" });
    $("title").focus({ preventScroll: true });
  });

  const radiusEl = $("watching-radius");
  for (const r of WATCH_RADII) {
    const option = el("option", null, formatDistance(r, getLang()));
    option.value = String(r);
    option.selected = r === watchRadius;
    radiusEl.append(option);
  }
  radiusEl.addEventListener("change", () => {
    watchRadius = Number(radiusEl.value);
    try {
      localStorage.setItem(RADIUS_KEY, String(watchRadius));
    } catch {
      // remembered for this visit only
    }
    showWatching();
  });
  // Its words now, before any count: the first count then changes a number, not the
  // height of the panel (which moved everything under it, a layout shift).
  showWatching();

  onLangChange(() => {
    labelLang();
    for (const option of radiusEl.options) option.textContent = formatDistance(Number(option.value), getLang());
    showShop();
    showWatching();
    hoursEditor.relabel();
    profileForm.relabel();
    postPhotos.relabel();
    postProducers.relabel();
    producersPanel.relabel();
    postHold.relabel();
    holdsPanel.relabel();
    renderPreview();
    for (const [node, [key, vars]] of [...notes]) sayKey(node, key, vars);
    // Rebuilt, buttons and all, in the new language (an open edit form closes).
    const posts = [...ownPosts.values()].map((entry) => entry.post);
    forgetOwnPosts();
    renderOwnPosts(posts);
  });

  $("post-photos").append(postPhotos.el);
  $("post-producers").append(postProducers.el);
  $("post-hold").append(postHold.el);
  $("profile-holds").addEventListener("change", saveTakesHolds);
  loadPhotoLimits();

  $("signin-form").addEventListener("submit", signIn);
  setupDeviceLink({ api, currentShop: () => shop, sessionLost });
  $("signout").addEventListener("click", signOut);
  $("post-form").addEventListener("submit", publish);
  $("hours-form").addEventListener("submit", saveHours);
  $("profile-form").addEventListener("submit", saveProfile);
  for (const radio of document.querySelectorAll('input[name="kind"]')) {
    radio.addEventListener("change", showKindFields);
  }
  $("post-form").addEventListener("input", () => {
    say($("post-ok"), null); // the next post is started
    counters();
    renderPreview();
  });
  $("ends-at").addEventListener("input", () => pressEnds(null)); // changed by hand
  $("tpl-arrival").addEventListener("click", () => applyTemplate("arrival"));
  $("tpl-discount").addEventListener("click", () => applyTemplate("discount"));
  $("tpl-lunch").addEventListener("click", () => applyTemplate("lunch"));
  for (const button of document.querySelectorAll("[data-ends]")) {
    button.addEventListener("click", () => {
      const now = Date.now();
      const at = button.dataset.ends === "closing" ? closingTime(now)
        : nextMinute(now + Number(button.dataset.ends) * 60000);
      if (at === null) return; // the button is disabled then
      $("ends-at").value = toLocalInput(at);
      pressEnds(button.dataset.ends);
      say($("post-ok"), null);
      renderPreview();
    });
  }
  setInterval(() => {
    const now = Date.now();
    previewCard?.tick(now);
    for (const entry of ownPosts.values()) entry.card?.tick(now);
    holdsPanel.tick(now);
  }, 1000);
  const fromLink = new URLSearchParams(location.search).get("shop");
  if (fromLink) $("shop-id").value = fromLink;
}

/** Sign in with a link's code; false, with its refusal shown, when it did not work. */
async function signInWithLink(code) {
  const link = await redeemLinkCode(api, code);
  setLinkError(link.ok ? null : link.error);
  if (!link.ok) return false;
  if (shop) leave(); // another shop's link opened in a signed-in tab
  enter(link.data);
  return true;
}

async function main() {
  const code = takeLinkCode(); // first: out of the address bar before anything else runs
  setup();
  registerServiceWorker();
  // A link opened in a tab already on this page changes only the fragment: no reload.
  window.addEventListener("hashchange", () => {
    const next = takeLinkCode();
    if (next !== null) signInWithLink(next);
  });
  if (code !== null && await signInWithLink(code)) return;
  const result = await api("GET", "/api/v1/session");
  if (result.ok) {
    setLinkError(null); // signed in here already: an old link does not matter
    enter(result.data);
    return;
  }
  if (result.error.code === "network" || result.status >= 500) {
    sayKey($("console-error"), errorKey(result.error));
  }
  showSignIn();
}

main();
