// "Hold it for me" in the shopkeeper console (DESIGN.md section 9; issue 17): the offer on
// a new arrival or a flash offer (how many, each kept how long), and the holds panel fed by
// the console socket's `holds` frame: passers-by's holds, pending first, accepted or
// declined in one tap, collected at the till by the code they say (typed, or scanned where
// the browser has a BarcodeDetector). A new pending hold beeps (once the page has had a
// gesture, as browsers require), counts on the panel's heading and in the tab title, and is
// announced. First names are the passers-by's words: set as text only.

import { el, userText } from "./cards.js";
import { durationText, errorText, plural, t } from "./i18n.js";

// The contract's bounds (schemas/limits.py HOLD_*): the fields refuse what the server would.
const QUANTITY_MIN = 1;
const QUANTITY_MAX = 50;
const QUANTITY_DEFAULT = 3;
const MINUTES_MIN = 15;
const MINUTES_MAX = 240;
const MINUTES_PRESETS = [30, 60, 120];
const MINUTES_DEFAULT = 60;
const SOUND_KEY = "streetfeed.console.holdSound";
const BEEP_HZ = 880;
const BEEP_S = 0.18;
const SCAN_EVERY_MS = 250;
const STATUSES = new Set(["pending", "accepted", "declined", "collected", "expired", "cancelled"]);

const $ = (id) => document.getElementById(id);

/** A code as said at the till: case, spaces and dashes do not matter (rules/holds.py). */
const foldCode = (typed) => String(typed ?? "").toUpperCase().replace(/[\s-]+/g, "");

/** A whole number typed in a field, or NaN. */
function integerOf(input) {
  const raw = input.value.trim();
  return /^\d+$/.test(raw) ? Number(raw) : NaN;
}

/** The line the street's card shows for a post offering holds ("Hold it for me · 3 left"). */
export const holdLine = (left) => (left > 0 ? t("hc_line", { n: left }) : t("hc_line_none"));

/**
 * The shop's own post's line, from its side: "2 held · 3 left of 5 · kept 30 min" (`taken`:
 * its units held, open or collected, as the `holds` frame counts them).
 */
export function ownHoldLine({ left, minutes }, taken) {
  const total = left + taken;
  let line = t("hc_own_all_held", { n: total });
  if (left > 0) {
    line = taken ? plural("hc_own_held", taken, { left, total })
      : t("hc_own_none_held", { left, total });
  }
  return t("hc_own_line", { line, t: durationText(minutes) });
}

/**
 * The "Can be held" switch of a post form, with how many and how long each is kept.
 * `value()` is what the post (or its PATCH) sends as `hold`.
 */
export class HoldOfferField {
  /** @param {{prefix: string, onChange?: () => void}} opts */
  constructor({ prefix, onChange = () => {} }) {
    this.onChange = onChange;
    this.labels = []; // [node, key, vars?]: relabelled on a language switch
    const label = (node, key, vars) => {
      node.textContent = t(key, vars);
      this.labels.push([node, key, vars]);
      return node;
    };
    this.el = el("fieldset", "hold-offer");
    const legend = label(el("legend", "visually-hidden"), "hc_offer_legend");
    const switchBox = el("div", "hold-switch");
    this.on = el("input");
    this.on.type = "checkbox";
    this.on.id = `${prefix}-on`;
    this.on.setAttribute("role", "switch");
    const onLabel = label(el("label"), "hc_offer_switch");
    onLabel.htmlFor = this.on.id;
    switchBox.append(this.on, onLabel);

    this.details = el("div", "hold-details");
    const qField = el("div", "field");
    this.quantity = el("input");
    this.quantity.type = "number";
    this.quantity.id = `${prefix}-quantity`;
    Object.assign(this.quantity, { min: QUANTITY_MIN, max: QUANTITY_MAX, step: 1,
      inputMode: "numeric", autocomplete: "off" });
    const qLabel = label(el("label"), "hc_quantity");
    qLabel.htmlFor = this.quantity.id;
    qField.append(qLabel, this.quantity);

    const mField = el("div", "field");
    this.minutes = el("input");
    this.minutes.type = "number";
    this.minutes.id = `${prefix}-minutes`;
    Object.assign(this.minutes, { min: MINUTES_MIN, max: MINUTES_MAX, step: 5,
      inputMode: "numeric", autocomplete: "off" });
    const mLabel = label(el("label"), "hc_minutes_label");
    mLabel.htmlFor = this.minutes.id;
    mField.append(mLabel, this.minutes);
    const presets = el("div", "hold-presets");
    presets.setAttribute("role", "group");
    presets.setAttribute("aria-labelledby", `${prefix}-presets-label`);
    const presetsLabel = label(el("span", "visually-hidden"), "hc_presets");
    presetsLabel.id = `${prefix}-presets-label`;
    presets.append(presetsLabel);
    this.presetButtons = MINUTES_PRESETS.map((n) => {
      const button = el("button", "mini hold-preset", durationText(n));
      button.type = "button";
      button.dataset.minutes = String(n);
      button.addEventListener("click", () => {
        this.minutes.value = String(n);
        this.pressPreset();
        this.onChange();
      });
      presets.append(button);
      return button;
    });
    this.note = el("p", "hint hold-off-note");
    this.note.hidden = true;
    const row = el("div", "field-row");
    row.append(qField, mField);
    this.details.append(row, presets, this.note);
    this.el.append(legend, switchBox, this.details);

    this.on.addEventListener("change", () => {
      this.showDetails();
      this.onChange();
    });
    this.minutes.addEventListener("input", () => this.pressPreset());
    this.load(null);
  }

  /** Show an offer as it stands ({quantity, minutes}), or none. */
  load(offer) {
    this.initial = offer ? { quantity: offer.quantity, minutes: offer.minutes } : null;
    this.on.checked = Boolean(offer);
    this.quantity.value = String(offer?.quantity ?? QUANTITY_DEFAULT);
    this.minutes.value = String(offer?.minutes ?? MINUTES_DEFAULT);
    this.pressPreset();
    this.showDetails();
  }

  showDetails() {
    this.details.hidden = !this.on.checked;
  }

  pressPreset() {
    for (const button of this.presetButtons) {
      button.setAttribute("aria-pressed", String(button.dataset.minutes === this.minutes.value.trim()));
    }
  }

  /** Whether the shop takes holds now (its profile): an offer then waits for it, and says so. */
  setShopTakes(takes) {
    this.note.hidden = takes !== false;
    if (!this.note.hidden) this.note.textContent = t("hc_shop_off_note");
  }

  /** What the form offers: {hold: {quantity, minutes} | null} or {error, focus}. */
  value() {
    if (!this.on.checked) return { hold: null };
    const quantity = integerOf(this.quantity);
    if (!(quantity >= QUANTITY_MIN && quantity <= QUANTITY_MAX)) {
      return { error: t("hc_bad_quantity", { max: QUANTITY_MAX }), focus: this.quantity };
    }
    const minutes = integerOf(this.minutes);
    if (!(minutes >= MINUTES_MIN && minutes <= MINUTES_MAX)) {
      return { error: t("hc_bad_minutes", { min: MINUTES_MIN, max: MINUTES_MAX }), focus: this.minutes };
    }
    return { hold: { quantity, minutes } };
  }

  /** For an edit: the `hold` of the PATCH, or undefined when the offer did not change. */
  change() {
    const { hold, error, focus } = this.value();
    if (error) return { error, focus };
    const same = hold === null ? this.initial === null
      : this.initial !== null && hold.quantity === this.initial.quantity
        && hold.minutes === this.initial.minutes;
    return same ? {} : { hold };
  }

  relabel() {
    for (const [node, key, vars] of this.labels) node.textContent = t(key, vars);
    for (const button of this.presetButtons) button.textContent = durationText(Number(button.dataset.minutes));
    if (!this.note.hidden) this.note.textContent = t("hc_shop_off_note");
  }
}

/** Time left to a hold's end, minute precision: "23 min left", "less than a minute left". */
function timeLeft(expiresAt, now) {
  const left = expiresAt - now;
  if (Number.isNaN(left)) return "";
  if (left <= 0) return t("hc_time_up");
  if (left < 60000) return t("hc_left_under_minute");
  const minutes = Math.ceil(left / 60000);
  return minutes < 60 ? t("hc_left_min", { n: minutes })
    : t("hc_left_h", { t: durationText(minutes) });
}

/** A hold of the `holds` frame kept only if it has what the panel shows. */
const isHold = (h) => h && typeof h.id === "string" && STATUSES.has(h.status) &&
  typeof h.code === "string" && typeof h.name === "string";

/**
 * The holds panel (#holds-panel) and the till (#till-form): pushed holds, their actions,
 * the new-hold alert, and the count on the heading and in the tab title.
 */
export class HoldsPanel {
  /**
   * @param {{api: Function, shopPath: (suffix: string) => string, sessionLost: Function,
   *   announce: (text: string) => void, onChange?: () => void}} deps
   *   onChange: the holds or the units they take changed (the own posts' lines follow)
   */
  constructor({ api, shopPath, sessionLost, announce, onChange = () => {} }) {
    this.onChange = onChange;
    this.api = api;
    this.shopPath = shopPath;
    this.sessionLost = sessionLost;
    this.announce = announce;
    this.holds = []; // as the last frame said, pending first
    this.items = new Map(); // hold id -> {li, signature, timeEl, hold}
    this.taken = {}; // post id -> units taken (open or collected holds)
    this.heldToday = 0;
    this.known = null; // pending ids already seen; null: the next frame is a (re)connect's
    this.beeps = 0;
    this.audio = null;
    this.found = null; // the hold the till's code found, to confirm
    this.scanning = null;
    this.list = $("holds-list");
    this.sound = soundWanted();

    // Browsers let a page make sound only after a gesture on it: the first one opens the
    // audio context that later beeps use.
    const unlock = () => {
      if (!this.audio && typeof AudioContext === "function") {
        try {
          this.audio = new AudioContext();
        } catch {
          this.audio = null;
        }
      }
      this.audio?.resume?.();
    };
    for (const type of ["pointerdown", "keydown"]) {
      document.addEventListener(type, unlock, { capture: true, once: true });
    }

    $("holds-sound").addEventListener("click", () => {
      this.sound = !this.sound;
      try {
        localStorage.setItem(SOUND_KEY, this.sound ? "on" : "off");
      } catch {
        // remembered for this visit only
      }
      this.showSound();
    });
    $("till-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.findCode($("till-code").value);
    });
    $("till-code").addEventListener("input", () => this.clearFound());
    $("till-confirm").addEventListener("click", () => this.confirmFound());
    $("till-cancel").addEventListener("click", () => {
      this.clearFound();
      $("till-code").value = "";
      $("till-code").focus();
    });
    const scan = $("till-scan");
    scan.textContent = t("hc_till_scan");
    scan.hidden = !("BarcodeDetector" in window) || !navigator.mediaDevices?.getUserMedia;
    scan.addEventListener("click", () => (this.scanning ? this.stopScan() : this.startScan()));
    this.showSound();
    this.render();
  }

  /** The socket (re)connected: its first `holds` frame is what is there, not news. */
  connected() {
    this.known = null;
  }

  /** Signed out: nothing of the shop stays. */
  forget() {
    this.stopScan();
    this.holds = [];
    this.taken = {};
    this.heldToday = 0;
    this.known = null;
    this.clearFound();
    $("till-code").value = "";
    this.render();
    this.onChange();
  }

  /** Units of a post taken by holds, open or collected (for an edit's quantity). */
  takenOf(postId) {
    const n = this.taken[postId];
    return Number.isInteger(n) && n > 0 ? n : 0;
  }

  /** A post's open holds: how many wait for an answer, how many are put aside. */
  openOf(postId) {
    const mine = this.holds.filter((h) => h.post?.id === postId);
    return { pending: mine.filter((h) => h.status === "pending").length,
      accepted: mine.filter((h) => h.status === "accepted").length };
  }

  /** A `holds` frame: the shop's open holds and today's count. */
  pushed(frame) {
    if (!Array.isArray(frame?.holds)) return;
    const holds = frame.holds.filter(isHold);
    const rank = (h) => (h.status === "pending" ? 0 : 1);
    // Pending first (they wait for an answer); within each, the server's order: soonest
    // to end first.
    this.holds = holds.map((h, i) => [h, i]).sort((a, b) => rank(a[0]) - rank(b[0]) || a[1] - b[1])
      .map(([h]) => h);
    this.heldToday = Number.isInteger(frame.held_today) ? frame.held_today : 0;
    this.taken = frame.taken && typeof frame.taken === "object" ? frame.taken : {};
    const pending = this.holds.filter((h) => h.status === "pending");
    const fresh = this.known === null ? [] : pending.filter((h) => !this.known.has(h.id));
    this.known = new Set(pending.map((h) => h.id));
    if (this.found) {
      // The hold the till found, as it is now (accepted meanwhile, or gone).
      this.found = this.holds.find((h) => h.id === this.found.id) ?? null;
      if (this.found) this.showFound();
      else this.clearFound();
    }
    this.render();
    this.onChange();
    if (fresh.length) this.alert(fresh);
  }

  alert(fresh) {
    this.beep();
    const first = fresh[0];
    this.announce(fresh.length === 1
      ? t("hc_new_one", { name: first.name, title: String(first.post?.title ?? ""), code: first.code })
      : t("hc_new_many", { n: fresh.length }));
  }

  beep() {
    const ctx = this.audio;
    if (!this.sound || !ctx || ctx.state === "closed") return;
    try {
      const osc = ctx.createOscillator();
      const gain = ctx.createGain();
      const start = ctx.currentTime;
      osc.frequency.value = BEEP_HZ;
      // A short ramp in and out: a hard edge clicks.
      gain.gain.setValueAtTime(0.0001, start);
      gain.gain.exponentialRampToValueAtTime(0.3, start + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, start + BEEP_S);
      osc.connect(gain).connect(ctx.destination);
      osc.start(start);
      osc.stop(start + BEEP_S);
      this.beeps += 1;
    } catch {
      // no sound on this device: the badge and the announcement still say it
    }
  }

  showSound() {
    // The state in its words ("Sound: off"), not aria-pressed: a pressed button's name
    // must not change with its state.
    $("holds-sound").textContent = t(this.sound ? "hc_sound_on" : "hc_sound_off");
  }

  get pendingCount() {
    return this.holds.filter((h) => h.status === "pending").length;
  }

  /** The count of pending holds, on the heading and in the tab title. */
  showCount() {
    const n = this.pendingCount;
    const badge = $("holds-count");
    badge.hidden = n === 0;
    badge.textContent = String(n);
    badge.setAttribute("aria-label", t("hc_pending_count", { n }));
    const base = t(document.documentElement.dataset.i18nTitle ?? "title");
    document.title = n ? `(${n}) ${base}` : base;
  }

  render() {
    const now = Date.now();
    const seen = new Set();
    this.holds.forEach((hold, index) => {
      seen.add(hold.id);
      let item = this.items.get(hold.id);
      if (!item) {
        item = { li: el("li", "hold-item"), signature: "", timeEl: null, hold };
        item.li.dataset.holdId = hold.id;
        this.items.set(hold.id, item);
      }
      if (this.list.children[index] !== item.li) {
        this.list.insertBefore(item.li, this.list.children[index] ?? null);
      }
      const signature = JSON.stringify([hold.status, hold.name, hold.code, hold.post?.title,
        hold.expires_at]);
      if (item.signature !== signature) {
        const hadFocus = item.li.contains(document.activeElement);
        item.hold = hold;
        item.signature = signature;
        this.fill(item);
        if (hadFocus) (item.li.querySelector("button") ?? $("holds-heading")).focus();
      }
      this.tickItem(item, now);
    });
    for (const [id, item] of this.items) {
      if (seen.has(id)) continue;
      const hadFocus = item.li.contains(document.activeElement);
      item.li.remove();
      this.items.delete(id);
      if (hadFocus) $("holds-heading").focus();
    }
    $("holds-empty").hidden = this.holds.length > 0;
    $("holds-today").textContent = plural("hc_today", this.heldToday);
    this.showCount();
  }

  fill(item) {
    const { hold, li } = item;
    li.className = `hold-item is-${hold.status}`;
    const main = el("div", "hold-main");
    const who = el("p", "hold-who");
    who.append(userText("bdi", "hold-name", hold.name), " ",
      el("span", "hold-code", hold.code));
    main.append(who, userText("p", "hold-post", String(hold.post?.title ?? "")));
    const meta = el("p", "hold-meta");
    meta.append(el("span", `hold-status is-${hold.status}`, t(`hc_status_${hold.status}`)));
    item.timeEl = el("span", "hold-time");
    meta.append(item.timeEl);
    main.append(meta);
    const actions = el("div", "hold-actions");
    const button = (cls, key, action) => {
      const b = el("button", cls, t(key));
      b.type = "button";
      b.dataset.action = action;
      b.setAttribute("aria-label", t(`${key}_label`, { name: hold.name, code: hold.code }));
      b.addEventListener("click", () => this.act(item, action, actions));
      actions.append(b);
    };
    if (hold.status === "pending") {
      button("primary hold-accept", "hc_accept", "accept");
      button("danger hold-decline", "hc_decline", "decline");
    } else if (hold.status === "accepted") {
      button("primary hold-collected", "hc_collected", "collected");
    }
    const error = el("p", "form-error hold-error");
    error.setAttribute("role", "alert");
    error.hidden = true;
    item.error = error;
    li.replaceChildren(main, actions, error);
  }

  tick(now = Date.now()) {
    for (const item of this.items.values()) this.tickItem(item, now);
  }

  tickItem(item, now) {
    if (!item.timeEl) return;
    const text = timeLeft(Date.parse(item.hold.expires_at), now);
    if (item.timeEl.textContent !== text) item.timeEl.textContent = text;
  }

  /** Accept, decline or mark collected: one tap; the socket pushes the list after it. */
  async act(item, action, actions) {
    for (const b of actions.querySelectorAll("button")) b.disabled = true;
    const result = await this.sendAction(item.hold, action);
    for (const b of actions.querySelectorAll("button")) b.disabled = false;
    if (!result) return;
    if (!result.ok) {
      item.error.hidden = false;
      item.error.textContent = errorText(result.error);
      return;
    }
    this.answered(item.hold, result.data, action);
  }

  async sendAction(hold, action) {
    const path = this.shopPath(`/holds/${encodeURIComponent(hold.id)}/${action}`);
    const result = await this.api("POST", path);
    return this.sessionLost(result) ? null : result;
  }

  /** Shown at once as the server answered (its frame follows and agrees). */
  answered(hold, after, action) {
    const status = STATUSES.has(after?.status) ? after.status : null;
    this.announce(t(`hc_done_${action}`, { name: hold.name, code: hold.code }));
    if (!status) return;
    this.holds = status === "pending" || status === "accepted"
      ? this.holds.map((h) => (h.id === hold.id ? { ...h, status } : h))
      : this.holds.filter((h) => h.id !== hold.id);
    this.known?.delete(hold.id);
    this.render();
    this.onChange();
  }

  // --- At the till ---------------------------------------------------------------------

  /** The open hold with the code typed (or scanned), shown to confirm "Collected". */
  findCode(typed) {
    const code = foldCode(typed);
    tillSay(null); // a new lookup: the last one's words go
    if (!code) {
      this.clearFound();
      tillSay("till-error", t("hc_till_need_code"));
      $("till-code").focus();
      return;
    }
    const hold = this.holds.find((h) => h.code === code);
    if (!hold) {
      this.clearFound();
      tillSay("till-error", t("hc_till_no_hold", { code }));
      return;
    }
    this.found = hold;
    this.showFound();
    $("till-confirm").focus();
  }

  showFound() {
    const hold = this.found;
    $("till-found-text").replaceChildren(userText("bdi", "hold-name", hold.name), " — ",
      userText("bdi", "hold-post", String(hold.post?.title ?? "")), ` (${hold.code}, `,
      t(`hc_status_${hold.status}`), ")");
    $("till-found").hidden = false;
  }

  clearFound() {
    this.found = null;
    $("till-found").hidden = true;
    tillSay(null);
  }

  async confirmFound() {
    const hold = this.found;
    if (!hold) return;
    const button = $("till-confirm");
    button.disabled = true;
    const result = await this.sendAction(hold, "collected");
    button.disabled = false;
    if (!result) return;
    if (!result.ok) {
      tillSay("till-error", errorText(result.error));
      return;
    }
    this.clearFound();
    $("till-code").value = "";
    tillSay("till-ok", t("hc_done_collected", { name: hold.name, code: hold.code }));
    this.answered(hold, result.data, "collected");
    $("till-code").focus();
  }

  // A QR of the code, from the passer-by's page, read with the camera. Headless browsers
  // have no BarcodeDetector: the typed path is the tested one.
  async startScan() {
    const video = $("till-video");
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } });
    } catch {
      tillSay("till-error", t("hc_till_no_camera"));
      return;
    }
    let detector;
    try {
      detector = new window.BarcodeDetector({ formats: ["qr_code"] });
    } catch {
      for (const track of stream.getTracks()) track.stop();
      return;
    }
    video.srcObject = stream;
    video.hidden = false;
    await video.play().catch(() => {});
    const scan = { stream, timer: 0 };
    this.scanning = scan;
    $("till-scan").textContent = t("hc_till_scan_stop");
    $("till-scan").setAttribute("aria-pressed", "true");
    const look = async () => {
      if (this.scanning !== scan) return;
      try {
        const codes = await detector.detect(video);
        const code = codes.map((c) => this.codeIn(c.rawValue)).find(Boolean);
        if (code) {
          this.stopScan();
          $("till-code").value = code;
          this.findCode(code);
          return;
        }
      } catch {
        // a frame not ready yet: the next one
      }
      scan.timer = setTimeout(look, SCAN_EVERY_MS);
    };
    look();
  }

  /** A scanned text's code: the code alone, or one of the open holds' codes in a link. */
  codeIn(raw) {
    const folded = foldCode(raw);
    if (this.holds.some((h) => h.code === folded)) return folded;
    const param = /[?#&]code=([^&#]+)/i.exec(String(raw ?? ""));
    const fromParam = param ? foldCode(decodeURIComponent(param[1])) : "";
    return this.holds.some((h) => h.code === fromParam) ? fromParam : null;
  }

  stopScan() {
    const scan = this.scanning;
    if (!scan) return;
    this.scanning = null;
    clearTimeout(scan.timer);
    for (const track of scan.stream.getTracks()) track.stop();
    const video = $("till-video");
    video.srcObject = null;
    video.hidden = true;
    $("till-scan").textContent = t("hc_till_scan");
    $("till-scan").setAttribute("aria-pressed", "false");
  }

  relabel() {
    for (const item of this.items.values()) item.signature = "";
    this.showSound();
    $("till-scan").textContent = t(this.scanning ? "hc_till_scan_stop" : "hc_till_scan");
    this.render();
    if (this.found) this.showFound();
  }
}

/**
 * The till says one thing at a time, the latest (a cold try: "Collected by Léa" stayed green
 * above the next lookup's red "no open hold"): `id` ("till-error", "till-ok") says `text`,
 * the other is hidden; null hides both.
 */
function tillSay(id, text = "") {
  for (const node of [$("till-error"), $("till-ok")]) {
    node.hidden = node.id !== id;
    if (node.id === id) node.textContent = text;
  }
}

function soundWanted() {
  try {
    return localStorage.getItem(SOUND_KEY) !== "off";
  } catch {
    return true;
  }
}
