// The retry queue of forwarded e-mails: each q:<id> entry is sent to the
// backend's /v1/rerank until it answers; on failure, retries with backoff.
// The queue lives in storage, so it survives service-worker and browser
// restarts and drains as soon as the worker starts again.

import { rerank, MAX_EMAILS_PER_REQUEST } from "./backend.js";
import { getAll, getResults, getSettings, queueKey, resultKey } from "./store.js";

const RETRY_ALARM = "mailsort-retry";
const RETRY_FIRST_MS = 2000;
const RETRY_MAX_MS = 30000;

let flushing = null;
let flushAgain = false;
let onFinal = () => {};

/** Called with the records the backend has just decided. */
export function whenDecided(callback) {
  onFinal = callback;
}

/**
 * Sends queued e-mails to the backend. E-mails queued while a flush is
 * under way are sent by another pass.
 */
export function flushQueue() {
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
      const before = previous.get(r.id);
      // The user filed it by hand meanwhile: their choice stands.
      if (before?.decidedBy === "user") continue;
      updates[resultKey(r.id)] = {
        ...before,
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
    onFinal(Object.values(updates));
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

/** Forgets the backoff and tries the queue now. */
export async function retryNow() {
  await chrome.storage.local.remove("retry");
  await flushQueue();
}
