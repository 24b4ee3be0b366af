// Hosts the edge worker for the service worker: relays its messages and
// keeps the worker (and so the loaded model) alive between them.

const worker = new Worker("edge-worker.js", { type: "module" });
const pending = new Map();
let nextId = 0;

worker.onmessage = ({ data }) => {
  pending.get(data.id)?.(data);
  pending.delete(data.id);
};

worker.onerror = (event) => {
  for (const reply of pending.values()) reply({ ok: false, error: `edge worker failed: ${event.message}` });
  pending.clear();
};

// Only the service worker may ask: content scripts can message every
// extension context, and must not get the edge to work for them directly.
const WORKER_URL = chrome.runtime.getURL("background.js");

chrome.runtime.onMessage.addListener((msg, sender, sendResponse) => {
  if (msg?.target !== "offscreen") return false;
  if (sender.id !== chrome.runtime.id || sender.url !== WORKER_URL) {
    sendResponse({ ok: false, error: "only mailsort's service worker may use the edge" });
    return false;
  }
  const id = nextId++;
  pending.set(id, sendResponse);
  worker.postMessage({ id, type: msg.type, emails: msg.emails });
  return true;
});
