#!/usr/bin/env node
// Load generator for the Streetfeed fan-out benchmark: one process holds ~2,500
// WebSocket subscribers and records, per subscriber, which posts it received and when.
//
//   node bench/loadgen.js CONFIG.json
//
// CONFIG: {"mode": "raw" | "sio", "base": "ws://127.0.0.1:PORT", "path": "/ws/feed",
//          "query": true, "concurrency": 100,
//          "clients": [[idx, lat, lon, radius_m, kinds|null], ...]}
//
// mode "raw": a plain `ws` client per subscriber (Streetfeed, the bare asyncio ceiling,
//   websockets broadcast). A text frame starting {"type":"ping" marks the subscriber as
//   subscribed (Streetfeed sends it after the snapshot; the reference servers once
//   registered); {"type":"post" frames are recorded: post id, receive time, and once
//   per post its posted_at. Frames are scanned as bytes, not JSON-parsed: the client
//   must stay cheap, it shares the machine with the server.
// mode "sio": a socket.io-client (websocket transport only) per subscriber; it emits
//   `subscribe` {lat, lon, radius_m, kinds} and counts as subscribed on the ack; `post`
//   events are filtered by exact distance (haversine, R = 6371008.8 m) and kind, the way
//   a socket.io app with rooms per geo cell (peer) or per (cell, kind) (peer_tuned) has
//   to; `dropped` counts the frames filtered out (frames = kept + dropped).
//
// Reconnect storm (bench/storm.py), mode "raw" with "resume": true: a socket that closes
//   or fails is opened again the way the pages' client (web/static/feedclient.js) does
//   it: with `cursor` = the cursor of the last frame received, after retryDelay(attempt),
//   the very function feedclient.js exports (loaded from that file), `attempt` counting
//   the tries since the feed last worked (a first ping after opening, which ends the
//   snapshot or replay, resets it); a handshake not answered within the page's
//   wsOpenTimeout() is given up and counted (`open_timeouts`; the event stream the page
//   may then switch to is not modelled).
//   "hold": true opens nothing before a `go` command; "concurrency": 0, no cap on the
//   handshakes in flight (every client on its own, as phones are).
//
// Commands on stdin, one per line; each answer is one line on stdout:
//   stat          -> {"subscribed":..,"kept":..,"frames":..,"dropped":..,"errors":..,
//                     "closed":..,"last":ts}
//   hist T0       -> {"counts": [...]}: kept posts received since T0 (epoch ms), per ms
//   dump PATH     -> writes "idx\tpost_id\treceived_ms" lines and "#\tpost_id\tposted_at"
//                    lines to PATH, then answers {"dumped":records}
//   go            -> opens the sockets (with "hold"); answers {"go": ts}
//   mark T        -> from now on "resumed" counts sockets live again on a connection whose
//                    first ping came after T (epoch ms); answers {"marked": T}
//   storm         -> {"live_at": [...], "open_at": [...], "tries": [...]}: per socket, when
//                    its current connection's first ping came (0: not live), when its last
//                    handshake was answered, and its attempts since mark
//   exit          -> closes every socket and exits
// Receive times are Unix epoch milliseconds with sub-millisecond precision
// (performance.timeOrigin + performance.now()).
'use strict';

const fs = require('fs');
const readline = require('readline');
const { performance } = require('perf_hooks');

const cfg = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const clients = cfg.clients;
const n = clients.length;
const recIds = new Array(n);
const recTs = new Array(n);
for (let i = 0; i < n; i++) { recIds[i] = []; recTs[i] = []; }
const postedAt = new Map();
const sockets = new Array(n);
let subscribed = 0;
let kept = 0;
let frames = 0;
let dropped = 0;
let errors = 0;
let closed = 0;
let last = 0;
let lastError = '';
const origin = performance.timeOrigin;

function now() { return origin + performance.now(); }

const POST = Buffer.from('{"type":"post"');
const PING = Buffer.from('{"type":"ping"');
const RESET = Buffer.from('{"type":"reset"');
const CURSOR = Buffer.from('"cursor":"');
const POST_OBJ = Buffer.from('"post":{');
const ID = Buffer.from('"id":"');
const POSTED_AT = Buffer.from('"posted_at":"');

function startsWith(buf, prefix) {
  return buf.length >= prefix.length && buf.compare(prefix, 0, prefix.length, 0, prefix.length) === 0;
}

// Reconnect storm state, per socket (used with cfg.resume).
const resume = Boolean(cfg.resume);
const cursors = new Array(n).fill(null);
const attempts = new Array(n).fill(0);
const liveAt = new Array(n).fill(0);
const openAt = new Array(n).fill(0);
const tries = new Array(n).fill(0);
let markedAt = Infinity;
let closing = false;
let resets = 0;
let connectErrors = 0;
let openTimeouts = 0;
let liveLost = 0;
// Held sockets (the ceiling's N fresh handshakes) wait as the storm's pages do: they had
// a socket before (wsOpenTimeout(true)), so both sides of the comparison are as patient.
const wsWorked = new Array(n).fill(Boolean(cfg.hold));
let retryDelay = null;
let wsOpenTimeout = null;
if (resume) {
  // The pages' own backoff: feedclient.js is an ES module for browsers; its top level only
  // declares, so it runs here with its `export`s dropped and nothing else of a browser.
  const vm = require('vm');
  const page = require('path').join(__dirname, '..', 'web', 'static', 'feedclient.js');
  const src = fs.readFileSync(page, 'utf8').replace(/^export\s+/gm, '');
  const ctx = vm.createContext({});
  vm.runInContext(src, ctx);
  retryDelay = ctx.retryDelay;
  wsOpenTimeout = ctx.wsOpenTimeout;
  if (typeof retryDelay !== 'function' || typeof wsOpenTimeout !== 'function') {
    throw new Error('feedclient.js exports no retryDelay / wsOpenTimeout');
  }
}

function keepCursor(i, data) {
  const at = data.lastIndexOf(CURSOR);
  if (at >= 0) {
    const from = at + CURSOR.length;
    cursors[i] = data.toString('latin1', from, data.indexOf(0x22, from));
  }
}

function onRaw(i, data) {
  const t = now();
  if (Array.isArray(data)) data = Buffer.concat(data);
  if (resume) keepCursor(i, data);
  if (startsWith(data, POST)) {
    frames++;
    const at = data.indexOf(ID, data.indexOf(POST_OBJ)) + ID.length;
    const id = data.toString('latin1', at, data.indexOf(0x22, at));
    recIds[i].push(id);
    recTs[i].push(t);
    kept++;
    last = t;
    if (!postedAt.has(id)) {
      const p = data.indexOf(POSTED_AT) + POSTED_AT.length;
      postedAt.set(id, data.toString('latin1', p, data.indexOf(0x22, p)));
    }
  } else if (startsWith(data, PING)) {
    if (!sockets[i].subscribed) {
      sockets[i].subscribed = true;
      subscribed++;
      liveAt[i] = t;
      attempts[i] = 0; // only a working feed earns a fresh backoff (feedclient.js)
    }
  } else if (startsWith(data, RESET)) {
    resets++;
  }
}

const RADIUS = 6371008.8;
const RAD = Math.PI / 180;
function haversine(lat1, lon1, lat2, lon2) {
  const p1 = lat1 * RAD;
  const p2 = lat2 * RAD;
  const dp = p2 - p1;
  const dl = (lon2 - lon1) * RAD;
  const h = Math.sin(dp / 2) ** 2 + Math.cos(p1) * Math.cos(p2) * Math.sin(dl / 2) ** 2;
  return 2 * RADIUS * Math.asin(Math.min(1, Math.sqrt(h)));
}

let WebSocket = null;
let io = null;
if (cfg.mode === 'sio') io = require('socket.io-client').io;
else WebSocket = require('ws');

function openRaw(i, done) {
  const [, lat, lon, radius, kinds] = clients[i];
  let url = cfg.base + (cfg.path || '/');
  if (cfg.query) {
    url += `?lat=${lat}&lon=${lon}&radius_m=${radius}`;
    if (kinds) url += `&kinds=${kinds.join(',')}`;
    if (resume && cursors[i] !== null) url += `&cursor=${encodeURIComponent(cursors[i])}`;
  }
  if (resume && now() > markedAt) tries[i]++;
  const ws = new WebSocket(url, { perMessageDeflate: false, skipUTF8Validation: true,
                                  handshakeTimeout: 30000 });
  ws.subscribed = false;
  sockets[i] = ws;
  let settled = false;
  let opened = false;
  let gone = false;
  const settle = () => { if (!settled) { settled = true; done(); } };
  // As feedclient.js: a handshake not answered in time is a failed attempt. Not on the
  // storm's first connections (set-up, not measured; paced by `concurrency`).
  const watchdog = resume && (wsWorked[i] || cfg.hold) ? setTimeout(() => {
    if (!opened && !gone) { openTimeouts++; ws.terminate(); }
  }, wsOpenTimeout(wsWorked[i])) : null;
  // Error then close: the loss is handled once, and retried after the page's backoff.
  const lost = () => {
    if (gone) return;
    gone = true;
    clearTimeout(watchdog);
    if (ws.subscribed) { ws.subscribed = false; subscribed--; liveLost++; }
    if (!opened) connectErrors++;
    if (sockets[i] !== ws || closing) return;
    const delay = retryDelay(attempts[i]);
    attempts[i] += 1;
    setTimeout(() => openRaw(i, () => {}), delay);
  };
  ws.on('open', () => { opened = true; wsWorked[i] = true; openAt[i] = now(); settle(); });
  ws.on('message', (data) => onRaw(i, data));
  ws.on('error', (err) => {
    errors++;
    lastError = String(err && err.message);
    settle();
    if (resume) lost();
  });
  ws.on('close', () => {
    closed++;
    settle();
    if (resume) lost();
  });
}

function openSio(i, done) {
  const [, lat, lon, radius, kinds] = clients[i];
  const s = io(cfg.base, { transports: ['websocket'], forceNew: true, reconnection: false,
                           perMessageDeflate: false, timeout: 30000 });
  s.subscribed = false;
  sockets[i] = s;
  let settled = false;
  const settle = () => { if (!settled) { settled = true; done(); } };
  s.on('connect', () => {
    settle();
    s.emit('subscribe', { lat, lon, radius_m: radius, kinds }, () => {
      if (!s.subscribed) { s.subscribed = true; subscribed++; }
    });
  });
  s.on('post', (post) => {
    const t = now();
    frames++;
    if ((kinds && !kinds.includes(post.kind))
        || haversine(lat, lon, post.shop.lat, post.shop.lon) > radius) {
      dropped++;
      return;
    }
    recIds[i].push(post.id);
    recTs[i].push(t);
    kept++;
    last = t;
    if (!postedAt.has(post.id)) postedAt.set(post.id, post.posted_at);
  });
  s.on('connect_error', (err) => { errors++; lastError = String(err && err.message); settle(); });
  s.on('disconnect', () => { closed++; settle(); });
}

// Open every socket, at most `concurrency` handshakes in flight.
const open = cfg.mode === 'sio' ? openSio : openRaw;
let next = 0;
let inFlight = 0;
const concurrency = cfg.concurrency === 0 ? Infinity : (cfg.concurrency || 100);
function pump() {
  while (inFlight < concurrency && next < n) {
    const i = next++;
    inFlight++;
    open(i, () => { inFlight--; setImmediate(pump); });
  }
}
if (!cfg.hold) pump();

function stat() {
  let resumed = 0;
  if (resume) {
    for (let i = 0; i < n; i++) {
      if (sockets[i] && sockets[i].subscribed && liveAt[i] > markedAt) resumed++;
    }
  }
  return JSON.stringify({ subscribed, kept, frames, dropped, errors, closed, last, opened: next,
                          n, lastError, resumed, resets, connect_errors: connectErrors,
                          open_timeouts: openTimeouts, live_lost: liveLost });
}

function dump(path) {
  const out = fs.openSync(path, 'w');
  let records = 0;
  let chunk = [];
  const flush = () => { if (chunk.length) { fs.writeSync(out, chunk.join('')); chunk = []; } };
  for (let i = 0; i < n; i++) {
    const idx = clients[i][0];
    const ids = recIds[i];
    const ts = recTs[i];
    for (let k = 0; k < ids.length; k++) {
      chunk.push(`${idx}\t${ids[k]}\t${ts[k].toFixed(3)}\n`);
      records++;
    }
    if (chunk.length > 50000) flush();
  }
  for (const [id, at] of postedAt) chunk.push(`#\t${id}\t${at}\n`);
  flush();
  fs.closeSync(out);
  return records;
}

// Receive-time histogram of kept posts since t0 (epoch ms), one bucket per millisecond.
function hist(t0) {
  const counts = [];
  for (let i = 0; i < n; i++) {
    const ts = recTs[i];
    for (let k = ts.length - 1; k >= 0 && ts[k] >= t0; k--) {
      const b = Math.floor(ts[k] - t0);
      while (counts.length <= b) counts.push(0);
      counts[b]++;
    }
  }
  return counts;
}

function shutdown() {
  closing = true;
  for (const s of sockets) {
    if (!s) continue;
    try {
      if (cfg.mode === 'sio') s.disconnect(); else s.terminate();
    } catch (e) { /* already closed */ }
  }
  process.exit(0);
}

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  const [cmd, arg] = line.trim().split(/\s+/, 2);
  if (cmd === 'stat') process.stdout.write(`${stat()}\n`);
  else if (cmd === 'hist') process.stdout.write(`${JSON.stringify({ counts: hist(Number(arg)) })}\n`);
  else if (cmd === 'dump') process.stdout.write(`${JSON.stringify({ dumped: dump(arg) })}\n`);
  else if (cmd === 'go') {
    const t = now();
    pump();
    process.stdout.write(`${JSON.stringify({ go: t })}\n`);
  } else if (cmd === 'mark') {
    markedAt = Number(arg);
    tries.fill(0);
    process.stdout.write(`${JSON.stringify({ marked: markedAt })}\n`);
  } else if (cmd === 'storm') {
    const live = liveAt.map((t, i) => (sockets[i] && sockets[i].subscribed ? t : 0));
    process.stdout.write(`${JSON.stringify({ live_at: live, open_at: openAt, tries })}\n`);
  } else if (cmd === 'exit') shutdown();
});
rl.on('close', shutdown);
