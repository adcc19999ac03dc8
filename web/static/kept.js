// The last posts the passer-by page showed, kept on this device so that a reload with
// no network still shows them, each marked with when it was last seen live.
//
// Privacy by design: posts only, exactly as the server sent them to anyone in the area,
// with the time each was last seen. Never the passer-by's position, nor anything worked
// out from it (distances, the radius's centre).

const KEY = "streetfeed.posts";
const VERSION = 1;
const MAX_POSTS = 100;
// localStorage gives a site about 5 MB, shared with the rest of the page's settings.
const MAX_CHARS = 200_000;

const unexpired = (now) => (entry) => Date.parse(entry.post.expires_at) > now;

/** @returns {{post: object, seenAt: number}[]} the kept posts that have not expired */
export function loadKept(now = Date.now()) {
  try {
    const saved = JSON.parse(localStorage.getItem(KEY) ?? "null");
    if (saved?.v !== VERSION || !Array.isArray(saved.posts)) return [];
    return saved.posts
      .filter((e) => e && typeof e === "object" && e.post && typeof e.post === "object" &&
        Number.isFinite(e.seenAt))
      .filter(unexpired(now));
  } catch {
    return []; // storage disabled or damaged: nothing kept
  }
}

/**
 * Keep `entries` ({post, seenAt}), most wanted first: past the bounds, the last ones go.
 */
export function saveKept(entries, now = Date.now()) {
  let kept = entries.filter(unexpired(now)).slice(0, MAX_POSTS)
    .map(({ post, seenAt }) => ({ post, seenAt }));
  let text = JSON.stringify({ v: VERSION, posts: kept });
  while (text.length > MAX_CHARS && kept.length) {
    kept = kept.slice(0, Math.floor(kept.length / 2));
    text = JSON.stringify({ v: VERSION, posts: kept });
  }
  try {
    localStorage.setItem(KEY, text);
  } catch {
    // Storage full or disabled: the page works the same, it just starts empty offline.
  }
}
