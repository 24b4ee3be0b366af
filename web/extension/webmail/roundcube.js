// Roundcube, as the service worker uses it: the raw message through
// Roundcube's own "view source" action (with the user's session cookie,
// from this worker, never from the page), and filing through Roundcube's
// own move action in the tab, so that its list, counts and IMAP store stay
// in step. The page-side half is content/adapters/roundcube.js.

/** Bytes of a message read at most: cleaning needs the headers and the first text part. */
export const MAX_RAW_BYTES = 1 << 20;

/** Roundcube's base URL (the folder its index.php is in) from what the user typed. */
export function baseUrl(mailUrl) {
  const url = new URL(mailUrl);
  return `${url.origin}${url.pathname.replace(/[^/]*$/, "")}`;
}

/** The raw RFC 5322 message `uid` of folder `mbox`, as text (cut at MAX_RAW_BYTES). */
export async function fetchRaw(mailUrl, { mbox, uid }) {
  const url = new URL(baseUrl(mailUrl));
  url.search = new URLSearchParams({ _task: "mail", _action: "viewsource", _uid: String(uid), _mbox: mbox }).toString();
  let response;
  try {
    response = await fetch(url, { credentials: "include", redirect: "manual", signal: AbortSignal.timeout(20_000) });
  } catch (e) {
    throw new Error(`Roundcube unreachable (${e?.message ?? e})`);
  }
  if (response.type === "opaqueredirect" || !response.ok) {
    throw new Error(`Roundcube answered ${response.status || "a redirect"} for message ${uid} in ${mbox}`);
  }
  // Logged out, Roundcube answers its login page instead of the message.
  if (!/^text\/plain/.test(response.headers.get("content-type") ?? "")) {
    throw new Error("Roundcube did not send the message: log in to Roundcube again");
  }
  const reader = response.body.getReader();
  const chunks = [];
  let size = 0;
  while (size < MAX_RAW_BYTES) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    size += value.length;
  }
  await reader.cancel().catch(() => {});
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    bytes.set(c, at);
    at += c.length;
  }
  // Latin-1 keeps every byte as one character, as the native reader does
  // with 8-bit headers; MIME parts are decoded by their own charsets later.
  return new TextDecoder(isUtf8(bytes) ? "utf-8" : "latin1").decode(bytes.subarray(0, Math.min(size, MAX_RAW_BYTES)));
}

function isUtf8(bytes) {
  try {
    new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    return true;
  } catch {
    return false;
  }
}

/**
 * Files message `uid` of `mbox` under `label` with Roundcube's own move, in
 * the tab's page. Answers {ok, folder} or {error, folder?}.
 */
export async function move(tabId, { mbox, uid }, label) {
  const [injection] = await chrome.scripting.executeScript({
    target: { tabId, frameIds: [0] },
    world: "MAIN",
    func: moveInPage,
    args: [mbox, String(uid), label],
  });
  return injection?.result ?? { error: "the Roundcube tab did not answer" };
}

// Runs in the page, where Roundcube's `rcmail` lives; it gets only the
// folder, the message's uid and the label. A label's levels are joined with
// the server's delimiter, as `mailsort sort` names folders over IMAP.
function moveInPage(mbox, uid, label) {
  return new Promise((resolve) => {
    const rc = window.rcmail;
    if (!rc?.env?.task) return resolve({ error: "this tab is not a Roundcube page" });
    const delimiter = rc.env.delimiter;
    const folder = delimiter && delimiter !== "/" ? label.split("/").join(delimiter) : label;
    if (folder === mbox) return resolve({ ok: true, folder });
    if (rc.env.mailbox !== mbox) return resolve({ error: `Roundcube shows ${rc.env.mailbox} now, not ${mbox}`, folder });
    if (rc.env.mailboxes && !(folder in rc.env.mailboxes)) {
      return resolve({ error: `Roundcube has no folder "${folder}" for the label ${label}`, folder });
    }
    const timer = setTimeout(() => {
      rc.removeEventListener("responseaftermove", done);
      resolve({ error: "Roundcube did not answer the move within 20 s", folder });
    }, 20_000);
    function done(event) {
      clearTimeout(timer);
      rc.removeEventListener("responseaftermove", done);
      const exec = event?.response?.exec ?? "";
      resolve(/errormoving|internalerror/.test(exec) ? { error: `Roundcube could not move the message to ${folder}`, folder } : { ok: true, folder });
    }
    rc.addEventListener("responseaftermove", done);
    rc.move_messages(folder, null, [uid]);
  });
}
