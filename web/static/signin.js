// One-time sign-in links to the console (issue 14). A link carries its code in the URL
// fragment (/shop#code=...), which browsers send to no server and put in no Referer: this
// page takes it out of the address bar at once, then redeems it with POST /api/v1/session
// for the same session cookie as token sign-in. A signed-in console makes a fresh link,
// with its QR code, for the shopkeeper's phone to scan ("Sign in on another device").

import { dateFormat, errorText, onLangChange, t } from "./i18n.js";

const $ = (id) => document.getElementById(id);
// What the server makes (secrets.token_urlsafe); anything else was cut or mangled on the way.
const CODE = /^[A-Za-z0-9_-]{16,128}$/;

let linkError = null; // the last refusal of a link's code, shown until a sign-in
let made = null; // the link made for another device: {url, expires_at, qr}

/**
 * The code of the link this page was opened with, removed from the address bar (and so
 * from history, bookmarks and a copied address); null when there is none.
 */
export function takeLinkCode() {
  const params = new URLSearchParams(location.hash.slice(1));
  if (!params.has("code")) return null;
  history.replaceState(history.state, "", location.pathname + location.search);
  return params.get("code") ?? "";
}

/** Redeem a link's code: the result of `api` (shop.js), the shop's profile when it worked. */
export async function redeemLinkCode(api, code) {
  if (!CODE.test(code)) {
    return { ok: false, status: 0, data: null, error: { code: "signin_link_invalid", message: "" } };
  }
  return api("POST", "/api/v1/session", { code });
}

function showLinkError() {
  const node = $("link-error");
  node.hidden = !linkError;
  // A refusal of the link itself says to ask for a new one; anything else (offline, server
  // down) says what happened, as every console error does.
  node.textContent = linkError ? errorText(linkError) : "";
}

/** Say why the link did not sign in (kept in the page's language), or clear it with null. */
export function setLinkError(error) {
  linkError = error;
  showLinkError();
}

function showMade() {
  const box = $("device-link");
  box.hidden = !made;
  if (!made) {
    $("device-link-qr").removeAttribute("src");
    $("device-link-url").textContent = "";
    $("device-link-expires").textContent = "";
    return;
  }
  const when = dateFormat({ dateStyle: "medium", timeStyle: "short" })
    .format(new Date(made.expires_at));
  $("device-link-qr").src = made.qr; // a data: URI: the code is in no request line
  $("device-link-qr").alt = t("device_link_qr_alt");
  $("device-link-url").textContent = made.url;
  $("device-link-expires").textContent = t("device_link_expires", { when });
}

/** A signed-out console forgets the link it showed. */
export function forgetDeviceLink() {
  made = null;
  showMade();
  const error = $("device-link-error");
  error.hidden = true;
  error.textContent = "";
}

/**
 * "Sign in on another device": `api` is the console's own, `currentShop` gives the
 * signed-in profile, `sessionLost(result)` handles a 401 (back to sign-in).
 */
export function setupDeviceLink({ api, currentShop, sessionLost }) {
  const button = $("device-link-make");
  button.addEventListener("click", async () => {
    const shop = currentShop();
    if (!shop) return;
    button.disabled = true;
    const result = await api("POST", `/api/v1/shops/${encodeURIComponent(shop.id)}/signin-links`);
    button.disabled = false;
    if (sessionLost(result)) return;
    const error = $("device-link-error");
    error.hidden = result.ok;
    error.textContent = result.ok ? "" : errorText(result.error);
    made = result.ok ? result.data : null;
    showMade();
  });
  onLangChange(() => {
    showMade();
    showLinkError();
  });
}
