// The extension in a real webmail: Roundcube over Dovecot, in Debian's
// Chromium, with a real mailsort-backend. The user points the extension at
// Roundcube in its options and logs in; then:
//   - every message gets a badge equal to the native CLI's decision on the
//     same raw message (forwarded ones as the backend answers them), across
//     pages, the opened message, a search and new mail;
//   - a click files a message, a correction files it elsewhere and is
//     exported as labelled JSONL; both moves are checked over IMAP;
//   - content scripts are told labels only: not the API key, not the text;
//   - with the backend down, labels are provisional and retried, and
//     auto-filing files decided messages only; after a browser restart the
//     queue drains and the rest is filed: every message ends in exactly one
//     folder, the one its final label names.
// Inputs come from scripts/test/webmail.sh through environment variables:
//   MAILSORT_TEST_MAIL        JSONL {id, label, raw} of the posts in the mailbox
//   MAILSORT_TEST_NATIVE      the native CLI's decisions on them
//   MAILSORT_TEST_FORWARDED   the CLI's /v1/rerank bodies for the forwarded ones
//   MAILSORT_TEST_ROUNDCUBE   Roundcube's URL; MAILSORT_TEST_IMAP_PORT, Dovecot's port
//   MAILSORT_TEST_CORRECTIONS where to save the exported corrections
//   MAILSORT_TEST_BUNDLE, MAILSORT_TEST_BACKEND  as for extension.test.mjs
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { WEB, env, freePort, jsonl, launch, saveOptions, sleep, startBackend, stored, until } from "./harness.mjs";

const KEY = "webmail-test-key-0123456789";
const IMAP = path.join(WEB, "..", "scripts", "test", "imap_mail.py");
const ROUNDCUBE = env("MAILSORT_TEST_ROUNDCUBE");
const ORIGIN = new URL(ROUNDCUBE).origin;
const VIEW_FIELDS = new Set(["key", "state", "label", "confidence", "decidedBy", "filed", "filing", "fileError", "error"]);

const imap = (...args) =>
  JSON.parse(execFileSync("python3", [IMAP, "--port", env("MAILSORT_TEST_IMAP_PORT"), ...args], { encoding: "utf8" }));
const folderOf = (label) => label.replaceAll("/", ".");
const messageId = (raw) => raw.match(/^Message-ID:\s*(\S+)/im)[1];

/** Logs in to Roundcube (when asked) and waits for the message list. */
async function openRoundcube(context) {
  const page = await context.newPage();
  await page.goto(ROUNDCUBE);
  if (await page.locator("#rcmloginuser").count()) {
    await page.fill("#rcmloginuser", "alice");
    await page.fill("#rcmloginpwd", "secret");
    await page.click("#rcmloginsubmit");
  }
  await page.waitForSelector("#messagelist", { timeout: 30_000 });
  return page;
}

/** Each listed message: its uid and its badge's data (null before it has one). */
async function rows(page) {
  return page.$$eval("#messagelist tbody tr.message", (trs) =>
    // Roundcube hides the rows of moved messages rather than removing them.
    trs.filter((tr) => tr.style.display !== "none").map((tr) => {
      const link = tr.querySelector('a[href*="_uid="]');
      const uid = Number(new URL(link.href).searchParams.get("_uid"));
      const badge = tr.querySelector(".mailsort-label");
      return { uid, badge: badge ? { ...badge.dataset, text: badge.textContent } : null };
    }),
  );
}

/** Waits until every listed message has a badge in one of `states`; answers the rows. */
async function labelled(page, what, states = ["final", "queued"], timeoutMs = 180_000) {
  return until(
    what,
    async () => {
      const now = await rows(page);
      return now.length > 0 && now.every((r) => r.badge && states.includes(r.badge.mailsortState)) ? now : null;
    },
    timeoutMs,
  );
}

/** The list row of message `uid`. */
const row = (page, uid) => page.locator("#messagelist tbody tr.message", { has: page.locator(`a[href*="_uid=${uid}&"]`) });

/** Runs a Roundcube command, as its toolbar buttons do. */
async function roundcube(page, command) {
  await page.evaluate((c) => rcmail.command(c), command);
}

/** Waits for Roundcube's list to settle after a command. */
async function settled(page) {
  await until("Roundcube to finish its request", () => page.evaluate(() => !rcmail.busy && rcmail.env.messagecount !== undefined), 30_000);
  await sleep(300);
}

test("the extension labels and files mail in Roundcube, in Chromium", async (t) => {
  const mail = jsonl(env("MAILSORT_TEST_MAIL"));
  const native = new Map(jsonl(env("MAILSORT_TEST_NATIVE")).map((d) => [d.id, d]));
  const byId = new Map(mail.map((m) => [m.id, m]));
  const forwarded = mail.map((m) => m.id).filter((id) => native.get(id).decided_by === "backend");
  const kept = mail.map((m) => m.id).filter((id) => native.get(id).decided_by !== "backend");
  assert.ok(forwarded.length >= 4, `only ${forwarded.length} of ${mail.length} posts are forwarded`);
  // New mail while all is up, new mail during an outage, and the rest from the start.
  const later = [forwarded[0], kept[0]];
  const outage = [forwarded[1], forwarded[2], kept[1]];
  const first = mail.map((m) => m.id).filter((id) => !later.includes(id) && !outage.includes(id));

  const port = await freePort();
  const profile = mkdtempSync(path.join(os.tmpdir(), "mailsort-webmail-"));
  let backend = await startBackend(port, KEY);
  let browser = await launch(profile);
  t.after(async () => {
    await browser.context.close().catch(() => {});
    await backend.stop();
    rmSync(profile, { recursive: true, force: true });
  });

  // What the native CLI's decisions end as: the edge's label, or the
  // backend's answer to the CLI's own /v1/rerank body.
  const expected = new Map(kept.map((id) => [id, native.get(id).label]));
  for (const body of jsonl(env("MAILSORT_TEST_FORWARDED"))) {
    const response = await fetch(`http://127.0.0.1:${port}/v1/rerank`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${KEY}` },
      body: JSON.stringify(body),
    });
    assert.equal(response.status, 200, await response.clone().text());
    for (const r of (await response.json()).results) expected.set(r.id, r.label);
  }
  assert.equal(expected.size, mail.length);

  const uidOf = new Map(); // post id -> uid in INBOX
  const postOf = new Map(); // uid -> post id
  const seed = (ids) => {
    for (const [id, uid] of Object.entries(imap("append", env("MAILSORT_TEST_MAIL"), ...ids))) {
      uidOf.set(id, uid);
      postOf.set(uid, id);
    }
  };
  /** Where each post is over IMAP: post id -> [folders]. */
  const whereIs = () => {
    const byMessageId = new Map(mail.map((m) => [messageId(m.raw), m.id]));
    const out = new Map();
    for (const [folder, messages] of Object.entries(imap("state"))) {
      for (const mid of Object.values(messages)) {
        const id = byMessageId.get(mid);
        if (id) out.set(id, [...(out.get(id) ?? []), folder]);
      }
    }
    return out;
  };
  const agreement = { same: 0, total: 0 };
  const check = (shown) => {
    for (const r of shown) {
      const id = postOf.get(r.uid);
      assert.ok(id, `uid ${r.uid} is not a seeded post`);
      agreement.total += 1;
      if (r.badge.mailsortLabel === expected.get(id)) agreement.same += 1;
    }
  };
  let page;

  await t.test("the options page registers Roundcube as the mail site", async () => {
    assert.match(
      await saveOptions(browser, { mailUrl: ROUNDCUBE, backendUrl: "http://mailsort.example.com", apiKey: KEY }),
      /^The backend URL must use https:/,
      "a plain-http backend off this machine is refused",
    );
    assert.equal((await stored(browser.worker)).settings, undefined, "nothing was saved");
    const status = await saveOptions(browser, { mailUrl: ROUNDCUBE, backendUrl: `http://127.0.0.1:${port}`, apiKey: KEY, timeoutMs: 20000 });
    assert.equal(status, "Saved. Reload your webmail tab.");
    const scripts = await browser.worker.evaluate(() => chrome.scripting.getRegisteredContentScripts());
    assert.deepEqual(scripts.map((s) => s.matches), [[`${ORIGIN}/*`]]);
  });

  await t.test("every message gets the native CLI's label, on every page, in the opened message", async () => {
    seed(first);
    const started = Date.now();
    page = await openRoundcube(browser.context);
    const pages = await page.evaluate(() => rcmail.env.pagecount);
    assert.ok(pages >= 2, "the inbox spans pages");
    for (let p = 1; p <= pages; p++) {
      if (p > 1) {
        await roundcube(page, "nextpage");
        await settled(page);
      }
      await labelled(page, `badges on page ${p}`);
    }
    await until("the backend's answers", async () => (await stored(browser.worker)).queue.size === 0, 120_000);
    const { results } = await stored(browser.worker);
    for (const id of first.filter((i) => forwarded.includes(i))) {
      assert.equal(results.get(`INBOX:${uidOf.get(id)}`).decidedBy, "backend", `${id} was reranked`);
    }
    await roundcube(page, "firstpage");
    await settled(page);
    for (let p = 1; p <= pages; p++) {
      if (p > 1) {
        await roundcube(page, "nextpage");
        await settled(page);
      }
      check(await labelled(page, `final badges on page ${p}`, ["final"]));
    }
    assert.equal(agreement.total, first.length);
    console.log(`${first.length} messages labelled in ${((Date.now() - started) / 1000).toFixed(1)} s; same label as the native CLI: ${agreement.same}/${agreement.total}`);

    // The opened message (Roundcube's preview frame) shows the same label.
    await roundcube(page, "firstpage");
    await settled(page);
    const [top] = await labelled(page, "page 1 again", ["final"]);
    await row(page, top.uid).locator("td.subject span.fromto").click();
    const frame = await until("the preview", async () => page.frames().find((f) => f.url().includes("_action=preview")), 20_000);
    const inPreview = await until("a badge in the preview", async () => {
      const b = await frame.$("#message-header .mailsort-label").catch(() => null);
      return b ? b.evaluate((el) => ({ ...el.dataset })) : null;
    }, 20_000);
    assert.equal(inPreview.mailsortLabel, top.badge.mailsortLabel);
  });

  await t.test("a search and new mail get badges too", async () => {
    const target = first[first.length - 1];
    const word = byId.get(target).raw.match(/^Subject:(.*)$/im)[1].split(/\W+/).filter((w) => w.length >= 5).sort((a, b) => b.length - a.length)[0];
    await page.fill("#mailsearchform input, input[name=_q]", word);
    await page.press("#mailsearchform input, input[name=_q]", "Enter");
    await settled(page);
    const found = await labelled(page, `badges on the search for "${word}"`, ["final"]);
    assert.ok(found.some((r) => r.uid === uidOf.get(target)), `the search for "${word}" lists ${target}`);
    await roundcube(page, "reset-search");
    await settled(page);

    const before = agreement.same;
    seed(later);
    await roundcube(page, "checkmail");
    await until("the new mail in the list", async () => {
      const uids = (await rows(page)).map((r) => r.uid);
      return later.every((id) => uids.includes(uidOf.get(id)));
    }, 30_000);
    const shown = await labelled(page, "final badges on new mail", ["final"], 120_000);
    check(shown.filter((r) => later.includes(postOf.get(r.uid))));
    assert.equal(agreement.same - before, later.length, "new mail gets the native CLI's labels");
  });

  let clicked;
  let corrected;
  await t.test("a click files a message; a correction files it elsewhere and is exported", async () => {
    const shown = await labelled(page, "page 1", ["final"]);
    clicked = postOf.get(shown[0].uid);
    await row(page, shown[0].uid).locator(".mailsort-file").click();
    await until(`${clicked} filed`, async () => (await stored(browser.worker)).results.get(`INBOX:${uidOf.get(clicked)}`)?.filed, 30_000);
    assert.deepEqual(whereIs().get(clicked), [folderOf(expected.get(clicked))], "filed into its label's folder over IMAP");
    await until("the filed row to leave the list", async () => !(await rows(page)).some((r) => r.uid === uidOf.get(clicked)), 10_000);

    await settled(page);
    const [next] = await labelled(page, "page 1 after the move", ["final"]);
    corrected = postOf.get(next.uid);
    const labels = [...new Set(mail.map((m) => m.label))];
    const other = labels.find((l) => l !== next.badge.mailsortLabel);
    await row(page, next.uid).locator("select.mailsort-correct").selectOption(other);
    await until(`${corrected} filed`, async () => (await stored(browser.worker)).results.get(`INBOX:${uidOf.get(corrected)}`)?.filed, 30_000);
    expected.set(corrected, other);
    assert.deepEqual(whereIs().get(corrected), [folderOf(other)], "filed into the corrected label's folder");
    const s = await stored(browser.worker);
    assert.equal(s.results.get(`INBOX:${uidOf.get(corrected)}`).decidedBy, "user");
    assert.deepEqual([...s.corrections.keys()], [`INBOX:${uidOf.get(corrected)}`]);

    const options = await browser.context.newPage();
    await options.goto(`chrome-extension://${browser.id}/options.html`);
    const [download] = await Promise.all([options.waitForEvent("download"), options.click("#export")]);
    await download.saveAs(env("MAILSORT_TEST_CORRECTIONS"));
    await options.close();
    const exported = jsonl(env("MAILSORT_TEST_CORRECTIONS"));
    assert.equal(exported.length, 1);
    assert.equal(exported[0].label, other);
    assert.equal(messageId(exported[0].raw), messageId(byId.get(corrected).raw), "the correction keeps its message");
  });

  await t.test("content scripts are told labels only: no API key, no e-mail text", async () => {
    const cdp = await browser.context.newCDPSession(page);
    const contexts = [];
    cdp.on("Runtime.executionContextCreated", ({ context }) => contexts.push(context));
    await cdp.send("Runtime.enable");
    const isolated = await until("mailsort's content-script world", async () =>
      contexts.find((c) => c.auxData?.type === "isolated" && c.name === "mailsort" && c.auxData?.isDefault === false), 10_000);
    const run = async (expression) => {
      const { result, exceptionDetails } = await cdp.send("Runtime.evaluate", {
        expression,
        contextId: isolated.id,
        awaitPromise: true,
        returnByValue: true,
      });
      assert.ok(!exceptionDetails, JSON.stringify(exceptionDetails));
      return result.value;
    };
    const storage = await run(`(async () => {
      try { return "read " + JSON.stringify(await chrome.storage.local.get(null)); }
      catch (e) { return "refused: " + e.message; }
    })()`);
    assert.match(storage, /^refused/, "the content script cannot read the extension's storage");
    const status = await run(`chrome.runtime.sendMessage({ target: "background", type: "status" })`);
    assert.equal(status.ok, false, "the content script cannot ask for the stored results");
    const edge = await run(`chrome.runtime.sendMessage({ target: "offscreen", type: "classify", emails: [{ id: "x", subject: "s", body: "b" }] })`);
    assert.ok(!edge?.ok, "the content script cannot use the edge directly");

    const fwd = forwarded.find((id) => first.includes(id));
    const reply = await run(`chrome.runtime.sendMessage({ target: "background", type: "labels", adapter: "roundcube",
      messages: [{ key: "INBOX:${uidOf.get(fwd)}", mbox: "INBOX", uid: "${uidOf.get(fwd)}" }] })`);
    assert.equal(reply.ok, true, reply.error);
    const [v] = reply.value.results;
    assert.ok(Object.keys(v).every((k) => VIEW_FIELDS.has(k)), `a view holds only ${[...VIEW_FIELDS]}: ${Object.keys(v)}`);
    const text = JSON.stringify(reply);
    const forwardText = jsonl(env("MAILSORT_TEST_FORWARDED")).flatMap((b) => b.emails).find((e) => e.id === fwd).text;
    assert.ok(!text.includes(KEY), "no API key in what content scripts get");
    assert.ok(!text.includes(forwardText.slice(0, 60)), "no e-mail text in what content scripts get");

    const html = await page.evaluate(() => document.documentElement.outerHTML);
    assert.ok(!html.includes(KEY), "no API key in the page");
    for (const b of await page.$$eval(".mailsort-label", (els) => els.map((e) => ({ ...e.dataset })))) {
      assert.deepEqual(Object.keys(b).filter((k) => !["mailsortKey", "mailsortState", "mailsortLabel", "mailsortDecidedBy", "mailsortFiled", "mailsortFileError"].includes(k)), []);
    }
    await cdp.detach();

    // Another origin (the same server, by another name) gets no content script.
    const other = await browser.context.newPage();
    const otherCdp = await browser.context.newCDPSession(other);
    const otherContexts = [];
    otherCdp.on("Runtime.executionContextCreated", ({ context }) => otherContexts.push(context));
    await otherCdp.send("Runtime.enable");
    await other.goto(ROUNDCUBE.replace("127.0.0.1", "localhost"));
    await sleep(2000);
    assert.ok(!otherContexts.some((c) => c.name === "mailsort"), "mailsort runs only on the configured site");
    await other.close();
  });

  await t.test("with the backend down, labels are provisional and auto-filing files decided ones only", async () => {
    await backend.stop();
    seed(outage);
    await roundcube(page, "checkmail");
    await until("the outage's mail in the list", async () => {
      const uids = (await rows(page)).map((r) => r.uid);
      return outage.every((id) => uids.includes(uidOf.get(id)));
    }, 30_000);
    const shown = await labelled(page, "badges during the outage");
    for (const id of outage) {
      const badge = shown.find((r) => r.uid === uidOf.get(id)).badge;
      if (forwarded.includes(id)) {
        assert.equal(badge.mailsortState, "queued", `${id} is provisional`);
        assert.equal(badge.mailsortLabel, native.get(id).label, "the provisional label is the edge's");
      } else {
        assert.equal(badge.mailsortState, "final");
      }
    }
    const s = await until("a failed retry", async () => {
      const now = await stored(browser.worker);
      return now.retry ? now : null;
    }, 30_000);
    assert.match(s.retry.lastError, /unreachable/);

    assert.equal(await saveOptions(browser, { autoFile: true }), "Saved. Reload your webmail tab.");
    await page.reload();
    await page.waitForSelector("#messagelist");
    const provisional = outage.filter((id) => forwarded.includes(id));
    await until("auto-filing of every decided message", async () => {
      const inbox = [...whereIs()].filter(([, folders]) => folders.includes("INBOX")).map(([id]) => id);
      return inbox.length === provisional.length && provisional.every((id) => inbox.includes(id));
    }, 180_000).catch(async (e) => {
      throw new Error(`${e.message}; INBOX holds ${[...whereIs()].filter(([, f]) => f.includes("INBOX")).length}`);
    });
  });

  await t.test("after a browser restart the queue drains; every message ends in one folder, its label's", async () => {
    await page.close();
    await browser.context.close();
    browser = await launch(profile);
    await sleep(2000);
    const queued = (await stored(browser.worker)).queue;
    assert.equal(queued.size, 2, "the provisional ones are still queued after the restart");
    backend = await startBackend(port, KEY);
    await until("the queue to drain", async () => (await stored(browser.worker)).queue.size === 0, 120_000);
    page = await openRoundcube(browser.context);
    await until("the inbox to empty", async () => ![...whereIs().values()].some((f) => f.includes("INBOX")), 120_000);

    const where = whereIs();
    const { results } = await stored(browser.worker);
    for (const m of mail) {
      assert.deepEqual(where.get(m.id), [folderOf(expected.get(m.id))], `${m.id} is in exactly one folder, its label's`);
      const r = results.get(`INBOX:${uidOf.get(m.id)}`);
      assert.equal(r.state, "final");
      assert.ok(r.filed, `${m.id} is recorded as filed`);
    }
    for (const id of outage.filter((i) => forwarded.includes(i))) {
      assert.equal(results.get(`INBOX:${uidOf.get(id)}`).decidedBy, "backend");
    }
    const share = agreement.same / agreement.total;
    console.log(`same label as the native CLI: ${agreement.same}/${agreement.total} (${(share * 100).toFixed(1)}%); ${mail.length} messages filed, none lost, none twice`);
    assert.ok(share >= 0.99, `only ${(share * 100).toFixed(1)}% agree with the native CLI`);
  });
});
