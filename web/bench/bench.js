// Side by side in one page: ms per e-mail for the mailsort WebAssembly edge
// (tract) and transformers.js (ONNX Runtime Web, wasm backend) on the same
// all-MiniLM-L6-v2 files and the same e-mails. Driven by run.mjs, which
// serves the files below and reads window.benchResult.
//
// mailsort is timed on its whole path (clean, tokenize, embed, label head,
// gate); transformers.js only on tokenize + embed of the text mailsort's
// cleaning produced, so every difference in its favour is real.
//
// Everything runs one e-mail at a time on one thread; ?threads=N gives ONNX
// Runtime Web N threads (run.mjs serves the page cross-origin isolated, so
// it may), while the mailsort edge always has one.
//
//   /pkg/    web/pkg (wasm-bindgen output)        /tjs/  transformers.js dist
//   /ort/    onnxruntime-web dist (its .wasm)     /model/  bundle + model folders
//   /emails.json  the e-mails

import init, { Edge } from "/pkg/mailsort_edge.js";
import { AutoModel, AutoTokenizer, env } from "/tjs/transformers.js";

const params = new URLSearchParams(location.search);
const ROUNDS = Number(params.get("rounds") ?? 2);
const WARM_UP = 16;
const log = (line) => {
  console.log(line);
  document.querySelector("#log").textContent += `\n${line}`;
};

env.allowRemoteModels = false;
env.allowLocalModels = true;
env.localModelPath = "/model/";
env.useBrowserCache = false;
env.backends.onnx.wasm.wasmPaths = "/ort/";
env.backends.onnx.wasm.numThreads = Number(params.get("threads") ?? 1);
env.backends.onnx.wasm.proxy = false;

const bytes = async (url) => new Uint8Array(await (await fetch(url)).arrayBuffer());
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function run() {
  const emails = await (await fetch("/emails.json")).json();
  await init({ module_or_path: "/pkg/mailsort_edge_bg.wasm" });
  const edge = new Edge(await bytes("/model/bundle.msb"), await bytes("/model/model_int8.onnx"));
  // The same bundle built for the W8A8 encoder (INT8 compute).
  const edgeW8a8 = new Edge(await bytes("/model/bundle-w8a8.msb"), await bytes("/model/model_w8a8.onnx"));
  const cap = edge.tokenCap;
  const texts = emails.map((e) => edge.cleanedText(e));
  const tokenizer = await AutoTokenizer.from_pretrained("minilm");

  // transformers.js on each ONNX file; "same-int8" is the very file mailsort runs.
  const variants = {};
  for (const [name, dtype] of [["same-int8", "q8"], ["fp32", "fp32"], ["ort-dynamic-int8", "int8"]]) {
    variants[name] = await AutoModel.from_pretrained("minilm", { dtype, device: "wasm" });
  }
  const tjsEmbed = async (model, batch) => {
    const inputs = tokenizer(batch, { padding: true, truncation: true, max_length: cap });
    const out = await model({ input_ids: inputs.input_ids, attention_mask: inputs.attention_mask });
    return out.sentence_embedding;
  };

  // Both runtimes must compute the same thing: compare embeddings.
  const agreement = {};
  for (const name of Object.keys(variants)) {
    let minCos = 1;
    for (const text of texts) {
      const a = edge.embed(text);
      const b = (await tjsEmbed(variants[name], [text])).data;
      let dot = 0, na = 0, nb = 0;
      for (let i = 0; i < a.length; i++) {
        dot += a[i] * b[i];
        na += a[i] * a[i];
        nb += b[i] * b[i];
      }
      minCos = Math.min(minCos, dot / Math.sqrt(na * nb));
    }
    agreement[name] = minCos;
    log(`tract vs transformers.js ${name}: min cosine over ${texts.length} e-mails ${minCos.toFixed(5)}`);
  }
  const w8a8SameLabel = emails.filter((e) => edgeW8a8.classify(e).label === edge.classify(e).label).length;
  log(`mailsort w8a8: same label as mailsort on ${w8a8SameLabel} of ${emails.length} e-mails`);

  // One e-mail at a time, as mail arrives and as the extension works.
  // Engine rows give transformers.js the text mailsort's cleaning produced;
  // the last row is the pipeline a transformers.js classifier would run
  // without that cleaning: subject and body as they come, cut at the cap.
  const raw = emails.map((e) => `${e.subject}\n${e.body}`);
  const engines = {
    mailsort: async (idx) => {
      for (const i of idx) edge.classify(emails[i]);
    },
    "mailsort w8a8": async (idx) => {
      for (const i of idx) edgeW8a8.classify(emails[i]);
    },
  };
  for (const [name, model] of Object.entries(variants)) {
    engines[`tjs ${name}`] = async (idx) => {
      for (const i of idx) await tjsEmbed(model, [texts[i]]);
    };
  }
  engines["tjs same-int8, subject + body"] = async (idx) => {
    for (const i of idx) await tjsEmbed(variants["same-int8"], [raw[i]]);
  };
  const all = emails.map((_, i) => i);
  // Warm-up, then rounds that alternate the engines so that noise hits all.
  for (const fn of Object.values(engines)) await fn(all.slice(0, WARM_UP));
  const times = Object.fromEntries(Object.keys(engines).map((k) => [k, []]));
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, fn] of Object.entries(engines)) {
      const t0 = performance.now();
      await fn(all);
      const ms = (performance.now() - t0) / emails.length;
      times[name].push(ms);
      log(`round ${round + 1}/${ROUNDS} ${name}: ${ms.toFixed(1)} ms per e-mail`);
    }
  }
  const msPerEmail = Object.fromEntries(Object.entries(times).map(([k, v]) => [k, median(v)]));
  return {
    emails: emails.length,
    tokenCap: cap,
    rounds: ROUNDS,
    threads: env.backends.onnx.wasm.numThreads,
    crossOriginIsolated,
    userAgent: navigator.userAgent,
    agreement,
    w8a8SameLabel,
    times,
    msPerEmail,
  };
}

run().then(
  (result) => {
    window.benchResult = result;
  },
  (e) => {
    log(`failed: ${e?.stack ?? e}`);
    window.benchResult = { error: String(e?.message ?? e) };
  },
);
