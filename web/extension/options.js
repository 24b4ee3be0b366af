import { getAll, getSettings, saveSettings } from "./store.js";

const form = document.querySelector("#settings");
const field = (name) => document.querySelector(`#${name}`);
const out = document.querySelector("#saved");
const TEXT_FIELDS = ["mailUrl", "backendUrl", "apiKey", "timeoutMs"];

const settings = await getSettings();
for (const name of TEXT_FIELDS) field(name).value = settings[name];
field("autoFile").checked = settings.autoFile;

const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]"]);

/**
 * The URL's origin, or throws with what is wrong with it. `secret`: the API
 * key goes there, so plain http is refused unless it is this machine.
 */
function originOf(text, what, secret = false) {
  let url;
  try {
    url = new URL(text);
  } catch {
    throw new Error(`The ${what} is not a URL.`);
  }
  if (!["http:", "https:"].includes(url.protocol)) throw new Error(`The ${what} must start with https://.`);
  if (secret && url.protocol === "http:" && !LOOPBACK.has(url.hostname)) {
    throw new Error(`The ${what} must use https:// (the API key is sent there); plain http is for this machine only.`);
  }
  return url.origin;
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const mailUrl = field("mailUrl").value.trim();
  const backendUrl = field("backendUrl").value.trim();
  const timeoutMs = Number(field("timeoutMs").value);
  const origins = [];
  try {
    if (mailUrl) origins.push(`${originOf(mailUrl, "webmail URL")}/*`);
    if (backendUrl) origins.push(`${originOf(backendUrl, "backend URL", true)}/*`);
  } catch (e) {
    out.textContent = e.message;
    return;
  }
  if (!(timeoutMs >= 100 && timeoutMs <= 60000)) {
    out.textContent = "The deadline must be between 100 and 60000 ms.";
    return;
  }
  // Loopback is granted in the manifest; any other site needs the user's
  // permission for its origin, asked for here, on their click.
  if (origins.length > 0 && !(await chrome.permissions.request({ origins }))) {
    out.textContent = `Not saved: mailsort needs permission to reach ${origins.join(" and ")}.`;
    return;
  }
  await saveSettings({ mailUrl, backendUrl, apiKey: field("apiKey").value, timeoutMs, autoFile: field("autoFile").checked });
  const reply = await chrome.runtime.sendMessage({ target: "background", type: "siteChanged" });
  out.textContent = reply?.ok ? (mailUrl ? "Saved. Reload your webmail tab." : "Saved.") : `Saved, but: ${reply?.error}`;
  // Anything waiting for a backend gets its chance now.
  chrome.runtime.sendMessage({ target: "background", type: "retryNow" });
});

document.querySelector("#export").addEventListener("click", async () => {
  const corrections = (await getAll("c:")).sort((a, b) => a.at - b.at);
  const status = document.querySelector("#corrections");
  if (corrections.length === 0) {
    status.textContent = "No corrections yet.";
    return;
  }
  const lines = corrections.map(({ id, label, raw }) => JSON.stringify({ id, label, raw }));
  const link = document.createElement("a");
  link.href = URL.createObjectURL(new Blob([`${lines.join("\n")}\n`], { type: "application/x-ndjson" }));
  link.download = "mailsort-corrections.jsonl";
  link.click();
  setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
  status.textContent = `${corrections.length} corrections downloaded.`;
});
