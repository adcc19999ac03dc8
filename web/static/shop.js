// The shopkeeper console (/shop): sign in once with the shop's token (the server answers
// with an HttpOnly session cookie: this page never keeps the token), post in a few taps,
// see who is around and how far each post went, withdraw or correct, set opening hours.

import { buildCard, el, openingState } from "./cards.js";
import { formatDistance } from "./geo.js";
import { HoursEditor, HoursError } from "./hours.js";
import { applyStatic, errorText, getLang, onLangChange, otherLang, plural, setLang, t } from "./i18n.js";
import { registerServiceWorker } from "./pwa.js";
import { forgetDeviceLink, redeemLinkCode, setLinkError, setupDeviceLink, takeLinkCode } from "./signin.js";
import { ProfileForm } from "./shopprofile.js";

const POLL_MS = 2000;
const HIDDEN_POLL_MS = 10000; // a console left in a background tab need not poll hard
const PROFILE_REFRESH_MS = 60000;
// The radii the server counts within (none under 250 m: see /api/v1/shops/{id}/stats).
const WATCH_RADII = [250, 500, 1000, 2000];
const RADIUS_KEY = "streetfeed.console.radius";
const PREVIEW_DIST_M = 80;
const CONFIRM_MS = 5000;
const FLASH_DEFAULT_MIN = 60;
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
let pollTimer = 0;
let profileTimer = 0;
let polling = false;
let lastStats = null;
let lastOpenings = null; // the own opening posts last seen (renderOwnPosts)
let watchRadius = initialRadius();
const ownPosts = new Map(); // post id -> {post, li, card, signature, editing}
let previewCard = null;
const hoursEditor = new HoursEditor($("weekly"), $("exceptions"), $("add-exception"));
const profileForm = new ProfileForm({ name: $("profile-name"), category: $("profile-category"),
  address: $("profile-address") });

// For tests: read it, don't write it.
window.streetfeedConsole = Object.freeze({
  get shop() { return shop && { ...shop }; },
  get stats() { return lastStats; },
  get posts() { return [...ownPosts.keys()]; },
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

/** Today's closing time from the profile, if the shop is open and closes later today. */
function closingToday(now = Date.now()) {
  if (shop?.open_now !== true || shop.next_change?.open !== false) return null;
  const at = Date.parse(shop.next_change.at);
  if (Number.isNaN(at) || at <= now) return null;
  return new Date(at).toDateString() === new Date(now).toDateString() ? at : null;
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
  if (response.ok) return { ok: true, status: response.status, data, error: null };
  const error = data?.error && typeof data.error === "object" ? data.error
    : { code: response.status === 503 ? "redis_unavailable" : "http_error",
      message: `HTTP ${response.status}` };
  return { ok: false, status: response.status, data, error };
}


const shopPath = (suffix = "") => `/api/v1/shops/${encodeURIComponent(shop.id)}${suffix}`;

function say(node, text) {
  node.hidden = !text;
  node.textContent = text ?? "";
}

function announce(text) {
  $("announcer").textContent = text;
}

/** Any 401 while signed in: the session ended (token rotated, expired): back to sign-in. */
function sessionLost(result) {
  if (shop && result.status === 401) {
    leave();
    say($("signin-error"), t("err_not_signed_in"));
    return true;
  }
  return false;
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
    say($("signin-error"), t("need_credentials"));
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
    say($("signin-error"), errorText(result.error));
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
    say($("console-error"), errorText(result.error));
    return;
  }
  leave();
  announce(t("signed_out"));
  document.querySelector("#token-signin > summary").focus(); // the token form may be folded
}

function leave() {
  shop = null;
  clearTimeout(pollTimer);
  clearInterval(profileTimer);
  pollTimer = 0;
  lastStats = null;
  lastOpenings = null;
  ownPosts.clear();
  $("own-posts").replaceChildren();
  $("watching-count").textContent = "–";
  say($("console-error"), null);
  forgetDeviceLink();
  showSignIn();
}

function enter(profile) {
  shop = profile;
  $("signin").hidden = true;
  $("console").hidden = false;
  $("signout").hidden = false;
  $("shop-id").value = profile.id;
  showShop();
  const feedUrl = `/?lat=${profile.lat}&lon=${profile.lon}&radius_m=500&shop=${encodeURIComponent(profile.id)}`;
  $("screen-link").href = `/screen/${encodeURIComponent(profile.id)}`;
  $("feed-link").href = feedUrl;
  $("console-qr").src = shopPath("/qr.svg");
  $("console-qr").alt = t("qr_alt", { shop: profile.name });
  resetForm();
  profileForm.load(profile);
  loadHours();
  clearInterval(profileTimer);
  profileTimer = setInterval(refreshProfile, PROFILE_REFRESH_MS);
  poll();
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

async function refreshProfile() {
  if (!shop) return;
  const result = await api("GET", shopPath());
  if (result.ok && shop && result.data?.id === shop.id) {
    shop = result.data;
    showShop();
    renderPreview();
  }
}

// --- Live panel and own posts (polled) ----------------------------------------------------

function schedulePoll() {
  clearTimeout(pollTimer);
  if (!shop) return;
  pollTimer = setTimeout(poll, document.visibilityState === "hidden" ? HIDDEN_POLL_MS : POLL_MS);
}

async function poll() {
  if (!shop || polling) return;
  polling = true;
  try {
    const [stats, posts] = await Promise.all([api("GET", shopPath("/stats")),
      api("GET", shopPath("/posts"))]);
    if (!shop) return;
    if (sessionLost(stats) || sessionLost(posts)) return;
    if (stats.ok) {
      lastStats = stats.data;
      say($("stats-note"), null);
    } else {
      say($("stats-note"), t("stats_unavailable"));
    }
    showWatching();
    if (posts.ok && Array.isArray(posts.data?.posts)) {
      renderOwnPosts(posts.data.posts);
      say($("posts-error"), null);
    } else if (!posts.ok) {
      say($("posts-error"), errorText(posts.error));
    }
    updateReach();
  } finally {
    polling = false;
    schedulePoll();
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
  $("watching-label").textContent = plural("watching", count ?? fewer ?? 0, { r });
}

function reachText(postId) {
  const reach = lastStats?.reach?.[postId] ?? {};
  const phones = Number(reach.phone) || 0;
  const screens = Number(reach.screen) || 0;
  return t("reach", { phones: plural("phones", phones), screens: plural("screens", screens) });
}

function updateReach() {
  for (const [id, entry] of ownPosts) entry.reach.textContent = reachText(id);
}

function renderOwnPosts(list) {
  const seen = new Set();
  const listEl = $("own-posts");
  list.forEach((post, index) => {
    if (!post || typeof post.id !== "string") return;
    seen.add(post.id);
    const signature = JSON.stringify([post.updated_at, post.title, post.text, post.expires_at,
      post.ends_at, post.price, post.discount_pct, post.status, post.until, post.tags, getLang()]);
    let entry = ownPosts.get(post.id);
    if (!entry) {
      entry = makeOwnPost(post);
      ownPosts.set(post.id, entry);
    }
    if (entry.signature !== signature) {
      entry.post = post;
      entry.signature = signature;
      const card = buildCard(post, PREVIEW_DIST_M, { shop });
      entry.cardBox.replaceChildren(card.el);
      entry.card = card;
      entry.editLabel();
    }
    if (listEl.children[index] !== entry.li) listEl.insertBefore(entry.li, listEl.children[index] ?? null);
  });
  for (const [id, entry] of ownPosts) {
    if (!seen.has(id) && !entry.busy) {
      dropOwnPost(id);
    }
  }
  $("own-empty").hidden = ownPosts.size > 0;
  // The shop's own opening posts decide its open/closed line (issue 14): ask again when
  // one appears, changes or goes.
  const openings = JSON.stringify(list.filter((p) => p?.kind === "opening_change" && !p.auto)
    .map((p) => [p.id, p.status, p.expires_at]));
  if (lastOpenings !== null && openings !== lastOpenings) refreshProfile();
  lastOpenings = openings;
}

function dropOwnPost(id) {
  const entry = ownPosts.get(id);
  if (!entry) return;
  const hadFocus = entry.li.contains(document.activeElement);
  entry.li.remove();
  ownPosts.delete(id);
  $("own-empty").hidden = ownPosts.size > 0;
  if (hadFocus) $("posts-heading").focus();
}

function makeOwnPost(post) {
  const li = el("li", "own-post");
  li.dataset.postId = post.id;
  const cardBox = el("div", "own-card");
  const reach = el("p", "reach");
  reach.id = `reach-${post.id}`;
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
  li.append(cardBox, reach, actions, editBox, message);
  if (post.auto) li.insertBefore(el("p", "hint auto", t("auto_post")), reach);

  const entry = { post, li, cardBox, reach, card: null, signature: "", busy: false,
    editLabel: () => {
      const title = String(entry.post.title ?? "");
      editBtn.setAttribute("aria-label", t("edit_label", { title }));
      withdrawBtn.setAttribute("aria-label", t("withdraw_label", { title }));
    } };

  let confirmTimer = 0;
  withdrawBtn.addEventListener("click", async () => {
    if (!withdrawBtn.classList.contains("confirming")) {
      // Two taps: a post cannot be brought back, and a pocket tap should not remove it.
      withdrawBtn.classList.add("confirming");
      withdrawBtn.textContent = t("withdraw_confirm");
      confirmTimer = setTimeout(() => {
        withdrawBtn.classList.remove("confirming");
        withdrawBtn.textContent = t("withdraw");
      }, CONFIRM_MS);
      return;
    }
    clearTimeout(confirmTimer);
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
    withdrawBtn.classList.remove("confirming");
    withdrawBtn.textContent = t("withdraw");
    say(message, errorText(result.error));
  });

  editBtn.addEventListener("click", () => {
    if (!editBox.hidden) {
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

function editForm(entry, close, message) {
  const post = entry.post;
  const id = post.id;
  const form = el("form", "form edit-form");
  form.noValidate = true;
  const field = (name, labelKey, input) => {
    const wrap = el("div", "field");
    input.id = `edit-${name}-${id}`;
    input.name = name;
    const label = el("label", null, t(labelKey));
    label.htmlFor = input.id;
    wrap.append(label, input);
    form.append(wrap);
    return input;
  };
  const title = el("input");
  title.type = "text";
  title.maxLength = 2 * TITLE_MAX;
  title.dir = "auto";
  title.addEventListener("input", () => clampChars(title, TITLE_MAX));
  title.required = true;
  title.value = String(post.title ?? "");
  field("title", "post_title", title);
  const text = el("textarea");
  text.rows = 3;
  text.maxLength = 2 * TEXT_MAX;
  text.dir = "auto";
  text.addEventListener("input", () => clampChars(text, TEXT_MAX));
  text.value = String(post.text ?? "");
  field("text", "post_text", text);
  let endsAt = null;
  if (post.kind === "flash_offer") {
    endsAt = el("input");
    endsAt.type = "datetime-local";
    endsAt.value = Number.isNaN(Date.parse(post.ends_at)) ? "" : toLocalInput(Date.parse(post.ends_at));
    field("ends_at", "ends_at", endsAt);
  }
  const buttons = el("div", "form-buttons");
  const save = el("button", "primary", t("save"));
  save.type = "submit";
  const cancel = el("button", "secondary", t("cancel"));
  cancel.type = "button";
  cancel.addEventListener("click", close);
  buttons.append(save, cancel);
  form.append(buttons);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const patch = {};
    const newTitle = title.value.trim();
    if (!newTitle) {
      say(message, t("need_title"));
      title.focus();
      return;
    }
    if (newTitle !== post.title) patch.title = newTitle;
    if (text.value.trim() !== String(post.text ?? "")) patch.text = text.value.trim();
    if (endsAt) {
      const ms = fromLocalInput(endsAt.value);
      if (ms === null) {
        say(message, t("need_ends_at"));
        endsAt.focus();
        return;
      }
      if (endsAt.value !== toLocalInput(Date.parse(post.ends_at))) patch.ends_at = rfc3339(ms);
    }
    if (!Object.keys(patch).length) {
      close();
      return;
    }
    save.disabled = true;
    const result = await api("PATCH", shopPath(`/posts/${encodeURIComponent(id)}`), patch);
    save.disabled = false;
    if (sessionLost(result)) return;
    if (!result.ok) {
      say(message, errorText(result.error));
      return;
    }
    say(message, null);
    announce(t("edit_sent"));
    close();
    poll();
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
  renderPreview();
}

function resetForm(keepKind = false) {
  const form = $("post-form");
  const current = kind();
  form.reset();
  if (keepKind) setKind(current);
  $("ends-at").value = toLocalInput(nextMinute(Date.now() + FLASH_DEFAULT_MIN * 60000));
  $("status").value = "closed_now";
  showKindFields();
  counters();
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
  return { body };
}

async function publish(event) {
  event.preventDefault();
  if (!shop) return;
  const { body, error, focus } = readForm();
  say($("post-ok"), null);
  if (error) {
    say($("post-error"), error);
    $(focus)?.focus();
    return;
  }
  say($("post-error"), null);
  const button = $("publish");
  button.disabled = true;
  button.textContent = t("publishing");
  const result = await api("POST", shopPath("/posts"), body);
  button.disabled = false;
  button.textContent = t("publish");
  if (sessionLost(result)) return;
  if (!result.ok) {
    say($("post-error"), errorText(result.error));
    return;
  }
  say($("post-ok"), t("published"));
  resetForm(true);
  poll();
}

function applyTemplate(name) {
  const now = Date.now();
  resetForm();
  if (name === "arrival") {
    setKind("new_arrival");
    $("title").value = t("tpl_arrival");
  } else if (name === "discount") {
    setKind("flash_offer");
    $("title").value = t("tpl_discount");
    $("discount").value = "20";
    $("ends-at").value = toLocalInput(closingToday(now) ?? nextMinute(now + 2 * 3600000));
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
  previewCard = buildCard(post, PREVIEW_DIST_M, { shop });
  previewCard.el.removeAttribute("tabindex"); // a picture of a card, not one to visit
  previewCard.el.classList.toggle("is-placeholder", !$("title").value.trim());
  $("preview").replaceChildren(previewCard.el);
}

// --- Opening hours ------------------------------------------------------------------------

async function loadHours() {
  const result = await api("GET", shopPath("/hours"));
  if (result.ok) hoursEditor.load(result.data);
  else {
    hoursEditor.load(null);
    say($("hours-error"), errorText(result.error));
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
    say($("hours-error"), t(err.key, err.vars));
    $(err.focus)?.focus();
    return;
  }
  say($("hours-error"), null);
  const button = $("save-hours");
  button.disabled = true;
  const result = await api("PUT", shopPath("/hours"), body);
  button.disabled = false;
  if (sessionLost(result)) return;
  if (!result.ok) {
    say($("hours-error"), errorText(result.error));
    return;
  }
  shop = result.data ?? shop;
  showShop();
  renderPreview();
  say($("hours-ok"), t("hours_saved"));
}

// --- The shop's name, category and address -------------------------------------------------

async function saveProfile(event) {
  event.preventDefault();
  if (!shop) return;
  say($("profile-ok"), null);
  const changes = profileForm.changes(shop);
  if (changes.name === "") {
    say($("profile-error"), t("need_shop_name"));
    $("profile-name").focus();
    return;
  }
  say($("profile-error"), null);
  if (!Object.keys(changes).length) {
    say($("profile-ok"), t("profile_saved"));
    return;
  }
  const button = $("save-profile");
  button.disabled = true;
  const result = await api("PATCH", shopPath(), changes);
  button.disabled = false;
  if (sessionLost(result)) return;
  if (!result.ok) {
    say($("profile-error"), errorText(result.error));
    return;
  }
  shop = result.data ?? shop;
  profileForm.load(shop);
  showShop();
  renderPreview();
  say($("profile-ok"), t("profile_saved"));
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

  onLangChange(() => {
    labelLang();
    for (const option of radiusEl.options) option.textContent = formatDistance(Number(option.value), getLang());
    showShop();
    showWatching();
    hoursEditor.relabel();
    profileForm.relabel();
    renderPreview();
    // Rebuilt from the next poll, buttons and all, in the new language.
    ownPosts.clear();
    $("own-posts").replaceChildren();
    if (shop) poll();
  });

  $("signin-form").addEventListener("submit", signIn);
  setupDeviceLink({ api, errorText, currentShop: () => shop, sessionLost });
  $("signout").addEventListener("click", signOut);
  $("post-form").addEventListener("submit", publish);
  $("hours-form").addEventListener("submit", saveHours);
  $("profile-form").addEventListener("submit", saveProfile);
  for (const radio of document.querySelectorAll('input[name="kind"]')) {
    radio.addEventListener("change", showKindFields);
  }
  $("post-form").addEventListener("input", () => {
    counters();
    renderPreview();
  });
  $("tpl-arrival").addEventListener("click", () => applyTemplate("arrival"));
  $("tpl-discount").addEventListener("click", () => applyTemplate("discount"));
  $("tpl-lunch").addEventListener("click", () => applyTemplate("lunch"));
  for (const button of document.querySelectorAll("[data-ends]")) {
    button.addEventListener("click", () => {
      const now = Date.now();
      const at = button.dataset.ends === "closing" ? closingToday(now) ?? nextMinute(now + 2 * 3600000)
        : nextMinute(now + Number(button.dataset.ends) * 60000);
      $("ends-at").value = toLocalInput(at);
      renderPreview();
    });
  }
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && shop) poll();
  });
  setInterval(() => {
    const now = Date.now();
    previewCard?.tick(now);
    for (const entry of ownPosts.values()) entry.card?.tick(now);
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
    say($("console-error"), errorText(result.error));
  }
  showSignIn();
}

main();
