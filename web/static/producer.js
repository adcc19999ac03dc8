// A producer's page, a view of the passer-by page (/?producer=<id>): where the producer
// is (in words and on a small map, producermap.js), and the shops that sell it, nearest to
// the passer-by first, each with its live posts.
//
// Privacy: the passer-by's position stays in the page. Every request here is public and
// position-free (GET /api/v1/producers/{id}, GET /api/v1/shops/{id}/posts); the
// distances are worked out in the browser.

import { buildCard, el, formatKm, isPost, keepPhotos, openingState, producersOf, userText }
  from "./cards.js";
import { categoryText } from "./categories.js";
import { formatDistance, haversineM, walkMinutes } from "./geo.js";
import { getLang, plural, t } from "./i18n.js";
import { ProducerMap } from "./producermap.js";

// A producer may be sold across the country: the page lists the nearest shops, and
// reads the live posts of those only (one request each).
const MAX_SHOPS = 20;
const MAX_PARALLEL = 4;
// Posts of shops outside the feed's radius come only from these reads: read again now
// and then while the page is open (the feed's socket keeps the others current).
const REFRESH_MS = 60000;
const CARD_ID_PREFIX = "producer-post-title-";

const live = (post, now) => Date.parse(post.expires_at) > now;
const newestFirst = (a, b) => Date.parse(b.posted_at) - Date.parse(a.posted_at);

async function getJson(url) {
  const response = await fetch(url, { headers: { Accept: "application/json" } });
  if (!response.ok) {
    const error = new Error(`HTTP ${response.status}`);
    error.status = response.status;
    throw error;
  }
  return response.json();
}

export class ProducerView {
  /**
   * @param {HTMLElement} root  the view's container (hidden while the feed shows)
   * @param {{position: () => ({lat: number, lon: number} | null),
   *          profiles: import("./profiles.js").ProfileCache,
   *          onBack: () => void, onHold?: (post: object, button: HTMLElement) => void}} deps
   *   onHold: "Hold it for me" on its cards (holds.js)
   */
  constructor(root, { position, profiles, onBack, onHold }) {
    this.root = root;
    this.hint = null; // {name, place} from the badge that opened it, if any
    this.position = position;
    this.profiles = profiles;
    this.onBack = onBack;
    this.onHold = onHold;
    this.id = null;
    this.producer = null; // GET /api/v1/producers/{id}, once in
    // loading | ready (the producer is in) | shops (and its shops' posts) | gone | failed
    this.state = "idle";
    this.posts = new Map(); // shop id -> Map(post id -> post)
    this.cards = new Map(); // shop id -> what buildCard returned for its cards (countdowns)
    this.refreshTimer = 0;
    this.generation = 0; // a later show() makes an earlier one's answers moot
    this.map = null; // the shown producer's ProducerMap, kept across renders
    addEventListener("online", () => this.retry()); // back online: a failed page loads
  }

  get isOpen() {
    return this.id !== null;
  }

  /** A post this page shows (its badges open other producers' pages), or undefined. */
  postById(postId) {
    for (const posts of this.posts.values()) if (posts.has(postId)) return posts.get(postId);
    return undefined;
  }

  /** Read the producer again after a failure (offline, server away). */
  retry() {
    if (this.state !== "failed" || this.id === null) return;
    this.state = "loading";
    this.render();
    this.#load(++this.generation);
  }

  /**
   * Open (or switch to) producer `id`. `hint`: its name and place as the badge that opened
   * it said, so that a producer no shop sells any more is still named on its page.
   */
  show(id, hint = null) {
    if (id === this.id && this.state !== "failed") return;
    this.id = id;
    this.hint = hint && typeof hint.name === "string" ? hint : null;
    this.producer = null;
    this.posts = new Map();
    this.#dropMap();
    this.state = "loading";
    this.root.hidden = false;
    this.render();
    this.#load(++this.generation);
  }

  hide() {
    this.id = null;
    this.hint = null;
    this.generation += 1;
    this.producer = null;
    this.posts = new Map();
    this.cards = new Map();
    this.#dropMap();
    clearInterval(this.refreshTimer);
    this.refreshTimer = 0;
    this.root.hidden = true;
    this.root.replaceChildren();
  }

  /** Its heading, for the focus after opening. */
  get heading() {
    return this.root.querySelector("#producer-heading");
  }

  async #load(generation) {
    let producer;
    try {
      producer = await getJson(`/api/v1/producers/${encodeURIComponent(this.id)}`);
    } catch (err) {
      if (generation !== this.generation) return;
      this.state = err.status === 404 ? "gone" : "failed";
      this.render();
      return;
    }
    if (generation !== this.generation) return;
    if (!producer || typeof producer.name !== "string" || !Array.isArray(producer.shops)) {
      this.state = "failed";
      this.render();
      return;
    }
    this.producer = producer;
    this.state = "ready";
    this.render();
    await this.#readPosts(generation);
    if (generation !== this.generation) return;
    // The shops come in at once, with their posts: a list growing shop by shop would
    // push what the passer-by is reading down the page.
    this.state = "shops";
    this.render();
    clearInterval(this.refreshTimer);
    this.refreshTimer = setInterval(() => this.#readPosts(generation), REFRESH_MS);
  }

  /** The nearest shops' live posts, a few requests at a time. */
  async #readPosts(generation) {
    const queue = this.#shops().map((shop) => shop.id);
    const worker = async () => {
      while (queue.length && generation === this.generation) {
        const shopId = queue.shift();
        try {
          const answer = await getJson(`/api/v1/shops/${encodeURIComponent(shopId)}/posts`);
          if (generation !== this.generation) return;
          const posts = Array.isArray(answer?.posts) ? answer.posts : [];
          this.posts.set(shopId, new Map(posts.filter((p) => isPost(p) && p.shop.id === shopId)
            .map((p) => [p.id, p])));
          if (this.state === "shops") this.#renderShop(shopId);
        } catch {
          // offline or the shop went away: its section says "no post" until the next read
        }
      }
    };
    await Promise.all(Array.from({ length: MAX_PARALLEL }, worker));
  }

  /** The shops shown: the nearest to the passer-by (to the producer without a position). */
  #shops() {
    if (!this.producer) return [];
    const at = this.position() ?? { lat: this.producer.lat, lon: this.producer.lon };
    return this.producer.shops
      .filter((s) => s && typeof s.id === "string" && Number.isFinite(s.lat) &&
        Number.isFinite(s.lon))
      .map((shop) => ({ ...shop, dist: haversineM(at.lat, at.lon, shop.lat, shop.lon) }))
      .sort((a, b) => a.dist - b.dist || a.id.localeCompare(b.id))
      .slice(0, MAX_SHOPS);
  }

  /** A frame of the feed's socket: posts of the shops shown stay current. */
  onFrame(frame) {
    if (!this.isOpen) return;
    if (frame.type === "post" && isPost(frame.post) && this.posts.has(frame.post.shop.id)) {
      this.posts.get(frame.post.shop.id).set(frame.post.id, frame.post);
      this.#renderShop(frame.post.shop.id);
    } else if (frame.type === "expired" || frame.type === "withdrawn") {
      for (const [shopId, posts] of this.posts) {
        if (posts.delete(frame.id)) this.#renderShop(shopId);
      }
    }
  }

  /** Every second: countdowns, and posts whose time is up leave. */
  tick(now) {
    if (!this.isOpen) return;
    for (const [shopId, posts] of this.posts) {
      const over = [...posts.values()].filter((p) => !live(p, now));
      if (over.length) {
        over.forEach((p) => posts.delete(p.id));
        this.#renderShop(shopId);
      }
    }
    this.cards.forEach((cards) => cards.forEach((card) => card.tick(now)));
  }

  /** A shop's profile arrived or changed ("open · closes at"). */
  refreshShop(shopId) {
    if (this.isOpen) this.#renderShop(shopId);
  }

  render() {
    if (!this.isOpen) return;
    const focused = this.root.contains(document.activeElement) ? document.activeElement : null;
    const back = el("button", "producer-back", t("producer_back"));
    back.type = "button";
    back.addEventListener("click", () => this.onBack());
    const parts = [back];
    const kicker = el("p", "producer-kicker", t("producer_kicker"));
    if (this.state === "loading") {
      parts.push(kicker, this.#heading(t("producer_loading")));
    } else if (this.state === "gone" && this.hint) {
      // Named on a post, sold by no shop now: the post's words, and what became of it.
      const where = el("p", "producer-where");
      where.append(userText("bdi", "producer-place", String(this.hint.place ?? "")));
      parts.push(kicker, this.#heading(this.hint.name, true), where,
        el("p", "producer-no-post", t("producer_gone")));
    } else if (this.state === "gone") {
      parts.push(kicker, this.#heading(t("producer_unknown")));
    } else if (this.state === "failed") {
      // Tried again by itself when the device is back online; the button meanwhile.
      const retry = el("button", "producer-retry", t("producer_retry"));
      retry.type = "button";
      retry.addEventListener("click", () => this.retry());
      parts.push(kicker, this.#heading(t("producer_failed")), retry);
    } else if (this.state === "ready") {
      parts.push(kicker, this.#heading(this.producer.name, true), this.#where(), ...this.#map(),
        el("p", "producer-no-post", t("producer_loading")));
    } else {
      parts.push(kicker, this.#heading(this.producer.name, true), this.#where(), ...this.#map());
      const shops = this.#shops();
      this.cards = new Map();
      const heading = el("h3", "producer-shops-heading",
        plural("producer_shops", this.producer.shops.length));
      heading.id = "producer-shops-heading";
      const list = el("ol", "producer-shops");
      list.setAttribute("aria-labelledby", heading.id);
      for (const shop of shops) list.append(this.#shopItem(shop));
      parts.push(heading, list);
    }
    this.root.replaceChildren(...parts);
    if (!focused || document.activeElement === focused) return;
    // Taken out and put back (the map's zoom buttons): it keeps the focus; made anew: the
    // heading has it.
    (focused.isConnected ? focused : this.heading)?.focus({ preventScroll: true });
  }

  /** The map's element, made once per producer shown (Leaflet's with it), updated; none
   * for a producer without a position to show. */
  #map() {
    const placed = (p) => p && Number.isFinite(p.lat) && Number.isFinite(p.lon);
    if (!placed(this.producer)) return [];
    this.map ??= new ProducerMap({ onShop: (shopId) => this.#focusShop(shopId) });
    const here = this.position();
    this.map.update(this.producer, this.#shops(), placed(here) ? here : null);
    return [this.map.el];
  }

  #dropMap() {
    this.map?.destroy();
    this.map = null;
  }

  /** A shop's pin was tapped: its section of the list, in view and focused. */
  #focusShop(shopId) {
    const item = [...this.root.querySelectorAll(".producer-shop")]
      .find((li) => li.dataset.shopId === shopId);
    if (!item) return; // its posts are still being read: the list is not there yet
    item.tabIndex = -1;
    item.scrollIntoView({ block: "start" });
    item.focus({ preventScroll: true });
  }

  #heading(text, user = false) {
    const h = user ? userText("h2", "producer-heading", text) : el("h2", "producer-heading", text);
    h.id = "producer-heading";
    h.tabIndex = -1; // the focus goes here when the view opens
    return h;
  }

  /** "Saint-Émilion · 34 km from here". */
  #where() {
    const p = el("p", "producer-where");
    p.append(userText("bdi", "producer-place", String(this.producer.place ?? "")));
    const here = this.position();
    if (here && Number.isFinite(this.producer.lat) && Number.isFinite(this.producer.lon)) {
      const m = haversineM(here.lat, here.lon, this.producer.lat, this.producer.lon);
      // As the badges say it ("34 km"): metres only for one within a walk.
      const dist = m < 1000 ? formatDistance(m, getLang()) : formatKm(m / 1000);
      p.append(el("span", "producer-from-here", ` · ${t("producer_from_here", { dist })}`));
    }
    return p;
  }

  #shopItem(shop) {
    const item = el("li", "producer-shop");
    item.dataset.shopId = shop.id;
    this.#fillShop(item, shop);
    return item;
  }

  #fillShop(item, shop) {
    this.profiles.want(shop.id);
    const profile = this.profiles.get(shop.id);
    const head = el("div", "producer-shop-head");
    const name = userText("h4", "producer-shop-name", String(profile?.name ?? shop.name ?? ""));
    const where = el("p", "producer-shop-where");
    where.append(el("strong", "distance", formatDistance(shop.dist, getLang())),
      el("span", "walk", t("walk", { n: walkMinutes(shop.dist) })));
    head.append(name, where);
    const meta = el("p", "producer-shop-meta");
    meta.append(userText("bdi", "shop-category", categoryText(profile?.category ?? shop.category)));
    if (profile?.address) meta.append(userText("bdi", "address", String(profile.address)));
    const parts = [head, meta];
    const opening = openingState(profile);
    if (opening) {
      parts.push(el("p", `open-state ${opening.open ? "is-open" : "is-closed"}`, opening.text));
    }
    const now = Date.now();
    // Those naming this producer first (what the passer-by came for), newest first.
    const names = (p) => (producersOf(p).some((q) => q.id === this.id) ? 0 : 1);
    const posts = [...(this.posts.get(shop.id)?.values() ?? [])].filter((p) => live(p, now))
      .sort((a, b) => names(a) - names(b) || newestFirst(a, b));
    const list = el("div", "producer-posts");
    const cards = posts.map((post) => buildCard(post, shop.dist, { idPrefix: CARD_ID_PREFIX,
      onHold: this.onHold }));
    this.cards.set(shop.id, cards);
    if (cards.length) {
      list.append(...cards.map((card) => card.el));
    } else if (this.posts.has(shop.id)) {
      list.append(el("p", "producer-no-post", t("producer_no_post")));
    }
    parts.push(list);
    const old = item.querySelector(".producer-posts");
    if (old) for (const card of list.querySelectorAll(".card")) keepPhotos(old, card);
    item.replaceChildren(...parts);
  }

  #renderShop(shopId) {
    const item = [...this.root.querySelectorAll(".producer-shop")]
      .find((li) => li.dataset.shopId === shopId);
    const shop = this.#shops().find((s) => s.id === shopId);
    if (!item || !shop) return;
    const focusedId = document.activeElement?.closest?.(".card")?.dataset.postId;
    const focused = item.contains(document.activeElement);
    this.#fillShop(item, shop);
    if (focused && !item.contains(document.activeElement)) {
      // The card that had the focus, made again, or the first one left (or the heading).
      const card = [...item.querySelectorAll(".card")].find((c) => c.dataset.postId === focusedId);
      (card ?? item.querySelector(".card") ?? this.heading)?.focus({ preventScroll: true });
    }
  }
}
