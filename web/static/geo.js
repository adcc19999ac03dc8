// Distances on the street: what the passer-by cares about is "how far on foot".

const EARTH_RADIUS_M = 6371008.8; // mean Earth radius (IUGG), same sphere as the server's check
const WALK_M_PER_S = 1.3; // unhurried town-centre pace, with crossings

const rad = (deg) => (deg * Math.PI) / 180;

export function haversineM(lat1, lon1, lat2, lon2) {
  const dLat = rad(lat2 - lat1);
  const dLon = rad(lon2 - lon1);
  const a = Math.sin(dLat / 2) ** 2 +
    Math.cos(rad(lat1)) * Math.cos(rad(lat2)) * Math.sin(dLon / 2) ** 2;
  // min() guards against rounding pushing `a` just above 1 for antipodal points.
  return 2 * EARTH_RADIUS_M * Math.asin(Math.min(1, Math.sqrt(a)));
}

// "0 min" would read as "it is here" even across the street: never show less than 1.
export function walkMinutes(meters) {
  return Math.max(1, Math.round(meters / WALK_M_PER_S / 60));
}

// Precision that matches what GPS and a glance can use: metres nearby, then tens, then km.
export function formatDistance(meters, lang) {
  if (meters < 100) return `${Math.round(meters)} m`;
  if (meters < 1000) return `${Math.round(meters / 10) * 10} m`;
  const km = new Intl.NumberFormat(lang, { maximumFractionDigits: 1 }).format(meters / 1000);
  return `${km} km`;
}
