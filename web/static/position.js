// Where the passer-by is. The position only ever leaves the page inside the feed's
// WebSocket URL or `subscribe` message: nothing here talks to a server.

// Where the page looks until the passer-by shares a position: the deployment's
// fallback centre (/api/v1/config), or this when the config cannot be had (offline).
export const DEMO_STREET = { lat: 44.837, lon: -0.5735 }; // rue Sainte-Catherine, Bordeaux
export const DEFAULT_RADIUS_M = 1000;
const MAX_RADIUS_M = 5000; // the server refuses more

const coords = (p) => ({ lat: p.coords.latitude, lon: p.coords.longitude });

function number(params, name) {
  const raw = params.get(name);
  if (raw === null || raw.trim() === "") return null;
  const n = Number(raw);
  return Number.isFinite(n) ? n : null;
}

/** ?lat=&lon=&radius_m= (QR codes on a shop window, tests): they beat the device's GPS. */
export function fromUrl(search = location.search) {
  const params = new URLSearchParams(search);
  const lat = number(params, "lat");
  const lon = number(params, "lon");
  const radius = number(params, "radius_m");
  const valid = lat !== null && lon !== null && Math.abs(lat) <= 90 && Math.abs(lon) <= 180;
  return {
    position: valid ? { lat, lon } : null,
    radius: radius !== null && radius > 0 && radius <= MAX_RADIUS_M ? radius : null,
  };
}

// The passer-by's choice to use their position on this device: "on" once a tap gave a
// fix. Never the position itself.
const CHOICE_KEY = "streetfeed.geo";

export function rememberChoice(on) {
  try {
    if (on) localStorage.setItem(CHOICE_KEY, "on");
    else localStorage.removeItem(CHOICE_KEY);
  } catch {
    // Private browsing: asked again on the next visit.
  }
}

/**
 * Whether the position may be read now, without a tap: only when this device chose it
 * before and the browser still grants it (the Permissions API answers without
 * prompting). A prompt on load is what a passer-by (and Lighthouse) does not want.
 */
export async function mayLocateUnasked() {
  try {
    if (localStorage.getItem(CHOICE_KEY) !== "on" || !navigator.permissions) return false;
    const status = await navigator.permissions.query({ name: "geolocation" });
    return status.state === "granted";
  } catch {
    return false; // no storage, or no such permission name here: ask with a tap
  }
}

/**
 * One fix: {lat, lon}, or {refused: true} when the passer-by or the browser said no,
 * or null when unavailable or too slow.
 */
export function locate(timeoutMs) {
  return new Promise((resolve) => {
    if (!navigator.geolocation) {
      resolve(null);
      return;
    }
    // The API's own timeout does not count time spent on the permission prompt, and a
    // passer-by who ignores the prompt should still see the street: give up ourselves too.
    const timer = setTimeout(() => resolve(null), timeoutMs + 500);
    const done = (value) => {
      clearTimeout(timer);
      resolve(value);
    };
    navigator.geolocation.getCurrentPosition((p) => done(coords(p)),
      (err) => done(err.code === err.PERMISSION_DENIED ? { refused: true } : null),
      { timeout: timeoutMs, maximumAge: 60000, enableHighAccuracy: true });
  });
}

/** Keep following the passer-by as they walk down the street. */
export function follow(onPosition) {
  navigator.geolocation?.watchPosition((p) => onPosition(coords(p)), () => {
    // Refused or lost: keep the last known position, the feed still works.
  }, { maximumAge: 15000, enableHighAccuracy: true });
}
