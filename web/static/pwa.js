// The service worker (/sw.js) keeps the app shell for an offline start. Registering is
// best effort: without it (old browser, private mode, plain http off localhost) the
// pages work exactly the same, online.

export function registerServiceWorker() {
  if (!("serviceWorker" in navigator)) return;
  const register = () => {
    navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch(() => {
      // Not fatal: the page does not depend on it.
    });
  };
  // After load, so caching the shell never competes with the first paint.
  if (document.readyState === "complete") register();
  else addEventListener("load", register, { once: true });
}
