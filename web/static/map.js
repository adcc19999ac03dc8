// The map view: the same posts as the list, one pin per shop, with Leaflet (vendored,
// loaded only when the map is first opened). Tiles come from the configured tile
// server; when they fail the pins, the radius and "you are here" still show on a
// plain background, and a note says so.
//
// Shop text goes into popups as DOM nodes built with textContent, never as HTML.

import { el as node } from "./cards.js";
import { categoryText } from "./categories.js";
import { t } from "./i18n.js";

const LEAFLET_JS = "/static/vendor/leaflet/leaflet.js";
const LEAFLET_CSS = "/static/vendor/leaflet/leaflet.css";

let leafletLoading = null;

function loadLeaflet() {
  if (window.L) return Promise.resolve(window.L);
  leafletLoading ??= new Promise((resolve, reject) => {
    const css = document.createElement("link");
    css.rel = "stylesheet";
    css.href = LEAFLET_CSS;
    document.head.append(css);
    const script = document.createElement("script");
    script.src = LEAFLET_JS;
    script.onload = () => (window.L ? resolve(window.L) : reject(new Error("no Leaflet")));
    script.onerror = () => {
      leafletLoading = null; // let a later attempt try again (back online)
      script.remove();
      reject(new Error("Leaflet failed to load"));
    };
    document.head.append(script);
  });
  return leafletLoading;
}

let configLoading = null;

/** /api/v1/config, once per page; a failure is retried on the next call. */
export function loadConfig() {
  configLoading ??= fetch("/api/v1/config", { headers: { Accept: "application/json" } })
    .then((r) => (r.ok ? r.json() : Promise.reject(new Error(`config: HTTP ${r.status}`))))
    .catch((err) => {
      configLoading = null;
      throw err;
    });
  return configLoading;
}

export class FeedMap {
  /**
   * @param {HTMLElement} container
   * @param {HTMLElement} noteEl  where "tiles unavailable" is said
   */
  constructor(container, noteEl) {
    this.container = container;
    this.noteEl = noteEl;
    this.map = null;
    this.L = null;
    this.pins = new Map(); // shop id -> {marker, signature}
    this.here = null;
    this.circle = null;
    this.tilesFailed = 0;
    this.tilesLoaded = 0;
    this.ready = null;
  }

  /** Load Leaflet and the config, draw the map; resolves when it is usable. */
  open(position, radius) {
    this.ready ??= Promise.all([loadLeaflet(), loadConfig().catch(() => null)])
      .then(([L, config]) => this.#create(L, config, position, radius))
      .catch((err) => {
        this.ready = null;
        this.#note("map_failed");
        console.warn("map:", err); // eslint-disable-line no-console
        throw err;
      });
    return this.ready.then(() => {
      this.map.invalidateSize(); // the container was hidden until now
      return this;
    });
  }

  get isReady() {
    return this.map !== null;
  }

  #create(L, config, position, radius) {
    this.L = L;
    const map = L.map(this.container, {
      zoomControl: true,
      attributionControl: true,
      keyboard: true,
    });
    this.map = map;
    map.setView([position.lat, position.lon], 16); // layers wait for a view before drawing
    map.attributionControl.setPrefix(false);
    if (config?.tile_url) {
      const tiles = L.tileLayer(config.tile_url, {
        maxZoom: 19,
        attribution: config.tile_attribution || "",
        // The site sends no referrer anywhere; tile servers (OpenStreetMap's policy) want
        // to know which site asks: the origin, never the page's URL with its position.
        referrerPolicy: "strict-origin",
      });
      tiles.on("tileerror", () => {
        this.tilesFailed += 1;
        if (!this.tilesLoaded) this.#note("tiles_failed");
      });
      tiles.on("tileload", () => {
        this.tilesLoaded += 1;
        if (this.noteEl.dataset.i18n === "tiles_failed") this.#note(null);
      });
      tiles.addTo(map);
    } else {
      this.#note("tiles_failed");
    }
    this.here = L.circleMarker([position.lat, position.lon], {
      radius: 8, weight: 3, color: "#ffffff", fillColor: "#1d4f91", fillOpacity: 1,
      interactive: false, className: "map-here",
    }).addTo(map);
    this.circle = L.circle([position.lat, position.lon], {
      radius, weight: 2, color: "#1d4f91", fillOpacity: 0.06, interactive: false,
      className: "map-radius",
    }).addTo(map);
    this.move(position, radius);
  }

  #note(key) {
    this.noteEl.hidden = !key;
    if (key) {
      this.noteEl.dataset.i18n = key;
      this.noteEl.textContent = t(key);
    } else {
      delete this.noteEl.dataset.i18n;
    }
  }

  /** The passer-by moved, or changed the radius. */
  move(position, radius) {
    if (!this.map) return;
    const at = [position.lat, position.lon];
    this.here.setLatLng(at);
    this.circle.setLatLng(at);
    this.circle.setRadius(radius);
    // The circle's bounds, computed here: Leaflet's need a drawn circle.
    const dLat = radius / 111320;
    const dLon = radius / (111320 * Math.cos((position.lat * Math.PI) / 180));
    this.map.fitBounds([[position.lat - dLat, position.lon - dLon],
      [position.lat + dLat, position.lon + dLon]], { padding: [12, 12] });
  }

  /**
   * Show these posts: one pin per shop, a popup listing its posts.
   * @param {object[]} posts  visible posts (after filters)
   * @param {(shopId: string) => boolean} isFollowed
   * @param {(shopId: string) => {open: boolean, text: string} | null} openingOf
   */
  show(posts, isFollowed, openingOf) {
    if (!this.map) return;
    const L = this.L;
    const byShop = new Map();
    for (const post of posts) {
      const list = byShop.get(post.shop.id) ?? [];
      list.push(post);
      byShop.set(post.shop.id, list);
    }
    for (const [shopId, pin] of this.pins) {
      if (!byShop.has(shopId)) {
        pin.marker.remove();
        this.pins.delete(shopId);
      }
    }
    for (const [shopId, shopPosts] of byShop) {
      const shop = shopPosts[0].shop;
      const followed = isFollowed(shopId);
      const opening = openingOf(shopId);
      const kinds = new Set(shopPosts.map((p) => p.kind));
      const kind = kinds.has("flash_offer") ? "flash_offer" : shopPosts[0].kind;
      const signature = JSON.stringify([shopPosts.map((p) => [p.id, p.updated_at, p.title]),
        followed, opening?.text ?? "", shop.lat, shop.lon, t("title")]);
      const old = this.pins.get(shopId);
      if (old && old.signature === signature) continue;
      const icon = L.divIcon({
        className: `map-pin pin-${kind}${followed ? " pin-followed" : ""}`,
        html: "",
        iconSize: [30, 30],
        iconAnchor: [15, 15],
        popupAnchor: [0, -14],
      });
      const label = t("map_pin", { shop: String(shop.name ?? ""), n: shopPosts.length });
      const content = this.#popup(shop, shopPosts, followed, opening);
      if (old) {
        old.marker.setLatLng([shop.lat, shop.lon]);
        old.marker.setIcon(icon);
        old.marker.setPopupContent(content);
        const el = old.marker.getElement();
        if (el) {
          el.title = label;
          el.setAttribute("aria-label", label);
        }
        old.signature = signature;
      } else {
        const marker = L.marker([shop.lat, shop.lon], { icon, keyboard: true, title: label,
          alt: label, riseOnHover: true });
        marker.bindPopup(content, { maxWidth: 280 });
        marker.addTo(this.map);
        marker.getElement()?.setAttribute("aria-label", label);
        marker.getElement()?.setAttribute("role", "button");
        this.pins.set(shopId, { marker, signature });
      }
    }
  }

  #popup(shop, posts, followed, opening) {
    const box = node("div", "map-popup");
    const head = node("p", "map-popup-shop");
    const name = node("strong");
    name.append(node("bdi", null, String(shop.name ?? ""))); // isolated: see cards.userText
    head.append(name);
    if (followed) head.append(node("span", "map-popup-followed", ` ★ ${t("followed")}`));
    box.append(head);
    // Separate nodes, not one joined string: the category is the shop's own text, and a
    // bidi control in it must not reorder the opening hours after it.
    const meta = node("p", "map-popup-meta");
    if (shop.category) meta.append(node("bdi", null, categoryText(shop.category)));
    if (shop.category && opening?.text) meta.append(" · ");
    if (opening?.text) meta.append(opening.text);
    if (meta.childNodes.length) box.append(meta);
    const list = node("ul", "map-popup-posts");
    for (const post of posts) {
      const item = node("li", `kind-${post.kind}`);
      item.append(node("span", "map-popup-kind", t(`kind_${post.kind}`)),
        node("bdi", "map-popup-title", String(post.title ?? "")));
      list.append(item);
    }
    box.append(list);
    return box;
  }
}
