// Live posts that land out of view (below the fold, or above when the passer-by has
// scrolled down): a pill says how many ("3 new nearby") and scrolls to the nearest one
// when tapped; a post counts as seen once half its card has been on screen. The pill sits
// in a polite live region, so a screen reader hears the count change without losing its
// place.

import { plural } from "./i18n.js";

const SEEN_RATIO = 0.5;

export class FreshPosts {
  /**
   * @param {HTMLButtonElement} pill
   * @param {HTMLElement} label  the pill's text
   * @param {(id: string) => HTMLElement | undefined} cardOf  the card shown for a post now
   */
  constructor(pill, label, cardOf) {
    this.pill = pill;
    this.label = label;
    this.cardOf = cardOf;
    this.watched = new Map(); // post id -> the card element observed (null: not yet)
    this.unseen = new Set(); // ids whose card the observer last reported out of view
    this.observer = new IntersectionObserver((entries) => this.#seen(entries),
      { threshold: [0, SEEN_RATIO] });
    this.frame = 0;
    pill.addEventListener("click", () => this.#goToNearest());
    addEventListener("scroll", () => this.#later(), { passive: true });
    addEventListener("resize", () => this.#later(), { passive: true });
  }

  /** A post that arrived live: watched from its next sync. */
  add(id) {
    if (!this.watched.has(id)) this.watched.set(id, null);
  }

  forget(id) {
    const el = this.watched.get(id);
    if (el) this.observer.unobserve(el);
    this.watched.delete(id);
    this.unseen.delete(id);
  }

  /** After any change to the cards: follow rebuilt cards, drop removed ones, recount. */
  sync() {
    for (const [id, el] of this.watched) {
      const now = this.cardOf(id);
      if (!now) {
        this.forget(id);
      } else if (now !== el) {
        if (el) this.observer.unobserve(el);
        this.watched.set(id, now);
        this.observer.observe(now); // reports at once whether it is in view
      }
    }
    this.#render();
  }

  #seen(entries) {
    for (const entry of entries) {
      const id = entry.target.dataset.postId;
      if (this.watched.get(id) !== entry.target) continue; // an old card of the post
      if (entry.isIntersecting && entry.intersectionRatio >= SEEN_RATIO) {
        this.forget(id);
      } else {
        this.unseen.add(id);
      }
    }
    this.#render();
  }

  /** The unseen cards a passer-by could see now (not hidden by a filter). */
  #shown() {
    return [...this.unseen].map((id) => this.watched.get(id)).filter((el) => el && !el.hidden);
  }

  #nearest() {
    let best = null;
    let bestGap = Infinity;
    for (const el of this.#shown()) {
      const box = el.getBoundingClientRect();
      const above = box.bottom <= 0 || box.top < 0;
      const gap = above ? -box.top : box.top - innerHeight;
      if (gap < bestGap) {
        bestGap = gap;
        best = { el, above };
      }
    }
    return best;
  }

  #later() {
    if (this.pill.hidden || this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.#render();
    });
  }

  #render() {
    const count = this.#shown().length;
    this.pill.hidden = count === 0;
    if (!count) return;
    const text = plural("new_nearby", count);
    if (this.label.textContent !== text) this.label.textContent = text;
    this.pill.classList.toggle("is-above", Boolean(this.#nearest()?.above));
  }

  /** The language changed: say the count in the new one. */
  relabel() {
    this.#render();
  }

  #goToNearest() {
    const target = this.#nearest();
    if (!target) return;
    const still = matchMedia("(prefers-reduced-motion: reduce)").matches;
    target.el.scrollIntoView({ block: "center", behavior: still ? "auto" : "smooth" });
    target.el.focus({ preventScroll: true }); // keyboard and screen reader land on it too
  }
}
