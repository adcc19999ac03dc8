// Where a new producer is, given on a phone (issue 16): a tap on a small map that starts
// at the shop (Leaflet, vendored, loaded when the form first opens), with latitude and
// longitude fields under it for when the map cannot show (offline, no tiles) or the
// position is known exactly. Map and fields always say the same point; nothing is
// guessed: until a tap or a typed position there is none (the shop's own would put the
// mill in the bakery without anyone noticing).

import { haversineM } from "./geo.js";
import { t } from "./i18n.js";
import { addTiles, loadConfig, loadLeaflet } from "./map.js";

const START_ZOOM = 9; // about 100 km across a phone: where most named producers are
const LAT_MAX = 85.05112878; // what a GEO index takes (the server's ShopLatitude)
const DECIMALS = 5; // about a metre: more than a tap can mean

/** A coordinate as typed ("44,894" or "44.894"): a number, null when empty, NaN when not
 * a number within ±max. */
function parseCoordinate(text, max) {
  const raw = String(text).replace(/\s/g, "").replace(",", ".");
  if (raw === "") return null;
  const n = Number(raw);
  return Number.isFinite(n) && Math.abs(n) <= max ? n : NaN;
}

export class PlacePicker {
  /**
   * @param {{box: HTMLElement, lat: HTMLInputElement, lon: HTMLInputElement,
   *          note: HTMLElement, onChange: () => void}} parts
   *   box: where the map goes; note: says why it cannot show when it cannot
   */
  constructor({ box, lat, lon, note, onChange }) {
    this.box = box;
    this.latInput = lat;
    this.lonInput = lon;
    this.note = note;
    this.onChange = onChange;
    this.map = null;
    this.L = null;
    this.marker = null;
    this.shopMarker = null;
    this.ready = null;
    this.noteKey = null;
    for (const input of [lat, lon]) {
      input.addEventListener("input", () => {
        const point = this.value();
        if (point && !point.error) this.#mark(point, true);
        else this.#unmark();
        this.onChange();
      });
    }
  }

  /** Show the map around the shop (loaded the first time); the fields work meanwhile. */
  open(shop) {
    this.shop = shop;
    this.ready ??= Promise.all([loadLeaflet(), loadConfig().catch(() => null)])
      .then(([L, config]) => this.#create(L, config))
      .catch(() => {
        this.ready = null; // tried again on the next opening (back online)
        this.#say("place_map_failed");
      });
    return this.ready.then(() => {
      if (!this.map) return;
      this.map.invalidateSize(); // its box was hidden until now
      const point = this.value();
      if (point && !point.error) this.map.setView([point.lat, point.lon], this.map.getZoom());
      else this.map.setView([shop.lat, shop.lon], START_ZOOM);
      this.shopMarker.setLatLng([shop.lat, shop.lon]);
    });
  }

  #create(L, config) {
    this.L = L;
    const map = L.map(this.box, { zoomControl: true, attributionControl: true,
      keyboard: false }); // keyboards have the fields, which say a point exactly
    this.map = map;
    map.setView([this.shop.lat, this.shop.lon], START_ZOOM);
    addTiles(L, map, config, (shown) => {
      if (!shown) this.#say("place_tiles_failed");
      else if (this.noteKey === "place_tiles_failed") this.#say(null);
    });
    this.shopMarker = L.circleMarker([this.shop.lat, this.shop.lon], { radius: 6, weight: 2,
      color: "#ffffff", fillColor: "#1d4f91", fillOpacity: 1, interactive: false,
      className: "place-shop" }).addTo(map);
    map.on("click", (event) => {
      const { lat, lng } = event.latlng.wrap();
      this.set({ lat: Math.max(-LAT_MAX, Math.min(LAT_MAX, lat)), lon: lng });
      this.onChange();
    });
    const point = this.value();
    if (point && !point.error) this.#mark(point, false);
  }

  /** The point given, null when none, or {error} when the fields hold no valid one. */
  value() {
    const lat = parseCoordinate(this.latInput.value, LAT_MAX);
    const lon = parseCoordinate(this.lonInput.value, 180);
    if (lat === null && lon === null) return null;
    if (lat === null || Number.isNaN(lat)) return { error: "place_bad_lat", focus: this.latInput };
    if (lon === null || Number.isNaN(lon)) return { error: "place_bad_lon", focus: this.lonInput };
    return { lat, lon };
  }

  /** Metres from the shop to the point given, or null. */
  distanceM() {
    const point = this.value();
    if (!point || point.error || !this.shop) return null;
    return haversineM(this.shop.lat, this.shop.lon, point.lat, point.lon);
  }

  set(point) {
    this.latInput.value = point ? point.lat.toFixed(DECIMALS) : "";
    this.lonInput.value = point ? point.lon.toFixed(DECIMALS) : "";
    if (point) this.#mark(point, false);
    else this.#unmark();
  }

  #mark(point, pan) {
    if (!this.map) return;
    const at = [point.lat, point.lon];
    if (this.marker) this.marker.setLatLng(at);
    else {
      this.marker = this.L.circleMarker(at, { radius: 10, weight: 3, color: "#ffffff",
        fillColor: "#2e7d32", fillOpacity: 1, interactive: false, className: "place-point" })
        .addTo(this.map);
    }
    if (pan && !this.map.getBounds().contains(at)) this.map.panTo(at);
  }

  #unmark() {
    this.marker?.remove();
    this.marker = null;
  }

  #say(key) {
    this.noteKey = key;
    this.note.hidden = !key;
    this.note.textContent = key ? t(key) : "";
  }

  relabel() {
    this.#say(this.noteKey);
  }
}

