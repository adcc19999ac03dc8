// Photos in the shopkeeper console (issue 15): pick or snap up to the server's limit,
// each uploaded at once with its progress (XMLHttpRequest: fetch reports no upload
// progress), shown from the local file straight away and from the served narrowest
// variant once the server has it, reordered or removed before the post goes out.
// The post then names them by `media_ids`, in the tray's order.

import { el } from "./cards.js";
import { errorKey, t } from "./i18n.js";

/** The server's photo limits (GET /api/v1/config): one source for the count and the size;
 * null until known. */
let limits = null;
let limitsLoading = null;
const awaitingLimits = new Set(); // trays drawn before the limits were known

/** Ask once; a failure is asked again on the next call (a console that started offline). */
export function loadPhotoLimits() {
  limitsLoading ??= fetch("/api/v1/config", { headers: { Accept: "application/json" } })
    .then((response) => (response.ok ? response.json() : Promise.reject(response.status)))
    .then((config) => {
      const perPost = Number(config.media_per_post_max);
      const maxBytes = Number(config.media_upload_max_bytes);
      if (!(perPost > 0 && maxBytes > 0)) return null; // an older server
      // A server that does not say its pixel cap: only the byte limit makes a photo shrink.
      const pixelsMax = Number(config.media_pixels_max) > 0 ? Number(config.media_pixels_max) : 0;
      limits = { perPost, maxBytes, pixelsMax };
      for (const tray of awaitingLimits) tray.render(); // "add a photo" usable, "0/4"
      awaitingLimits.clear();
      return limits;
    })
    .catch(() => {
      limitsLoading = null;
      return null;
    });
  return limitsLoading;
}

/** The narrowest variant of a delivered post's photo, or of an upload's 201 (the same
 * `url` and `variants`). */
export function smallestVariant(media) {
  const variants = Array.isArray(media?.variants) && media.variants.length ? media.variants : [media];
  return variants[0];
}

/** Media ids of a delivered post, in order. */
export const mediaIds = (post) => (Array.isArray(post?.media) ? post.media.map((m) => String(m.id)) : []);

/** An upload's refusal, from the server's code, else from its status (a proxy's bare 413). */
function uploadError(status, body) {
  if (typeof body?.error?.code === "string") return body.error.code;
  if (status === 413) return "media_too_large";
  if (status === 429) return "rate_limited";
  if (status === 503) return "redis_unavailable";
  return "http_error";
}

// "rate_limited" says "too many posts, wait a minute": photos are counted per hour
// (photo_err_rate_limited).
const errorMessage = (code) => t(errorKey({ code }, "photo"));

// A phone's 50-200 MP photo (12-25 MB) is shrunk here before its upload, so that it fits
// the server's limits: its long side to this (twice the widest served variant, room for
// a later wider one), re-encoded as a JPEG. The canvas keeps no EXIF, GPS included.
const SHRINK_LONG_SIDES = [3200, 2400, 1600]; // tried in turn until the file fits
const SHRINK_QUALITY = 0.9;

/** The photo's pixel count as the browser reads it (0 if it cannot): its header only. */
function pixelsOf(url) {
  return new Promise((resolve) => {
    const img = new Image();
    img.addEventListener("load", () => resolve(img.naturalWidth * img.naturalHeight));
    img.addEventListener("error", () => resolve(0));
    img.src = url;
  });
}

async function encodeJpeg(bitmap, width, height) {
  const canvas = typeof OffscreenCanvas === "function" ? new OffscreenCanvas(width, height)
    : Object.assign(document.createElement("canvas"), { width, height });
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#fff"; // a transparent PNG's background, as a JPEG has none
  ctx.fillRect(0, 0, width, height);
  ctx.imageSmoothingQuality = "high";
  ctx.drawImage(bitmap, 0, 0, width, height);
  if (canvas.convertToBlob) return canvas.convertToBlob({ type: "image/jpeg", quality: SHRINK_QUALITY });
  return new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", SHRINK_QUALITY));
}

/** The photo made small enough, upright (its EXIF orientation applied), or null when the
 * browser cannot decode it (HEIC in Chromium) or cannot make it fit. */
async function shrink(file, maxBytes) {
  let bitmap;
  try {
    bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
  } catch {
    return null;
  }
  try {
    for (const side of SHRINK_LONG_SIDES) {
      const scale = Math.min(1, side / Math.max(bitmap.width, bitmap.height));
      const blob = await encodeJpeg(bitmap, Math.max(1, Math.round(bitmap.width * scale)),
        Math.max(1, Math.round(bitmap.height * scale)));
      if (blob && blob.size <= maxBytes) return blob;
    }
    return null;
  } catch {
    return null;
  } finally {
    bitmap.close();
  }
}

let trays = 0; // ids of each tray's inputs (the new post's, and each open edit form's)

/**
 * The photos of one post being written or edited.
 * @param {{uploadUrl: () => string, onChange: () => void, sessionLost: (r: {status: number}) => boolean,
 *          announce: (text: string) => void}} opts
 */
export class PhotoTray {
  constructor({ uploadUrl, onChange, sessionLost, announce }) {
    this.uploadUrl = uploadUrl;
    this.onChange = onChange;
    this.sessionLost = sessionLost;
    this.announce = announce;
    this.items = [];
    this.nextKey = 0;
    const prefix = `photos-${++trays}`;

    this.el = el("fieldset", "photos");
    this.legend = el("legend");
    // "2/4", as the title's counter: the same room whether the limit is known yet or not
    // (the console may show before /api/v1/config answers; nothing must move then).
    this.counter = el("span", "counter photo-counter");
    this.help = el("p", "hint photos-help");
    this.help.id = `${prefix}-help`;
    this.el.setAttribute("aria-describedby", this.help.id);

    // Two ways in, because `capture` opens the camera alone, with no way to the gallery:
    // "take a photo" goes straight to the back camera (one tap at the counter), "choose"
    // opens the phone's own picker (gallery, files, and the camera again), several at once.
    this.cameraInput = this.fileInput(`${prefix}-camera`, false);
    this.cameraInput.setAttribute("capture", "environment");
    this.galleryInput = this.fileInput(`${prefix}-gallery`, true);
    this.cameraButton = el("button", "secondary photo-camera");
    this.galleryButton = el("button", "secondary photo-gallery");
    for (const [button, input] of [[this.cameraButton, this.cameraInput],
      [this.galleryButton, this.galleryInput]]) {
      button.type = "button";
      button.addEventListener("click", () => input.click());
    }
    const add = el("div", "photo-add");
    add.append(this.cameraButton, this.galleryButton, this.cameraInput, this.galleryInput);

    this.list = el("ul", "photo-list");
    this.list.hidden = true;
    this.note = el("p", "form-error photo-note");
    this.note.setAttribute("role", "alert");
    this.note.hidden = true;
    this.noteKey = null;
    this.el.append(this.legend, this.help, add, this.note, this.list);
    this.relabel();
    if (!limits) awaitingLimits.add(this);
  }

  fileInput(id, multiple) {
    const input = el("input", "photo-input");
    input.type = "file";
    input.id = id;
    input.accept = "image/*";
    input.multiple = multiple;
    input.hidden = true;
    input.tabIndex = -1; // its button is the control
    input.addEventListener("change", () => {
      this.add([...input.files]);
      input.value = ""; // the same photo can be picked again after a removal
    });
    return input;
  }

  /** Ids of the uploaded photos, in order (those still uploading or refused left out). */
  ids() {
    return this.items.filter((item) => item.id && item.status === "done").map((item) => item.id);
  }

  busy() {
    return this.items.some((item) => item.status === "uploading" || item.status === "shrinking");
  }

  /** Photos that go with the post (or will, once up); refused ones do not count. */
  counted() {
    return this.items.filter((item) => item.status !== "error").length;
  }

  /** Why the post cannot go out yet, as an i18n key, or null: uploads under way, or a
   * refused photo still here (sent without it, the shopkeeper would be surprised). */
  blocker() {
    if (this.busy()) return "photos_wait";
    if (this.items.some((item) => item.status === "error")) return "photos_refused_block";
    return null;
  }

  /** A delivered post's photos, to edit them. */
  load(media) {
    this.clear();
    for (const photo of Array.isArray(media) ? media : []) {
      const small = smallestVariant(photo);
      this.items.push({ key: this.nextKey++, id: String(photo.id), status: "done",
        src: String(small.url), width: Number(photo.width), height: Number(photo.height) });
    }
    this.render();
  }

  /** Forget every photo: uploads under way are abandoned, local previews released. */
  clear() {
    for (const item of this.items) this.release(item);
    this.items = [];
    this.say(null);
    this.render();
  }

  release(item) {
    item.xhr?.abort();
    item.xhr = null;
    if (item.localUrl) URL.revokeObjectURL(item.localUrl);
    item.localUrl = null;
  }

  add(files) {
    if (!files.length) return;
    const max = limits?.perPost ?? 0;
    const room = Math.max(0, max - this.counted());
    this.say(files.length > room ? "photos_too_many" : null, { n: max });
    for (const file of files.slice(0, room)) {
      const item = { key: this.nextKey++, id: null, file, body: file, status: "uploading",
        loaded: 0, total: file.size, error: null, xhr: null, width: 0, height: 0 };
      item.localUrl = URL.createObjectURL(file);
      item.src = item.localUrl;
      this.items.push(item);
      this.prepare(item);
    }
    this.render();
  }

  /** Shrink a photo too heavy or too large for the server, then upload it. */
  async prepare(item) {
    const { file } = item;
    const tooHeavy = file.size > limits.maxBytes;
    const tooLarge = !tooHeavy && limits.pixelsMax > 0
      && (await pixelsOf(item.localUrl)) > limits.pixelsMax;
    if (!this.items.includes(item)) return; // removed meanwhile
    if (!tooHeavy && !tooLarge) {
      this.upload(item);
      return;
    }
    item.status = "shrinking";
    this.showState(item);
    this.onChange();
    const small = await shrink(file, limits.maxBytes);
    if (!this.items.includes(item)) return;
    if (small) {
      item.body = small;
      item.total = small.size;
    }
    // Not shrunk and over the byte limit: refused here, before a useless upload, with
    // the server's own words. Over the pixel cap only: the server says what it takes.
    if (!small && tooHeavy) this.fail(item, "media_too_large", false);
    else this.upload(item);
  }

  upload(item) {
    const xhr = new XMLHttpRequest();
    item.xhr = xhr;
    item.status = "uploading";
    item.loaded = 0;
    item.error = null;
    xhr.open("POST", this.uploadUrl());
    // The file's own type, HEIC included: the server sniffs the bytes and says what it takes.
    xhr.setRequestHeader("Content-Type", item.body.type || "application/octet-stream");
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.addEventListener("progress", (event) => {
      if (item.xhr !== xhr) return;
      item.loaded = event.loaded;
      if (event.lengthComputable) item.total = event.total;
      this.showState(item);
    });
    xhr.addEventListener("load", () => {
      if (item.xhr !== xhr) return;
      item.xhr = null;
      let body = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        body = null;
      }
      if (xhr.status === 201 && typeof body?.id === "string") {
        this.uploaded(item, body);
      } else if (!this.sessionLost({ status: xhr.status })) {
        // A refusal about the file itself cannot go better the second time.
        const code = uploadError(xhr.status, body);
        this.fail(item, code, xhr.status >= 500 || xhr.status === 429 || code === "http_error");
      }
    });
    xhr.addEventListener("error", () => {
      if (item.xhr !== xhr) return;
      item.xhr = null;
      this.fail(item, "network", true);
    });
    xhr.send(item.body);
  }

  uploaded(item, body) {
    // The same photo picked twice is the same media (ids are content-addressed), and a
    // post names each at most once: the second goes.
    if (this.items.some((other) => other !== item && other.id === body.id)) {
      this.release(item);
      this.items.splice(this.items.indexOf(item), 1);
      this.render();
      this.say("photo_duplicate");
      return;
    }
    item.id = body.id;
    // As a delivered post carries it: the preview draws it as the street's card does.
    item.media = { id: body.id, url: body.url, width: body.width, height: body.height,
      variants: body.variants };
    item.width = Number(body.width);
    item.height = Number(body.height);
    item.status = "done";
    // The served variant replaces the local file once it has loaded (no blank between);
    // a server whose 201 names no url leaves the local file shown.
    const served = smallestVariant(body)?.url;
    if (typeof served === "string" && served) {
      const img = new Image();
      img.addEventListener("load", () => {
        if (!this.items.includes(item)) return;
        item.src = served;
        if (item.localUrl) URL.revokeObjectURL(item.localUrl);
        item.localUrl = null;
        this.showState(item);
        this.onChange();
      });
      img.src = served;
    }
    this.showState(item);
    this.onChange();
  }

  fail(item, code, retryable) {
    item.status = "error";
    item.error = code;
    item.retryable = retryable;
    this.showCount();
  }

  remove(item) {
    const at = this.items.indexOf(item);
    if (at < 0) return;
    this.release(item);
    this.items.splice(at, 1);
    this.say(null);
    this.render();
    this.announce(t("photo_removed"));
    // Focus stays in the tray: on the photo that took its place, else on "choose".
    const next = this.items[Math.min(at, this.items.length - 1)];
    (next?.li.querySelector(".photo-remove") ?? this.galleryButton).focus();
  }

  move(item, step) {
    const at = this.items.indexOf(item);
    const to = at + step;
    if (at < 0 || to < 0 || to >= this.items.length) return;
    this.items.splice(at, 1);
    this.items.splice(to, 0, item);
    this.render();
    this.announce(t("photo_moved", { n: to + 1 }));
    // The same button keeps the focus unless the photo reached that end of the row.
    const again = item.li.querySelector(step < 0 ? ".photo-left" : ".photo-right");
    (again.disabled ? item.li.querySelector(step < 0 ? ".photo-right" : ".photo-left") : again)
      ?.focus();
  }

  /** Rebuild the list in order (each photo's own <li> moves with it). */
  render() {
    for (const item of this.items) item.li ??= this.makeItem(item);
    this.list.replaceChildren(...this.items.map((item) => item.li));
    this.list.hidden = !this.items.length;
    this.showCount();
  }

  /** The counter, "add" and each photo's state; the post's form follows. Refused photos
   * count for nothing: a refusal, or a retry, changes the room left. */
  showCount() {
    this.items.forEach((item) => this.showState(item));
    const full = this.counted() >= (limits?.perPost ?? 0);
    this.counter.textContent = limits ? `${this.counted()}/${limits.perPost}` : "";
    this.cameraButton.disabled = full;
    this.galleryButton.disabled = full;
    this.onChange();
  }

  makeItem(item) {
    const li = el("li", "photo-item");
    li.dataset.key = String(item.key);
    // The card preview shows the photo with its alt text; here it would only repeat it.
    const thumb = el("img", "photo-thumb");
    thumb.alt = "";
    thumb.width = 120;
    thumb.height = 120;
    // A file the browser cannot show (a refused one, a HEIC before the server's copy):
    // an empty square, not a broken-image icon.
    thumb.addEventListener("error", () => {
      item.broken = item.src;
      thumb.removeAttribute("src");
    });
    const progress = el("progress", "photo-progress");
    progress.max = 1;
    const state = el("p", "photo-state");
    const retry = el("button", "mini photo-retry");
    retry.type = "button";
    retry.addEventListener("click", () => {
      this.upload(item);
      this.showCount();
    });
    const actions = el("div", "photo-actions");
    const button = (cls, glyph, onClick) => {
      const b = el("button", `icon-button photo-button ${cls}`);
      b.type = "button";
      b.append(el("span", null, glyph));
      b.firstChild.setAttribute("aria-hidden", "true");
      b.addEventListener("click", onClick);
      actions.append(b);
      return b;
    };
    button("photo-left", "←", () => this.move(item, -1));
    button("photo-right", "→", () => this.move(item, 1));
    button("photo-remove", "✕", () => this.remove(item));
    li.append(thumb, progress, state, retry, actions);
    return li;
  }

  /** One photo's picture, progress, words and buttons, as it is now. */
  showState(item) {
    const li = item.li;
    if (!li) return;
    const n = this.items.indexOf(item) + 1;
    const [thumb, progress, state, retry] = li.children;
    if (item.broken !== item.src && thumb.getAttribute("src") !== item.src) thumb.src = item.src;
    li.dataset.status = item.status;
    li.dataset.mediaId = item.id ?? "";
    const uploading = item.status === "uploading";
    const shrinking = item.status === "shrinking";
    progress.hidden = !uploading && !shrinking;
    progress.setAttribute("aria-label", t("photo_progress_label", { n }));
    if (uploading) progress.value = item.total ? Math.min(1, item.loaded / item.total) : 0;
    else progress.removeAttribute("value"); // shrinking: under way, no measure of it
    let text = t("photo_ready");
    if (item.status === "error") text = errorMessage(item.error);
    else if (shrinking) text = t("photo_shrinking");
    else if (uploading) {
      // All sent: the server is turning it into its widths.
      text = item.total && item.loaded >= item.total ? t("photo_processing")
        : t("photo_uploading", { pct: Math.floor((100 * item.loaded) / (item.total || 1)) });
    }
    if (state.textContent !== text) state.textContent = text;
    state.classList.toggle("is-error", item.status === "error");
    // A retried photo counts again: not while the post has all the photos it can take.
    retry.hidden = !(item.status === "error" && item.retryable)
      || this.counted() >= (limits?.perPost ?? 0);
    retry.textContent = t("photo_retry");
    retry.setAttribute("aria-label", t("photo_retry_label", { n }));
    const [left, right, remove] = li.querySelector(".photo-actions").children;
    left.disabled = n === 1;
    right.disabled = n === this.items.length;
    left.setAttribute("aria-label", t("photo_left_label", { n }));
    right.setAttribute("aria-label", t("photo_right_label", { n }));
    remove.setAttribute("aria-label", t("photo_remove_label", { n }));
    for (const b of [left, right, remove]) b.title = b.getAttribute("aria-label");
  }

  say(key, vars = {}) {
    this.noteKey = key ? [key, vars] : null;
    this.note.hidden = !key;
    this.note.textContent = key ? t(key, vars) : "";
  }

  relabel() {
    this.legend.replaceChildren(t("photos_legend"), " ", el("span", "optional", t("optional")),
      this.counter);
    this.help.textContent = t("photos_help");
    this.cameraButton.textContent = t("photo_camera");
    this.galleryButton.textContent = t("photo_gallery");
    if (this.noteKey) this.say(...this.noteKey);
    this.items.forEach((item) => this.showState(item));
  }

  /** The photos as a delivered post's `media`, once every one kept is uploaded (the card
   * preview then shows them as the street will); else null. */
  media() {
    const shown = this.items.filter((item) => item.status !== "error");
    if (!shown.length || !shown.every((item) => item.media)) return null;
    return shown.map((item) => item.media);
  }

  /**
   * The photos as the card preview shows them until all are uploaded: the first large,
   * the others small after it; refused ones left out. Alt text from the title, numbered
   * after the first.
   */
  previewPhotos(title) {
    const shown = this.items.filter((item) => item.status !== "error");
    if (!shown.length) return null;
    const box = el("div", "preview-photos");
    shown.forEach((item, index) => {
      if (!item.previewImg) {
        item.previewImg = el("img", "preview-photo");
        item.previewImg.addEventListener("error", () => {
          item.broken = item.src;
          item.previewImg.removeAttribute("src");
        });
      }
      const img = item.previewImg;
      if (item.broken !== item.src && img.getAttribute("src") !== item.src) img.src = item.src;
      img.alt = index === 0 ? title : t("photo_alt_more", { title, n: index + 1 });
      // Known once uploaded; until then a square keeps the room.
      img.width = item.width || 400;
      img.height = item.height || 400;
      img.dataset.key = String(item.key);
      box.append(img);
    });
    return box;
  }
}
