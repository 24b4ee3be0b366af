// The WebAssembly edge (web/pkg-node, built by scripts/build/wasm.sh) must
// decide like the native CLI on the same bundle, model and e-mails.
// Inputs come from scripts/test/wasm.sh through environment variables:
//   MAILSORT_TEST_BUNDLE   bundle file
//   MAILSORT_TEST_MODEL    model_int8.onnx
//   MAILSORT_TEST_EMAILS   JSONL of {id, subject, body} or {id, raw}
//   MAILSORT_TEST_NATIVE   JSONL of the CLI's decisions for those e-mails
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const { Edge } = require("../pkg-node/mailsort_edge.js");

const env = (name) => {
  const v = process.env[name];
  assert.ok(v, `${name} is not set: run scripts/test/wasm.sh`);
  return v;
};
const jsonl = (path) =>
  readFileSync(path, "utf8").split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l));

const edge = new Edge(readFileSync(env("MAILSORT_TEST_BUNDLE")), readFileSync(env("MAILSORT_TEST_MODEL")));

test("wasm decisions equal the native CLI's", () => {
  const emails = jsonl(env("MAILSORT_TEST_EMAILS"));
  const native = new Map(jsonl(env("MAILSORT_TEST_NATIVE")).map((d) => [d.id, d]));
  const started = performance.now();
  const results = edge.classifyBatch(emails);
  const ms = (performance.now() - started) / emails.length;
  assert.equal(results.length, emails.length);
  let same = 0;
  let maxDiff = 0;
  for (const r of results) {
    assert.ok(r.decision, `no decision: ${JSON.stringify(r)}`);
    const d = r.decision;
    const n = native.get(d.id);
    assert.ok(n, `the CLI has no decision for ${d.id}`);
    if (d.label === n.label && d.decided_by === n.decided_by) same += 1;
    const theirs = new Map(n.candidates.map((c) => [c.label, c.probability]));
    for (const c of d.candidates) {
      if (theirs.has(c.label)) maxDiff = Math.max(maxDiff, Math.abs(c.probability - theirs.get(c.label)));
    }
    if (d.decided_by === "backend") {
      assert.ok(r.forward && r.forward.text.length > 0, "a forwarded e-mail carries its rerank request");
      assert.deepEqual(r.forward.candidates.map((c) => c.label), d.candidates.map((c) => c.label));
    } else {
      assert.equal(r.forward, undefined);
    }
  }
  console.log(`wasm vs native: same decision ${same}/${emails.length}, max |p diff| ${maxDiff.toExponential(2)}, ${ms.toFixed(1)} ms per e-mail (Node ${process.version})`);
  assert.ok(same / emails.length >= 0.99, `${same}/${emails.length} decisions agree`);
  assert.ok(maxDiff <= 1e-3, `probabilities differ by ${maxDiff}`);
});

test("bad input gives errors, not crashes", () => {
  assert.throws(() => new Edge(new Uint8Array([1, 2, 3]), new Uint8Array([4])), /bundle|MSBUNDLE/i);
  assert.throws(() => edge.classify(42), /e-mail/);
  const [bad, good] = edge.classifyBatch([{ id: "bad", raw: "no headers here" }, { id: "ok", subject: "card", body: "where is my card" }]);
  assert.equal(bad.id, "bad");
  assert.match(bad.error, /RFC 5322/);
  assert.equal(good.decision.id, "ok");
  assert.equal(edge.classify({ subject: "hi", body: "" }).decision.id, "");
  assert.equal(edge.bundleId.length, 64);
  assert.throws(() => edge.cleanedText({ raw: "no headers here" }), /RFC 5322/);
});

test("cleanedText and embed expose what the encoder sees and makes", () => {
  const email = { subject: "Card not arrived", body: "Hi,\n\nmy new card has not arrived yet.\n\n-- \nJane Doe\nSent from my phone" };
  const text = edge.cleanedText(email);
  assert.match(text, /card has not arrived/);
  assert.doesNotMatch(text, /Jane Doe|Sent from/, "the signature is cut");
  const v = edge.embed(text);
  assert.equal(v.length, 384);
  assert.ok(Math.abs(Math.hypot(...v) - 1) < 1e-4, "L2-normalised");
  assert.ok(edge.tokenCap >= 16 && edge.tokenCap <= 512);
});
