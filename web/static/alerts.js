// Alerts for followed shops (DESIGN.md 9, Web Push), the page's side: the "Alerts for my
// followed shops" switch, "Alert me" on a followed shop's cards, and the subscription the
// server keeps for this device.
//
// The device keeps its follows (app.js); the server is told only the push subscription
// (its endpoint and keys), which shops alert, and whether at night too: never a position.
// Notification permission is asked only after a tap on one of these controls, and a
// browser that cannot push (iOS Safari outside a home-screen app, a private window) or a
// refusal is said under the switch, never in an error dialog.
//
// Kept in localStorage (STORE_KEY): {all, shops, night, id, secret, endpoint}. `all`: the
// switch was turned on, so a shop followed later alerts too; `shops`: the alerted ones;
// `id`/`secret`: the server's subscription (PUT/DELETE need the secret).

import { LOCALES, errorKey, getLang, plural, t } from "./i18n.js";

const STORE_KEY = "streetfeed.alerts";
// DESIGN.md 9: a subscription names 1-50 shops. More followed shops: the most recently
// followed 50 alert, and the note says so.
const MAX_SHOPS = 50;
const SHOP_ID = /^[a-z0-9][a-z0-9-]{0,63}$/;
const READY_TIMEOUT_MS = 10000;
// Read by sw.js: the words of a notification in the page's language (a service worker has
// no localStorage, and i18n.js is the one place words live).
const WORDS_CACHE = "streetfeed-prefs";
const WORDS_URL = "/__streetfeed/alert-words";

const API = "/api/v1/push/subscriptions";

function load() {
  try {
    const kept = JSON.parse(localStorage.getItem(STORE_KEY) ?? "null");
    if (!kept || typeof kept !== "object") return null;
    return {
      all: kept.all === true,
      shops: Array.isArray(kept.shops) ? kept.shops.filter((s) => SHOP_ID.test(s)) : [],
      night: kept.night === true,
      id: typeof kept.id === "string" ? kept.id : null,
      secret: typeof kept.secret === "string" ? kept.secret : null,
      endpoint: typeof kept.endpoint === "string" ? kept.endpoint : null,
    };
  } catch {
    return null; // storage disabled or damaged: alerts off
  }
}

const isIos = () => /iPad|iPhone|iPod/.test(navigator.userAgent) ||
  (navigator.platform === "MacIntel" && navigator.maxTouchPoints > 1);
const standalone = () => navigator.standalone === true ||
  matchMedia("(display-mode: standalone)").matches;

/** Why this browser cannot push at all (a note key), or null when it may. */
function unsupported() {
  const can = "serviceWorker" in navigator && typeof PushManager !== "undefined" &&
    typeof Notification !== "undefined";
  if (can) return null;
  // iOS Safari pushes only from a page added to the home screen (iOS 16.4+).
  return isIos() && !standalone() ? "alerts_ios" : "alerts_unsupported";
}

/** The VAPID public key (base64url) as the bytes PushManager.subscribe takes. */
function keyBytes(base64url) {
  const base64 = base64url.replace(/-/g, "+").replace(/_/g, "/");
  const raw = atob(base64 + "=".repeat((4 - (base64.length % 4)) % 4));
  return Uint8Array.from(raw, (c) => c.charCodeAt(0));
}

function sameBytes(a, b) {
  if (!a || !b) return false;
  const x = new Uint8Array(a);
  const y = new Uint8Array(b);
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

function within(promise, ms) {
  return Promise.race([promise, new Promise((_, reject) => {
    setTimeout(() => reject(new Error("timed out")), ms);
  })]);
}

class Refused extends Error {
  constructor(note) {
    super(note);
    this.note = note; // what the note under the switch says
  }
}

/** A refusal of the push API in words: its error's own (a push service we may not
 * reach, keys it will not take), else "try again". */
async function refusal(answer) {
  const body = await answer.json().catch(() => null);
  const key = answer.status < 500 && body?.error ? errorKey(body.error) : "err_generic";
  return new Refused(key === "err_generic" ? "alerts_failed" : key);
}

export class Alerts {
  /**
   * @param {{switchEl: HTMLInputElement, nightEl: HTMLInputElement, nightRow: HTMLElement,
   *          noteEl: HTMLElement, follows: () => string[],
   *          onChange: (shopIds: string[]) => void}} deps
   *   follows: the followed shop ids, oldest first; onChange: the alerted shops changed
   *   (the cards' "Alert me" follows)
   */
  constructor({ switchEl, nightEl, nightRow, noteEl, follows, onChange }) {
    this.switchEl = switchEl;
    this.nightEl = nightEl;
    this.nightRow = nightRow;
    this.noteEl = noteEl;
    this.follows = follows;
    this.onChange = onChange;
    const kept = load();
    this.all = kept?.all ?? false;
    this.shops = new Set(kept?.shops ?? []);
    this.night = kept?.night ?? false;
    this.sub = kept?.id && kept.secret ? { id: kept.id, secret: kept.secret,
      endpoint: kept.endpoint } : null;
    // The note under the switch when something went wrong (an i18n key), null for the
    // usual one ("Alerts on for 3 shops"). Permission taken back in the browser's settings
    // since: said at once.
    this.note = this.sub && typeof Notification !== "undefined" &&
      Notification.permission === "denied" ? "alerts_denied" : null;
    // The shop whose "Alert me" was tapped last (null: the switch): its card says the
    // note too, where the reader looks (the switch's note sits in folded filters).
    this.tapped = null;
    this.queue = Promise.resolve(); // server changes, one at a time, in order
    this.pending = 0; // changes queued or under way
    switchEl.addEventListener("change", () => this.#switched());
    nightEl.addEventListener("change", () => this.#nightChanged());
    // What could not be told while offline is told once back.
    addEventListener("online", () => {
      if (this.note === "alerts_failed") this.#enqueue(() => this.#sync());
    });
    this.#render();
    this.#storeWords();
  }

  /** For tests and curious developers. */
  get snapshot() {
    return { all: this.all, shops: [...this.shops], night: this.night,
      subscribed: Boolean(this.sub), id: this.sub?.id ?? null, note: this.note,
      busy: this.pending > 0 };
  }

  isAlerted(shopId) {
    return this.shops.has(shopId);
  }

  /** What the card of `shopId` says under its "Alert me": the note of its last tap
   * (a refusal, or "try again"), or "". */
  noteFor(shopId) {
    return this.note && this.tapped === shopId ? t(this.note) : "";
  }

  /** "Alert me" tapped on a followed shop's card. */
  toggleShop(shopId) {
    this.tapped = shopId;
    if (this.shops.has(shopId)) {
      this.shops.delete(shopId);
      // The last one off: alerts off, as the switch would.
      if (!this.shops.size) this.all = false;
      this.#changed();
      return;
    }
    // Before any await: the browser asks for permission only within the tap itself.
    const permission = this.#askPermission();
    this.shops.add(shopId);
    this.#changed(permission, () => this.shops.delete(shopId));
  }

  /** The device's follows changed (app.js): an unfollowed shop stops alerting; a new one
   * alerts too while the switch is on. */
  followsChanged() {
    const followed = new Set(this.follows());
    let changed = false;
    for (const id of [...this.shops]) {
      if (!followed.has(id)) {
        this.shops.delete(id);
        changed = true;
      }
    }
    if (this.all) {
      for (const id of followed) {
        if (!this.shops.has(id)) {
          this.shops.add(id);
          changed = true;
        }
      }
    }
    if (!changed) return;
    if (!this.shops.size) this.all = false; // the last alerted shop unfollowed: alerts off
    this.#changed();
  }

  /** The language changed: the note, and the words notifications are written with. */
  relabel() {
    this.#render();
    this.#storeWords();
  }

  #switched() {
    this.tapped = null;
    if (this.switchEl.checked) {
      const permission = this.#askPermission();
      const before = new Set(this.shops);
      this.all = true;
      for (const id of this.follows()) this.shops.add(id);
      this.#changed(permission, () => {
        this.all = false;
        this.shops = before;
      });
    } else {
      this.all = false;
      this.shops.clear();
      this.#changed();
    }
  }

  #nightChanged() {
    this.tapped = null; // what this change meets is said under the switch, not on a card
    this.night = this.nightEl.checked;
    this.#save();
    // PUT takes quiet_hours too (an extension of DESIGN.md 9's PUT). Queued even while
    // the first POST is under way: its body may have left with the choice before.
    if (this.shops.size) this.#enqueue(() => this.#sync());
  }

  /**
   * Whether notifications may be shown: a promise of true, or one rejected with the
   * note to say. Called synchronously from the tap's handler (browsers ask only then).
   */
  #askPermission() {
    const why = unsupported();
    if (why) return Promise.reject(new Refused(why));
    if (Notification.permission === "granted") return Promise.resolve(true);
    if (Notification.permission === "denied") {
      return Promise.reject(new Refused("alerts_denied"));
    }
    return Notification.requestPermission().then((answer) => {
      if (answer === "granted") return true;
      throw new Refused(answer === "denied" ? "alerts_denied" : "alerts_dismissed");
    });
  }

  /** The alerted shops changed: told to the server; `undo` when permission is refused. */
  #changed(permission = Promise.resolve(true), undo = () => {}) {
    permission.catch(() => {}); // handled in its turn below, maybe after earlier changes
    this.note = null;
    this.#save();
    this.#render();
    this.onChange([...this.shops]);
    this.#enqueue(async () => {
      try {
        await permission;
      } catch (err) {
        undo();
        throw err;
      }
      await this.#sync();
    });
  }

  #enqueue(work) {
    this.pending += 1;
    this.queue = this.queue.then(work).then(() => {
      this.note = null; // done: what an earlier failure said is over (a retry once online)
    }, (err) => {
      this.note = err instanceof Refused ? err.note : "alerts_failed";
    }).finally(() => {
      this.pending -= 1;
      this.#save();
      this.#render();
      this.onChange([...this.shops]);
    });
  }

  /** The shops sent: the alerted ones still followed, the most recently followed first
   * kept when there are more than the contract's 50. */
  #wanted() {
    const followed = this.follows().filter((id) => this.shops.has(id));
    return followed.slice(-MAX_SHOPS);
  }

  /** Make the server's subscription say what the device wants (POST, PUT or DELETE). */
  async #sync() {
    const shops = this.#wanted();
    if (!shops.length) {
      await this.#deleteOnServer();
      if (!this.all) await this.#unsubscribeBrowser();
      return;
    }
    if (this.sub) {
      const answer = await fetch(`${API}/${encodeURIComponent(this.sub.id)}`, {
        method: "PUT",
        headers: { "Content-Type": "application/json", Authorization: `Bearer ${this.sub.secret}` },
        body: JSON.stringify({ shops, quiet_hours: !this.night }),
      });
      if (answer.ok) return;
      // 404: the server deleted it (the push service said it was gone); 401: not ours any
      // more. Either way, subscribed again without a word to the reader.
      if (answer.status !== 404 && answer.status !== 401) throw await refusal(answer);
      this.sub = null;
    }
    await this.#subscribe(shops);
  }

  async #subscribe(shops) {
    const why = unsupported();
    if (why) throw new Refused(why);
    if (Notification.permission !== "granted") throw new Refused("alerts_denied");
    const push = await this.#browserSubscription();
    const json = push.toJSON();
    const answer = await fetch(API, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({
        subscription: { endpoint: push.endpoint, keys: { p256dh: json.keys?.p256dh,
          auth: json.keys?.auth } },
        shops,
        quiet_hours: !this.night,
        // No time zone (the server's extension): even a zone says roughly where someone
        // lives; "21:00-08:00" is read in the street's zone, where the shops followed are.
      }),
    });
    if (!answer.ok) throw await refusal(answer);
    const created = await answer.json();
    if (typeof created?.id !== "string" || typeof created?.secret !== "string") {
      throw new Error("POST answered without id and secret");
    }
    this.sub = { id: created.id, secret: created.secret, endpoint: push.endpoint };
  }

  /** The browser's push subscription for the server's key, made when there is none. */
  async #browserSubscription() {
    let registration;
    try {
      registration = await within(navigator.serviceWorker.ready, READY_TIMEOUT_MS);
    } catch {
      throw new Refused("alerts_unavailable"); // no service worker here (a private window)
    }
    const keyAnswer = await fetch("/api/v1/push/key",
      { headers: { Accept: "application/json" } });
    if (!keyAnswer.ok) throw new Error(`key ${keyAnswer.status}`);
    const key = keyBytes(String((await keyAnswer.json()).public_key ?? ""));
    let push = await registration.pushManager.getSubscription();
    if (push && push.options?.applicationServerKey &&
        !sameBytes(push.options.applicationServerKey, key)) {
      await push.unsubscribe(); // made for another key (a new data dir): useless now
      push = null;
    }
    if (push) return push;
    try {
      return await registration.pushManager.subscribe({ userVisibleOnly: true,
        applicationServerKey: key });
    } catch {
      // Firefox's private windows, a browser without a push service: nothing to retry.
      throw new Refused("alerts_unavailable");
    }
  }

  async #deleteOnServer() {
    if (!this.sub) return;
    const { id, secret } = this.sub;
    const answer = await fetch(`${API}/${encodeURIComponent(id)}`, {
      method: "DELETE", headers: { Authorization: `Bearer ${secret}` },
    });
    // Already gone is as good as deleted.
    if (!answer.ok && answer.status !== 404 && answer.status !== 401) {
      throw await refusal(answer);
    }
    this.sub = null;
  }

  async #unsubscribeBrowser() {
    try {
      const registration = await within(navigator.serviceWorker.ready, READY_TIMEOUT_MS);
      await (await registration.pushManager.getSubscription())?.unsubscribe();
    } catch {
      // Nothing to undo in the browser.
    }
  }

  #save() {
    try {
      localStorage.setItem(STORE_KEY, JSON.stringify({
        all: this.all, shops: [...this.shops], night: this.night,
        id: this.sub?.id ?? null, secret: this.sub?.secret ?? null,
        endpoint: this.sub?.endpoint ?? null,
      }));
    } catch {
      // Private browsing: alerts last as long as the browser's subscription.
    }
  }

  /** The notification's words in the page's language, for sw.js: written at every start
   * and language change, so a notification speaks as the page last did. */
  #storeWords() {
    if (typeof caches === "undefined") return;
    const words = {
      until: t("alert_until", { time: "{time}" }),
      left: t("alert_left", { t: "{t}" }),
      ended: t("alert_ended"),
      neutral: t("alert_neutral"),
      min: t("duration_min", { n: "{n}" }),
      h: t("duration_h", { h: "{h}" }),
      h_min: t("duration_h_min", { h: "{h}", m: "{m}" }),
      locale: LOCALES[getLang()],
    };
    caches.open(WORDS_CACHE).then((cache) => cache.put(WORDS_URL, new Response(
      JSON.stringify(words), { headers: { "Content-Type": "application/json" } })))
      .catch(() => {
        // Without it the service worker writes in English.
      });
  }

  #render() {
    // The switch is on while every followed shop alerts ("Alert me" may have turned one
    // back off); one shop alerting from its card alone leaves it off, and the note says so.
    const on = this.all || this.shops.size > 0;
    this.switchEl.checked = this.all;
    this.nightRow.hidden = !on;
    this.nightEl.checked = this.night;
    let text = "";
    if (this.note) text = t(this.note);
    else if (on) {
      const sent = this.#wanted().length;
      if (!sent) text = t("alerts_follow_first");
      else if (this.shops.size > MAX_SHOPS) text = t("alerts_cap", { n: MAX_SHOPS });
      else text = plural("alerts_on", sent);
      if (sent) text += ` ${t(this.night ? "alerts_manners_night" : "alerts_manners")}`;
    }
    this.noteEl.dataset.state = this.note ? "refused" : on ? "on" : "off";
    if (this.noteEl.textContent !== text) this.noteEl.textContent = text;
    this.noteEl.hidden = !text;
  }
}
