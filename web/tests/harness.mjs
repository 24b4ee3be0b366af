// What the browser tests share: waiting, ports, a real mailsort-backend,
// Chromium with the unpacked extension, and a look at what it stored.
// Used by extension.test.mjs (demo page) and webmail.test.mjs (Roundcube).
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

export const WEB = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
export const EXTENSION = path.join(WEB, "extension");

export const env = (name) => {
  const v = process.env[name];
  assert.ok(v, `${name} is not set: run this test through its script in scripts/test/`);
  return v;
};
export const jsonl = (file) =>
  readFileSync(file, "utf8").split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l));
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export async function until(what, check, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(250);
  }
}

export async function freePort() {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * Starts mailsort-backend (MAILSORT_TEST_BACKEND, serving
 * MAILSORT_TEST_BUNDLE) on `port` with API key `key`; waits for /ready.
 */
export async function startBackend(port, key) {
  const child = spawn(
    env("MAILSORT_TEST_BACKEND"),
    ["--bind", `127.0.0.1:${port}`, "--bundle", env("MAILSORT_TEST_BUNDLE"), "--device", "cpu", "--threads", "1"],
    { env: { ...process.env, MAILSORT_API_KEYS: key, MAILSORT_LOG: "warn" }, stdio: ["ignore", "inherit", "inherit"] },
  );
  let exited = null;
  child.on("exit", (code) => {
    exited = code;
  });
  await until(
    "the backend's /ready",
    async () => {
      if (exited !== null) throw new Error(`mailsort-backend exited with ${exited}`);
      try {
        return (await fetch(`http://127.0.0.1:${port}/ready`)).ok;
      } catch {
        return false;
      }
    },
    180_000,
  );
  return {
    async stop() {
      if (exited !== null) return;
      const gone = new Promise((resolve) => child.on("exit", resolve));
      child.kill("SIGTERM");
      await gone;
    },
  };
}

/** Chromium (Debian's, headless) with the unpacked extension; answers its service worker and id. */
export async function launch(profile) {
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
    headless: true,
    acceptDownloads: true,
    args: [
      `--disable-extensions-except=${EXTENSION}`,
      `--load-extension=${EXTENSION}`,
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  const worker = context.serviceWorkers()[0] ?? (await context.waitForEvent("serviceworker", { timeout: 60_000 }));
  return { context, worker, id: new URL(worker.url()).host };
}

/** Fills in and saves the options page; answers its status line. */
export async function saveOptions(browser, fields) {
  const page = await browser.context.newPage();
  await page.goto(`chrome-extension://${browser.id}/options.html`);
  for (const [name, value] of Object.entries(fields)) {
    if (typeof value === "boolean") await page.setChecked(`#${name}`, value);
    else await page.fill(`#${name}`, String(value));
  }
  await page.click("#save");
  const status = await until("the options page's answer", async () => (await page.textContent("#saved")) || null, 10_000);
  await page.close();
  return status;
}

/**
 * Everything the extension stored: results, queue entries and corrections
 * by the site's own key (stored ids are "<site origin> <key>").
 */
export async function stored(worker) {
  const all = await worker.evaluate(() => chrome.storage.local.get(null));
  const local = (id) => id.slice(id.indexOf(" ") + 1);
  const pick = (prefix) =>
    new Map(Object.entries(all).filter(([k]) => k.startsWith(prefix)).map(([k, v]) => [local(k.slice(prefix.length)), v]));
  return { results: pick("r:"), queue: pick("q:"), corrections: pick("c:"), retry: all.retry, settings: all.settings };
}
