// The small map of a producer's page (issue 16: "where it is, and every shop nearby that
// sells it"): the producer's pin, the pins of the shops the page lists, and "you are
// here". Leaflet and the tile server's config are loaded as the feed's map loads them
// (map.js), when a producer page first shows one.
//
// It is an aid, not the page: the list under it says the same in text, and is where a
// keyboard goes (the pins are no tab stops; a tap on a shop's pin focuses its section of
// the list). Its box has a fixed height, so nothing under it moves when it fills, and
// its note (no background, or no map at all) is drawn over it, never under it.
//
// Privacy: the passer-by's position only places the "you are here" dot and the first
// view; nothing here sends it anywhere.

import { el } from "./cards.js";
import { t } from "./i18n.js";
import { addTiles, hereMarker, loadConfig, loadLeaflet } from "./map.js";

const PIN_PX = 32; // as on the feed's map
const PRODUCER_PIN_PX = 36;
// The first view holds the producer, the passer-by and this many of the nearest shops
// (the others are a pan or a zoom away, and all are in the list).
const FIT_SHOPS = 3;
// Closer than this says nothing more about where a producer is, and shops of one street
// would still stand on each other's pins.
const FIT_MAX_ZOOM = 15;
// Room around the first view: a pin's half, and no pin under the zoom buttons (top left,
// 10 px in, 34 px wide) or the attribution's line (bottom right).
const HERE_PANE = "producer-here"; // Leaflet's marker pane is 600, its popups 700
const FIT_PAD_TOP_LEFT = [56, 24]; // [x, y], as Leaflet takes it
const FIT_PAD_BOTTOM_RIGHT = [24, 36];

function pinIcon(L, className, px) {
  return L.divIcon({ className, html: "", iconSize: [px, px], iconAnchor: [px / 2, px / 2] });
}

export class ProducerMap {
  /** @param {{onShop: (shopId: string) => void}} deps  a shop's pin was tapped */
  constructor({ onShop }) {
    this.onShop = onShop;
    // The element render() puts back each time: it holds Leaflet's, made only once.
    this.el = el("div", "producer-map");
    this.el.setAttribute("role", "region");
    this.canvas = el("div", "producer-map-canvas");
    this.note = el("p", "producer-map-note");
    this.note.hidden = true;
    this.note.setAttribute("role", "status");
    this.el.append(this.canvas, this.note);
    this.noteKey = null;
    this.L = null;
    this.map = null;
    this.ready = null;
    this.destroyed = false;
    this.producerPin = null;
    this.here = null;
    this.pins = new Map(); // shop id -> marker
    this.fitKey = "";
    this.shown = null; // what update() was last given
  }

  /**
   * Show `producer` ({name, lat, lon}), these shops ({id, name, lat, lon}, nearest first,
   * as the list shows them) and `here` ({lat, lon} or null).
   */
  update(producer, shops, here) {
    this.shown = { producer, shops, here };
    this.el.setAttribute("aria-label", t("producer_map_label", { name: String(producer.name ?? "") }));
    this.#say(this.noteKey); // the language may have changed
    if (this.map) this.#draw();
    else this.#open();
  }

  /** Leaflet's map, gone with its element (hide(), or another producer shown). */
  destroy() {
    this.destroyed = true;
    this.map?.remove();
    this.map = null;
    this.el.remove();
  }

  #open() {
    // A failure is tried again at the next update (back online).
    this.ready ??= Promise.all([loadLeaflet(), loadConfig().catch(() => null)])
      .then(([L, config]) => {
        if (this.destroyed) return;
        this.#create(L, config);
        this.#draw();
      })
      .catch((err) => {
        this.ready = null;
        if (this.destroyed) return;
        this.#say("map_failed");
        console.warn("producer map:", err); // eslint-disable-line no-console
      });
  }

  #create(L, config) {
    this.L = L;
    const map = L.map(this.canvas, {
      zoomControl: true,
      attributionControl: true,
      keyboard: false, // no tab stop of its own: the list is the keyboard's way
      scrollWheelZoom: false, // a wheel over it scrolls the page it sits in
      // On a touch screen one finger scrolls the page over it; two zoom the map.
      dragging: !L.Browser.mobile,
      maxZoom: FIT_MAX_ZOOM + 4,
    });
    this.map = map;
    // "You are here" over the pins: a passer-by standing in a shop sees both.
    map.createPane(HERE_PANE).style.zIndex = "650";
    const { producer } = this.shown;
    map.setView([producer.lat, producer.lon], FIT_MAX_ZOOM); // layers wait for a view
    addTiles(L, map, config, (shown) => {
      if (!shown) this.#say("tiles_failed");
      else if (this.noteKey === "tiles_failed") this.#say(null);
    });
  }

  #draw() {
    const { L, map } = this;
    const { producer, shops, here } = this.shown;
    const at = [producer.lat, producer.lon];
    const producerLabel = t("producer_map_producer", { name: String(producer.name ?? "") });
    if (!this.producerPin) {
      this.producerPin = L.marker(at, { icon: pinIcon(L, "map-pin producer-pin", PRODUCER_PIN_PX),
        keyboard: false, zIndexOffset: 1000 }).addTo(map);
    }
    this.producerPin.setLatLng(at);
    this.#label(this.producerPin, producerLabel);

    const ids = new Set(shops.map((shop) => shop.id));
    for (const [id, marker] of this.pins) {
      if (!ids.has(id)) {
        marker.remove();
        this.pins.delete(id);
      }
    }
    for (const shop of shops) {
      let marker = this.pins.get(shop.id);
      if (!marker) {
        marker = L.marker([shop.lat, shop.lon], { icon: pinIcon(L, "map-pin producer-shop-pin", PIN_PX),
          keyboard: false, riseOnHover: true });
        marker.on("click", () => this.onShop(shop.id));
        marker.addTo(map);
        marker.getElement().dataset.shopId = shop.id;
        this.pins.set(shop.id, marker);
      }
      marker.setLatLng([shop.lat, shop.lon]);
      this.#label(marker, t("producer_map_shop", { shop: String(shop.name ?? "") }));
    }

    if (here) {
      this.here ??= hereMarker(L, [here.lat, here.lon], { pane: HERE_PANE }).addTo(map);
      this.here.setLatLng([here.lat, here.lon]);
    } else {
      this.here?.remove();
      this.here = null;
    }
    this.#fit(at, shops, here);
  }

  /** A pin's name, as text: a title (and its tooltip), never markup. */
  #label(marker, text) {
    marker.options.title = text;
    const icon = marker.getElement();
    if (icon) icon.title = text;
  }

  /**
   * The first view: the producer, the nearest shops and the passer-by. Only when those
   * change (a move, another producer), so a map the reader has zoomed stays as it is
   * through the page's other renders.
   */
  #fit(at, shops, here) {
    const points = [at, ...shops.slice(0, FIT_SHOPS).map((s) => [s.lat, s.lon])];
    if (here) points.push([here.lat, here.lon]);
    // The note, when shown, lies over the map's top: no pin goes under it (a cold try
    // found the producer's own pin hidden there when tiles could not load).
    const top = this.note.hidden ? FIT_PAD_TOP_LEFT[1]
      : Math.max(FIT_PAD_TOP_LEFT[1], this.note.offsetTop + this.note.offsetHeight + 24);
    const key = JSON.stringify([points, top]);
    if (key === this.fitKey) return;
    this.fitKey = key;
    this.lastFit = [at, shops, here];
    this.map.invalidateSize(); // the box may have been out of the page when the map was made
    this.map.fitBounds(this.L.latLngBounds(points), {
      paddingTopLeft: [FIT_PAD_TOP_LEFT[0], top], paddingBottomRight: FIT_PAD_BOTTOM_RIGHT,
      maxZoom: FIT_MAX_ZOOM, animate: false });
  }

  #say(key) {
    const shown = !this.note.hidden;
    this.noteKey = key;
    this.note.hidden = !key;
    this.note.textContent = key ? t(key) : "";
    if (shown !== !this.note.hidden && this.map && this.lastFit) this.#fit(...this.lastFit);
  }
}
