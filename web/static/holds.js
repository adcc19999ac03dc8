// "Hold it for me" on the passer-by's page (DESIGN.md 9): the dialog that asks the shop to
// keep a unit aside, and "My holds", the holds asked from this device, their status kept
// current while one is open.
//
// What the device keeps of a hold: its id and secret (to read and cancel it), its code,
// the post's title, the shop (id, name, address, time zone), until when it is kept, and its
// last known status. Never a position: nobody's, not even the shop's.
// Shop text is only ever set through textContent (cards.js's el/userText).

import { confirmTwice, el, holdOf, postTime, postZone, userText } from "./cards.js";
import { durationText, errorKey, getLang, t } from "./i18n.js";

const STORE_KEY = "streetfeed.holds";
const NAME_KEY = "streetfeed.holdName";
const NAME_MAX = 40; // schemas/limits.py HOLD_NAME_MAX: code points
const MAX_KEPT = 20; // a device asking more has long forgotten the oldest
const POLL_MS = 10000;
// The server forgets an ended hold a day after it ended (HOLD_KEEP_AFTER_END_S): the
// device does too, without asking it (nothing is read while no hold is open).
const KEEP_AFTER_END_MS = 24 * 3600 * 1000;
const OPEN = new Set(["pending", "accepted"]);
const STATUSES = new Set(["pending", "accepted", "declined", "collected", "expired", "cancelled"]);
// Why a declined hold was: the shop said no, or its post ended before the shop answered.
const REASONS = new Set(["shop", "post_ended", "shop_disabled", "no_answer"]);
const reasonOf = (value) => (REASONS.has(value) ? value : null);
const CODE = /^[A-Z0-9]{4}$/;
const HOLD_ID = /^h_[a-z0-9]{16}$/;

const $ = (id) => document.getElementById(id);
const isOpen = (hold) => OPEN.has(hold.status);
const qrUrl = (code) => `/api/v1/holds/qr/${encodeURIComponent(code)}.svg`;

// --- What the device keeps ------------------------------------------------------------------

/** A kept hold read back, or null when it is not one (damaged, or from a newer page). */
function revive(h) {
  if (!h || typeof h !== "object" || !HOLD_ID.test(h.id) || typeof h.secret !== "string" ||
      !CODE.test(h.code) || !STATUSES.has(h.status) || Number.isNaN(Date.parse(h.expires_at))) {
    return null;
  }
  const shop = h.shop && typeof h.shop === "object" ? h.shop : {};
  return {
    id: h.id, secret: h.secret, code: h.code, status: h.status, expires_at: h.expires_at,
    ended_at: typeof h.ended_at === "string" ? h.ended_at : null,
    reason: reasonOf(h.reason),
    title: String(h.title ?? ""),
    shop: { id: String(shop.id ?? ""), name: String(shop.name ?? ""),
      address: String(shop.address ?? ""),
      timezone: typeof shop.timezone === "string" ? shop.timezone : null },
  };
}

function load(now = Date.now()) {
  try {
    const kept = JSON.parse(localStorage.getItem(STORE_KEY) ?? "[]");
    if (!Array.isArray(kept)) return [];
    return kept.map(revive).filter((h) => h && !(h.ended_at &&
      Date.parse(h.ended_at) + KEEP_AFTER_END_MS < now));
  } catch {
    return []; // storage disabled or damaged
  }
}

function loadName() {
  try {
    return localStorage.getItem(NAME_KEY) ?? "";
  } catch {
    return "";
  }
}

function saveName(name) {
  try {
    localStorage.setItem(NAME_KEY, name);
  } catch {
    // Private browsing: typed again next time.
  }
}

const codePoints = (text) => [...text].length;

// --- The page's part ------------------------------------------------------------------------

export class HoldsUi {
  /**
   * @param {{entry: HTMLElement, toggle: HTMLButtonElement, panel: HTMLElement,
   *          list: HTMLElement, note: HTMLElement, dialog: HTMLDialogElement}} nodes
   */
  constructor(nodes) {
    this.nodes = nodes;
    this.holds = load();
    this.pollTimer = 0;
    this.polling = false;
    this.dialogHold = null; // the id the dialog shows, once asked
    this.opener = null; // {postId, button}: where the focus goes back to
    this.asking = null; // {postId, error, submit, gone}: the asking dialog's post
    this.labels = new Map(); // the dialog's texts: node -> [key, vars], for a language switch
    this.noteHold = null; // the hold the note last spoke of
    nodes.toggle.addEventListener("click", () => this.#setListOpen(
      nodes.toggle.getAttribute("aria-expanded") !== "true"));
    nodes.dialog.addEventListener("close", () => this.#closed());
    nodes.dialog.addEventListener("keydown", (ev) => this.#trapTab(ev));
    // A tap on the backdrop (the dialog's own box, outside its content) closes it.
    nodes.dialog.addEventListener("click", (ev) => {
      if (ev.target === nodes.dialog) nodes.dialog.close();
    });
    // Back online: "Offline: try again..." is no longer true (a cold try saw it stay under
    // the "Live" badge), and what changed meanwhile is read at once.
    addEventListener("online", () => {
      this.#unsay("err_offline");
      this.#poll();
    });
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible") this.#poll();
      else this.#stopPolling();
    });
    this.#save();
    this.render();
    this.#poll(); // what changed while the page was closed, at once
  }

  /** For tests and curious developers. */
  get snapshot() {
    return this.holds.map(({ id, code, status }) => ({ id, code, status }));
  }

  // --- Asking ---------------------------------------------------------------------------

  /** Open the dialog asking the shop to hold one unit of `post`. */
  ask(post, button) {
    const hold = holdOf(post);
    const dialog = this.nodes.dialog;
    if (!hold || dialog.open) return;
    this.dialogHold = null;
    this.opener = { postId: post.id, button };
    this.labels.clear();
    const form = el("form", "hold-form");
    form.noValidate = true; // the words of a refusal are ours, in the page's language
    const label = this.#say(el("label", "hold-label"), "hold_name_label");
    label.htmlFor = "hold-name";
    const input = el("input", "hold-name");
    Object.assign(input, { id: "hold-name", name: "name", type: "text", required: true,
      autocomplete: "given-name", value: loadName(), spellcheck: false });
    input.maxLength = NAME_MAX * 2; // code points are checked on submit; emoji are two units
    input.setAttribute("aria-describedby", "hold-explain hold-error");
    const explain = this.#say(el("p", "hold-explain"), "hold_explain",
      { t: durationText(hold.minutes) });
    explain.id = "hold-explain";
    const error = el("p", "hold-error");
    error.id = "hold-error";
    error.setAttribute("role", "alert");
    error.hidden = true;
    const submit = this.#say(el("button", "hold-submit"), "hold_submit");
    submit.type = "submit";
    const close = this.#closeButton();
    const actions = el("div", "hold-actions");
    actions.append(close, submit);
    form.append(label, input, explain, error, actions);
    this.asking = { postId: post.id, error, submit, gone: false };
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      this.#send(post, { input, error, submit });
    });
    dialog.replaceChildren(this.#heading("hold_dialog_title"), this.#what(post.title,
      post.shop?.name), form);
    dialog.showModal();
    input.focus();
  }

  /**
   * A post ended (expired, withdrawn, gone from the list): a dialog asking to hold it says
   * so at once and asks no more, left open so that it is read (a cold try: it stayed
   * active, and only a tap on "Ask" said the post was gone).
   */
  postEnded(postId) {
    const asking = this.asking;
    if (!asking || asking.gone || asking.postId !== postId || !this.nodes.dialog.open ||
        this.dialogHold) return;
    asking.gone = true;
    const moveFocus = document.activeElement === asking.submit;
    asking.submit.disabled = true;
    this.#say(asking.error, "err_post_gone");
    asking.error.hidden = false;
    if (moveFocus) this.nodes.dialog.querySelector(".hold-close")?.focus();
  }

  /** `node` says `key` (with `vars`), and says it again in the language switched to. */
  #say(node, key, vars = {}) {
    node.textContent = t(key, vars);
    this.labels.set(node, [key, vars]);
    return node;
  }

  #heading(key) {
    const heading = this.#say(el("h2", "hold-title"), key);
    heading.id = "hold-dialog-title";
    heading.tabIndex = -1; // the focus lands on it when the dialog's content changes
    return heading;
  }

  #what(title, shopName) {
    const what = el("p", "hold-what");
    what.append(userText("bdi", "hold-what-title", String(title ?? "")), " · ",
      userText("bdi", "hold-what-shop", String(shopName ?? "")));
    return what;
  }

  #closeButton() {
    const close = this.#say(el("button", "hold-close"), "hold_close");
    close.type = "button";
    close.addEventListener("click", () => this.nodes.dialog.close());
    return close;
  }

  async #send(post, { input, error, submit }) {
    const name = input.value.trim();
    const refuse = (key) => {
      this.#say(error, key);
      error.hidden = false;
      input.setAttribute("aria-invalid", "true");
      input.focus();
    };
    if (!name || codePoints(name) > NAME_MAX) {
      refuse("err_invalid_hold");
      return;
    }
    submit.disabled = true;
    this.#say(submit, "hold_sending");
    let answer = null;
    let refusal = "err_generic";
    try {
      const response = await fetch(`/api/v1/posts/${encodeURIComponent(post.id)}/holds`, {
        method: "POST", headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify({ name }), cache: "no-store",
      });
      const body = await response.json().catch(() => null);
      if (response.status === 201 && body && HOLD_ID.test(body.id)) answer = body;
      else refusal = errorKey(body?.error, "hold");
    } catch {
      refusal = navigator.onLine === false ? "err_offline" : "err_generic";
    }
    if (!this.nodes.dialog.open) return; // closed meanwhile: the hold is kept all the same
    this.#say(submit, "hold_submit");
    if (this.asking?.gone && !answer) return; // its post ended meanwhile: said already
    submit.disabled = false;
    if (!answer) {
      refuse(refusal);
      return;
    }
    saveName(name);
    const zone = postZone(post);
    const hold = revive({
      id: answer.id, secret: answer.secret, code: answer.code, status: answer.status,
      expires_at: answer.expires_at, title: post.title,
      shop: { id: post.shop.id, name: post.shop.name, address: post.shop.address, timezone: zone },
    });
    if (!hold) {
      refuse("err_generic");
      return;
    }
    this.holds = [hold, ...this.holds.filter((h) => h.id !== hold.id)].slice(0, MAX_KEPT);
    this.#save();
    this.render();
    this.#showDone(hold);
    this.#poll(false);
  }

  /** The dialog once asked: the code, large, its QR, until when, where, and the status. */
  #showDone(hold) {
    this.dialogHold = hold.id;
    this.asking = null;
    this.labels.clear();
    const dialog = this.nodes.dialog;
    const heading = this.#heading("hold_done_title");
    const body = el("div", "hold-done");
    body.append(...this.#details(hold, "dialog"));
    const actions = el("div", "hold-actions");
    actions.append(this.#closeButton());
    dialog.replaceChildren(heading, this.#what(hold.title, hold.shop.name), body, actions);
    heading.focus();
  }

  /** A hold's code, QR, times, shop and status (the dialog's and the list's). */
  #details(hold, where) {
    const zone = hold.shop.timezone;
    const code = el("p", "hold-code-box");
    const label = el("span", "hold-code-label", t("hold_code_label"));
    const value = el("strong", "hold-code", hold.code);
    value.lang = "en"; // letters read one by one, the same in both languages
    code.append(label, value);
    const parts = [code];
    if (isOpen(hold)) {
      const qr = document.createElement("img");
      qr.className = "hold-qr";
      qr.width = 132; // its box is kept before it loads: nothing moves when it comes
      qr.height = 132;
      qr.alt = t("hold_qr_alt", { code: hold.code.split("").join(" ") });
      qr.src = qrUrl(hold.code);
      parts.push(qr);
    }
    const status = el("p", `hold-status status-${hold.status}`, sentence(statusText(hold)));
    status.dataset.holdStatus = hold.status;
    if (where === "dialog") status.id = "hold-dialog-status";
    parts.push(status);
    if (hold.status === "pending") {
      parts.push(el("p", "hold-until",
        t("hold_kept_until", { time: postTime(Date.parse(hold.expires_at), zone) })));
    }
    const shop = el("p", "hold-shop");
    shop.append(userText("bdi", "hold-shop-name", hold.shop.name));
    if (hold.shop.address) shop.append(userText("bdi", "hold-shop-address", hold.shop.address));
    parts.push(shop);
    return parts;
  }

  #closed() {
    this.asking = null;
    const opener = this.opener;
    this.opener = null;
    this.dialogHold = null;
    if (!opener) return;
    // The card (or the map's popup) may have been made again meanwhile (a post frame): its
    // new button where it shows, else the card itself ("All held" is no button).
    const id = CSS.escape(opener.postId);
    const shown = (node) => node?.isConnected && node.getClientRects().length > 0;
    const button = shown(opener.button) ? opener.button
      : [...document.querySelectorAll(`.hold-ask[data-post-id="${id}"]`)].find(shown);
    const target = button ?? document.querySelector(`#feed .card[data-post-id="${id}"]`);
    target?.focus({ preventScroll: true });
  }

  /** Tab and Shift+Tab go round inside the dialog, never out of it. */
  #trapTab(ev) {
    if (ev.key !== "Tab") return;
    const focusable = [...this.nodes.dialog.querySelectorAll(
      "button:not([disabled]), input:not([disabled]), [tabindex='0']")];
    if (!focusable.length) return;
    const first = focusable[0];
    const last = focusable[focusable.length - 1];
    const active = document.activeElement;
    const inside = focusable.includes(active);
    if (ev.shiftKey && (active === first || !inside)) {
      ev.preventDefault();
      last.focus();
    } else if (!ev.shiftKey && (active === last || !inside)) {
      ev.preventDefault();
      first.focus();
    }
  }

  // --- My holds -------------------------------------------------------------------------

  #setListOpen(open) {
    this.nodes.toggle.setAttribute("aria-expanded", String(open));
    this.nodes.panel.hidden = !open;
  }

  /**
   * The language switched: what is open says it in the new one, the list, the note and
   * the dialog (a name typed, and the focus, stay where they are).
   */
  relabel() {
    this.render();
    for (const [node, [key, vars]] of this.labels) {
      if (node.isConnected) node.textContent = t(key, vars);
    }
    const hold = this.holds.find((h) => h.id === this.dialogHold);
    if (hold && this.nodes.dialog.open) {
      this.nodes.dialog.querySelector(".hold-done")?.replaceChildren(...this.#details(hold, "dialog"));
    }
    const noted = this.holds.find((h) => h.id === this.noteHold);
    if (noted && this.nodes.note.textContent) this.#note(noted);
  }

  #note(hold) {
    this.noteHold = hold.id;
    this.nodes.note.textContent = t("hold_note", { title: hold.title, status: statusText(hold) });
  }

  /** Draw the entry and the list again (a status changed, the language, a hold asked). */
  render() {
    const { entry, toggle, list } = this.nodes;
    entry.hidden = this.holds.length === 0;
    // The open ones first (the one to show at the till), newest first within each; the
    // count says how many are open (ended ones are kept a day, to say how they ended).
    const open = this.holds.filter(isOpen);
    toggle.querySelector(".my-holds-label").textContent = t("my_holds", { n: open.length });
    const focused = list.contains(document.activeElement)
      ? document.activeElement.closest("li")?.dataset.holdId : null;
    list.replaceChildren(...[...open, ...this.holds.filter((h) => !isOpen(h))]
      .map((hold) => this.#item(hold)));
    if (focused) {
      (list.querySelector(`[data-hold-id="${CSS.escape(focused)}"] button`)
        ?? list.querySelector("button") ?? this.nodes.toggle).focus();
    }
    if (this.dialogHold) {
      const hold = this.holds.find((h) => h.id === this.dialogHold);
      const status = $("hold-dialog-status");
      // In place: the focus stays where it is (the close button, say).
      if (hold && status && status.dataset.holdStatus !== hold.status) {
        this.nodes.dialog.querySelector(".hold-done")?.replaceChildren(...this.#details(hold, "dialog"));
      }
    }
  }

  #item(hold) {
    const item = el("li", `my-hold status-${hold.status}`);
    item.dataset.holdId = hold.id;
    item.append(userText("h3", "my-hold-title", hold.title), ...this.#details(hold, "list"));
    if (isOpen(hold)) {
      const cancel = el("button", "hold-cancel", t("hold_cancel"));
      cancel.type = "button";
      const error = el("p", "hold-error");
      error.hidden = true;
      const disarm = confirmTwice(cancel, {
        arm: () => { cancel.textContent = t("hold_cancel_confirm"); },
        disarm: () => { cancel.textContent = t("hold_cancel"); },
        act: () => this.#cancel(hold, { cancel, error, disarm }),
      });
      item.append(cancel, error);
    }
    return item;
  }

  async #cancel(hold, { cancel, error, disarm }) {
    cancel.disabled = true;
    let key = "err_generic";
    try {
      const response = await fetch(`/api/v1/holds/${hold.id}`, {
        method: "DELETE", cache: "no-store",
        headers: { Authorization: `Bearer ${hold.secret}`, Accept: "application/json" },
      });
      const body = await response.json().catch(() => null);
      if (response.ok && body) {
        this.#update(hold.id, body);
        return;
      }
      if (response.status === 404) {
        this.#forget(hold.id);
        return;
      }
      if (response.status === 409) {
        await this.#read(hold); // it ended meanwhile: say how
        return;
      }
      key = errorKey(body?.error, "hold");
    } catch {
      key = navigator.onLine === false ? "err_offline" : "err_generic";
    }
    if (!cancel.isConnected) return;
    cancel.disabled = false;
    disarm();
    error.textContent = t(key);
    error.dataset.key = key;
    error.hidden = false;
  }

  /**
   * The refusals said with `key` go (any key when null), in "My holds" (of the hold `id`
   * only, when given) and in the dialog.
   */
  #unsay(key, id = null) {
    const items = id ? `[data-hold-id="${CSS.escape(id)}"]` : "[data-hold-id]";
    for (const error of this.nodes.list.querySelectorAll(`${items} .hold-error`)) {
      if (key === null || error.dataset.key === key) error.hidden = true;
    }
    const asking = this.nodes.dialog.querySelector("#hold-error");
    if (!id && asking && (key === null || this.labels.get(asking)?.[0] === key)) {
      asking.hidden = true;
    }
  }

  /** A hold's fresh state from the server: kept, and said when its status changed. */
  #update(id, view) {
    const hold = this.holds.find((h) => h.id === id);
    if (!hold || !STATUSES.has(view?.status)) return;
    const before = JSON.stringify(hold);
    const was = hold.status;
    hold.status = view.status;
    if (!Number.isNaN(Date.parse(view.expires_at))) hold.expires_at = view.expires_at;
    hold.ended_at = typeof view.ended_at === "string" ? view.ended_at
      : isOpen(hold) ? null : hold.ended_at ?? new Date().toISOString();
    hold.reason = reasonOf(view.reason);
    // Unchanged (most reads): nothing redrawn, so a cancel button armed by a first tap,
    // and the focus, stay as they are (a read every 10 s reset them: a cold try).
    if (JSON.stringify(hold) === before) return;
    this.#save();
    this.render();
    const hadStatus = was;
    if (hadStatus !== hold.status) this.#note(hold);
  }

  #forget(id) {
    this.holds = this.holds.filter((h) => h.id !== id);
    this.#save();
    this.render();
  }

  async #read(hold) {
    try {
      const response = await fetch(`/api/v1/holds/${hold.id}`, {
        cache: "no-store",
        headers: { Authorization: `Bearer ${hold.secret}`, Accept: "application/json" },
      });
      // The server forgets a hold a day after it ended: so does the device.
      if (response.status === 404) {
        this.#forget(hold.id);
      } else if (response.ok) {
        this.#update(hold.id, await response.json());
        this.#unsay(null, hold.id); // read: what a failed cancel said is old news
      }
    } catch {
      // offline: the next round asks again
    }
  }

  // --- Keeping the status current -------------------------------------------------------

  #stopPolling() {
    clearTimeout(this.pollTimer);
    this.pollTimer = 0;
  }

  /**
   * Read the open holds (now unless `now` is false), then again every POLL_MS while the
   * page is visible and one is open; nothing while hidden or when none is open.
   */
  async #poll(now = true) {
    this.#stopPolling();
    if (document.visibilityState !== "visible" || !this.holds.some(isOpen)) return;
    if (now && !this.polling) {
      this.polling = true;
      try {
        await Promise.all(this.holds.filter(isOpen).map((hold) => this.#read(hold)));
      } finally {
        this.polling = false;
      }
      this.#stopPolling(); // a poll asked for meanwhile has its timer: this one replaces it
      if (document.visibilityState !== "visible" || !this.holds.some(isOpen)) return;
    }
    this.pollTimer = setTimeout(() => this.#poll(), POLL_MS);
  }

  #save() {
    try {
      if (this.holds.length) localStorage.setItem(STORE_KEY, JSON.stringify(this.holds));
      else localStorage.removeItem(STORE_KEY);
    } catch {
      // Private browsing: the holds last for this visit.
    }
  }
}

/** "Waiting for the shop", "Put aside until 18:40" (the shop's time)... */
/** A status as a line of its own ("En attente..."): the texts are written to be read
 * inside a sentence too ("Réservation « X » : refusée par la boutique"). */
const sentence = (text) => text.charAt(0).toLocaleUpperCase(getLang()) + text.slice(1);

function statusText(hold) {
  const time = postTime(Date.parse(hold.expires_at), hold.shop.timezone);
  if ((hold.status === "declined" || hold.status === "expired") && hold.reason &&
      hold.reason !== "shop") {
    return t(`hold_status_${hold.reason}`);
  }
  return t(`hold_status_${hold.status}`, { time });
}
