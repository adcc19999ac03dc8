// Shop profiles (for "open now · closes at 19:00"), fetched once per shop in view and
// kept until they may have changed: past the profile's next opening change, after an
// opening_change post from that shop, or after a while anyway.

const MAX_PARALLEL = 4;
const FRESH_MS = 15 * 60 * 1000; // hours edited in the console show up within this
const RETRY_MS = 60 * 1000;
const MAX_KEPT = 300;

export class ProfileCache {
  /** @param {(shopId: string) => void} onChange  a profile arrived or changed */
  constructor(onChange) {
    this.onChange = onChange;
    this.entries = new Map(); // shop id -> {profile, refreshAt}
    this.queue = [];
    this.queued = new Set();
    this.running = 0;
  }

  get(shopId) {
    return this.entries.get(shopId)?.profile ?? null;
  }

  /** Ask for the shop's profile if it is missing or due; cheap to call every second. */
  want(shopId, now = Date.now()) {
    if (!shopId || this.queued.has(shopId)) return;
    const entry = this.entries.get(shopId);
    if (entry && entry.refreshAt > now) return;
    this.queued.add(shopId);
    this.queue.push(shopId);
    this.#pump();
  }

  /** Something changed at the shop (an opening_change post): fetch it again. */
  invalidate(shopId) {
    const entry = this.entries.get(shopId);
    if (entry) entry.refreshAt = 0;
    this.want(shopId);
  }

  /** Forget shops no longer in view, so a long walk does not grow the cache. */
  prune(inView) {
    if (this.entries.size <= MAX_KEPT) return;
    for (const id of this.entries.keys()) {
      if (!inView.has(id)) this.entries.delete(id);
    }
  }

  #pump() {
    while (this.running < MAX_PARALLEL && this.queue.length) {
      const shopId = this.queue.shift();
      this.running += 1;
      this.#fetch(shopId).finally(() => {
        this.running -= 1;
        this.queued.delete(shopId);
        this.#pump();
      });
    }
  }

  async #fetch(shopId) {
    const now = Date.now();
    let profile = null;
    try {
      const response = await fetch(`/api/v1/shops/${encodeURIComponent(shopId)}`,
        { headers: { Accept: "application/json" } });
      if (response.ok) profile = await response.json();
    } catch {
      // offline: keep what we had, try again later
    }
    const old = this.entries.get(shopId);
    if (!profile || typeof profile !== "object") {
      this.entries.set(shopId, { profile: old?.profile ?? null, refreshAt: now + RETRY_MS });
      return;
    }
    let refreshAt = now + FRESH_MS;
    const change = Date.parse(profile.next_change?.at);
    if (!Number.isNaN(change)) refreshAt = Math.min(refreshAt, Math.max(now + 5000, change + 1000));
    this.entries.set(shopId, { profile, refreshAt });
    const before = old?.profile;
    if (!before || before.open_now !== profile.open_now ||
        before.next_change?.at !== profile.next_change?.at) {
      this.onChange(shopId);
    }
  }
}
