// One post -> one <article>. Post text comes from shopkeepers, so it is only ever set
// through textContent: "<script>" in a title shows up as those characters.

import { categoryText } from "./categories.js";
import { formatDistance, walkMinutes } from "./geo.js";
import { dateFormat, getLang, hhmm, t } from "./i18n.js";

const KINDS = new Set(["new_arrival", "flash_offer", "opening_change"]);
const STATUSES = new Set(["open_now", "closed_now", "open_late", "closed_exceptionally"]);
const formats = new Map(); // Intl objects are costly to create and the tick runs every second

function fmt(kind, make) {
  const key = `${kind}:${getLang()}`;
  if (!formats.has(key)) formats.set(key, make(getLang()));
  return formats.get(key);
}

/** Whether a frame's or an answer's post can be placed: an id and a shop with a place. */
export const isPost = (p) => p && typeof p === "object" && typeof p.id === "string" && p.shop &&
  Number.isFinite(p.shop.lat) && Number.isFinite(p.shop.lon);

/** A new element with a class and text: the pages' one small DOM helper. */
export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

const CONFIRM_MS = 5000;

/**
 * A button that acts on its second tap (what it removes cannot be brought back, and a
 * pocket tap should not remove it): the first tap arms it (class "confirming", `arm`
 * relabels it), CONFIRM_MS without a second disarms it (`disarm` relabels it back).
 * Returns the disarming, for a refusal to put the button back as it was.
 */
export function confirmTwice(button, { arm, disarm, act }) {
  let timer = 0;
  const reset = () => {
    clearTimeout(timer);
    button.classList.remove("confirming");
    disarm();
  };
  button.addEventListener("click", () => {
    if (!button.classList.contains("confirming")) {
      button.classList.add("confirming");
      arm();
      timer = setTimeout(reset, CONFIRM_MS);
      return;
    }
    clearTimeout(timer);
    act();
  });
  return reset;
}

/**
 * Text a shopkeeper typed (a name, title, tag, address...), isolated for bidi: it takes
 * its direction from its own first strong letter, and whatever controls it holds it
 * cannot reorder the text around it. The server refuses bidi controls, but a card can
 * come from an older post or from a copy kept on the device. Inline text goes in a
 * <bdi>; a block gets dir="auto", which isolates it the same way (HTML's UA style sheet
 * gives [dir] and bdi `unicode-bidi: isolate`).
 */
export function userText(tag, className, text) {
  const node = el(tag, className, text);
  if (tag !== "bdi") node.dir = "auto";
  return node;
}

const price = (euros) => fmt("eur", (l) =>
  new Intl.NumberFormat(l, { style: "currency", currency: "EUR" })).format(euros);

function relative(ms) {
  const rtf = fmt("rel", (l) => new Intl.RelativeTimeFormat(l, { numeric: "auto" }));
  const s = Math.round(ms / 1000);
  if (Math.abs(s) < 45) return rtf.format(0, "second"); // "now" / "maintenant"
  if (Math.abs(s) < 3600) return rtf.format(Math.round(s / 60), "minute");
  if (Math.abs(s) < 86400) return rtf.format(Math.round(s / 3600), "hour");
  return rtf.format(Math.round(s / 86400), "day");
}

const HOUR_MS = 3600000;

// The width style.css gives a card's photo: the feed's column (main is 40rem at most,
// with 0.75rem of padding a side on a phone, 1rem from 40rem), edge to edge of the card.
const CARD_PHOTO_SIZES = "(min-width: 40rem) 38rem, calc(100vw - 1.5rem)";

function countdown(ms) {
  // In units, not "16:20", which read as a time of day beside "until 12:22" (a cold try):
  // the last hour only (longer, the card says until when).
  const total = Math.ceil(ms / 1000);
  const m = Math.floor(total / 60);
  const s = total % 60;
  return m ? `${m}\u00a0min ${String(s).padStart(2, "0")}\u00a0s` : `${s}\u00a0s`;
}

const isNumber = (v) => typeof v === "number" && Number.isFinite(v);

/**
 * The zone a post's times are said in: its shop's (`shop.timezone`, on every post from
 * servers that send it), else the automatic opening post's own `timezone`; null for
 * an older post naming neither (the device's zone then).
 */
export function postZone(post) {
  const zone = [post?.shop?.timezone, post?.timezone].find((z) => typeof z === "string" && z);
  return zone && zonedTime(0, zone) !== null ? zone : null;
}

/** "19:00" at `ms` in `zone` when known, else in the device's zone. */
export const postTime = (ms, zone) => (zone && zonedTime(ms, zone)) || hhmm(ms);

/**
 * When something ends: "15:57", or "mar. 15:57" / "Tue 15:57" when that is another day
 * where the shop is (an offer ending tomorrow afternoon read as today's: the notification
 * of an alert says the day too).
 */
export function endTime(ms, zone, now = Date.now()) {
  const known = zone && zonedTime(0, zone) !== null ? zone : null;
  const today = known ? zonedDay(ms, known) === zonedDay(now, known) : sameDay(ms, now);
  if (today) return postTime(ms, zone);
  return dateFormat({ weekday: "short", hour: "2-digit", minute: "2-digit",
    ...(known ? { timeZone: known } : {}) }).format(ms);
}

/** "19:00" at `ms` in the IANA zone `timeZone`; null for a zone this browser lacks. */
function zonedTime(ms, timeZone) {
  try {
    return hhmm(ms, timeZone);
  } catch {
    return null; // RangeError: unknown time zone
  }
}

/** Days since the epoch of the calendar day `ms` falls on in `timeZone` (parsed, never shown). */
function zonedDay(ms, timeZone) {
  const parts = Object.fromEntries(fmt(`ymd:${timeZone}`, () => new Intl.DateTimeFormat("en-US", {
    year: "numeric", month: "numeric", day: "numeric", timeZone })).formatToParts(ms)
    .map((p) => [p.type, Number(p.value)]));
  return Math.round(Date.UTC(parts.year, parts.month - 1, parts.day) / 86400000);
}

/**
 * The title of an automatic opening post (the server makes them from the shop's hours,
 * with a French title) in the reader's language, at the shop's local time: from its
 * `status`, `until` and `timezone`. Null keeps the server's title: a post typed by a
 * shopkeeper, or one without a usable time zone (made by an older server).
 */
export function autoTitle(post, now = Date.now()) {
  if (post?.kind !== "opening_change" || post.auto !== true || !STATUSES.has(post.status)) return null;
  const zone = postZone(post);
  if (!zone) return null;
  const open = post.status === "open_now" || post.status === "open_late";
  const until = Date.parse(post.until);
  if (Number.isNaN(until)) return t(open ? "auto_open" : "auto_closed");
  const time = zonedTime(until, zone);
  if (open) return t("auto_open_until", { time });
  const days = zonedDay(until, zone) - zonedDay(now, zone);
  if (days <= 0) return t("auto_closed_reopens_at", { time });
  if (days === 1) return t("auto_closed_reopens_tomorrow", { time });
  const day = dateFormat({ weekday: "long", timeZone: zone }).format(until);
  return t("auto_closed_reopens_on", { day, time });
}

/**
 * The facts line: price, discount, opening status. `openNow`: whether the shop is open
 * now, all its posts considered (its profile), if known: a post saying "open now" while
 * a later one closed the shop until 14:00 says "open" only (a cold try read "Closed ·
 * opens at 14:00" and "Open now · until 22:00" on one card).
 */
function facts(post, openNow) {
  const row = el("p", "facts");
  if (post.kind === "opening_change") {
    const status = STATUSES.has(post.status) ? post.status : "open_now";
    const says = status === "open_now" || status === "closed_now" ? status === "open_now" : null;
    const label = says !== null && typeof openNow === "boolean" && openNow !== says
      ? (says ? "opening_open" : "opening_closed") : `opening_${status}`;
    row.append(el("span", `opening opening-${status}`, t(label)));
    const until = Date.parse(post.until);
    // In the shop's zone: the title and this time agree, whatever the device's zone.
    const time = Number.isNaN(until) ? null : endTime(until, postZone(post));
    if (time) row.append(el("span", "until", t("until", { time })));
  }
  if (isNumber(post.discount_pct)) row.append(el("span", "discount", t("discount", { n: post.discount_pct })));
  if (isNumber(post.price)) row.append(el("span", "price", price(post.price)));
  return row.childElementCount ? row : null;
}

// --- Photos (DESIGN.md 9) ------------------------------------------------------------

// The contract's same-origin path, and nothing else: a post planted in the stream, or a
// copy kept by an older page, must not make the page fetch from another origin (which
// would tell it the passer-by's address and when they were in the street).
const MEDIA_PATH = /^\/media\/[\w-]+\/\d+\.webp$/;
const isSize = (n) => Number.isInteger(n) && n > 0 && n <= 100000;
const isVariant = (v) => typeof v?.url === "string" && MEDIA_PATH.test(v.url) &&
  isSize(v.width) && isSize(v.height);
const MAX_PHOTOS = 4;

/**
 * A post's photos that can be shown, each with its variants narrowest first (a photo
 * without `variants`, as the contract's minimum has it, is its own only variant).
 * @returns {{id: string, variants: {url: string, width: number, height: number}[]}[]}
 */
export function photosOf(post) {
  if (!Array.isArray(post?.media)) return [];
  const photos = [];
  for (const media of post.media.slice(0, MAX_PHOTOS)) {
    const given = Array.isArray(media?.variants) && media.variants.length ? media.variants : [media];
    const variants = given.filter(isVariant).sort((a, b) => a.width - b.width);
    if (variants.length) photos.push({ id: String(media.id ?? variants[0].url), variants });
  }
  return photos;
}

/**
 * One photo as an <img>: the browser picks the variant from `srcset` by the width the
 * layout gives the image (`sizes`, which must say what the CSS does) and the screen's
 * pixel density; `width`/`height` give the box its shape before a byte arrives, so
 * nothing moves when it does. Lazy unless `eager` (an image in the first view is what
 * the page is judged on: it must not wait for layout to be asked for).
 * @param {{sizes: string, alt: string, className: string, eager?: boolean,
 *          maxWidth?: number}} opts  maxWidth: leave out wider variants (a thumbnail)
 */
export function photoImg(photo, { sizes, alt, className, eager = false, maxWidth }) {
  const fitting = maxWidth ? photo.variants.filter((v) => v.width <= maxWidth) : [];
  const variants = fitting.length ? fitting : photo.variants;
  const widest = variants[variants.length - 1];
  const img = document.createElement("img");
  img.className = className;
  img.loading = eager ? "eager" : "lazy";
  img.decoding = "async";
  img.width = widest.width;
  img.height = widest.height;
  img.alt = alt;
  img.sizes = sizes;
  img.srcset = variants.map((v) => `${v.url} ${v.width}w`).join(", ");
  // For a browser without srcset: a middle width, not the heaviest.
  img.src = (variants.find((v) => v.width >= 800) ?? widest).url;
  img.dataset.photo = photo.id;
  return img;
}

// A photo is never blown up past this many times its own size: a 100 px photo on a
// 340 px card is a blur, better small and centred.
const MAX_UPSCALE = 1.5;

/**
 * The card's photos: the first one, and the others beside it in a strip that scrolls
 * sideways. The strip's height comes from the first photo's shape (between 4:5 and 2:1),
 * set before any image loads; each photo in it keeps its own shape (widths vary, one
 * wider than the card is shown whole, on the neutral background), and none is enlarged
 * past MAX_UPSCALE. The page's CSS may override this (the screen).
 */
function photoStrip(photos, title, { sizes, eager }) {
  const box = el("div", "card-media");
  const first = photos[0].variants[photos[0].variants.length - 1];
  const ratio = Math.min(2, Math.max(0.8, first.width / first.height));
  box.style.setProperty("--photo-ratio", ratio.toFixed(4)); // CSSOM: allowed by the CSP
  box.style.setProperty("--photo-max-h", `${Math.round(first.height * MAX_UPSCALE)}px`);
  const strip = el("div", "card-photos");
  photos.forEach((photo, i) => {
    const alt = photos.length > 1 ? `${title} (${i + 1}/${photos.length})` : title;
    const img = photoImg(photo, { sizes, alt, eager: eager && i === 0, className: "card-photo" });
    const own = photo.variants[photo.variants.length - 1];
    img.style.setProperty("--photo-max-w", `${Math.round(own.width * MAX_UPSCALE)}px`);
    strip.append(img);
  });
  box.append(strip);
  if (photos.length > 1) {
    // It scrolls: the keyboard must reach it too (and a screen reader hears how many).
    strip.tabIndex = 0;
    strip.setAttribute("role", "group");
    strip.setAttribute("aria-label", t("photos_n", { n: photos.length }));
    const count = el("span", "photo-count", t("photos_n", { n: photos.length }));
    count.setAttribute("aria-hidden", "true");
    box.append(count);
  }
  return box;
}

/**
 * A card made again (an edit, a follow, a profile): its photos already loaded stay the
 * same <img> nodes, so they neither load nor decode again nor blink. Call before
 * `from` leaves the page.
 */
export function keepPhotos(from, to) {
  const old = new Map();
  for (const img of from.querySelectorAll("img[data-photo]")) {
    const key = `${img.srcset}|${img.sizes}`;
    if (!old.has(key)) old.set(key, img);
  }
  for (const img of to.querySelectorAll("img[data-photo]")) {
    const key = `${img.srcset}|${img.sizes}`;
    const kept = old.get(key);
    if (!kept) continue;
    old.delete(key);
    kept.alt = img.alt; // the title may have been edited
    img.replaceWith(kept);
  }
}

// --- Producers (DESIGN.md 9 "Local producers") -------------------------------------------

const MAX_PRODUCERS = 3; // the contract's most per post
/** An id fit for a producer page's address (the server's are `pr_` and 16 letters). */
export const isProducerId = (id) => typeof id === "string" && /^[\w-]{1,64}$/.test(id);

/** A post's producers that can be shown: {id, name, place, distance_km}, in its order. */
export function producersOf(post) {
  if (!Array.isArray(post?.producers)) return [];
  return post.producers.slice(0, MAX_PRODUCERS).filter((p) => p && typeof p === "object" &&
    isProducerId(p.id) && typeof p.name === "string" &&
    p.name !== "" && Number.isFinite(p.distance_km) && p.distance_km >= 0);
}

/**
 * "35 km", "0,8 km" (FR) or "0.8 km" (EN): a producer's distance as the server gives it
 * (km, one decimal). Tenths only under 10 km: "33,6 km" away says no more than "34 km".
 */
export function formatKm(km) {
  const digits = km < 10 ? 1 : 0;
  const number = fmt(`km${digits}`, (l) => new Intl.NumberFormat(l,
    { maximumFractionDigits: digits }));
  return `${number.format(digits ? km : Math.round(km))} km`;
}

/** The URL of a producer's page: a view of the passer-by page (app.js). */
export function producerHref(id, search = location.search) {
  const params = new URLSearchParams(search);
  params.set("producer", id);
  return `/?${params}`;
}

/**
 * The card's "where it comes from" badges: "Moulin de Saint-Émilion · 35 km", each a
 * link to the producer's page when `link` (the passer-by page), plain text otherwise
 * (a wall screen nobody touches).
 */
function producerBadges(producers, link) {
  const list = el("ul", "producers");
  list.setAttribute("aria-label", t("producers_label"));
  for (const producer of producers) {
    const item = el("li", "producer-item");
    const badge = el(link ? "a" : "span", "producer");
    if (link) {
      badge.href = producerHref(producer.id);
      badge.dataset.producerId = producer.id;
    }
    badge.title = t("producer_title", { place: String(producer.place ?? ""),
      km: formatKm(producer.distance_km) });
    badge.append(userText("bdi", "producer-name", producer.name),
      el("span", "producer-km", ` · ${formatKm(producer.distance_km)}`));
    item.append(badge);
    list.append(item);
  }
  return list;
}

// --- Hold it for me (DESIGN.md 9) ----------------------------------------------------------

/** A post's offer to hold ({left, minutes}, whole numbers), or null when it makes none. */
export function holdOf(post) {
  const hold = post?.hold;
  if (!hold || typeof hold !== "object") return null;
  const { left, minutes } = hold;
  return Number.isInteger(left) && left >= 0 && Number.isInteger(minutes) && minutes > 0
    ? { left, minutes } : null;
}

/**
 * The card's line about holding: "Hold it for me · 3 left" as a button calling `onHold`
 * (the passer-by's page), the same words as text without one (a preview), "3 left to
 * hold" on a wall screen (`show` "count"), nothing with `show` "none"; "All held" once
 * none is left, never a button. On the passer-by's page, a shop known to be closed now
 * (`closed`) offers no button: nobody would answer, and the hold would lapse unanswered
 * (a cold try asked one at a shop shown as closed).
 */
export function holdLine(post, titleId, { onHold, show, closed = false }) {
  const hold = holdOf(post);
  if (!hold || show === "none") return null;
  if (hold.left === 0) return el("p", "hold-line hold-all-held", t("hold_all_held"));
  if (show === "count") return el("p", "hold-line hold-count", t("hold_count", { n: hold.left }));
  const text = t("hold_ask", { n: hold.left });
  if (typeof onHold !== "function") return el("p", "hold-line hold-offer", text);
  if (closed) return el("p", "hold-line hold-when-open", t("hold_when_open"));
  const row = el("p", "hold-line");
  const button = el("button", "hold-ask", text);
  button.type = "button";
  button.dataset.postId = post.id;
  button.setAttribute("aria-describedby", titleId); // which post: the card's title
  button.addEventListener("click", (ev) => {
    ev.stopPropagation();
    onHold(post, button);
  });
  row.append(button);
  return row;
}

// --- Alerts for followed shops (DESIGN.md 9) -------------------------------------------------

/** "Alert me" on a followed shop's card: a toggle button, pressed while its posts alert
 * this device; which shop is said by the card's title it describes. */
function alertLine(alert, titleId) {
  const row = el("p", "alert-line");
  const button = el("button", "alert-me");
  button.type = "button";
  button.setAttribute("aria-pressed", String(Boolean(alert.on)));
  button.setAttribute("aria-describedby", titleId);
  const bell = el("span", "alert-bell");
  bell.setAttribute("aria-hidden", "true");
  // The label says the state too: a filled bell alone read as "not yet" to a new user.
  button.append(bell, el("span", "alert-me-label", t(alert.on ? "alert_me_on" : "alert_me")));
  button.addEventListener("click", (ev) => {
    ev.stopPropagation();
    alert.onToggle();
  });
  row.append(button);
  // Why this tap did not turn alerts on (blocked, unsupported, offline), by the button.
  if (alert.note) row.append(el("span", "alert-note", alert.note));
  return row;
}

const sameDay = (a, b) => new Date(a).toDateString() === new Date(b).toDateString();

/**
 * "Open · closes at 19:00" from a shop profile ({open_now, next_change}), or null when the
 * shop gave no hours (or the profile is not known yet).
 * @returns {{open: boolean, text: string} | null}
 */
export function openingState(profile, now = Date.now()) {
  if (!profile || typeof profile.open_now !== "boolean") return null;
  const open = profile.open_now;
  const parts = [t(open ? "shop_open" : "shop_closed")];
  const at = Date.parse(profile.next_change?.at);
  // `estimated`: the shop said "open late" (or "closed now") without a time; its post only
  // lapses then (at the end of its day), which is not a closing time to show.
  if (!Number.isNaN(at) && at > now && profile.next_change.open === !open &&
      profile.next_change.estimated !== true) {
    // In the shop's time, as its hours were given (the device may be in another zone).
    const zone = typeof profile.timezone === "string" ? profile.timezone : null;
    const zoned = zone && zonedTime(at, zone);
    const time = zoned || hhmm(at);
    const same = zoned ? (a, b) => zonedDay(a, zone) === zonedDay(b, zone) : sameDay;
    if (open && at - now < 86400000) parts.push(t("closes_at", { time }));
    else if (!open && same(at, now)) parts.push(t("opens_at", { time }));
    else if (!open && same(at, now + 86400000)) parts.push(t("opens_tomorrow", { time }));
  }
  return { open, text: parts.join(" · ") };
}

/**
 * @param {object} post  exactly as the server sent it
 * @param {number} dist  metres from the reader
 * @param {{follow?: {followed: boolean, onToggle: () => void}, shop?: object,
 *          hideDistance?: boolean, seenAt?: number,
 *          photos?: {sizes: string, eager?: boolean, first?: boolean} | null,
 *          producerLinks?: boolean, idPrefix?: string,
 *          onHold?: (post: object, button: HTMLElement) => void,
 *          holds?: "count" | "none",
 *          alert?: {on: boolean, onToggle: () => void, note?: string},
 *          openNow?: boolean}} [opts]
 *   follow: a star button to follow the shop; shop: its profile, for "open now";
 *   hideDistance: the shop's own screen, where "0 m" says nothing;
 *   seenAt: a copy kept on the device, last seen live then (ms): "seen at 14:05"
 *   photos: how its photos show: `sizes` (the width the page's CSS gives them),
 *     `eager` (in the first view), `first` (that one alone: nobody scrolls a wall
 *     screen); null shows none. Default: the passer-by page's card, all of them.
 *   producerLinks: false shows the producers' badges as text, not links (a wall screen)
 *   idPrefix: of its title's id, for a second card of the same post in the page
 *   onHold: (post, button) => void, makes "Hold it for me" a button (the passer-by's page)
 *   holds: "count" says "3 left to hold" rather than offering to tap (a wall screen's
 *     own posts), "none" nothing of holds (its neighbours')
 *   alert: "Alert me" for a followed shop's posts (alerts.js), pressed while they alert
 *   openNow: whether the shop is open now, where its profile is not given (`shop`) but
 *     known (a wall screen's own posts, under its header saying it)
 * @returns {{el: HTMLElement, dist: number, expiresAt: number, tick: (now: number) => void}}
 */
export function buildCard(post, dist, opts = {}) {
  const kind = KINDS.has(post.kind) ? post.kind : "other";
  const card = el("article", `card kind-${kind}`);
  card.dataset.postId = post.id;
  card.tabIndex = 0; // cards are the unit a keyboard or switch user moves through
  const titleId = `${opts.idPrefix ?? "post-title-"}${post.id}`;
  card.setAttribute("aria-labelledby", titleId);

  const head = el("div", "card-head");
  head.append(el("span", "badge", kind === "other" ? String(post.kind ?? "") : t(`kind_${kind}`)));
  // Distance and star keep together at the right: on a narrow phone the star alone
  // wrapped to a line of its own, at the left, and looked broken.
  const end = el("span", "head-end");
  if (!opts.hideDistance) {
    const where = el("span", "where");
    where.append(el("strong", "distance", formatDistance(dist, getLang())),
      el("span", "walk", t("walk", { n: walkMinutes(dist) })));
    end.append(where);
  }
  head.append(end);
  if (opts.follow) {
    const name = String(post.shop.name ?? "");
    const star = el("button", "star");
    star.type = "button";
    star.dataset.shopId = String(post.shop.id ?? "");
    star.setAttribute("aria-pressed", String(Boolean(opts.follow.followed)));
    star.setAttribute("aria-label", t(opts.follow.followed ? "unfollow_shop" : "follow_shop",
      { shop: name }));
    star.title = star.getAttribute("aria-label");
    star.append(el("span", "star-glyph", opts.follow.followed ? "★" : "☆"));
    star.firstChild.setAttribute("aria-hidden", "true");
    star.addEventListener("click", (ev) => {
      ev.stopPropagation();
      opts.follow.onToggle();
    });
    end.append(star);
    if (opts.follow.followed) {
      card.classList.add("is-followed");
      head.insertBefore(el("span", "followed-mark", t("followed")), head.children[1] ?? null);
    }
  }
  card.append(head);

  const endsAt = Date.parse(post.ends_at);
  const zone = postZone(post);
  let timer = null;
  if (kind === "flash_offer" && !Number.isNaN(endsAt)) {
    timer = el("p", "countdown");
    timer.setAttribute("role", "timer"); // implicitly not live: a second-by-second readout is noise
    card.append(timer);
  }

  const titleText = autoTitle(post) ?? String(post.title ?? "");
  const photos = opts.photos === null ? [] : photosOf(post);
  if (photos.length) {
    card.classList.add("has-photo");
    const how = opts.photos ?? { sizes: CARD_PHOTO_SIZES };
    card.append(photoStrip(how.first ? photos.slice(0, 1) : photos, titleText, how));
  }
  const title = userText("h3", "card-title", titleText);
  title.id = titleId;
  const shop = el("p", "shop");
  shop.append(userText("bdi", "shop-name", String(post.shop.name ?? "")));
  if (post.shop.category) shop.append(userText("bdi", "shop-category", categoryText(post.shop.category)));
  card.append(title, shop);
  if (opts.alert) card.append(alertLine(opts.alert, titleId));
  const producers = producersOf(post);
  if (producers.length) card.append(producerBadges(producers, opts.producerLinks !== false));
  const opening = openingState(opts.shop);
  if (opening) {
    card.append(el("p", `open-state ${opening.open ? "is-open" : "is-closed"}`, opening.text));
  }
  if (post.text) card.append(userText("p", "card-text", String(post.text)));
  const factRow = facts(post, opening?.open ?? opts.openNow);
  if (factRow) card.append(factRow);
  const holding = holdLine(post, titleId, { onHold: opts.onHold, show: opts.holds,
    closed: opening?.open === false });
  if (holding) card.append(holding);
  if (Array.isArray(post.tags) && post.tags.length) {
    const tags = el("ul", "tags");
    for (const tag of post.tags) tags.append(userText("li", "tag", String(tag)));
    card.append(tags);
  }

  const foot = el("p", "card-foot");
  if (post.shop.address) foot.append(userText("bdi", "address", String(post.shop.address)));
  const postedAt = Date.parse(post.posted_at);
  const posted = el("time", "posted");
  if (!Number.isNaN(postedAt)) {
    posted.dateTime = post.posted_at;
    foot.append(posted);
  }
  if (Number.isFinite(opts.seenAt)) {
    card.classList.add("is-kept");
    foot.append(el("span", "seen-at", t("seen_at", { time: hhmm(opts.seenAt) })));
  }
  if (foot.childElementCount) card.append(foot);

  const tick = (now) => {
    if (!Number.isNaN(postedAt)) {
      // Called every second for every card; the text changes about once a minute.
      const ago = relative(postedAt - now);
      if (posted.textContent !== ago) posted.textContent = ago;
    }
    if (timer && !timer.classList.contains("ended-mark")) { // said ended: app.js markEnded
      const left = endsAt - now;
      // A countdown in hours reads like a clock ("16:52:36"): the end time says it better.
      let text = t("ended");
      if (left > HOUR_MS) text = t("until", { time: endTime(endsAt, zone, now) });
      else if (left > 0) text = t("ends_in", { t: countdown(left) });
      if (timer.textContent !== text) timer.textContent = text;
      // The last five minutes are when it is worth crossing the street for.
      timer.classList.toggle("soon", left > 0 && left <= 300000);
    }
  };
  tick(Date.now());
  return { el: card, dist, expiresAt: Date.parse(post.expires_at), postedAt, tick };
}
