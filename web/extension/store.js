// Everything the extension keeps, in chrome.storage.local: it survives
// service-worker restarts and browser restarts. Only the extension's own
// contexts (service worker, popup, options page) may read it: the service
// worker restricts it to trusted contexts at start, so a content script,
// running in the webmail page's process, can read neither the API key nor
// the e-mail text. One key per e-mail, so concurrent writers never race on
// a shared list.
//
//   settings    {backendUrl, apiKey, timeoutMs, mailUrl, autoFile}
//   r:<id>      the e-mail's current result (see background.js)
//   q:<id>      a forwarded e-mail waiting for the backend: {bundle, forward, queuedAt}
//   c:<id>      a label the user corrected: {id, label, was, raw, at}
//   retry       {attempt, nextAt, lastError} of the retry queue
//
// An e-mail id is "<site origin> <the adapter's key>", so that one site can
// never read or overwrite the results of another.

export const DEFAULT_SETTINGS = { backendUrl: "", apiKey: "", timeoutMs: 8000, mailUrl: "", autoFile: false };

export async function getSettings() {
  const { settings } = await chrome.storage.local.get("settings");
  return { ...DEFAULT_SETTINGS, ...settings };
}

export async function saveSettings(settings) {
  await chrome.storage.local.set({ settings: { ...(await getSettings()), ...settings } });
}

export const resultKey = (id) => `r:${id}`;
export const queueKey = (id) => `q:${id}`;
export const correctionKey = (id) => `c:${id}`;

/** The stored id of a site's message key. */
export const emailId = (origin, key) => `${origin} ${key}`;

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
