// The mailsort edge (Rust compiled to WebAssembly) with its bundle and model,
// all from inside the extension package: nothing is fetched from the network.

import init, { Edge } from "./pkg/mailsort_edge.js";

async function bytes(path) {
  const response = await fetch(new URL(path, import.meta.url));
  if (!response.ok) throw new Error(`${path} is missing from the extension (${response.status}); run scripts/build/extension.sh`);
  return new Uint8Array(await response.arrayBuffer());
}

async function load() {
  await init({ module_or_path: new URL("./pkg/mailsort_edge_bg.wasm", import.meta.url) });
  const [bundle, model] = await Promise.all([bytes("./model/bundle.msb"), bytes("./model/model_int8.onnx")]);
  return new Edge(bundle, model);
}

const ready = load();

self.onmessage = async ({ data }) => {
  try {
    const edge = await ready;
    if (data.type === "classify") {
      postMessage({ id: data.id, ok: true, bundleId: edge.bundleId, results: edge.classifyBatch(data.emails) });
    } else if (data.type === "info") {
      postMessage({ id: data.id, ok: true, bundleId: edge.bundleId, labels: edge.labels });
    } else {
      postMessage({ id: data.id, ok: false, error: `unknown request ${data.type}` });
    }
  } catch (e) {
    postMessage({ id: data.id, ok: false, error: String(e?.message ?? e) });
  }
};
