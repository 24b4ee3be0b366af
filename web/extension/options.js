import { getSettings, saveSettings } from "./store.js";

const form = document.querySelector("#settings");
const field = (name) => document.querySelector(`#${name}`);
const out = document.querySelector("#saved");

const settings = await getSettings();
for (const name of ["backendUrl", "apiKey", "timeoutMs"]) field(name).value = settings[name];

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const backendUrl = field("backendUrl").value.trim();
  const timeoutMs = Number(field("timeoutMs").value);
  if (backendUrl) {
    let url;
    try {
      url = new URL(backendUrl);
    } catch {
      out.textContent = "Not a URL.";
      return;
    }
    // Loopback is granted in the manifest; any other backend needs the
    // user's permission for its origin (asked for here, on their click).
    const granted = await chrome.permissions.request({ origins: [`${url.origin}/*`] });
    if (!granted) {
      out.textContent = `Not saved: mailsort needs permission to reach ${url.origin}.`;
      return;
    }
  }
  if (!(timeoutMs >= 100 && timeoutMs <= 60000)) {
    out.textContent = "The deadline must be between 100 and 60000 ms.";
    return;
  }
  await saveSettings({ backendUrl, apiKey: field("apiKey").value, timeoutMs });
  out.textContent = "Saved.";
  // Anything waiting for a backend gets its chance now.
  chrome.runtime.sendMessage({ target: "background", type: "retryNow" });
});
