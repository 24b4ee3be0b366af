// The extension, end to end, in real Chromium (Debian's, headless, fresh
// profile) through playwright-core: it is loaded unpacked from
// web/extension/, labels the demo mail page (web/demo/), sends ambiguous
// e-mails to a real mailsort-backend on loopback, and keeps them queued
// across a browser restart while the backend is down.
// Inputs come from scripts/test/browser.sh through environment variables:
//   MAILSORT_TEST_BUNDLE    the bundle packed into the extension
//   MAILSORT_TEST_NATIVE    JSONL of the native CLI's decisions on the demo inbox
//   MAILSORT_TEST_BACKEND   the mailsort-backend binary (with ORT_DYLIB_PATH,
//                           MAILSORT_MODEL_DIR and MAILSORT_RERANKER_DIR set)
//   CHROMIUM_PATH           optional, default /usr/bin/chromium
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { readFile } from "node:fs/promises";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { WEB, env, freePort, jsonl, launch, sleep, startBackend, stored, until } from "./harness.mjs";

const DEMO = path.join(WEB, "demo");
const KEY = "browser-test-key-0123456789";

const TYPES = { ".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".json": "application/json" };

/** Serves web/demo/ on loopback, as a webmail site would serve its page. */
async function serveDemo() {
  const server = http.createServer(async (req, res) => {
    const name = new URL(req.url, "http://demo").pathname.replace(/^\/$/, "/index.html");
    const file = path.join(DEMO, path.normalize(name));
    try {
      assert.ok(file.startsWith(DEMO));
      const body = await readFile(file);
      res.writeHead(200, { "content-type": TYPES[path.extname(file)] ?? "application/octet-stream" });
      res.end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return server;
}

/** Opens a slice of the demo inbox and waits until every message has a label. */
async function openInbox(context, base, from, to) {
  const page = await context.newPage();
  await page.goto(`${base}/?from=${from}&to=${to}`);
  await until(
    `labels on ${to - from} messages`,
    async () => (await page.locator("article.message .mailsort-label").count()) === to - from,
    300_000,
  );
  return page;
}

async function badges(page) {
  return page.$$eval("article.message", (articles) =>
    articles.map((a) => {
      const badge = a.querySelector(".mailsort-label");
      return { id: a.dataset.id, ...badge.dataset };
    }),
  );
}

test("the extension labels real mail in Chromium and forwards the ambiguous part", async (t) => {
  const native = new Map(jsonl(env("MAILSORT_TEST_NATIVE")).map((d) => [d.id, d]));
  const ids = [...native.keys()];
  assert.equal(ids.length, 200);
  const forwardedIn = (from, to) => ids.slice(from, to).filter((id) => native.get(id).decided_by === "backend");
  assert.ok(forwardedIn(0, 150).length > 0 && forwardedIn(150, 200).length > 0, "both slices hold ambiguous e-mail");

  const demo = await serveDemo();
  const base = `http://127.0.0.1:${demo.address().port}`;
  const port = await freePort();
  const profile = mkdtempSync(path.join(os.tmpdir(), "mailsort-chromium-"));
  let backend = await startBackend(port, KEY);
  let browser = await launch(profile);
  t.after(async () => {
    await browser.context.close().catch(() => {});
    await backend.stop();
    demo.close();
    rmSync(profile, { recursive: true, force: true });
  });

  await t.test("the options page stores the mail site, the backend URL and key", async () => {
    const page = await browser.context.newPage();
    await page.goto(`chrome-extension://${browser.id}/options.html`);
    await page.fill("#mailUrl", `${base}/`);
    await page.fill("#backendUrl", `http://127.0.0.1:${port}`);
    await page.fill("#apiKey", KEY);
    await page.fill("#timeoutMs", "20000");
    await page.click("#save");
    await until("Saved.", async () => (await page.textContent("#saved")).startsWith("Saved."), 10_000);
    assert.equal(await page.textContent("#saved"), "Saved. Reload your webmail tab.");
    const settings = await browser.worker.evaluate(() => chrome.storage.local.get("settings"));
    assert.deepEqual(settings.settings, {
      mailUrl: `${base}/`,
      backendUrl: `http://127.0.0.1:${port}`,
      apiKey: KEY,
      timeoutMs: 20000,
      autoFile: false,
    });
    await page.close();
  });

  await t.test("labels appear, and ambiguous e-mails come back reranked by the backend", async () => {
    const started = Date.now();
    const page = await openInbox(browser.context, base, 0, 150);
    const expected = forwardedIn(0, 150);
    let last = null;
    await until(
      "the backend's answers",
      async () => {
        last = await stored(browser.worker);
        return last.queue.size === 0 && (await badges(page)).every((b) => b.mailsortState === "final");
      },
      120_000,
    ).catch((e) => {
      throw new Error(`${e.message}; ${last?.queue.size} still queued, last error: ${last?.retry?.lastError}`);
    });
    const { results } = await stored(browser.worker);
    const shown = await badges(page);
    for (const b of shown) {
      const r = results.get(b.id);
      assert.equal(b.mailsortLabel, r.label, `badge of ${b.id}`);
      assert.equal(b.mailsortDecidedBy, r.decidedBy);
    }
    for (const id of expected) {
      const r = results.get(id);
      assert.equal(r.decidedBy, "backend", `${id} was forwarded`);
      assert.ok(r.backend.reranker.name, "the answer names the reranker");
      const edgeLabels = r.edge.candidates.map((c) => c.label);
      assert.deepEqual(r.backend.candidates.map((c) => c.label).sort(), [...edgeLabels].sort());
      assert.ok(Math.abs(r.backend.candidates.reduce((s, c) => s + c.probability, 0) - 1) < 1e-3);
    }
    console.log(`150 e-mails labelled in ${((Date.now() - started) / 1000).toFixed(1)} s (model load included); ${expected.length} reranked by the backend`);
    await page.close();
  });

  const waiting = forwardedIn(150, 200);
  await t.test("with the backend down, ambiguous e-mails show provisional labels and stay queued", async () => {
    await backend.stop();
    const page = await openInbox(browser.context, base, 150, 200);
    const shown = new Map((await badges(page)).map((b) => [b.id, b]));
    for (const id of waiting) {
      assert.equal(shown.get(id).mailsortState, "queued", `${id} is provisional`);
      assert.equal(shown.get(id).mailsortLabel, native.get(id).label, "the provisional label is the edge's");
    }
    const s = await until("a failed retry", async () => {
      const now = await stored(browser.worker);
      return now.retry ? now : null;
    }, 30_000);
    assert.deepEqual([...s.queue.keys()].sort(), [...waiting].sort());
    assert.match(s.retry.lastError, /unreachable/);
    await page.close();
  });

  await t.test("the queue survives a browser restart and drains when the backend is back", async () => {
    await browser.context.close();
    browser = await launch(profile);
    await sleep(3000);
    let s = await stored(browser.worker);
    assert.deepEqual([...s.queue.keys()].sort(), [...waiting].sort(), "still queued after the restart");
    for (const id of waiting) assert.equal(s.results.get(id).state, "queued");

    backend = await startBackend(port, KEY);
    const started = Date.now();
    s = await until("the queue to drain", async () => {
      const now = await stored(browser.worker);
      return now.queue.size === 0 ? now : null;
    }, 120_000);
    console.log(`queue of ${waiting.length} drained ${((Date.now() - started) / 1000).toFixed(1)} s after the backend was ready`);
    for (const id of waiting) {
      assert.equal(s.results.get(id).state, "final");
      assert.equal(s.results.get(id).decidedBy, "backend");
    }
    const page = await openInbox(browser.context, base, 150, 200);
    for (const b of await badges(page)) {
      assert.equal(b.mailsortState, "final");
      assert.equal(b.mailsortDecidedBy, waiting.includes(b.id) ? "backend" : "edge");
    }
    await page.close();
  });

  await t.test("the edge in Chromium decides like the native CLI", async () => {
    const { results } = await stored(browser.worker);
    assert.equal(results.size, 200);
    let same = 0;
    let maxDiff = 0;
    for (const [id, n] of native) {
      const edge = results.get(id).edge;
      const forwarded = results.get(id).edge.forwarded;
      if (edge.label === n.label && forwarded === (n.decided_by === "backend")) same += 1;
      const theirs = new Map(n.candidates.map((c) => [c.label, c.probability]));
      for (const c of edge.candidates) {
        if (theirs.has(c.label)) maxDiff = Math.max(maxDiff, Math.abs(c.probability - theirs.get(c.label)));
      }
    }
    console.log(`Chromium vs native: same decision ${same}/200, max |p diff| ${maxDiff.toExponential(2)}`);
    assert.ok(same >= 198, `${same}/200 decisions agree`);
    assert.ok(maxDiff <= 1e-3, `probabilities differ by ${maxDiff}`);
  });

  await t.test("the popup lists every e-mail with label, confidence and where it was decided", async () => {
    const page = await browser.context.newPage();
    await page.goto(`chrome-extension://${browser.id}/popup.html`);
    await until("200 rows", async () => (await page.locator("#results tr").count()) === 200, 10_000);
    const rows = await page.$$eval("#results tr", (trs) => trs.map((tr) => [...tr.cells].map((c) => c.textContent)));
    const byBackend = rows.filter((r) => r[3] === "backend").length;
    assert.equal(byBackend, forwardedIn(0, 200).length);
    assert.ok(rows.every((r) => r[1] && /%$/.test(r[2])));
    await page.close();
  });
});
