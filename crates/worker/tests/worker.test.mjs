// The edge Worker in the real Workers runtime: `wrangler dev` (workerd,
// local, no network, telemetry off) serves the worker-build output with the
// bundle and model as static assets; a real mailsort-backend runs on
// loopback. Inputs come from scripts/test/worker.sh:
//   MAILSORT_TEST_EMAILS    JSONL of {id, subject, body}
//   MAILSORT_TEST_NATIVE    JSONL of the native CLI's decisions on them
//   MAILSORT_TEST_RAW       one raw RFC 5322 message
//   MAILSORT_TEST_BUNDLE    the bundle (also in assets/)
//   MAILSORT_TEST_BACKEND   the mailsort-backend binary
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { request as httpRequest } from "node:http";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";

const WORKER = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const KEY = "worker-test-key-0123456789";
const BACKEND_KEY = "backend-test-key-0123456789";

const env = (name) => {
  const v = process.env[name];
  assert.ok(v, `${name} is not set: run scripts/test/worker.sh`);
  return v;
};
const jsonl = (file) =>
  readFileSync(file, "utf8").split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function until(check, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms`);
    await sleep(100);
  }
}

async function freePort() {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Spawns a server process and waits until `ready()` says yes; keeps its output. */
async function start(what, command, args, options, ready) {
  const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"], ...options });
  let output = "";
  for (const stream of [child.stdout, child.stderr]) {
    stream.on("data", (chunk) => {
      output += chunk;
      process.stderr.write(chunk);
    });
  }
  let exited = null;
  child.on("exit", (code) => {
    exited = code;
  });
  const deadline = Date.now() + 300_000;
  for (;;) {
    if (exited !== null) throw new Error(`${what} exited with ${exited}`);
    if (await ready().catch(() => false)) break;
    if (Date.now() > deadline) throw new Error(`${what} did not come up`);
    await sleep(250);
  }
  const stop = async () => {
    if (exited !== null) return;
    const gone = new Promise((resolve) => child.on("exit", resolve));
    child.kill("SIGTERM");
    await gone;
  };
  stop.output = () => output;
  return stop;
}

test("the edge Worker in workerd", async (t) => {
  const backendPort = await freePort();
  const stopBackend = await start(
    "mailsort-backend",
    env("MAILSORT_TEST_BACKEND"),
    ["--bind", `127.0.0.1:${backendPort}`, "--bundle", env("MAILSORT_TEST_BUNDLE"), "--device", "cpu", "--threads", "1"],
    { env: { ...process.env, MAILSORT_API_KEYS: BACKEND_KEY, MAILSORT_LOG: "warn" } },
    async () => (await fetch(`http://127.0.0.1:${backendPort}/ready`)).ok,
  );
  writeFileSync(path.join(WORKER, ".dev.vars"), `MAILSORT_API_KEY=${KEY}\nBACKEND_API_KEY=${BACKEND_KEY}\n`);
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const stopWorker = await start(
    "wrangler dev",
    path.join(WORKER, "node_modules/.bin/wrangler"),
    ["dev", "--ip", "127.0.0.1", "--port", String(port), "--var", `BACKEND_URL:http://127.0.0.1:${backendPort}`, "--var", "BACKEND_TIMEOUT_MS:20000", "--var", 'LABEL_ROUTES:{"*":"inbox@example.com","card_arrival":"cards@example.com"}'],
    { cwd: WORKER, env: { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "true" } },
    async () => (await fetch(`${base}/health`)).ok,
  );
  t.after(async () => {
    await stopWorker();
    await stopBackend();
    rmSync(path.join(WORKER, ".dev.vars"), { force: true });
  });

  const post = (body, headers = {}) =>
    fetch(`${base}/v1/classify`, {
      method: "POST",
      headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json", ...headers },
      body: typeof body === "string" ? body : JSON.stringify(body),
    });

  await t.test("decisions equal the native CLI's, and forwarded e-mails come back reranked", async () => {
    const emails = jsonl(env("MAILSORT_TEST_EMAILS")).slice(0, 100);
    const native = new Map(jsonl(env("MAILSORT_TEST_NATIVE")).map((d) => [d.id, d]));
    const health = await (await fetch(`${base}/health`)).json();
    assert.equal(health.model_loaded, false, "a fresh isolate has no model yet");
    let coldMs = 0;
    const keptMs = [];
    let same = 0;
    let reranked = 0;
    let maxDiff = 0;
    for (const [i, email] of emails.entries()) {
      const started = performance.now();
      const response = await post(email);
      const ms = performance.now() - started;
      assert.equal(response.status, 200, await response.clone().text());
      const { decision, backend } = await response.json();
      const n = native.get(email.id);
      if (i === 0) coldMs = ms;
      if (n.decided_by === "backend") {
        assert.equal(decision.decided_by, "backend");
        assert.equal(backend.status, "reranked", JSON.stringify(backend));
        assert.deepEqual(decision.candidates.map((c) => c.label).sort(), n.candidates.map((c) => c.label).sort());
        reranked += 1;
        same += 1;
      } else {
        assert.equal(backend.status, "not_needed");
        if (i > 0) keptMs.push(ms);
        if (decision.label === n.label && decision.decided_by === "edge") same += 1;
        const theirs = new Map(n.candidates.map((c) => [c.label, c.probability]));
        for (const c of decision.candidates) maxDiff = Math.max(maxDiff, Math.abs(c.probability - theirs.get(c.label)));
      }
    }
    keptMs.sort((a, b) => a - b);
    const mean = keptMs.reduce((a, b) => a + b, 0) / keptMs.length;
    console.log(
      `workerd vs native: same decision ${same}/100, max |p diff| ${maxDiff.toExponential(2)}, ${reranked} reranked by the backend; ` +
        `cold first request ${coldMs.toFixed(0)} ms; edge-only requests mean ${mean.toFixed(1)} ms, median ${keptMs[keptMs.length >> 1].toFixed(1)} ms`,
    );
    assert.ok(same >= 99, `${same}/100 decisions agree`);
    assert.ok(maxDiff <= 1e-3);
    assert.ok(reranked > 0, "some e-mails were forwarded");
    assert.equal((await (await fetch(`${base}/health`)).json()).model_loaded, true, "the isolate keeps the model");
  });

  await t.test("a raw message/rfc822 body is classified", async () => {
    const response = await post(readFileSync(env("MAILSORT_TEST_RAW"), "utf8"), { "content-type": "message/rfc822" });
    assert.equal(response.status, 200);
    const { decision } = await response.json();
    assert.ok(decision.label && decision.candidates.length > 0);
  });

  await t.test("bad input gets a 4xx with a JSON error", async () => {
    const cases = [
      [() => post("{not json"), 422, "invalid_json"],
      [() => post({ subject: "hi", body: "x", extra: 1 }), 422, "invalid_json"],
      [() => post({ raw: "no headers here" }), 422, "unreadable_email"],
      [() => post("hello", { "content-type": "text/plain" }), 415, "unsupported_media_type"],
      [() => post({ subject: "big", body: "x".repeat(2 << 20) }), 413, "payload_too_large"],
      [() => fetch(`${base}/v1/classify`, { headers: { authorization: `Bearer ${KEY}` } }), 405, "method_not_allowed"],
      [() => fetch(`${base}/nowhere`), 404, "not_found"],
    ];
    for (const [send, status, code] of cases) {
      const response = await send();
      assert.equal(response.status, status, `expected ${status} ${code}`);
      const body = await response.json();
      assert.equal(body.code, code);
      assert.ok(body.error.length > 0);
    }
  });

  await t.test("a chunked body over the limit is refused as it arrives", async () => {
    // No content-length: the Worker must count while reading. 64 KiB a chunk,
    // up to 64 MiB, far past MAX_BODY_BYTES (1 MiB); a Worker that read it all
    // first would answer only after the last chunk. node:http, since fetch
    // gives up on a response that comes while its body is still being sent.
    const answer = await new Promise((resolve, reject) => {
      let sent = 0;
      let answered = false;
      const req = httpRequest(
        `${base}/v1/classify`,
        { method: "POST", headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" } },
        (res) => {
          answered = true;
          const sentBefore = sent;
          let text = "";
          res.on("data", (d) => (text += d));
          res.on("end", () => resolve({ status: res.statusCode, text, sent: sentBefore }));
        },
      );
      // Once answered, the server may close while the rest is in flight.
      req.on("error", (e) => answered || reject(e));
      const chunk = Buffer.alloc(64 << 10, "x");
      const pump = () => {
        while (!answered && sent < 64 << 20) {
          sent += chunk.length;
          if (!req.write(chunk)) return void req.once("drain", pump);
        }
        if (!answered) req.end();
      };
      pump();
    });
    assert.equal(answer.status, 413, answer.text);
    assert.ok(answer.sent < 32 << 20, `answered only after ${answer.sent} bytes`);
    assert.equal(JSON.parse(answer.text).code, "payload_too_large");
  });

  await t.test("a missing or wrong key gets 401", async () => {
    for (const authorization of [undefined, "Bearer wrong-key", `Basic ${KEY}`]) {
      const headers = { "content-type": "application/json" };
      if (authorization) headers.authorization = authorization;
      const response = await fetch(`${base}/v1/classify`, { method: "POST", headers, body: '{"subject":"a","body":"b"}' });
      assert.equal(response.status, 401);
      assert.equal((await response.json()).code, "unauthorized");
      assert.match(response.headers.get("www-authenticate") ?? "", /Bearer/);
    }
  });

  await t.test("Email Routing: a message is forwarded to its label's address with the decision in headers", async () => {
    const raw = [
      "From: customer@example.com",
      "To: support@example.com",
      "Subject: My card has not arrived",
      "Message-ID: <test-1@example.com>",
      "",
      "I ordered a new card two weeks ago and it still has not arrived.",
      "",
    ].join("\r\n");
    const response = await fetch(`${base}/cdn-cgi/handler/email?from=customer@example.com&to=support@example.com`, {
      method: "POST",
      body: raw,
    });
    assert.equal(response.status, 200, await response.text());
    const log = await until(() => {
      const out = stopWorker.output();
      return out.includes("x-mailsort-label") ? out : null;
    });
    assert.match(log, /rcptTo: cards@example\.com/);
    assert.match(log, /x-mailsort-label: card_arrival/);
    assert.match(log, /x-mailsort-decided-by: (edge|backend)/);
  });

  await t.test("with the backend down, forwarded e-mails come back provisional", async () => {
    await stopBackend();
    const native = jsonl(env("MAILSORT_TEST_NATIVE"));
    const emails = new Map(jsonl(env("MAILSORT_TEST_EMAILS")).map((e) => [e.id, e]));
    const forwarded = native.find((d) => d.decided_by === "backend");
    const { decision, backend } = await (await post(emails.get(forwarded.id))).json();
    assert.equal(backend.status, "unavailable");
    assert.match(backend.error, /^(backend unreachable|backend timed out after \d+ ms)$/, "no backend words pass through");
    assert.equal(decision.provisional, true);
    assert.equal(decision.label, forwarded.label, "the edge's own guess");
  });
});
