// Feed client for /ws/feed: keeps one socket alive, resumes with the last cursor
// so nothing missed while away is lost, and tells the page which frames are "live".
//
// Where a WebSocket cannot be opened (a proxy strips Upgrade), the same frames come as
// Server-Sent Events from /api/v1/feed/stream (DESIGN section 9), silently: after
// WS_FAILS_BEFORE_SSE attempts in a row that failed before opening, or one left
// unanswered for WS_OPEN_TIMEOUT_MS (a proxy that swallows the upgrade: waiting twice
// kept a page empty for 20 s), the next ones use EventSource with the same query (only on
// a page whose WebSocket never opened: once one has, no proxy is in the way). A
// stream that opens is kept for the page's life and remembered for the tab
// (sessionStorage), so a reload behind the same proxy starts with it. A stream that
// cannot open either means the server, not a proxy, is away: the WebSocket is tried
// again. Each connection is opened, resumed with
// `cursor` and backed off here, as a socket is: EventSource's own reconnection cannot
// change the area and gives up on any error status, so it is closed at its first error.
//
// States: "connecting" (first socket), "live", "not_live" (the socket is up but the
// server says it cannot read the feed: `status` frames, DESIGN section 9), "reconnecting"
// and "offline" (no socket). Only "live" means the cards are the street as it is now.

// Backoff windows (retryDelay): the first retry is drawn over FIRST_WINDOW_MS, each next
// one over WINDOW_GROWTH times the last, up to MAX_DELAY_MS; never sooner than MIN_DELAY_MS.
const MIN_DELAY_MS = 100;
const FIRST_WINDOW_MS = 1000;
const WINDOW_GROWTH = 1.5;
const MAX_DELAY_MS = 15000;
// The server pings every 25 s; 70 s of silence means the socket is dead even if the
// browser has not noticed (phones switching networks often leave half-open sockets).
const SILENCE_MS = 70000;
// A connection not open after this is a failed attempt (a proxy may hold it unanswered).
// A WebSocket handshake is one round trip once connected; a stream's first answer waits
// for its snapshot.
const WS_OPEN_TIMEOUT_MS = 4000;
// Once a WebSocket has opened on this page no proxy is in its way: a handshake that is slow
// then is a server busy taking back every socket it had (a restart, a deploy), queued in
// its accept backlog. Given up at 4 s, it was work the server did for nobody while the
// page joined the back of the queue again (and fell back to the stream): the reconnect
// storm never drained (bench/storm.py). So it is waited for as long as the longest backoff.
const WS_REOPEN_TIMEOUT_MS = 15000;
const OPEN_TIMEOUT_MS = 10000;
const WS_FAILS_BEFORE_SSE = 2;
const TRANSPORT_KEY = "streetfeed.transport";
// The events of /api/v1/feed/stream: each one's data is the WebSocket frame.
const SSE_EVENTS = ["post", "expired", "withdrawn", "reset", "status", "ping"];

/**
 * How long to wait before the next connection attempt, `attempt` (0 first) counting the
 * attempts since the feed last worked: exponential backoff with "full jitter" (AWS
 * Architecture Blog, "Exponential Backoff And Jitter"), a delay drawn uniformly over the
 * whole window rather than around its middle. When a server restarts every page retries
 * at once: a jitter of +-25 % clamped at a 500 ms minimum sent half of all first retries
 * at exactly 500 ms, and each next wave together again (bench/storm.py). Drawn over the
 * window, a page's first retry comes after 550 ms on average (a blip still resumes at
 * once) and 10,000 pages' are spread evenly from 0.1 to 1 s, the next ones up to 1.5,
 * 2.25, 3.4 s... The windows grow by half, not double: a server restarted in 1-2 s
 * refuses a page's first two or three tries, and a window of 8 s at the fourth kept
 * some pages waiting that long for a server long back (a storm of 1,000 sockets took
 * 8.1 s to resume where the new process listened after 1.6 s).
 * The benchmark's load generator (bench/loadgen.js) runs this very function, so the
 * reconnect storm it measures is the pages' own.
 * @param {number} attempt
 */
export function retryDelay(attempt) {
  const window = Math.min(MAX_DELAY_MS, FIRST_WINDOW_MS * WINDOW_GROWTH ** Math.max(0, attempt));
  return MIN_DELAY_MS + Math.random() * (window - MIN_DELAY_MS);
}

/**
 * How long a WebSocket handshake may take before the attempt is given up: short while no
 * WebSocket has opened on this page (a proxy may be swallowing the upgrade), long once one
 * has (the server is busy, not in the way). The load generator runs this function too.
 * @param {boolean} wsWorked  whether a WebSocket has opened on this page
 */
export function wsOpenTimeout(wsWorked) {
  return wsWorked ? WS_REOPEN_TIMEOUT_MS : WS_OPEN_TIMEOUT_MS;
}

/** Whether this tab's feed came by the event stream already (a proxy in the way). */
function rememberedSse() {
  try {
    return sessionStorage.getItem(TRANSPORT_KEY) === "sse";
  } catch {
    return false; // storage disabled
  }
}

function rememberSse() {
  try {
    sessionStorage.setItem(TRANSPORT_KEY, "sse");
  } catch {
    // The next page load tries the WebSocket first again.
  }
}

export class FeedClient {
  /**
   * @param {{lat:number, lon:number, radius_m:number, local?:boolean}} sub
   * @param {(frame: object, live: boolean) => void} onFrame  live: arrived after the snapshot
   * @param {(state: string) => void} onState
   * @param {{params?: Record<string, string>}} [options]  extra query parameters for every
   *   connection, e.g. {client: "screen"} so that reach counts screens apart from phones
   */
  constructor(sub, onFrame, onState, options = {}) {
    this.sub = { ...sub };
    this.params = { ...(options.params ?? {}) };
    this.onFrame = onFrame;
    this.onState = onState;
    this.state = "connecting";
    this.cursor = null;
    this.ws = null; // the open connection: a WebSocket, or an EventSource
    // WebSocket attempts in a row that never opened; whether the stream is the transport.
    this.wsFailures = 0;
    // Whether a WebSocket has opened on this page: then no proxy strips the upgrade, and a
    // failing one means the server is away or busy, which the stream would not change.
    this.wsWorked = false;
    this.useSse = rememberedSse();
    this.sseWorked = this.useSse;
    this.attempt = 0;
    this.retryTimer = 0;
    this.watchdog = 0;
    // True while our cursor belongs to an area other than this.sub (or to a snapshot that
    // was cut short): resuming with it would keep cards the new area does not have.
    this.needsSnapshot = true;
    this.snapshotDone = false;
    // What this socket's server last said about the feed; a new socket starts trusting
    // (a server in an outage says so right after the handshake).
    this.serverLive = true;
    // When the page stopped being live (ms), null while live: "not live since HH:MM".
    this.notLiveSince = null;
  }

  start() {
    addEventListener("online", () => {
      if (this.ws) return;
      this.attempt = 0; // don't wait out the backoff: the network is back
      this.#open();
    });
    addEventListener("offline", () => {
      // A socket that outlives the network (wifi -> 4G) is usually half-open and silent:
      // drop it now and resume with the cursor once back, rather than wait for the watchdog.
      if (this.ws) this.#lost(this.ws);
      else this.#setState("offline");
    });
    this.#open();
  }

  /** Follow the passer-by (or a new radius) without dropping the socket. */
  move(sub) {
    this.sub = { ...sub };
    this.needsSnapshot = true;
    const ws = this.ws;
    if (ws instanceof WebSocket && ws.readyState === WebSocket.OPEN) {
      ws.send(JSON.stringify({ type: "subscribe", ...this.sub }));
    } else if (ws) {
      // Connecting with the old area in its URL, or a stream (its area is its URL):
      this.#drop(ws); // start over
      this.#open();
    } // else: waiting to retry; the next attempt uses the new area
  }

  #open() {
    clearTimeout(this.retryTimer);
    const resume = this.cursor !== null && !this.needsSnapshot;
    const query = new URLSearchParams({
      lat: String(this.sub.lat), lon: String(this.sub.lon), radius_m: String(this.sub.radius_m),
      ...this.params,
    });
    if (this.sub.local) query.set("local", "1"); // only posts naming a local producer
    if (resume) query.set("cursor", this.cursor);
    let ws;
    if (this.useSse) {
      ws = new EventSource(`/api/v1/feed/stream?${query}`);
    } else {
      const scheme = location.protocol === "https:" ? "wss" : "ws";
      ws = new WebSocket(`${scheme}://${location.host}/ws/feed?${query}`);
    }
    this.ws = ws;
    this.snapshotDone = false;
    this.serverLive = true;
    if (this.state !== "connecting") {
      this.#setState(navigator.onLine === false ? "offline" : "reconnecting");
    }
    let opened = false;
    this.watchdog = setTimeout(() => this.#lost(ws, false, true),
      this.useSse ? OPEN_TIMEOUT_MS : wsOpenTimeout(this.wsWorked));

    ws.onopen = () => {
      opened = true;
      if (this.useSse) {
        this.sseWorked = true;
        rememberSse();
      } else {
        this.wsFailures = 0;
        this.wsWorked = true;
      }
      this.#armWatchdog(ws);
      // Without a cursor the server sends a plain snapshot, with no reset before it.
      if (!resume) this.onFrame({ type: "reset" }, false);
    };
    ws.onerror = () => this.#lost(ws, opened);
    if (ws instanceof WebSocket) {
      ws.onmessage = (ev) => this.#receive(ws, ev.data);
      ws.onclose = () => this.#lost(ws, opened);
    } else {
      for (const type of SSE_EVENTS) ws.addEventListener(type, (ev) => this.#receive(ws, ev.data));
    }
  }

  #receive(ws, data) {
    this.#armWatchdog(ws);
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      return; // not ours to interpret; the next valid frame carries the cursor anyway
    }
    if (!frame || typeof frame !== "object") return;
    if (typeof frame.cursor === "string") this.cursor = frame.cursor;
    if (frame.type === "reset") {
      this.needsSnapshot = true;
      this.snapshotDone = false;
    } else if (frame.type === "ping" && !this.snapshotDone) {
      // The first ping after connect or reset closes the snapshot (or the replay).
      this.snapshotDone = true;
      this.needsSnapshot = false;
      this.attempt = 0; // only a working feed earns a fresh backoff
      this.#setState(this.serverLive ? "live" : "not_live");
    } else if (frame.type === "status" && typeof frame.live === "boolean") {
      this.#serverSays(frame.live, Date.parse(frame.since));
    }
    this.onFrame(frame, this.snapshotDone);
  }

  #serverSays(live, since) {
    this.serverLive = live;
    if (live) {
      // Live again once the snapshot (or replay) is in too; the ping that ends it says so.
      if (this.snapshotDone) this.#setState("live");
      return;
    }
    // The server knows when it stopped reading: before this frame came.
    this.#setState("not_live", Number.isFinite(since) ? Math.min(since, Date.now()) : Date.now());
  }

  /** `opened`: whether this connection had opened before it was lost; `unanswered`: it
   * was given up after waiting for it to open. */
  #lost(ws, opened = true, unanswered = false) {
    if (ws !== this.ws) return; // error then close: handle the loss once
    this.#drop(ws);
    // Switching to the stream (or back), the first try of the other is not backed off,
    // and a page that never had a connection still says "connecting" (the fallback is
    // silent: it flashed "reconnecting" before "live").
    const switched = !opened && navigator.onLine !== false && this.#failedToOpen(unanswered);
    if (switched) this.attempt = 0;
    if (!(switched && this.state === "connecting")) {
      this.#setState(navigator.onLine === false ? "offline" : "reconnecting");
    }
    const delay = retryDelay(this.attempt);
    this.attempt += 1;
    this.retryTimer = setTimeout(() => this.#open(), delay);
  }

  /** A connection that never opened: after a few sockets (or one left unanswered), try
   * the stream; after a stream that never worked, the socket again. Whether the transport
   * changed. */
  #failedToOpen(unanswered) {
    const before = this.useSse;
    if (!this.useSse && this.wsWorked) {
      // The server, not a proxy: the socket again, after the backoff.
    } else if (!this.useSse) {
      this.wsFailures += unanswered ? WS_FAILS_BEFORE_SSE : 1;
      this.useSse = this.wsFailures >= WS_FAILS_BEFORE_SSE;
    } else if (!this.sseWorked) {
      this.useSse = false;
      this.wsFailures = 0;
    }
    return this.useSse !== before;
  }

  #drop(ws) {
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    clearTimeout(this.watchdog);
    try {
      ws.close();
    } catch {
      // already closing
    }
    if (ws === this.ws) this.ws = null;
  }

  #armWatchdog(ws) {
    clearTimeout(this.watchdog);
    this.watchdog = setTimeout(() => this.#lost(ws), SILENCE_MS);
  }

  /** `since`: when the feed stopped being live, if `state` says it is not. */
  #setState(state, since = Date.now()) {
    const before = this.notLiveSince;
    if (state === "live") {
      this.notLiveSince = null;
    } else if (this.state === "live" || state === "not_live") {
      // The earliest moment wins: after a socket loss at 14:06, a server that says it
      // stopped reading at 14:05 means the cards are as of 14:05.
      this.notLiveSince = Math.min(before ?? since, since);
    }
    if (state === this.state && before === this.notLiveSince) return;
    this.state = state;
    this.onState(state);
  }
}
