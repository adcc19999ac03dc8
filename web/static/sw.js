// Streetfeed service worker (served as /sw.js, scope /).
//
// App shell (pages, modules, styles, icons, vendored Leaflet): network first, so a
// deploy shows at once, with the cached copy when the network is gone: the feed, the
// console and the shop screen start offline and say so. API: network first; only the
// few public answers worth showing offline (config, shop profiles, QR codes) are kept.
// Sessions, stats and posts are never cached; the WebSocket is not seen here.

const VERSION = "v1";
const SHELL_CACHE = `streetfeed-shell-${VERSION}`;
const API_CACHE = `streetfeed-api-${VERSION}`;

const SHELL = [
  "/",
  "/shop",
  "/manifest.webmanifest",
  "/static/style.css",
  "/static/shop.css",
  "/static/screen.css",
  "/static/app.js",
  "/static/shop.js",
  "/static/screen.js",
  "/static/cards.js",
  "/static/feedclient.js",
  "/static/geo.js",
  "/static/i18n.js",
  "/static/map.js",
  "/static/position.js",
  "/static/profiles.js",
  "/static/pwa.js",
  "/static/hours.js",
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

const API_KEPT = [
  /^\/api\/v1\/config$/,
  /^\/api\/v1\/shops\/[^/]+$/,
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
    const keep = new Set([SHELL_CACHE, API_CACHE]);
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

async function networkFirst(request, cacheName, { fallbackUrl = null } = {}) {
  const cache = await caches.open(cacheName);
  try {
    const response = await fetch(request);
    if (response.ok && response.type === "basic") {
      await cache.put(request, response.clone()).catch(() => undefined);
    }
    return response;
  } catch (err) {
    const cached = await cache.match(request, { ignoreSearch: request.mode === "navigate" }) ??
      (fallbackUrl ? await cache.match(fallbackUrl) : undefined);
    if (cached) return cached;
    throw err;
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
  if (path === "/sw.js" || path.startsWith("/ws/") || path === "/metrics" ||
      path === "/healthz" || path === "/readyz") return;
  if (request.mode === "navigate") {
    // The screen page is the same file for every shop: any cached one will do.
    const fallback = path.startsWith("/screen/") ? null : "/";
    event.respondWith(networkFirst(request, SHELL_CACHE, { fallbackUrl: fallback }));
    return;
  }
  if (path.startsWith("/static/") || path === "/manifest.webmanifest") {
    event.respondWith(networkFirst(request, SHELL_CACHE));
  }
});
