// The page /screen/{id} answers (404) when no shop has that id, or it is switched off.
// It says so in the screen's language and checks now and then whether the shop exists
// again (re-enabled by its owner): an unattended screen must come back by itself.

import { applyStatic, setLang, t } from "./i18n.js";

const RECHECK_MS = 5 * 60 * 1000;

const shopId = decodeURIComponent(location.pathname.split("/").filter(Boolean)[1] ?? "");

async function recheck() {
  try {
    // no-store: the service worker keeps shop profiles for offline screens and lets
    // no-store requests through, so a kept copy cannot make this page reload into the
    // screen of a shop that is gone.
    const response = await fetch(`/api/v1/shops/${encodeURIComponent(shopId)}`,
      { headers: { Accept: "application/json" }, cache: "no-store" });
    if (response.ok) location.reload();
  } catch {
    // server away: try again later
  }
}

const lang = new URLSearchParams(location.search).get("lang");
if (lang) setLang(lang);
applyStatic();
document.getElementById("unknown-id").textContent = t("screen_unknown_id", { id: shopId });
setInterval(recheck, RECHECK_MS);
