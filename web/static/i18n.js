// French and English strings. Numbers, prices, times and "3 min ago" come from Intl,
// so only sentences live here. Each key holds [French, English]: a missing translation
// shows up side by side with the other one.
const STRINGS = {
  title: ["Streetfeed — autour de vous", "Streetfeed — around you"],
  tagline: ["Ce qui se passe autour de vous, maintenant", "What's happening around you, right now"],
  radius: ["Rayon", "Radius"],
  switch_to: ["EN", "FR"],
  switch_label: ["Switch to English", "Passer en français"],
  feed_heading: ["Annonces à proximité", "Posts nearby"],
  status_connecting: ["Connexion…", "Connecting…"],
  status_live: ["En direct", "Live"],
  status_reconnecting: ["Reconnexion…", "Reconnecting…"],
  status_offline: ["Hors ligne", "Offline"],
  locating: ["Recherche de votre position…", "Finding your position…"],
  demo_street: [
    "Position indisponible — voici la rue de démonstration",
    "Position unavailable — showing the demo street",
  ],
  loading: ["Recherche des nouveautés autour de vous…", "Looking for what's new around you…"],
  empty: [
    "Rien de neuf dans ce rayon pour le moment. Essayez un rayon plus grand.",
    "Nothing new within this radius right now. Try a wider radius.",
  ],
  kind_new_arrival: ["Nouveauté", "New arrival"],
  kind_flash_offer: ["Offre flash", "Flash offer"],
  kind_opening_change: ["Horaires", "Opening hours"],
  opening_open_now: ["Ouvert maintenant", "Open now"],
  opening_closed_now: ["Fermé pour le moment", "Closed right now"],
  opening_open_late: ["Ouvert tard", "Open late"],
  opening_closed_exceptionally: ["Fermeture exceptionnelle", "Exceptionally closed"],
  until: ["jusqu'à {time}", "until {time}"],
  walk: ["{n} min à pied", "{n} min walk"],
  ends_in: ["Se termine dans {t}", "Ends in {t}"],
  ended: ["Terminé", "Ended"],
  discount: ["−{n} %", "−{n}%"],
  announce: ["Nouveau : {title} — {shop}, à {dist}", "New: {title} — {shop}, {dist} away"],
  server_error: ["Le serveur signale : {message}", "The server says: {message}"],
};
const LANGS = ["fr", "en"];

const STORAGE_KEY = "streetfeed.lang";
const listeners = [];

function stored() {
  try {
    return localStorage.getItem(STORAGE_KEY); // throws when storage is disabled
  } catch {
    return null;
  }
}

function initial() {
  const saved = stored();
  if (LANGS.includes(saved)) return saved;
  const prefs = navigator.languages?.length ? navigator.languages : [navigator.language || ""];
  for (const pref of prefs) {
    const base = String(pref).slice(0, 2).toLowerCase();
    if (LANGS.includes(base)) return base;
  }
  return "en";
}

let lang = initial();

export const getLang = () => lang;

export function t(key, vars = {}) {
  const text = STRINGS[key]?.[LANGS.indexOf(lang)] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(vars[name] ?? ""));
}

export function onLangChange(fn) {
  listeners.push(fn);
}

export function setLang(next) {
  if (!LANGS.includes(next) || next === lang) return;
  lang = next;
  try {
    localStorage.setItem(STORAGE_KEY, next);
  } catch {
    // Private browsing: the choice just lasts for this visit.
  }
  applyStatic();
  listeners.forEach((fn) => fn(lang));
}

export const otherLang = () => (lang === "fr" ? "en" : "fr");

// Fixed page text is marked with data-i18n in the HTML, so it needs no code of its own.
export function applyStatic(root = document) {
  document.documentElement.lang = lang;
  document.title = t("title");
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
}
