// The opening hours editor of the console: a weekly pattern (ranges per day) and dated
// exceptions, read from and written to GET/PUT /api/v1/shops/{id}/hours.
//
// Stable ids for tests and labels: #hours-mon-0-open, #hours-mon-0-close,
// #exception-0-date, #exception-0-closed, #exception-0-open, #exception-0-close,
// #exception-0-note.

import { el } from "./cards.js";
import { dateFormat, t } from "./i18n.js";

export const WEEKDAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const MAX_RANGES = 6;
const MAX_EXCEPTIONS = 366;

function dayName(day) {
  // 2024-01-01 was a Monday.
  const date = new Date(2024, 0, 1 + WEEKDAYS.indexOf(day));
  const name = dateFormat({ weekday: "long" }).format(date);
  return name.charAt(0).toUpperCase() + name.slice(1);
}

// <input type="time"> cannot hold 24:00; a close at 00:00 means the same (past midnight).
const toInput = (hhmm) => (hhmm === "24:00" ? "00:00" : String(hhmm ?? ""));

function timeInput(id, value, labelText) {
  const input = el("input", "time");
  input.type = "time";
  input.id = id;
  input.value = toInput(value);
  input.step = 300;
  const label = el("label", "visually-hidden", labelText);
  label.htmlFor = id;
  return [label, input];
}

export class HoursError extends Error {
  constructor(key, vars, focus) {
    super(key);
    this.key = key;
    this.vars = vars;
    this.focus = focus;
  }
}

export class HoursEditor {
  constructor(weeklyEl, exceptionsEl, addExceptionEl) {
    this.weeklyEl = weeklyEl;
    this.exceptionsEl = exceptionsEl;
    this.timezone = "Europe/Paris";
    this.weekly = Object.fromEntries(WEEKDAYS.map((d) => [d, []]));
    this.exceptions = [];
    // The week drawn at once, every day closed: the shop's hours arriving then fill
    // ranges in, instead of seven days appearing and pushing the page down (a layout shift).
    this.render();
    addExceptionEl.addEventListener("click", () => {
      if (this.exceptions.length >= MAX_EXCEPTIONS) return;
      this.#read();
      this.exceptions.push({ date: "", closed: true, open: "", close: "", note: "" });
      this.render();
      document.getElementById(`exception-${this.exceptions.length - 1}-date`)?.focus();
    });
  }

  /** @param {{timezone?: string, weekly?: object, exceptions?: object[]}} hours */
  load(hours) {
    this.timezone = hours?.timezone || "Europe/Paris";
    this.weekly = Object.fromEntries(WEEKDAYS.map((d) => [d,
      (hours?.weekly?.[d] ?? []).map((r) => ({ open: toInput(r.open), close: toInput(r.close) }))]));
    this.exceptions = (hours?.exceptions ?? []).map((e) => ({
      date: String(e.date ?? ""),
      closed: !e.ranges?.length,
      open: toInput(e.ranges?.[0]?.open ?? ""),
      close: toInput(e.ranges?.[0]?.close ?? ""),
      note: String(e.note ?? ""),
    }));
    this.render();
  }

  /** Keep what was typed before rebuilding the rows (add/remove, language switch). */
  #read() {
    for (const day of WEEKDAYS) {
      this.weekly[day] = this.weekly[day].map((range, i) => ({
        open: document.getElementById(`hours-${day}-${i}-open`)?.value ?? range.open,
        close: document.getElementById(`hours-${day}-${i}-close`)?.value ?? range.close,
      }));
    }
    this.exceptions = this.exceptions.map((e, i) => {
      const get = (field) => document.getElementById(`exception-${i}-${field}`);
      return {
        date: get("date")?.value ?? e.date,
        closed: get("closed")?.checked ?? e.closed,
        open: get("open")?.value ?? e.open,
        close: get("close")?.value ?? e.close,
        note: get("note")?.value ?? e.note,
      };
    });
  }

  render() {
    this.weeklyEl.replaceChildren(...WEEKDAYS.map((day, index) => this.#day(day, index)));
    const items = this.exceptions.map((e, i) => this.#exception(e, i));
    if (!items.length) items.push(el("li", "hint", t("no_exceptions")));
    this.exceptionsEl.replaceChildren(...items);
  }

  /** Re-label everything in the new language, keeping what was typed. */
  relabel() {
    this.#read();
    this.render();
  }

  #day(day, index) {
    const name = dayName(day);
    const box = el("fieldset", "day");
    box.dataset.day = day;
    box.append(el("legend", "day-name", name));
    const ranges = el("div", "ranges");
    this.weekly[day].forEach((range, i) => {
      const row = el("div", "range");
      row.append(...timeInput(`hours-${day}-${i}-open`, range.open, `${name} ${i + 1} — ${t("opens")}`),
        el("span", "range-dash", "–"),
        ...timeInput(`hours-${day}-${i}-close`, range.close, `${name} ${i + 1} — ${t("closes")}`));
      const remove = el("button", "icon-button", "×");
      remove.type = "button";
      remove.setAttribute("aria-label", t("remove_range_label", { n: i + 1, day: name }));
      remove.addEventListener("click", () => {
        this.#read();
        this.weekly[day].splice(i, 1);
        this.render();
        document.querySelector(`[data-day="${day}"] .add-range`)?.focus();
      });
      row.append(remove);
      ranges.append(row);
    });
    if (!this.weekly[day].length) ranges.append(el("span", "closed-day", t("closed_day")));
    box.append(ranges);
    const actions = el("div", "day-actions");
    const add = el("button", "mini add-range", t("add_range"));
    add.type = "button";
    add.id = `hours-${day}-add`;
    add.setAttribute("aria-label", t("add_range_label", { day: name }));
    add.disabled = this.weekly[day].length >= MAX_RANGES;
    add.addEventListener("click", () => {
      this.#read();
      const last = this.weekly[day].at(-1);
      // A second range usually starts after a lunch break.
      this.weekly[day].push(last ? { open: "14:00", close: "19:00" } : { open: "09:00", close: "19:00" });
      this.render();
      document.getElementById(`hours-${day}-${this.weekly[day].length - 1}-open`)?.focus();
    });
    actions.append(add);
    if (index > 0) {
      const copy = el("button", "mini", t("copy_prev"));
      copy.type = "button";
      copy.setAttribute("aria-label", t("copy_prev_label", { day: name }));
      copy.addEventListener("click", () => {
        this.#read();
        this.weekly[day] = this.weekly[WEEKDAYS[index - 1]].map((r) => ({ ...r }));
        this.render();
        document.querySelector(`[data-day="${day}"] .add-range`)?.focus();
      });
      actions.append(copy);
    }
    box.append(actions);
    return box;
  }

  #exception(e, i) {
    const item = el("li", "exception");
    const field = (name, labelText, input) => {
      const wrap = el("div", "field");
      input.id = `exception-${i}-${name}`;
      const label = el("label", null, labelText);
      label.htmlFor = input.id;
      wrap.append(label, input);
      return wrap;
    };
    const date = el("input");
    date.type = "date";
    date.value = e.date;
    const closed = el("input");
    closed.type = "checkbox";
    closed.id = `exception-${i}-closed`;
    closed.checked = e.closed;
    const closedLabel = el("label", "check");
    closedLabel.htmlFor = closed.id;
    closedLabel.append(closed, document.createTextNode(` ${t("exception_closed")}`));
    const times = el("div", "range exception-times");
    times.append(...timeInput(`exception-${i}-open`, e.open, `${t("exception_date")} ${i + 1} — ${t("opens")}`),
      el("span", "range-dash", "–"),
      ...timeInput(`exception-${i}-close`, e.close, `${t("exception_date")} ${i + 1} — ${t("closes")}`));
    times.hidden = e.closed;
    closed.addEventListener("change", () => {
      times.hidden = closed.checked;
    });
    const note = el("input");
    note.type = "text";
    note.maxLength = 80;
    note.value = e.note;
    const remove = el("button", "mini", t("remove"));
    remove.type = "button";
    remove.setAttribute("aria-label", t("remove_exception_label", { n: i + 1 }));
    remove.addEventListener("click", () => {
      this.#read();
      this.exceptions.splice(i, 1);
      this.render();
      document.getElementById("add-exception")?.focus();
    });
    const row = el("div", "field-row");
    row.append(field("date", t("exception_date"), date), closedLabel);
    item.append(row, times, field("note", t("exception_note"), note), remove);
    return item;
  }

  /** The body for PUT /hours, or a HoursError naming what is missing. */
  value() {
    this.#read();
    const weekly = {};
    for (const day of WEEKDAYS) {
      const ranges = [];
      this.weekly[day].forEach((r, i) => {
        if (!r.open || !r.close) {
          throw new HoursError("hours_incomplete", { day: dayName(day) },
            `hours-${day}-${i}-${r.open ? "close" : "open"}`);
        }
        ranges.push({ open: r.open, close: r.close });
      });
      weekly[day] = ranges;
    }
    const exceptions = this.exceptions.map((e, i) => {
      if (!e.date || (!e.closed && (!e.open || !e.close))) {
        throw new HoursError("exception_incomplete", { n: i + 1 },
          `exception-${i}-${e.date ? "open" : "date"}`);
      }
      return { date: e.date, ranges: e.closed ? [] : [{ open: e.open, close: e.close }],
        note: e.note.trim() };
    });
    return { timezone: this.timezone, weekly, exceptions };
  }
}
