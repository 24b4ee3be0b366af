// Runs bench.js in headless Chromium and prints the comparison.
//   node web/bench/run.mjs OUT_DIR [--rounds N] [--threads N]
// OUT_DIR (prepared by scripts/bench/browser.sh) holds emails.json and
// model/; the result goes to OUT_DIR/result.json.
import { readFile, writeFile } from "node:fs/promises";
import http from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { chromium } from "playwright-core";

const WEB = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { rounds: { type: "string", default: "2" }, threads: { type: "string", default: "1" } },
});
const out = path.resolve(positionals[0] ?? "out/bench-browser");

const routes = [
  ["/pkg/", path.join(WEB, "pkg")],
  ["/tjs/", path.join(WEB, "node_modules/@huggingface/transformers/dist")],
  ["/ort/", path.join(WEB, "node_modules/onnxruntime-web/dist")],
  ["/model/", path.join(out, "model")],
  ["/emails.json", path.join(out, "emails.json")],
  ["/", path.join(WEB, "bench")],
];
const TYPES = { ".html": "text/html", ".js": "text/javascript", ".mjs": "text/javascript", ".wasm": "application/wasm", ".json": "application/json" };

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, "http://bench").pathname.replace(/^\/$/, "/index.html");
  const [prefix, dir] = routes.find(([p]) => url.startsWith(p));
  const file = prefix.endsWith("/") ? path.join(dir, path.normalize(url.slice(prefix.length))) : dir;
  try {
    const body = await readFile(file);
    // Cross-origin isolation lets ONNX Runtime Web use threads (--threads > 1).
    res.writeHead(200, {
      "content-type": TYPES[path.extname(file)] ?? "application/octet-stream",
      "cross-origin-opener-policy": "same-origin",
      "cross-origin-embedder-policy": "require-corp",
    });
    res.end(body);
  } catch {
    res.writeHead(404).end();
  }
});
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const page = await browser.newPage();
page.on("console", (m) => console.error(m.text()));
page.on("request", (r) => {
  if (!r.url().startsWith("http://127.0.0.1:")) throw new Error(`the page tried the network: ${r.url()}`);
});
await page.goto(`http://127.0.0.1:${server.address().port}/?rounds=${values.rounds}&threads=${values.threads}`);
await page.waitForFunction(() => window.benchResult !== undefined, null, { timeout: 3_600_000, polling: 1000 });
const result = await page.evaluate(() => window.benchResult);
result.chromium = browser.version();
await browser.close();
server.close();
if (result.error) {
  console.error(`benchmark failed: ${result.error}`);
  process.exit(1);
}
await writeFile(path.join(out, "result.json"), JSON.stringify(result, null, 2));

const ms = result.msPerEmail;
console.log(`\n${result.emails} e-mails, token cap ${result.tokenCap}, Chromium ${result.chromium}, ONNX Runtime Web threads ${result.threads}, median of ${result.rounds} rounds\n`);
console.log("| engine | text | ms per e-mail | mailsort faster by |");
console.log("| --- | --- | --- | --- |");
for (const [name, value] of Object.entries(ms)) {
  const text = name.startsWith("mailsort") ? "e-mail → cleaned, capped" : name.endsWith("subject + body") ? "subject + body, capped" : "mailsort's cleaned text";
  const ratio = name === "mailsort" ? "" : `${(value / ms.mailsort).toFixed(2)}×`;
  console.log(`| ${name} | ${text} | ${value.toFixed(1)} | ${ratio} |`);
}
const cos = Object.entries(result.agreement).map(([k, v]) => `${k} ${v.toFixed(5)}`).join(", ");
console.log(`\nmin cosine, tract vs transformers.js embeddings: ${cos}`);
console.log(`mailsort w8a8: same label as mailsort on ${result.w8a8SameLabel} of ${result.emails} e-mails`);
console.log(`\nresult: ${path.join(out, "result.json")}`);
