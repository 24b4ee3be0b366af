// The extension's service worker: the one place that decides what happens to
// an e-mail. Content scripts send it e-mails; it has them classified by the
// WebAssembly edge in the offscreen document, stores each result, and sends
// the ambiguous ones to the backend's /v1/rerank through a persistent queue.
//
// A result (key r:<id>) is
//   {id, subject, bundle, label, confidence, decidedBy: "edge" | "backend",
//    state: "final" | "queued", edge: {label, confidence, candidates, forwarded},
//    backend?: {label, confidence, candidates, reranker}, updatedAt, error?}
// "queued" means the label is the edge's provisional guess and the e-mail is
// waiting in the retry queue; it turns "final" when the backend answers.

import { rerank, MAX_EMAILS_PER_REQUEST } from "./backend.js";
import { getAll, getResults, getSettings, queueKey, resultKey } from "./store.js";

const RETRY_ALARM = "mailsort-retry";
const RETRY_FIRST_MS = 2000;
const RETRY_MAX_MS = 30000;
const OFFSCREEN_URL = "offscreen.html";

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

/** Classifies e-mails {id, subject, body}; answers with their stored results. */
async function classify(emails) {
  const known = await getResults(emails.map((e) => e.id));
  const fresh = emails.filter((e) => !known.has(e.id));
  if (fresh.length > 0) {
    const reply = await askOffscreen({ type: "classify", emails: fresh });
    const updates = {};
    const now = Date.now();
    let queued = 0;
    fresh.forEach((email, i) => {
      const out = reply.results[i];
      const record = {
        id: email.id,
        subject: (email.subject ?? "").slice(0, 120),
        bundle: reply.bundleId,
        updatedAt: now,
      };
      if (out.error !== undefined) {
        Object.assign(record, { state: "error", error: out.error });
      } else {
        const d = out.decision;
        const edge = { label: d.label, confidence: d.confidence, candidates: d.candidates, forwarded: Boolean(out.forward) };
        Object.assign(record, { label: d.label, confidence: d.confidence, decidedBy: "edge", edge });
        if (out.forward) {
          record.state = "queued";
          updates[queueKey(email.id)] = { bundle: reply.bundleId, forward: out.forward, queuedAt: now };
          queued += 1;
        } else {
          record.state = "final";
        }
      }
      updates[resultKey(email.id)] = record;
      known.set(email.id, record);
    });
    await chrome.storage.local.set(updates);
    if (queued > 0) flushQueue();
  }
  return emails.map((e) => known.get(e.id));
}

let flushing = null;
let flushAgain = false;

/**
 * Sends queued e-mails to the backend; on failure, retries with backoff.
 * E-mails queued while a flush is under way are sent by another pass.
 */
function flushQueue() {
  if (flushing) {
    flushAgain = true;
    return flushing;
  }
  flushing = (async () => {
    let sent;
    do {
      flushAgain = false;
      sent = await drainQueue();
    } while (sent && flushAgain);
  })().finally(() => {
    flushing = null;
  });
  return flushing;
}

/** One pass over the queue; false when the backend could not be reached. */
async function drainQueue() {
  let items = await getAll("q:");
  if (items.length === 0) {
    await clearRetry();
    return true;
  }
  const settings = await getSettings();
  if (!settings.backendUrl) {
    await scheduleRetry("no backend URL set: open the extension's options");
    return false;
  }
  items.sort((a, b) => a.queuedAt - b.queuedAt);
  while (items.length > 0) {
    const bundle = items[0].bundle;
    const batch = items.filter((i) => i.bundle === bundle).slice(0, MAX_EMAILS_PER_REQUEST);
    let response;
    try {
      response = await rerank(settings, bundle, batch.map((i) => i.forward));
    } catch (e) {
      await scheduleRetry(String(e?.message ?? e));
      return false;
    }
    const ids = batch.map((i) => i.forward.id);
    const previous = await getResults(ids);
    const updates = {};
    for (const r of response.results) {
      updates[resultKey(r.id)] = {
        ...previous.get(r.id),
        id: r.id,
        label: r.label,
        confidence: r.confidence,
        decidedBy: "backend",
        state: "final",
        backend: {
          label: r.label,
          confidence: r.confidence,
          candidates: r.candidates,
          reranker: response.reranker,
        },
        updatedAt: Date.now(),
      };
    }
    // Results first, queue entries second: a crash in between sends an
    // e-mail twice, never loses it.
    await chrome.storage.local.set(updates);
    await chrome.storage.local.remove(ids.map(queueKey));
    items = items.filter((i) => !batch.includes(i));
  }
  await clearRetry();
  return true;
}

async function scheduleRetry(error) {
  const { retry } = await chrome.storage.local.get("retry");
  const attempt = (retry?.attempt ?? 0) + 1;
  const delay = Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** (attempt - 1));
  const nextAt = Date.now() + delay;
  await chrome.storage.local.set({ retry: { attempt, nextAt, lastError: error } });
  // Packed extensions get alarms no sooner than 30 s; unpacked ones on time.
  await chrome.alarms.create(RETRY_ALARM, { when: nextAt });
}

async function clearRetry() {
  await chrome.alarms.clear(RETRY_ALARM);
  await chrome.storage.local.remove("retry");
}

chrome.alarms.onAlarm.addListener((alarm) => {
  if (alarm.name === RETRY_ALARM) flushQueue();
});

// Whatever was queued before the browser (or this worker) stopped is tried
// again as soon as the worker starts.
chrome.runtime.onStartup.addListener(() => flushQueue());
flushQueue();

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

const handlers = {
  classify: (msg) => classify(msg.emails),
  status: () => status(),
  retryNow: async () => {
    await chrome.storage.local.remove("retry");
    await flushQueue();
    return status();
  },
};

chrome.runtime.onMessage.addListener((msg, _sender, sendResponse) => {
  if (msg?.target !== "background" || !handlers[msg.type]) return false;
  handlers[msg.type](msg)
    .then((value) => sendResponse({ ok: true, value }))
    .catch((e) => sendResponse({ ok: false, error: String(e?.message ?? e) }));
  return true;
});
