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

/** A new element with a class and text: the pages' one small DOM helper. */
export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
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

function countdown(ms) {
  const total = Math.ceil(ms / 1000);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}

const isNumber = (v) => typeof v === "number" && Number.isFinite(v);

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
  const zone = typeof post.timezone === "string" ? post.timezone : "";
  if (!zone || zonedTime(0, zone) === null) return null;
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

/** The facts line: price, discount, opening status. */
function facts(post) {
  const row = el("p", "facts");
  if (post.kind === "opening_change") {
    const status = STATUSES.has(post.status) ? post.status : "open_now";
    row.append(el("span", `opening opening-${status}`, t(`opening_${status}`)));
    const until = Date.parse(post.until);
    // An automatic post names the shop's time zone: its title and this time agree.
    const time = Number.isNaN(until) ? null
      : (typeof post.timezone === "string" && zonedTime(until, post.timezone)) || hhmm(until);
    if (time) row.append(el("span", "until", t("until", { time })));
  }
  if (isNumber(post.discount_pct)) row.append(el("span", "discount", t("discount", { n: post.discount_pct })));
  if (isNumber(post.price)) row.append(el("span", "price", price(post.price)));
  return row.childElementCount ? row : null;
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
  if (!Number.isNaN(at) && at > now && profile.next_change.open === !open) {
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
 *          hideDistance?: boolean, seenAt?: number}} [opts]
 *   follow: a star button to follow the shop; shop: its profile, for "open now";
 *   hideDistance: the shop's own screen, where "0 m" says nothing;
 *   seenAt: a copy kept on the device, last seen live then (ms): "seen at 14:05"
 * @returns {{el: HTMLElement, dist: number, expiresAt: number, tick: (now: number) => void}}
 */
export function buildCard(post, dist, opts = {}) {
  const kind = KINDS.has(post.kind) ? post.kind : "other";
  const card = el("article", `card kind-${kind}`);
  card.dataset.postId = post.id;
  card.tabIndex = 0; // cards are the unit a keyboard or switch user moves through
  const titleId = `post-title-${post.id}`;
  card.setAttribute("aria-labelledby", titleId);

  const head = el("div", "card-head");
  head.append(el("span", "badge", kind === "other" ? String(post.kind ?? "") : t(`kind_${kind}`)));
  if (!opts.hideDistance) {
    const where = el("span", "where");
    where.append(el("strong", "distance", formatDistance(dist, getLang())),
      el("span", "walk", t("walk", { n: walkMinutes(dist) })));
    head.append(where);
  }
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
    head.append(star);
    if (opts.follow.followed) {
      card.classList.add("is-followed");
      head.insertBefore(el("span", "followed-mark", t("followed")), head.children[1] ?? null);
    }
  }
  card.append(head);

  const endsAt = Date.parse(post.ends_at);
  let timer = null;
  if (kind === "flash_offer" && !Number.isNaN(endsAt)) {
    timer = el("p", "countdown");
    timer.setAttribute("role", "timer"); // implicitly not live: a second-by-second readout is noise
    card.append(timer);
  }

  const title = userText("h3", "card-title", autoTitle(post) ?? String(post.title ?? ""));
  title.id = titleId;
  const shop = el("p", "shop");
  shop.append(userText("bdi", "shop-name", String(post.shop.name ?? "")));
  if (post.shop.category) shop.append(userText("bdi", "shop-category", categoryText(post.shop.category)));
  card.append(title, shop);
  const opening = openingState(opts.shop);
  if (opening) {
    card.append(el("p", `open-state ${opening.open ? "is-open" : "is-closed"}`, opening.text));
  }
  if (post.text) card.append(userText("p", "card-text", String(post.text)));
  const factRow = facts(post);
  if (factRow) card.append(factRow);
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
    if (timer) {
      const left = endsAt - now;
      // A countdown in hours reads like a clock ("16:52:36"): the end time says it better.
      let text = t("ended");
      if (left > HOUR_MS) text = t("until", { time: hhmm(endsAt) });
      else if (left > 0) text = t("ends_in", { t: countdown(left) });
      if (timer.textContent !== text) timer.textContent = text;
      // The last five minutes are when it is worth crossing the street for.
      timer.classList.toggle("soon", left > 0 && left <= 300000);
    }
  };
  tick(Date.now());
  return { el: card, dist, expiresAt: Date.parse(post.expires_at), postedAt, tick };
}
