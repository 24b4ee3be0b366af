// The user's mail site: the one origin whose pages get mailsort's content
// script. Nothing is built in: the options page asks for the site's host
// permission on the user's click, and the content script is registered for
// that origin here. What a content script is ever told about an e-mail is
// its label view: no text, no key, nothing of other sites.

import { getSettings } from "./store.js";

const SCRIPT_ID = "mailsort-mail-site";
const ADAPTERS = ["content/adapters/demo.js", "content/adapters/roundcube.js"];

/** The origin of the configured mail site, or null. */
export async function siteOrigin() {
  const { mailUrl } = await getSettings();
  if (!mailUrl) return null;
  try {
    return new URL(mailUrl).origin;
  } catch {
    return null;
  }
}

/** Registers the content script for the configured site (and only it). */
export async function registerSite() {
  const origin = await siteOrigin();
  const registered = await chrome.scripting.getRegisteredContentScripts({ ids: [SCRIPT_ID] });
  const matches = origin ? [`${origin}/*`] : [];
  if (registered.length > 0 && JSON.stringify(registered[0].matches) === JSON.stringify(matches)) return;
  if (registered.length > 0) await chrome.scripting.unregisterContentScripts({ ids: [SCRIPT_ID] });
  if (!origin) return;
  if (!(await chrome.permissions.contains({ origins: matches }))) {
    throw new Error(`mailsort has no permission for ${origin}: save the mail site again in the options`);
  }
  await chrome.scripting.registerContentScripts([
    {
      id: SCRIPT_ID,
      matches,
      js: [...ADAPTERS, "content/content.js"],
      css: ["content/labels.css"],
      allFrames: true,
      runAt: "document_idle",
      persistAcrossSessions: true,
    },
  ]);
}

/** The site's own key of a stored e-mail id. */
export const keyOf = (origin, id) => id.slice(origin.length + 1);

/** What a content script may know of a result: its label and state. */
export function view(origin, record) {
  const v = { key: keyOf(origin, record.id), state: record.state };
  if (record.state === "error") return { ...v, error: record.error };
  Object.assign(v, { label: record.label, confidence: record.confidence, decidedBy: record.decidedBy });
  if (record.filed) v.filed = { label: record.filed.label, folder: record.filed.folder };
  if (record.filing) v.filing = true;
  if (record.fileError) v.fileError = record.fileError;
  return v;
}

/** Sends changed results to the site's open tabs. */
export async function notify(records) {
  const origin = await siteOrigin();
  if (!origin) return;
  const views = records.filter((r) => r?.id?.startsWith(`${origin} `)).map((r) => view(origin, r));
  if (views.length === 0) return;
  const tabs = await chrome.tabs.query({ url: `${origin}/*` });
  const { autoFile } = await getSettings();
  for (const tab of tabs) {
    chrome.tabs.sendMessage(tab.id, { target: "content", type: "update", results: views, autoFile }).catch(() => {
      // A tab without the content script (not loaded yet): it asks when it starts.
    });
  }
}
