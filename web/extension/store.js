// Everything the extension keeps, in chrome.storage.local: it survives
// service-worker restarts and browser restarts, and every extension context
// (service worker, popup, options page, content scripts) can read it and
// watch it change. One key per e-mail, so concurrent writers never race on
// a shared list.
//
//   settings    {backendUrl, apiKey, timeoutMs}
//   r:<id>      the e-mail's current result (see background.js)
//   q:<id>      a forwarded e-mail waiting for the backend: {bundle, forward, queuedAt}
//   retry       {attempt, nextAt, lastError} of the retry queue

export const DEFAULT_SETTINGS = { backendUrl: "", apiKey: "", timeoutMs: 8000 };

export async function getSettings() {
  const { settings } = await chrome.storage.local.get("settings");
  return { ...DEFAULT_SETTINGS, ...settings };
}

export async function saveSettings(settings) {
  await chrome.storage.local.set({ settings: { ...(await getSettings()), ...settings } });
}

export const resultKey = (id) => `r:${id}`;
export const queueKey = (id) => `q:${id}`;

/** Results for these ids (missing ones are absent from the map). */
export async function getResults(ids) {
  const stored = await chrome.storage.local.get(ids.map(resultKey));
  const out = new Map();
  for (const id of ids) {
    const r = stored[resultKey(id)];
    if (r) out.set(id, r);
  }
  return out;
}

/** Every stored entry whose key starts with `prefix`, without the prefix. */
export async function getAll(prefix) {
  const all = await chrome.storage.local.get(null);
  return Object.entries(all)
    .filter(([k]) => k.startsWith(prefix))
    .map(([, v]) => v);
}
