// /?post=<id>: one post on its own, as an alert's link opens it (DESIGN.md 9, "Alerts for
// followed shops") when the post is not among the feed's cards (a shop followed across
// town, a radius too small): its card, with its shop and distance, and the way back to
// the feed. A post that has ended says so in words, and the feed is one tap away.
//
// Privacy: GET /api/v1/posts/{id} is public and carries no position; the distance is
// worked out here.

import { buildCard, el, isPost, userText } from "./cards.js";
import { haversineM } from "./geo.js";
import { t } from "./i18n.js";

export const POST_ID = /^p_[a-z0-9]{16}$/;

export class PostView {
  /**
   * @param {HTMLElement} root  the view's container (hidden while the feed shows)
   * @param {{position: () => ({lat: number, lon: number} | null), onBack: () => void,
   *          cardOptions: (post: object) => object}} deps
   *   cardOptions: what the feed's card of this post would have (follow, alert, hold)
   */
  constructor(root, { position, onBack, cardOptions }) {
    this.root = root;
    this.position = position;
    this.onBack = onBack;
    this.cardOptions = cardOptions;
    this.id = null;
    this.post = null;
    this.card = null;
    this.state = "idle"; // loading | ready | gone | failed
    this.generation = 0;
    addEventListener("online", () => {
      if (this.state === "failed") this.show(this.id, true);
    });
  }

  get isOpen() {
    return this.id !== null;
  }

  get heading() {
    return this.root.querySelector("#post-view-heading");
  }

  /** Read post `id` and show it (again with `force`). */
  show(id, force = false) {
    if (id === this.id && !force) return;
    this.id = id;
    this.post = null;
    this.state = "loading";
    this.root.hidden = false;
    this.render();
    this.#load(++this.generation);
  }

  hide() {
    this.id = null;
    this.post = null;
    this.card = null;
    this.generation += 1;
    this.state = "idle";
    this.root.hidden = true;
    this.root.replaceChildren();
  }

  async #load(generation) {
    let answer;
    try {
      answer = await fetch(`/api/v1/posts/${encodeURIComponent(this.id)}`,
        { headers: { Accept: "application/json" } });
    } catch {
      answer = null; // offline
    }
    if (generation !== this.generation) return;
    if (answer?.status === 410 || answer?.status === 404) {
      this.state = "gone";
    } else if (answer?.ok) {
      const post = await answer.json().catch(() => null);
      if (generation !== this.generation) return;
      this.post = isPost(post) && post.id === this.id ? post : null;
      this.state = this.post ? "ready" : "failed";
    } else {
      this.state = "failed";
    }
    this.render();
  }

  /** A frame of the feed's socket: the post shown follows its edits and its end. */
  onFrame(frame) {
    if (!this.isOpen || !this.post) return;
    if (frame.type === "post" && frame.post?.id === this.id && isPost(frame.post)) {
      this.post = frame.post;
      this.render();
    } else if ((frame.type === "expired" || frame.type === "withdrawn") && frame.id === this.id) {
      this.#ended();
    }
  }

  tick(now) {
    if (this.state !== "ready") return;
    if (Date.parse(this.post.expires_at) <= now) this.#ended();
    else this.card?.tick(now);
  }

  #ended() {
    this.state = "gone";
    this.post = null;
    this.render();
  }

  render() {
    if (!this.isOpen) return;
    const active = document.activeElement;
    const focused = this.root.contains(active);
    // A control of the card made again (its star, "Alert me") keeps the focus.
    const control = focused && active.closest(".card") ?
      [...active.classList].map((c) => `.card .${c}`)[0] : null;
    const back = el("button", "post-view-back", t("post_view_back"));
    back.type = "button";
    back.addEventListener("click", () => this.onBack());
    const parts = [back, el("p", "post-view-kicker", t("post_view_kicker"))];
    this.card = null;
    if (this.state === "loading") {
      parts.push(this.#heading(t("post_view_loading")));
    } else if (this.state === "gone") {
      parts.push(this.#heading(t("post_view_gone")),
        el("p", "post-view-note", t("post_view_gone_more")));
    } else if (this.state === "failed") {
      const retry = el("button", "post-view-retry", t("post_view_retry"));
      retry.type = "button";
      retry.addEventListener("click", () => this.show(this.id, true));
      parts.push(this.#heading(t("post_view_failed")), retry);
    } else {
      const here = this.position();
      const dist = here ? haversineM(here.lat, here.lon, this.post.shop.lat, this.post.shop.lon)
        : 0;
      this.card = buildCard(this.post, dist, { idPrefix: "post-view-title-",
        hideDistance: !here, ...this.cardOptions(this.post) });
      parts.push(this.#heading(String(this.post.shop.name ?? ""), true), this.card.el);
    }
    this.root.replaceChildren(...parts);
    if (focused && !this.root.contains(document.activeElement)) {
      const again = control && this.root.querySelector(control);
      (again ?? this.heading)?.focus({ preventScroll: true });
    }
  }

  #heading(text, user = false) {
    const h = user ? userText("h2", "post-view-heading", text)
      : el("h2", "post-view-heading", text);
    h.id = "post-view-heading";
    h.tabIndex = -1; // the focus goes here when the view opens
    return h;
  }
}
