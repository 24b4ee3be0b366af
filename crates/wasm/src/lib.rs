//! The edge's JavaScript API (wasm-bindgen) for the browser extension and
//! Node.js, a thin face over the edge core; the Cloudflare Worker calls the
//! core from Rust (crates/worker). Everything runs in the caller's thread: load once
//! with [`Edge::new`], then classify e-mails one by one or in batches.
//!
//! A result is `{decision, forward?}` or `{id, error}`. `forward` is present
//! when the gate sends the e-mail on: it is the e-mail entry of the backend's
//! `/v1/rerank` request, and holds only the cleaned, truncated text and the
//! candidates, never headers or attachments.
#![cfg(target_arch = "wasm32")]

use mailsort_edge::EdgeClassifier;
use mailsort_shared::api::RerankEmail;
use mailsort_shared::bundle::Bundle;
use mailsort_shared::types::{Decision, EmailInput};
use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;

/// E-mails embedded per encoder call in [`Edge::classify_batch`]. One: in
/// single-threaded WebAssembly batching saves no work, and padding mixed
/// lengths to the longest made a batch of 16 four times slower per e-mail.
const BATCH: usize = 1;

/// One e-mail as JavaScript hands it over.
#[derive(Deserialize)]
struct JsEmail {
    #[serde(default)]
    id: String,
    #[serde(flatten)]
    input: EmailInput,
}

/// One e-mail's outcome.
#[derive(Serialize)]
#[serde(untagged)]
enum JsResult {
    Decided {
        decision: Decision,
        #[serde(skip_serializing_if = "Option::is_none")]
        forward: Option<RerankEmail>,
    },
    Failed {
        id: String,
        error: String,
    },
}

/// A loaded bundle and encoder.
#[wasm_bindgen]
pub struct Edge {
    classifier: EdgeClassifier,
}

fn to_js<T: Serialize>(value: &T) -> Result<JsValue, JsError> {
    let serializer = serde_wasm_bindgen::Serializer::json_compatible();
    value
        .serialize(&serializer)
        .map_err(|e| JsError::new(&e.to_string()))
}

#[wasm_bindgen]
impl Edge {
    /// Loads a bundle (`.msb` bytes) and the INT8 encoder it was built with
    /// (`model_int8.onnx` bytes); refuses a model with another checksum.
    #[wasm_bindgen(constructor)]
    pub fn new(bundle: &[u8], onnx: &[u8]) -> Result<Edge, JsError> {
        let bundle = Bundle::decode(bundle).map_err(|e| JsError::new(&e.to_string()))?;
        let classifier =
            EdgeClassifier::new(bundle, onnx).map_err(|e| JsError::new(&e.to_string()))?;
        Ok(Edge { classifier })
    }

    /// The bundle's id (what the backend is told).
    #[wasm_bindgen(getter, js_name = bundleId)]
    pub fn bundle_id(&self) -> String {
        self.classifier.bundle().id.clone()
    }

    /// Tokens the encoder reads at most per e-mail ([CLS] and [SEP] included).
    #[wasm_bindgen(getter, js_name = tokenCap)]
    pub fn token_cap(&self) -> usize {
        self.classifier.embedder().token_cap()
    }

    /// Label ids, in the head's order.
    #[wasm_bindgen(getter)]
    pub fn labels(&self) -> Vec<String> {
        self.classifier.bundle().head.labels.clone()
    }

    /// Classifies one e-mail: `{id?, subject, body}` or `{id?, raw}`.
    pub fn classify(&self, email: JsValue) -> Result<JsValue, JsError> {
        let email: JsEmail = serde_wasm_bindgen::from_value(email)
            .map_err(|e| JsError::new(&format!("not an e-mail object: {e}")))?;
        let mut results = self.run(vec![email]);
        to_js(&results.pop().expect("one result per e-mail"))
    }

    /// The text the encoder sees for an e-mail: cleaned (headers, HTML,
    /// quotes, signatures and disclaimers gone) and cut at the bundle's token
    /// cap. This is also exactly what a forwarded e-mail sends.
    #[wasm_bindgen(js_name = cleanedText)]
    pub fn cleaned_text(&self, email: JsValue) -> Result<String, JsError> {
        let email: JsEmail = serde_wasm_bindgen::from_value(email)
            .map_err(|e| JsError::new(&format!("not an e-mail object: {e}")))?;
        mailsort_shared::clean::clean(&email.input, &self.classifier.bundle().clean)
            .map(|c| c.text)
            .map_err(|e| JsError::new(&e.to_string()))
    }

    /// The encoder's sentence embedding of `text` as it stands (no cleaning),
    /// L2-normalised: for checks against other runtimes and for similarity.
    pub fn embed(&self, text: &str) -> Result<Vec<f32>, JsError> {
        let mut out = self
            .classifier
            .embedder()
            .embed_many(&[text], 1)
            .map_err(|e| JsError::new(&e.to_string()))?;
        Ok(out.pop().expect("one embedding per text"))
    }

    /// Classifies an array of e-mails; one result per e-mail, in order. A bad
    /// e-mail gets `{id, error}` and does not stop the others.
    #[wasm_bindgen(js_name = classifyBatch)]
    pub fn classify_batch(&self, emails: JsValue) -> Result<JsValue, JsError> {
        let emails: Vec<JsEmail> = serde_wasm_bindgen::from_value(emails)
            .map_err(|e| JsError::new(&format!("not an array of e-mail objects: {e}")))?;
        to_js(&self.run(emails))
    }
}

impl Edge {
    fn run(&self, emails: Vec<JsEmail>) -> Vec<JsResult> {
        let inputs: Vec<(String, EmailInput)> =
            emails.into_iter().map(|e| (e.id, e.input)).collect();
        self.classifier
            .classify_with_text(&inputs, BATCH)
            .into_iter()
            .zip(&inputs)
            .map(|(outcome, (id, _))| match outcome {
                Ok((decision, text)) => {
                    let forward = decision
                        .needs_rerank()
                        .then(|| RerankEmail::from_decision(&decision, &text));
                    JsResult::Decided { decision, forward }
                }
                Err(e) => JsResult::Failed {
                    id: id.clone(),
                    error: e.to_string(),
                },
            })
            .collect()
    }
}
