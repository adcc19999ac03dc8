// Streetfeed service worker (served as /sw.js, scope /).
//
// App shell (pages, modules, styles, icons, vendored Leaflet): network first, so a
// deploy shows at once, with the cached copy when the network is gone or stalls (no
// answer within NETWORK_TIMEOUT_MS): the feed, the console and the shop screen start
// offline, or behind a dead link, and say so. API: network first; only the
// few public answers worth showing offline (config, shop profiles, producer pages, QR
// codes) are kept.
// Sessions, stats and posts are never cached; the WebSocket is not seen here. Photos
// (/media/) are left to the HTTP cache.
//
// Alerts for followed shops (DESIGN.md 9): a push shows its post as a notification (see
// the end of this file), and a tap on it opens the page at the post.

// v2: navigations are kept under their path alone (v1 kept "/?lat=..&lon=..", a
// position); the version change drops v1's caches.
const VERSION = "v2";
const SHELL_CACHE = `streetfeed-shell-${VERSION}`;
const API_CACHE = `streetfeed-api-${VERSION}`;
// The words of a notification in the page's language, put there by the page (alerts.js's
// WORDS_CACHE and WORDS_URL): no version, a deploy must not lose them.
const WORDS_CACHE = "streetfeed-prefs";
const WORDS_URL = "/__streetfeed/alert-words";

const SHELL = [
  "/",
  "/shop",
  "/manifest.webmanifest",
  "/static/style.css",
  "/static/shop.css",
  "/static/screen.css",
  "/static/app.js",
  "/static/alerts.js",
  "/static/postview.js",
  "/static/shop.js",
  "/static/screen.js",
  "/static/cards.js",
  "/static/categories.js",
  "/static/category-table.js",
  "/static/feedclient.js",
  "/static/fresh.js",
  "/static/holds.js",
  "/static/geo.js",
  "/static/i18n.js",
  "/static/map.js",
  "/static/position.js",
  "/static/producer.js",
  "/static/producermap.js",
  "/static/profiles.js",
  "/static/pwa.js",
  "/static/photos.js",
  "/static/hours.js",
  "/static/kept.js",
  "/static/signin.js",
  "/static/shopprofile.js",
  "/static/shopproducers.js",
  "/static/shopholds.js",
  "/static/placepicker.js",
  "/static/favicon.svg",
  "/static/icons/icon.svg",
  "/static/icons/icon-192.png",
  "/static/icons/icon-512.png",
  "/static/vendor/leaflet/leaflet.js",
  "/static/vendor/leaflet/leaflet.css",
  "/static/vendor/leaflet/images/marker-icon.png",
  "/static/vendor/leaflet/images/marker-shadow.png",
  "/static/vendor/leaflet/images/layers.png",
];

// A connected but dead network (a stalled link, a captive portal, a server that accepts
// and never answers) neither answers nor fails: without a limit a screen's navigation
// would hang on it forever. After this long, a kept copy is served instead.
const NETWORK_TIMEOUT_MS = 4000;

const API_KEPT = [
  /^\/api\/v1\/config$/,
  /^\/api\/v1\/shops\/[^/]+$/,
  /^\/api\/v1\/producers\/[^/]+$/, // a producer's page (not the search: it has a point)
  /^\/api\/v1\/shops\/[^/]+\/qr\.svg$/,
];

self.addEventListener("install", (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(SHELL_CACHE);
    // One missing file must not stop the others from being kept.
    await Promise.all(SHELL.map((url) =>
      cache.add(new Request(url, { cache: "reload" })).catch(() => undefined)));
    await self.skipWaiting();
  })());
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    const keep = new Set([SHELL_CACHE, API_CACHE, WORDS_CACHE]);
    for (const name of await caches.keys()) {
      if (name.startsWith("streetfeed-") && !keep.has(name)) await caches.delete(name);
    }
    await self.clients.claim();
  })());
});

function offlineJson() {
  return new Response(JSON.stringify({ error: { code: "offline", message: "offline" } }), {
    status: 503,
    headers: { "Content-Type": "application/json", "Cache-Control": "no-store" },
  });
}

const TIMED_OUT = Symbol("timed out");

/**
 * The network's answer, unless it fails or is slower than NETWORK_TIMEOUT_MS and a kept
 * copy exists. A slow answer still lands in the cache when it comes, for next time.
 * `key` is what the copy is kept under (a navigation's path without its query).
 */
async function networkFirst(request, cacheName, { key = request, fallbackUrl = null } = {}) {
  const cache = await caches.open(cacheName);
  const kept = async () => (await cache.match(key)) ??
    (fallbackUrl ? await cache.match(fallbackUrl) : undefined);
  const network = fetch(request).then(async (response) => {
    if (response.ok && response.type === "basic") {
      await cache.put(key, response.clone()).catch(() => undefined);
    } else if (response.status === 404) {
      await cache.delete(key); // gone (a screen of a shop switched off): keep no copy of it
    }
    return response;
  });
  network.catch(() => undefined); // its failure is handled below, or no longer matters
  let timer = 0;
  const timeout = new Promise((resolve) => {
    timer = setTimeout(() => resolve(TIMED_OUT), NETWORK_TIMEOUT_MS);
  });
  try {
    const first = await Promise.race([network, timeout]);
    if (first !== TIMED_OUT) return first;
    return (await kept()) ?? (await network); // nothing kept: the network is all there is
  } catch (err) {
    const copy = await kept();
    if (copy) return copy;
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  // A page that asks for no-store wants the server's own answer, never a kept copy.
  if (request.cache === "no-store") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return; // map tiles: the browser's own cache

  const path = url.pathname;
  if (path.startsWith("/api/")) {
    if (!API_KEPT.some((re) => re.test(path))) return; // live data: the network or nothing
    event.respondWith(networkFirst(request, API_CACHE).catch(offlineJson));
    return;
  }
  // Photos: their URLs never change content (a new photo is a new id), served
  // "immutable" for a year, so the browser's HTTP cache keeps them, serves them offline
  // while fresh, and evicts them within its own bounds. A copy here would duplicate
  // each one and need an eviction of its own.
  if (path.startsWith("/media/")) return;
  if (path === "/sw.js" || path.startsWith("/ws/") || path === "/metrics" ||
      path === "/healthz" || path === "/readyz") return;
  if (request.mode === "navigate") {
    // A screen gets its own kept page or none: the passer-by page is no screen.
    const fallback = path.startsWith("/screen/") ? null : "/";
    // Kept under the path alone: the query may hold a position (?lat=&lon=), which is
    // never to be stored on the device.
    event.respondWith(networkFirst(request, SHELL_CACHE,
      { key: url.origin + path, fallbackUrl: fallback }));
    return;
  }
  if (path.startsWith("/static/") || path === "/manifest.webmanifest") {
    event.respondWith(networkFirst(request, SHELL_CACHE));
  }
});

// --- Alerts for followed shops (DESIGN.md 9) --------------------------------------------
// The payload is {"type":"post","post":{...},"url":"/?post=<id>"}. The browser requires a
// notification for every push (userVisibleOnly), so one for a post already over shows
// the newest state, silently, under the shop's tag: it replaces that shop's earlier
// notification, and nothing stale is left to walk to.

// Used until the page has handed over its words (alerts.js does so on subscribing).
const DEFAULT_WORDS = {
  until: "until {time}", left: "{t} left", ended: "This post has ended.",
  neutral: "News from a shop you follow.", min: "{n} min", h: "{h} h", h_min: "{h} h {m}",
  locale: "en-GB",
};
const POST_LINK = /^\/\?post=p_[a-z0-9]{16}$/;
const ALERT_ICON = "/static/icons/icon-192.png";

const fill = (text, vars) => String(text).replace(/\{(\w+)\}/g,
  (_, name) => String(vars[name] ?? ""));

async function alertWords() {
  try {
    const kept = await (await caches.open(WORDS_CACHE)).match(WORDS_URL);
    const words = kept ? await kept.json() : null;
    return words && typeof words === "object" ? { ...DEFAULT_WORDS, ...words } : DEFAULT_WORDS;
  } catch {
    return DEFAULT_WORDS;
  }
}

/** "25 min", "1 h 30", "2 h": as the pages write a duration (i18n.js durationText). */
function durationText(minutes, words) {
  const h = Math.floor(minutes / 60);
  const m = minutes % 60;
  if (!h) return fill(words.min, { n: m });
  return m ? fill(words.h_min, { h, m: String(m).padStart(2, "0") }) : fill(words.h, { h });
}

/** "18:00" in the shop's zone (the device's for a zone this browser lacks), with the
 * day ("Tue 15:57") when that is not today there: "until 15:57 · 20 h left" read as
 * today. */
function clockTime(ms, zone, locale, now) {
  const format = (options) => {
    try {
      return new Intl.DateTimeFormat(locale, { ...options, timeZone: zone || undefined });
    } catch {
      return new Intl.DateTimeFormat(locale, options);
    }
  };
  const day = format({ year: "numeric", month: "numeric", day: "numeric" });
  const options = { hour: "2-digit", minute: "2-digit", hourCycle: "h23" };
  if (day.format(ms) !== day.format(now)) options.weekday = "short";
  return format(options).format(ms);
}

/** The notification for a push's payload at `now`: {title, options}. */
function alertOf(payload, words, now) {
  const post = payload?.type === "post" && payload.post && typeof payload.post === "object"
    ? payload.post : null;
  const shop = post && post.shop && typeof post.shop === "object" ? post.shop : null;
  const url = typeof payload?.url === "string" && POST_LINK.test(payload.url) ? payload.url : "/";
  const base = {
    icon: ALERT_ICON, badge: ALERT_ICON, lang: String(words.locale).slice(0, 2),
    tag: shop && typeof shop.id === "string" ? `shop:${shop.id}` : "streetfeed",
    data: { url },
  };
  const title = typeof shop?.name === "string" && shop.name ? shop.name : "Streetfeed";
  if (!post || !shop) {
    return { title, options: { ...base, body: words.neutral, silent: true } };
  }
  const ends = post.kind === "flash_offer" ? Date.parse(post.ends_at) : NaN;
  if (!(Date.parse(post.expires_at) > now) || ends <= now) {
    return { title, options: { ...base, body: words.ended, silent: true } };
  }
  let body = String(post.title ?? "");
  if (Number.isFinite(ends)) {
    const left = durationText(Math.max(1, Math.ceil((ends - now) / 60000)), words);
    const until = clockTime(ends, typeof shop.timezone === "string" ? shop.timezone : null,
      words.locale, now);
    body += `\n${fill(words.until, { time: until })} · ${fill(words.left, { t: left })}`;
  }
  const posted = Date.parse(post.posted_at);
  return { title, options: { ...base, body, renotify: true,
    timestamp: Number.isNaN(posted) ? now : posted } };
}

self.addEventListener("push", (event) => {
  event.waitUntil((async () => {
    let payload = null;
    try {
      payload = event.data ? event.data.json() : null;
    } catch {
      // Not JSON: the neutral notification.
    }
    const { title, options } = alertOf(payload, await alertWords(), Date.now());
    await self.registration.showNotification(title, options);
  })());
});

/**
 * Take a page of this site to `url` (an alert's /?post=<id>), focused, or open one. The
 * passer-by page is the one taken: a console or a screen is somebody's work.
 */
async function openAlertUrl(url) {
  const target = new URL(typeof url === "string" && POST_LINK.test(url) ? url : "/",
    self.location.origin).href;
  const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
  const page = windows.find((client) => new URL(client.url).pathname === "/");
  if (page) {
    try {
      await page.focus();
    } catch {
      // Focus needs the tap's activation; the page is taken there all the same.
    }
    try {
      return await page.navigate(target);
    } catch {
      // A page this worker does not control cannot be navigated: a new one is opened.
    }
  }
  return self.clients.openWindow(target);
}

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  event.waitUntil(openAlertUrl(event.notification.data?.url));
});
