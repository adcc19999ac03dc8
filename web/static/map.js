// The map view: the same posts as the list, one pin per shop, with Leaflet (vendored,
// loaded only when the map is first opened). Tiles come from the configured tile
// server; when they fail the pins, the radius and "you are here" still show on a
// plain background, and a note says so.
//
// Shop text goes into popups as DOM nodes built with textContent, never as HTML.
//
// Pins that would overlap at the current zoom (a street's shops are a few metres
// apart, a few pixels at the zoom that shows a 1 km radius) are drawn as one cluster
// disc with their number; tapping it zooms to them. At the closest zoom, pins that still
// overlap (same building) spread on a circle around their spot. So every pin and
// cluster on screen can be tapped on its own.

import { holdLine, holdOf, el as node, photoImg, photosOf } from "./cards.js";
import { categoryText } from "./categories.js";
import { plural, t } from "./i18n.js";

const LEAFLET_JS = "/static/vendor/leaflet/leaflet.js";
const LEAFLET_CSS = "/static/vendor/leaflet/leaflet.css";
const MAX_ZOOM = 19;
const PIN_PX = 32;
const CLUSTER_PX = 40;
const POPUP_PX = 280; // a popup's widest content (Leaflet's maxWidth)
const THUMB_PX = 64; // a post's thumbnail in a popup, beside its title
const POPUP_PHOTO_SIZES = `${THUMB_PX}px`;
// Where a popup may not go: the zoom buttons (top left, 10 px in, two 30 px buttons) and
// the attribution (bottom right, one line). An open popup is panned clear of them.
const POPUP_PAD_TOP = 84;
const POPUP_PAD_BOTTOM = 28;
const POPUP_PAD_SIDE = 8;
// A popup's frame around its content: its padding, tip and close button.
const POPUP_CHROME_PX = 56;
const GAP_PX = 0; // boxes may touch, never overlap: each stays a tap target of its own

let leafletLoading = null;

/** Leaflet, loaded once per page (also by the console's producer place picker). */
export function loadLeaflet() {
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

/**
 * The configured tile server's layer on `map` (none when the deployment has none), with
 * its attribution. `onBackground(shown)` hears whether a background shows: false when
 * there is no tile server, or a tile failed before any loaded (offline); true once one
 * loads. The pins are drawn either way, on the map's own plain background.
 */
export function addTiles(L, map, config, onBackground) {
  map.attributionControl?.setPrefix(false);
  if (!config?.tile_url) {
    onBackground(false);
    return;
  }
  let loaded = false;
  const tiles = L.tileLayer(config.tile_url, {
    maxZoom: MAX_ZOOM,
    attribution: config.tile_attribution || "",
    // The site sends no referrer anywhere; tile servers (OpenStreetMap's policy) want
    // to know which site asks: the origin, never the page's URL with its position.
    referrerPolicy: "strict-origin",
  });
  tiles.on("tileerror", () => {
    if (!loaded) onBackground(false);
  });
  tiles.on("tileload", () => {
    loaded = true;
    onBackground(true);
  });
  tiles.addTo(map);
}

/** "You are here": the passer-by's position, only ever drawn in the page. */
export function hereMarker(L, at, options = {}) {
  return L.circleMarker(at, {
    radius: 8, weight: 3, color: "#ffffff", fillColor: "#1d4f91", fillOpacity: 1,
    interactive: false, className: "map-here", ...options,
  });
}

/** A shop pin's element (none while #layout has it folded in a cluster) named for taps. */
function labelPin(el, label) {
  if (!el) return;
  el.title = label;
  el.setAttribute("aria-label", label);
  el.setAttribute("role", "button");
}

export class FeedMap {
  /**
   * @param {HTMLElement} container
   * @param {HTMLElement} noteEl  where "tiles unavailable" is said
   * @param {{onHold?: (post: object, button: HTMLElement) => void}} [opts]
   *   onHold: a post's "Hold it for me" in its popup, as on its card (the same dialog)
   */
  constructor(container, noteEl, { onHold = null } = {}) {
    this.container = container;
    this.noteEl = noteEl;
    this.onHold = onHold;
    this.map = null;
    this.L = null;
    this.pins = new Map(); // shop id -> {marker, signature, at: [lat, lon], label, offer}
    this.clusters = []; // the cluster markers drawn now
    this.layoutKey = "";
    this.here = null;
    this.circle = null;
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
      maxZoom: MAX_ZOOM, // also without tiles, so that clusters know when to spread
    });
    this.map = map;
    map.on("zoomend", () => this.#layout());
    map.on("resize", () => this.#fitPopups());
    // Escape closes an open popup wherever the focus is (Leaflet only hears it while the
    // map itself has the focus, not a pin), and gives the focus back to its pin.
    let open = null;
    map.on("popupopen", (ev) => { open = ev.popup; });
    map.on("popupclose", (ev) => { if (open === ev.popup) open = null; });
    document.addEventListener("keydown", (ev) => {
      if (ev.key !== "Escape" || !open) return;
      const popup = open;
      const pin = [...this.pins.values()].find(({ marker }) => marker.getPopup() === popup);
      map.closePopup(popup);
      pin?.marker.getElement()?.focus({ preventScroll: true });
    });
    map.setView([position.lat, position.lon], 16); // layers wait for a view before drawing
    addTiles(L, map, config, (shown) => {
      if (!shown) this.#note("tiles_failed");
      else if (this.noteEl.dataset.i18n === "tiles_failed") this.#note(null);
    });
    this.here = hereMarker(L, [position.lat, position.lon]).addTo(map);
    this.circle = L.circle([position.lat, position.lon], {
      radius, weight: 2, color: "#1d4f91", fillOpacity: 0.06, interactive: false,
      className: "map-radius",
    }).addTo(map);
    this.move(position, radius);
  }

  /**
   * A popup no taller than the map leaves room for (its posts scroll inside), no wider
   * than the map, kept in view clear of the zoom buttons and the attribution.
   */
  #popupOptions() {
    const size = this.map.getSize();
    return {
      maxWidth: Math.max(160, Math.min(POPUP_PX, size.x - 2 * POPUP_PAD_SIDE - 40)),
      minWidth: Math.min(200, size.x - 2 * POPUP_PAD_SIDE - 40),
      maxHeight: Math.max(96, size.y - POPUP_PAD_TOP - POPUP_PAD_BOTTOM - POPUP_CHROME_PX),
      autoPan: true,
      keepInView: true,
      autoPanPaddingTopLeft: [POPUP_PAD_SIDE, POPUP_PAD_TOP],
      autoPanPaddingBottomRight: [POPUP_PAD_SIDE, POPUP_PAD_BOTTOM],
      className: "map-popup-frame",
    };
  }

  /** The map changed size (a phone turned): its popups follow. */
  #fitPopups() {
    const options = this.#popupOptions();
    for (const { marker } of this.pins.values()) {
      const popup = marker.getPopup();
      if (!popup) continue;
      Object.assign(popup.options, options);
      if (popup.isOpen()) popup.update();
    }
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
      const signature = JSON.stringify([shopPosts.map((p) => [p.id, p.updated_at, p.title,
        photosOf(p).map((photo) => photo.id), holdOf(p)]),
        followed, opening?.text ?? "", shop.lat, shop.lon, t("title")]);
      const old = this.pins.get(shopId);
      if (old && old.signature === signature) continue;
      const icon = L.divIcon({
        className: `map-pin pin-${kind}${followed ? " pin-followed" : ""}`,
        html: "",
        iconSize: [PIN_PX, PIN_PX],
        iconAnchor: [PIN_PX / 2, PIN_PX / 2],
        popupAnchor: [0, -PIN_PX / 2],
      });
      const label = plural("map_pin", shopPosts.length, { shop: String(shop.name ?? "") });
      const content = this.#popup(shop, shopPosts, followed, opening);
      const at = [shop.lat, shop.lon];
      if (old) {
        old.at = at;
        old.offer = kind === "flash_offer";
        old.marker.setIcon(icon); // placed by #layout
        // Units left change while it is open: the hold button tapped keeps the focus.
        const focused = old.marker.getPopup()?.getElement()?.contains(document.activeElement)
          ? document.activeElement.closest(".hold-ask")?.dataset.postId : null;
        old.marker.setPopupContent(content);
        if (focused) {
          content.querySelector(`.hold-ask[data-post-id="${CSS.escape(focused)}"]`)
            ?.focus({ preventScroll: true });
        }
        old.label = label;
        labelPin(old.marker.getElement(), label);
        old.signature = signature;
      } else {
        const marker = L.marker([shop.lat, shop.lon], { icon, keyboard: true, title: label,
          alt: label, riseOnHover: true });
        marker.bindPopup(content, this.#popupOptions());
        // Drawn and taken away by #layout: its element is made again each time.
        marker.on("add", () => labelPin(marker.getElement(), this.pins.get(shopId)?.label ?? label));
        this.pins.set(shopId, { marker, signature, at, label, offer: kind === "flash_offer" });
      }
    }
    this.#layout();
  }

  /**
   * Which pins are drawn alone, which fold into a cluster, at this zoom: groups are
   * merged while any two of their tap targets overlap (boxes, GAP_PX apart), so what is
   * drawn never overlaps. A street's worth of shops: a few dozen, merged in microseconds.
   */
  #layout() {
    if (!this.map) return;
    const map = this.map;
    const L = this.L;
    const zoom = map.getZoom();
    // show() runs on every change to the cards: lay out again only when the pins or
    // the zoom changed.
    const key = JSON.stringify([zoom, t("map_cluster"),
      [...this.pins].map(([id, pin]) => [id, pin.at, pin.offer])]);
    if (key === this.layoutKey) return;
    this.layoutKey = key;
    const spread = zoom >= map.getMaxZoom();
    const groups = [...this.pins].map(([id, pin]) => {
      const p = map.project(pin.at, zoom);
      return { ids: [id], x: p.x, y: p.y, size: PIN_PX };
    });
    const overlap = (a, b) => {
      const room = (a.size + b.size) / 2 + GAP_PX;
      return Math.abs(a.x - b.x) < room && Math.abs(a.y - b.y) < room;
    };
    // A merged group moves to its members' centre and grows: it may now overlap one
    // already passed, hence passes until one merges nothing.
    for (let merged = true; merged;) {
      merged = false;
      for (let i = 0; i < groups.length; i += 1) {
        for (let j = i + 1; j < groups.length;) {
          if (!overlap(groups[i], groups[j])) {
            j += 1;
            continue;
          }
          const a = groups[i];
          const b = groups.splice(j, 1)[0];
          const n = a.ids.length + b.ids.length;
          groups[i] = { ids: [...a.ids, ...b.ids], size: CLUSTER_PX,
            x: (a.x * a.ids.length + b.x * b.ids.length) / n,
            y: (a.y * a.ids.length + b.y * b.ids.length) / n };
          merged = true;
          j = i + 1;
        }
      }
    }
    this.clusters.forEach((marker) => marker.remove());
    this.clusters = [];
    for (const group of groups) {
      const members = group.ids.map((id) => this.pins.get(id));
      if (group.ids.length === 1 || spread) {
        // At the closest zoom a group spreads on a circle around its centre, far enough
        // apart for each pin's own tap target.
        const step = (2 * Math.PI) / group.ids.length;
        const r = group.ids.length === 1 ? 0
          : Math.max(PIN_PX + GAP_PX, ((PIN_PX + GAP_PX) * group.ids.length) / (2 * Math.PI));
        members.forEach((pin, k) => {
          pin.marker.setLatLng(r ? map.unproject([group.x + r * Math.cos(k * step),
            group.y + r * Math.sin(k * step)], zoom) : pin.at);
          if (!map.hasLayer(pin.marker)) pin.marker.addTo(map);
        });
        continue;
      }
      for (const pin of members) pin.marker.remove();
      this.clusters.push(this.#cluster(L, group, members));
    }
  }

  #cluster(L, group, members) {
    const n = members.length;
    const label = t("map_cluster", { n });
    const offer = members.some((pin) => pin.offer);
    const marker = L.marker(this.map.unproject([group.x, group.y], this.map.getZoom()), {
      icon: L.divIcon({
        className: `map-cluster${offer ? " has-offer" : ""}`,
        html: "",
        iconSize: [CLUSTER_PX, CLUSTER_PX],
        iconAnchor: [CLUSTER_PX / 2, CLUSTER_PX / 2],
      }),
      keyboard: true, title: label, alt: label, riseOnHover: true,
    });
    marker.on("click", () => {
      // To the members' own bounds, at least one zoom closer (same spot: straight to
      // the closest zoom, where they spread).
      const bounds = L.latLngBounds(members.map((pin) => pin.at));
      const fit = this.map.getBoundsZoom(bounds.pad(0.5));
      this.map.setView(bounds.getCenter(),
        Math.min(this.map.getMaxZoom(), Math.max(fit, this.map.getZoom() + 1)));
    });
    marker.addTo(this.map);
    const el = marker.getElement();
    el.textContent = String(n); // a number, as text
    el.setAttribute("aria-label", label);
    el.setAttribute("role", "button");
    return marker;
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
    // Those that can be held first: their button is the popup's one action, and a popup
    // is short on a phone (a cold try found it below what showed, under a newer offer).
    const canHold = (post) => (this.onHold && holdOf(post)?.left > 0 ? 0 : 1);
    const ordered = posts.map((post, i) => [post, i])
      .sort(([a, i], [b, j]) => canHold(a) - canHold(b) || i - j).map(([post]) => post);
    for (const post of ordered) {
      const item = node("li", `kind-${post.kind}`);
      // Each post's first photo beside its own title: the narrowest variant is plenty.
      const photo = photosOf(post)[0];
      if (photo) {
        item.classList.add("has-photo");
        item.append(photoImg(photo, { sizes: POPUP_PHOTO_SIZES, maxWidth: 400,
          alt: String(post.title ?? ""), className: "map-popup-photo" }));
      }
      const text = node("div", "map-popup-post");
      const title = node("bdi", "map-popup-title", String(post.title ?? ""));
      title.id = `map-popup-title-${post.id}`;
      text.append(node("span", "map-popup-kind", t(`kind_${post.kind}`)), " ", title);
      item.append(text);
      // "Hold it for me · 3 left" as on the post's card, opening the same dialog: under
      // the photo and the title, the popup's width (beside the photo it was a narrow column).
      const hold = this.onHold && holdLine(post, title.id, { onHold: this.onHold,
        closed: opening?.open === false });
      if (hold) item.append(hold);
      list.append(item);
    }
    box.append(list);
    return box;
  }
}
