// Filing: moving a labelled message into its label's folder, on the user's
// click, on a corrected label, or automatically for decided messages in the
// Inbox when the user has turned auto-filing on. Provisional labels (still
// queued for the backend) are never filed automatically.
//
// A result being moved carries `filing`; a moved one carries `filed`, and
// is never moved again. A move cut short by a crash may be tried once more;
// that cannot file a message twice, because its uid is gone from the source
// folder once the first move went through, and moving an absent uid moves
// nothing.

import { correctionKey, getResults, getSettings, queueKey, resultKey } from "./store.js";
import { notify } from "./sites.js";
import * as roundcube from "./webmail/roundcube.js";

/** The sites that can file, by adapter name: fetchRaw and move. */
const SITES = { roundcube };

let chain = Promise.resolve();

/**
 * Files one message; moves run one at a time, since Roundcube redraws its
 * list after each. Answers the message's updated result.
 */
export function file(request) {
  const run = chain.then(() => fileOne(request));
  chain = run.catch(() => {});
  return run;
}

async function fileOne({ id, tabId, adapter, where, label, auto }) {
  const site = SITES[adapter];
  if (!site) throw new Error(`messages on ${adapter} pages cannot be filed`);
  const record = (await getResults([id])).get(id);
  if (!record || record.state === "error") throw new Error("this message has no label yet");
  if (record.filed) return record;
  const settings = await getSettings();
  if (auto) {
    if (!settings.autoFile) throw new Error("auto-filing is off");
    if (record.state !== "final") throw new Error("a provisional label is never filed automatically");
    if (where.mbox !== "INBOX") return record;
  }
  const target = label ?? record.label;
  const updates = {};
  if (target !== record.label) {
    // Keep the message itself with the corrected label, so that the user's
    // next `mailsort build` learns from it.
    const raw = await site.fetchRaw(settings.mailUrl, where);
    updates[correctionKey(id)] = { id, label: target, was: record.label, raw, at: Date.now() };
  }
  let next = { ...record, filing: { label: target, at: Date.now() } };
  delete next.fileError;
  await chrome.storage.local.set({ ...updates, [resultKey(id)]: next });
  notify([next]);

  const outcome = await site.move(tabId, where, target).catch((e) => ({ error: String(e?.message ?? e) }));
  next = { ...next };
  delete next.filing;
  if (outcome.ok) {
    next.filed = { label: target, folder: outcome.folder, at: Date.now() };
    if (target !== record.label || record.state !== "final") {
      Object.assign(next, { label: target, decidedBy: "user", state: "final" });
    }
  } else {
    next.fileError = outcome.error;
  }
  next.updatedAt = Date.now();
  await chrome.storage.local.set({ [resultKey(id)]: next });
  // The user's choice replaces the backend's answer it was waiting for.
  if (next.decidedBy === "user") await chrome.storage.local.remove(queueKey(id));
  notify([next]);
  return next;
}
