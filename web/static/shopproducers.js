// The shop's producers in the console (issue 16; DESIGN.md section 9 "Local producers"):
// the "My producers" panel (the producers the shop names, each removable; a search as
// you type over the producers already known nearby, so that a shop links the baker's
// mill instead of creating a twin; a new producer's form with its place on a map) and the
// pickers with which a post names up to three of them.
//
// The list comes from the console's socket (a `producers` frame on connect and whenever a
// console or an API client of the shop names or unlinks one), and from GET
// /api/v1/shops/{id} when the console opens and after each change made here, so that the
// page answers at once and works while the socket is down. Names and places are user
// text: set as text only.

import { confirmTwice, el, formatKm, userText } from "./cards.js";
import { errorKey, plural, t } from "./i18n.js";
import { PlacePicker } from "./placepicker.js";

// The contract's numbers (DESIGN.md section 9): a post names at most 3 producers; a
// producer's name and place are 1-60 code points; the search takes a q of at most 60.
const PRODUCERS_PER_POST_MAX = 3;
const NAME_MAX = 60;
const SEARCH_Q_MAX = 60;
const SEARCH_DEBOUNCE_MS = 250;

const points = (s) => [...s];

/** Cut an input's value to `max` code points (its maxlength counts UTF-16 units). */
function clamp(input, max) {
  const p = points(input.value);
  if (p.length > max) input.value = p.slice(0, max).join("");
}

/** A producer as a list shows it, with its distance, or null for one not fit to show. */
function shown(p) {
  if (!p || typeof p.id !== "string" || typeof p.name !== "string") return null;
  const km = Number(p.distance_km);
  return { id: p.id, name: p.name, place: String(p.place ?? ""),
    distance_km: Number.isFinite(km) && km >= 0 ? km : null };
}

/** "Saint-Émilion · 34 km" (the place as text, the distance when known). */
function whereText(p) {
  return p.distance_km === null ? p.place : `${p.place} · ${formatKm(p.distance_km)}`;
}

/** A refusal in words: the producer's own where the post's would mislead ("in a post"). */
const producerError = (error, context = "prod") => t(errorKey(error, context));

let pickers = 0; // ids of each picker's inputs (the new post's and each open edit form's)

/** The producers a post names: up to three of the shop's, as checkable chips. */
export class ProducerPicker {
  /** @param {{onChange: () => void}} opts */
  constructor({ onChange }) {
    this.onChange = onChange;
    this.prefix = `prod-pick-${++pickers}`;
    this.choices = []; // the shop's producers, nearest first
    this.extra = []; // a post's own the shop names no more: still offered in its edit
    this.picked = []; // ids, in the order ticked (a card shows them in that order)
    this.el = el("fieldset", "prod-pick");
    this.legend = el("legend");
    this.counter = el("span", "counter prod-pick-counter");
    this.help = el("p", "hint prod-pick-help");
    this.help.id = `${this.prefix}-help`;
    this.el.setAttribute("aria-describedby", this.help.id);
    this.list = el("ul", "prod-pick-list");
    this.empty = el("p", "hint prod-pick-empty");
    this.el.append(this.legend, this.help, this.list, this.empty);
    this.relabel();
  }

  /** The shop's producers changed: a ticked one it no longer names is let go. */
  setChoices(producers) {
    this.choices = producers.map(shown).filter(Boolean);
    const known = new Set([...this.choices, ...this.extra].map((p) => p.id));
    this.picked = this.picked.filter((id) => known.has(id));
    this.render();
  }

  /** A delivered post's producers, ticked, in its order. */
  load(producers) {
    const own = (Array.isArray(producers) ? producers : []).map(shown).filter(Boolean);
    const ids = new Set(this.choices.map((p) => p.id));
    this.extra = own.filter((p) => !ids.has(p.id));
    this.picked = own.map((p) => p.id).slice(0, PRODUCERS_PER_POST_MAX);
    this.render();
  }

  ids() {
    return [...this.picked];
  }

  /** The ticked producers, in order, as a card shows them. */
  chosen() {
    const all = new Map([...this.extra, ...this.choices].map((p) => [p.id, p]));
    return this.picked.map((id) => all.get(id)).filter(Boolean);
  }

  clear() {
    this.picked = [];
    this.extra = [];
    this.render();
  }

  /** Tick these again (a template keeps what was ticked before it). */
  restore(ids) {
    this.picked = ids.slice(0, PRODUCERS_PER_POST_MAX);
    this.setChoices(this.choices);
  }

  render() {
    const all = [...this.extra, ...this.choices];
    const full = this.picked.length >= PRODUCERS_PER_POST_MAX;
    const hadFocus = this.list.contains(document.activeElement) ? document.activeElement.value : null;
    this.list.replaceChildren(...all.map((p) => {
      const li = el("li", "prod-pick-item");
      const label = el("label", "prod-chip");
      const box = el("input");
      box.type = "checkbox";
      box.id = `${this.prefix}-${p.id}`;
      box.value = p.id;
      box.checked = this.picked.includes(p.id);
      // Three ticked: the others wait (the help says why) rather than being refused later.
      box.disabled = full && !box.checked;
      box.addEventListener("change", () => {
        if (box.checked) this.picked.push(p.id);
        else this.picked = this.picked.filter((id) => id !== p.id);
        this.render();
        this.onChange();
      });
      label.htmlFor = box.id;
      label.append(userText("bdi", "prod-chip-name", p.name));
      if (p.distance_km !== null) label.append(el("span", "prod-chip-km", ` · ${formatKm(p.distance_km)}`));
      li.append(box, label);
      return li;
    }));
    if (hadFocus !== null) this.list.querySelector(`input[value="${CSS.escape(hadFocus)}"]`)?.focus();
    this.list.hidden = !all.length;
    this.empty.hidden = all.length > 0;
    this.counter.textContent = `${this.picked.length}/${PRODUCERS_PER_POST_MAX}`;
  }

  relabel() {
    this.legend.replaceChildren(t("prod_pick_legend"), " ", el("span", "optional", t("optional")),
      this.counter);
    this.help.textContent = t("prod_pick_help", { n: PRODUCERS_PER_POST_MAX });
    this.empty.textContent = t("prod_pick_empty");
    this.render();
  }
}

/**
 * The "My producers" panel: the list, the search, the new producer's form.
 * @param {{api: Function, shopPath: (suffix?: string) => string, shop: () => object|null,
 *          sessionLost: (r: object) => boolean, announce: (text: string) => void,
 *          onChange: (producers: object[]) => void}} deps
 */
export class ProducersPanel {
  constructor(deps) {
    Object.assign(this, deps);
    const $ = (id) => document.getElementById(id);
    this.listEl = $("own-producers");
    this.emptyEl = $("own-producers-empty");
    this.errorEl = $("producers-error");
    this.okEl = $("producers-ok");
    this.search = $("prod-search");
    this.results = $("prod-results");
    this.status = $("prod-search-status");
    this.newButton = $("prod-new");
    this.form = $("prod-form");
    this.nameInput = $("prod-name");
    this.placeInput = $("prod-place");
    this.distanceEl = $("prod-distance");
    this.formError = $("prod-form-error");
    this.addButton = $("prod-add");
    this.producers = null; // null until the server has said
    this.pushed = 0; // lists the socket pushed
    this.matches = []; // the search's answer shown now: producers, then "new"
    this.active = -1; // the option the arrow keys are on
    this.searchTimer = 0;
    this.searchSeq = 0;
    this.notes = new Map(); // element -> () => its text (written again on a language switch)
    this.place = new PlacePicker({ box: $("prod-map"), lat: $("prod-lat"), lon: $("prod-lon"),
      note: $("prod-map-note"), onChange: () => this.showDistance() });

    this.search.addEventListener("input", () => this.typed());
    this.search.addEventListener("keydown", (event) => this.key(event));
    this.search.addEventListener("blur", () => this.close());
    this.results.addEventListener("mousedown", (event) => event.preventDefault()); // focus stays in the field
    this.newButton.addEventListener("click", () => (this.form.hidden ? this.openForm("")
      : this.closeForm()));
    // Counted as typed, as a post's title is: a name cut at 60 says so before it is sent.
    this.counters = [[this.nameInput, $("prod-name-count")],
      [this.placeInput, $("prod-place-count")]];
    for (const [input] of this.counters) input.addEventListener("input", () => this.count());
    $("prod-cancel").addEventListener("click", () => {
      this.closeForm();
      this.newButton.focus();
    });
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.create();
    });
  }

  // --- The list ------------------------------------------------------------------------

  /** Ask the server for the shop's producers (the console opened, or one was changed). */
  async load() {
    const shop = this.shop();
    if (!shop) return;
    const pushed = this.pushed;
    const result = await this.api("GET", this.shopPath());
    if (this.shop()?.id !== shop.id) return; // signed out meanwhile
    if (this.sessionLost(result)) return;
    if (!result.ok || !Array.isArray(result.data?.producers)) {
      if (this.pushed === pushed) {
        this.sayKey(this.errorEl, errorKey(result.error ?? { code: "http_error" }));
      }
      return;
    }
    // The socket said something meanwhile: it was read after this answer was.
    if (this.pushed !== pushed) return;
    this.sayKey(this.errorEl, null);
    this.apply(result.data.producers);
  }

  /** The shop's producers, as the console's socket pushed them. */
  pushedList(producers) {
    if (!Array.isArray(producers) || !this.shop()) return;
    this.pushed += 1;
    this.apply(producers);
  }

  apply(producers) {
    const list = producers.map(shown).filter(Boolean);
    if (this.producers && JSON.stringify(list) === JSON.stringify(this.producers)) return;
    this.producers = list;
    this.render();
    this.onChange(this.producers);
  }

  /** Signed out: nothing of this shop stays on the page. */
  forget() {
    this.producers = null;
    this.render();
    this.search.value = "";
    this.close();
    this.sayKey(this.status, null);
    this.sayKey(this.errorEl, null);
    this.sayKey(this.okEl, null);
    this.closeForm();
  }

  get list() {
    return this.producers ?? [];
  }

  render() {
    const focusedRow = this.listEl.contains(document.activeElement)
      ? document.activeElement.closest("li") : null;
    const at = focusedRow ? [...this.listEl.children].indexOf(focusedRow) : -1;
    this.listEl.replaceChildren(...this.list.map((p) => this.row(p)));
    this.emptyEl.hidden = this.producers === null || this.list.length > 0;
    if (!focusedRow) return;
    // The same producer's button; if it went (removed here or on another screen), the one
    // that took its place, else the search: the focus never falls to the page's top.
    const buttons = [...this.listEl.querySelectorAll("li button")];
    const same = this.listEl.querySelector(
      `[data-producer-id="${CSS.escape(focusedRow.dataset.producerId)}"] button`);
    (same ?? buttons[Math.min(at, buttons.length - 1)] ?? this.search).focus();
  }

  row(p) {
    const li = el("li", "own-producer");
    li.dataset.producerId = p.id;
    const info = el("div", "own-producer-info");
    info.append(userText("bdi", "own-producer-name", p.name),
      userText("span", "own-producer-where", whereText(p)));
    const remove = el("button", "danger own-producer-remove");
    remove.type = "button";
    const label = (text, aria) => {
      remove.textContent = t(text);
      remove.setAttribute("aria-label", t(aria, { name: p.name }));
    };
    label("prod_remove", "prod_remove_label");
    // Two taps, as withdrawing a post: a pocket tap should not unlink the mill.
    confirmTwice(remove, {
      arm: () => label("prod_remove_confirm", "prod_remove_confirm_label"),
      disarm: () => label("prod_remove", "prod_remove_label"),
      act: () => this.unlink(p, li, remove),
    });
    li.append(info, remove);
    return li;
  }

  async unlink(p, li, button) {
    const moveFocus = li.contains(document.activeElement); // before disabling blurs it
    button.disabled = true;
    const at = this.list.findIndex((q) => q.id === p.id);
    const result = await this.api("DELETE", this.shopPath(`/producers/${encodeURIComponent(p.id)}`));
    if (this.sessionLost(result)) return;
    // 404: unlinked already (another device): what the shopkeeper wanted.
    if (!result.ok && result.error.code !== "unknown_producer") {
      button.disabled = false;
      this.say(this.errorEl, () => producerError(result.error));
      return;
    }
    this.sayKey(this.errorEl, null);
    this.sayKey(this.okEl, "prod_removed", { name: p.name });
    this.announce(t("prod_removed", { name: p.name }));
    // Gone on the server: gone here (the socket's push says the same a moment later).
    this.apply(this.list.filter((q) => q.id !== p.id));
    if (moveFocus) {
      // On the producer that took its place, else the search.
      const rows = this.listEl.querySelectorAll("button");
      (rows[Math.min(at, rows.length - 1)] ?? this.search).focus();
    }
  }

  /** Link a producer: an existing one found by the search, or a new one (same request:
   * the server answers the existing id for the same name within 2 km). */
  async link(body, button, errorEl) {
    const before = new Set(this.list.map((p) => p.id));
    if (button) button.disabled = true;
    const result = await this.api("POST", this.shopPath("/producers"), body);
    if (button) button.disabled = false;
    if (this.sessionLost(result)) return null;
    if (!result.ok) {
      this.say(errorEl, () => producerError(result.error));
      return null;
    }
    this.sayKey(errorEl, null);
    const id = result.data.id;
    await this.load();
    const linked = this.list.find((p) => p.id === id);
    const name = linked?.name ?? body.name;
    let key = "prod_linked";
    if (before.has(id)) key = "prod_already";
    // Folded the same as one already known nearby: that one is what the shop now names.
    else if (linked && linked.name !== body.name) key = "prod_linked_existing";
    this.sayKey(this.okEl, key, { name });
    this.announce(t(key, { name }));
    return id;
  }

  // --- Search as you type (WAI-ARIA combobox with a listbox popup) ---------------------

  typed() {
    clearTimeout(this.searchTimer);
    this.sayKey(this.okEl, null);
    const q = this.search.value.trim();
    if (!q) {
      this.searchSeq += 1; // an answer on its way is for a query no longer there
      this.matches = [];
      this.close();
      this.sayKey(this.status, null);
      return;
    }
    this.searchTimer = setTimeout(() => this.find(q), SEARCH_DEBOUNCE_MS);
  }

  async find(q) {
    const shop = this.shop();
    if (!shop) return;
    const seq = ++this.searchSeq;
    const params = new URLSearchParams({ lat: String(shop.lat), lon: String(shop.lon),
      q: points(q).slice(0, SEARCH_Q_MAX).join("") });
    const result = await this.api("GET", `/api/v1/producers?${params}`);
    if (seq !== this.searchSeq) return; // a later keystroke asked again
    if (!result.ok) {
      this.matches = [];
      this.close();
      this.say(this.status, () => producerError(result.error, "prod_search"));
      return;
    }
    const found = (Array.isArray(result.data?.producers) ? result.data.producers : [])
      .filter((p) => Number.isFinite(p?.lat) && Number.isFinite(p?.lon))
      .map((p) => ({ ...shown(p), lat: p.lat, lon: p.lon }))
      .filter((p) => p.id);
    this.matches = [...found, { isNew: true, name: q }];
    this.active = -1;
    this.showMatches();
    this.say(this.status, found.length ? () => plural("prod_search_found", found.length)
      : () => t("prod_search_none", { q }));
  }

  showMatches() {
    const linked = new Set(this.list.map((p) => p.id));
    this.results.replaceChildren(...this.matches.map((m, index) => {
      const li = el("li", m.isNew ? "prod-option prod-option-new" : "prod-option");
      li.id = `prod-option-${index}`;
      li.setAttribute("role", "option");
      li.setAttribute("aria-selected", String(index === this.active));
      if (m.isNew) {
        li.append(el("span", "prod-option-name", t("prod_option_new", { name: m.name })));
      } else {
        li.append(userText("bdi", "prod-option-name", m.name),
          userText("span", "prod-option-where", whereText(m)));
        if (linked.has(m.id)) {
          li.append(el("span", "prod-option-mine", t("prod_option_mine")));
          li.setAttribute("aria-disabled", "true");
        }
      }
      li.addEventListener("click", () => this.choose(index));
      return li;
    }));
    this.results.hidden = !this.matches.length;
    this.search.setAttribute("aria-expanded", String(!this.results.hidden));
    if (this.active >= 0) {
      this.search.setAttribute("aria-activedescendant", `prod-option-${this.active}`);
      this.results.children[this.active]?.scrollIntoView({ block: "nearest" });
    } else {
      this.search.removeAttribute("aria-activedescendant");
    }
  }

  close() {
    this.active = -1;
    this.results.hidden = true;
    this.search.setAttribute("aria-expanded", "false");
    this.search.removeAttribute("aria-activedescendant");
  }

  key(event) {
    const open = !this.results.hidden;
    const n = this.matches.length;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      if (!n) return;
      event.preventDefault();
      const step = event.key === "ArrowDown" ? 1 : -1;
      this.active = !open ? (step > 0 ? 0 : n - 1) : (this.active + step + n) % n;
      this.showMatches();
    } else if (event.key === "Enter") {
      if (open && this.active >= 0) {
        event.preventDefault();
        this.choose(this.active);
      } else if (this.search.value.trim()) {
        event.preventDefault(); // look now, without waiting for the pause
        clearTimeout(this.searchTimer);
        this.find(this.search.value.trim());
      }
    } else if (event.key === "Escape") {
      if (open) {
        event.preventDefault();
        this.close();
      } else if (this.search.value) {
        event.preventDefault();
        this.search.value = "";
        this.typed();
      }
    }
  }

  async choose(index) {
    const m = this.matches[index];
    if (!m) return;
    if (m.isNew) {
      this.close();
      this.openForm(m.name);
      return;
    }
    if (this.list.some((p) => p.id === m.id)) {
      this.sayKey(this.okEl, "prod_already", { name: m.name });
      this.announce(t("prod_already", { name: m.name }));
      this.close();
      return;
    }
    this.close();
    const id = await this.link({ name: m.name, place: m.place, lat: m.lat, lon: m.lon }, null,
      this.errorEl);
    if (id) {
      this.search.value = "";
      this.matches = [];
      this.sayKey(this.status, null);
    }
  }

  // --- A new producer ------------------------------------------------------------------

  openForm(name) {
    const shop = this.shop();
    if (!shop) return;
    this.form.hidden = false;
    this.newButton.setAttribute("aria-expanded", "true");
    // What was searched is most often the name (it found nothing).
    if (name) this.nameInput.value = points(name).slice(0, NAME_MAX).join("");
    this.count();
    this.sayKey(this.formError, null);
    this.showDistance();
    this.place.open(shop);
    (name ? this.placeInput : this.nameInput).focus();
  }

  /** Each field cut to NAME_MAX code points, and its "12/60" shown. */
  count() {
    for (const [input, counter] of this.counters) {
      clamp(input, NAME_MAX);
      counter.textContent = `${points(input.value).length}/${NAME_MAX}`;
    }
  }

  closeForm() {
    this.form.hidden = true;
    this.newButton.setAttribute("aria-expanded", "false");
    this.form.reset();
    this.count();
    this.place.set(null);
    this.sayKey(this.formError, null);
    this.showDistance();
  }

  showDistance() {
    const m = this.place.distanceM();
    this.sayKey(this.distanceEl, m === null ? null : "prod_distance", { km: formatKm(m / 1000) });
  }

  async create() {
    const name = this.nameInput.value.trim();
    const place = this.placeInput.value.trim();
    const point = this.place.value();
    let problem = null;
    if (!name) problem = ["prod_need_name", this.nameInput];
    else if (!place) problem = ["prod_need_place", this.placeInput];
    else if (!point) problem = ["prod_need_position", this.place.latInput];
    else if (point.error) problem = [point.error, point.focus];
    if (problem) {
      this.sayKey(this.formError, problem[0]);
      problem[1].focus();
      return;
    }
    const id = await this.link({ name, place, lat: point.lat, lon: point.lon }, this.addButton,
      this.formError);
    if (!id) return;
    this.closeForm();
    this.newButton.focus();
  }

  // --- Notes that follow the language -------------------------------------------------

  /** Say what `make` writes in `node` (null: nothing), again after a language switch.
   * The search's status stays in the page while empty: a live region that appears is
   * not always read out. */
  say(node, make) {
    if (make) this.notes.set(node, make);
    else this.notes.delete(node);
    const text = make ? make() : "";
    if (node !== this.status) node.hidden = !text;
    node.textContent = text;
  }

  sayKey(node, key, vars = {}) {
    this.say(node, key ? () => t(key, vars) : null);
  }

  relabel() {
    for (const [node, make] of [...this.notes]) this.say(node, make);
    this.render();
    if (!this.results.hidden) this.showMatches();
    this.place.relabel();
  }
}
