// The extension's service worker: the one place that decides what happens to
// an e-mail. Content scripts on the user's mail site send it message keys
// (and, on pages that show the text, the text); for Roundcube it fetches the
// raw message itself. It has them classified by the WebAssembly edge in the
// offscreen document, stores each result, sends the ambiguous ones to the
// backend through the retry queue (queue.js), and files messages (filing.js).
// Content scripts get label views back, nothing more (sites.js).
//
// A result (key r:<id>) is
//   {id, subject, bundle, label, confidence, decidedBy: "edge" | "backend" | "user",
//    state: "final" | "queued" | "error", edge: {label, confidence, candidates, forwarded},
//    backend?: {label, confidence, candidates, reranker}, filing?, filed?, fileError?,
//    updatedAt, error?}
// "queued" means the label is the edge's provisional guess and the e-mail is
// waiting in the retry queue; it turns "final" when the backend answers.

import { file } from "./filing.js";
import { flushQueue, retryNow, whenDecided } from "./queue.js";
import { notify, registerSite, siteOrigin, view } from "./sites.js";
import { emailId, getAll, getResults, getSettings, queueKey, resultKey } from "./store.js";
import * as roundcube from "./webmail/roundcube.js";

const OFFSCREEN_URL = "offscreen.html";
/** The adapters whose messages this worker fetches itself, by name. */
const FETCHERS = { roundcube: roundcube.fetchRaw };
const MAX_MESSAGES_PER_REQUEST = 200;
const FETCHES_AT_ONCE = 4;

// Content scripts run in the webmail page's process: keep the settings
// (API key) and stored e-mail text out of their reach.
// Where the browser cannot, the extension refuses to work rather than expose them.
const restricted = chrome.storage.local.setAccessLevel({ accessLevel: "TRUSTED_CONTEXTS" }).catch((e) => {
  throw new Error(`this browser cannot keep mailsort's storage from web pages (${e?.message ?? e}): update Chrome`);
});

let creatingOffscreen = null;

// The model lives in an offscreen document rather than here: Chrome stops an
// idle service worker after 30 s, and every restart would pay for loading
// 23 MB of model and compiling the wasm again. The offscreen document stays
// up, and runs the edge in a dedicated worker so that classifying never
// blocks its message handling.
async function ensureOffscreen() {
  const url = chrome.runtime.getURL(OFFSCREEN_URL);
  const open = await chrome.runtime.getContexts({
    contextTypes: ["OFFSCREEN_DOCUMENT"],
    documentUrls: [url],
  });
  if (open.length > 0) return;
  creatingOffscreen ??= chrome.offscreen
    .createDocument({
      url: OFFSCREEN_URL,
      reasons: ["WORKERS"],
      justification: "runs the WebAssembly e-mail classifier in a worker and keeps its model loaded",
    })
    .finally(() => {
      creatingOffscreen = null;
    });
  await creatingOffscreen;
}

async function askOffscreen(message) {
  await ensureOffscreen();
  const reply = await chrome.runtime.sendMessage({ target: "offscreen", ...message });
  if (!reply?.ok) throw new Error(reply?.error ?? "the offscreen document did not answer");
  return reply;
}

let labelList = null;
async function labels() {
  labelList ??= askOffscreen({ type: "info" }).then((r) => r.labels);
  return labelList;
}

/** Runs `task` on every item, at most `limit` at once. */
async function pool(items, limit, task) {
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await task(items[next++]);
  });
  await Promise.all(lanes);
}

/** Checks a content script's message list; answers the messages, each with its stored id. */
function checkMessages(origin, messages) {
  if (!Array.isArray(messages) || messages.length > MAX_MESSAGES_PER_REQUEST) {
    throw new Error(`send an array of at most ${MAX_MESSAGES_PER_REQUEST} messages`);
  }
  return messages.map((m) => {
    if (typeof m?.key !== "string" || m.key.length === 0 || m.key.length > 1000) throw new Error("a message has no key");
    if (m.uid !== undefined && !/^\d{1,10}$/.test(String(m.uid))) throw new Error(`message ${m.key}: bad uid`);
    if (m.mbox !== undefined && (typeof m.mbox !== "string" || m.mbox.length > 1000)) throw new Error(`message ${m.key}: bad folder`);
    return { ...m, subject: String(m.subject ?? "").slice(0, 1000), id: emailId(origin, m.key) };
  });
}

const inFlight = new Map(); // id -> promise of its record, while being classified

/**
 * Labels a page's messages: stored results as they are, the rest fetched
 * (where the site needs it), classified and stored. Answers label views.
 */
async function labelMessages(origin, msg) {
  const messages = checkMessages(origin, msg.messages);
  const settings = await getSettings();
  const known = await getResults(messages.map((m) => m.id));
  const fresh = messages.filter((m) => !known.has(m.id) && !inFlight.has(m.id));
  if (fresh.length > 0) {
    const work = classifyFresh(settings, msg.adapter, fresh);
    for (const m of fresh) inFlight.set(m.id, work.then((records) => records.get(m.id)));
    work.finally(() => fresh.forEach((m) => inFlight.delete(m.id)));
  }
  const records = await Promise.all(messages.map(async (m) => known.get(m.id) ?? (await inFlight.get(m.id))));
  return {
    results: records.filter(Boolean).map((r) => view(origin, r)),
    autoFile: settings.autoFile,
    labels: await labels(),
  };
}

/** Classifies fresh messages; answers their records by id (failed fetches are not stored). */
async function classifyFresh(settings, adapter, fresh) {
  const records = new Map();
  const emails = [];
  const fetchRaw = FETCHERS[adapter];
  await pool(fresh, FETCHES_AT_ONCE, async (m) => {
    if (m.uid === undefined) {
      emails.push({ id: m.id, subject: m.subject, body: String(m.body ?? "") });
      return;
    }
    try {
      if (!fetchRaw) throw new Error(`${adapter} pages do not say how to fetch a message`);
      emails.push({ id: m.id, raw: await fetchRaw(settings.mailUrl, m) });
    } catch (e) {
      // Not stored: the next look at the page tries again (after a new login, say).
      records.set(m.id, { id: m.id, state: "error", error: String(e?.message ?? e) });
    }
  });
  if (emails.length === 0) return records;
  const subjects = new Map(fresh.map((m) => [m.id, m.subject]));
  const reply = await askOffscreen({ type: "classify", emails });
  const updates = {};
  const now = Date.now();
  let queued = 0;
  emails.forEach((email, i) => {
    const out = reply.results[i];
    const record = { id: email.id, subject: (subjects.get(email.id) ?? "").slice(0, 120), bundle: reply.bundleId, updatedAt: now };
    if (out.error !== undefined) {
      Object.assign(record, { state: "error", error: out.error });
    } else {
      const d = out.decision;
      const edge = { label: d.label, confidence: d.confidence, candidates: d.candidates, forwarded: Boolean(out.forward) };
      Object.assign(record, { label: d.label, confidence: d.confidence, decidedBy: "edge", edge });
      if (out.forward) {
        record.state = "queued";
        updates[queueKey(email.id)] = { bundle: reply.bundleId, forward: { ...out.forward, id: email.id }, queuedAt: now };
        queued += 1;
      } else {
        record.state = "final";
      }
    }
    updates[resultKey(email.id)] = record;
    records.set(email.id, record);
  });
  await chrome.storage.local.set(updates);
  if (queued > 0) flushQueue();
  return records;
}

async function fileMessage(origin, sender, msg) {
  const [m] = checkMessages(origin, [msg.message]);
  if (m.uid === undefined || m.mbox === undefined) throw new Error("only messages with a folder and uid can be filed");
  if (msg.label !== undefined && !(await labels()).includes(msg.label)) throw new Error(`unknown label ${msg.label}`);
  const record = await file({
    id: m.id,
    tabId: sender.tab.id,
    adapter: msg.adapter,
    where: { mbox: m.mbox, uid: String(m.uid) },
    label: msg.label,
    auto: Boolean(msg.auto),
  });
  return view(origin, record);
}

async function status() {
  const [results, queue, { retry }, settings] = await Promise.all([
    getAll("r:"),
    getAll("q:"),
    chrome.storage.local.get("retry"),
    getSettings(),
  ]);
  results.sort((a, b) => b.updatedAt - a.updatedAt);
  return { results, queued: queue.length, retry: retry ?? null, backendUrl: settings.backendUrl };
}

whenDecided((records) => notify(records));

// Whatever was queued before the browser (or this worker) stopped is tried
// again as soon as the worker starts.
chrome.runtime.onStartup.addListener(() => flushQueue());
flushQueue();
registerSite().catch((e) => console.warn(`mailsort: ${e.message}`));

/** Requests from the extension's own pages (popup, options). */
const pageHandlers = {
  status: () => status(),
  retryNow: async () => {
    await retryNow();
    return status();
  },
  siteChanged: () => registerSite(),
};

/** Requests from content scripts on the configured mail site. */
const siteHandlers = {
  labels: (origin, _sender, msg) => labelMessages(origin, msg),
  file: (origin, sender, msg) => fileMessage(origin, sender, msg),
};

const isExtensionPage = (sender) => sender.id === chrome.runtime.id && sender.url?.startsWith(chrome.runtime.getURL(""));

async function siteOf(sender) {
  const origin = await siteOrigin();
  if (sender.id !== chrome.runtime.id || !sender.tab || !origin || sender.origin !== origin) {
    throw new Error("this page is not your mail site in mailsort's options");
  }
  return origin;
}

function handle(msg, sender) {
  if (pageHandlers[msg.type] && isExtensionPage(sender)) return pageHandlers[msg.type](msg);
  if (siteHandlers[msg.type]) return siteOf(sender).then((origin) => siteHandlers[msg.type](origin, sender, msg));
  return Promise.reject(new Error(`request ${msg.type} is not allowed here`));
}

chrome.runtime.onMessage.addListener((msg, sender, sendResponse) => {
  if (msg?.target !== "background") return false;
  restricted
    .then(() => handle(msg, sender))
    .then((value) => sendResponse({ ok: true, value }))
    .catch((e) => sendResponse({ ok: false, error: String(e?.message ?? e) }));
  return true;
});
