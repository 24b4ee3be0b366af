//! The edge classifier, one e-mail's whole path at the edge: clean
//! (`mailsort_shared::clean`), embed ([`crate::embed`]), score labels with
//! the bundle's head and nearest exemplars ([`crate::neighbours`]), then
//! let the gate (`mailsort_shared::gate`) keep it or forward it.

use mailsort_shared::bundle::{Bundle, Exemplars};
use mailsort_shared::clean::{self, CleanError};
use mailsort_shared::digest::sha256_hex;
use mailsort_shared::gate::GateOutcome;
use mailsort_shared::types::{Candidate, DecidedBy, Decision, EmailInput, ForwardReason};
use thiserror::Error;

use crate::embed::{Batching, EmbedError, Embedder, EmbeddingCache};
use crate::neighbours::{self, IndexChoice, NeighbourIndex};

/// Why the edge could not classify.
#[derive(Debug, Error)]
pub enum EdgeError {
    #[error(transparent)]
    Embed(#[from] EmbedError),
    #[error(transparent)]
    Clean(#[from] CleanError),
    #[error(
        "the model file does not match the bundle: bundle wants sha256 {expected}, file has {found} (use the model the bundle was built with)"
    )]
    WrongModel { expected: String, found: String },
    #[error("the model's embedding width {model} differs from the bundle's {bundle}")]
    WidthMismatch { model: usize, bundle: usize },
}

/// A bundle and its encoder, ready to classify.
pub struct EdgeClassifier {
    bundle: Bundle,
    embedder: Embedder,
    neighbours: Option<Box<dyn NeighbourIndex>>,
}

impl EdgeClassifier {
    /// Loads the encoder and checks that it is the one the bundle was made with.
    pub fn new(bundle: Bundle, onnx: &[u8]) -> Result<Self, EdgeError> {
        let found = sha256_hex(onnx);
        if found != bundle.model.onnx_sha256 {
            return Err(EdgeError::WrongModel {
                expected: bundle.model.onnx_sha256.clone(),
                found,
            });
        }
        let embedder = Embedder::new(onnx, &bundle.model.tokenizer_json, bundle.clean.token_cap)?;
        Self::with_embedder(bundle, embedder)
    }

    /// Uses an already loaded encoder (which must match the bundle).
    pub fn with_embedder(bundle: Bundle, embedder: Embedder) -> Result<Self, EdgeError> {
        if embedder.dim() != bundle.model.dim {
            return Err(EdgeError::WidthMismatch {
                model: embedder.dim(),
                bundle: bundle.model.dim,
            });
        }
        let neighbours = bundle
            .exemplars
            .as_ref()
            .map(|ex| neighbours::index_for(ex, IndexChoice::Flat));
        Ok(Self {
            bundle,
            embedder,
            neighbours,
        })
    }

    /// Searches the bundle's exemplars as `choice` says (the flat scan
    /// until told otherwise).
    pub fn use_exemplar_index(&mut self, choice: IndexChoice) {
        if let Some(ex) = &self.bundle.exemplars {
            self.neighbours = Some(neighbours::index_for(ex, choice));
        }
    }

    /// The loaded bundle.
    pub fn bundle(&self) -> &Bundle {
        &self.bundle
    }

    /// Mutable bundle, for calibration.
    pub fn bundle_mut(&mut self) -> &mut Bundle {
        &mut self.bundle
    }

    /// The encoder.
    pub fn embedder(&self) -> &Embedder {
        &self.embedder
    }

    /// Classifies a batch of e-mails; one result per input, in order. A bad
    /// e-mail fails alone and does not affect the others.
    pub fn classify(
        &self,
        emails: &[(String, EmailInput)],
        batch_size: usize,
    ) -> Vec<Result<Decision, EdgeError>> {
        self.classify_with_text(emails, batch_size)
            .into_iter()
            .map(|r| r.map(|(decision, _)| decision))
            .collect()
    }

    /// Like [`classify`](Self::classify), with each e-mail's cleaned text:
    /// what a forwarded e-mail is reranked on.
    pub fn classify_with_text(
        &self,
        emails: &[(String, EmailInput)],
        batch_size: usize,
    ) -> Vec<Result<(Decision, String), EdgeError>> {
        self.classify_parallel(emails, Batching::one_thread(batch_size), &|_| {}, None)
    }

    /// Like [`classify_with_text`](Self::classify_with_text), embedding on
    /// `batching.threads` threads, calling `progress` with the number of
    /// e-mails each finished encoder call held, and taking embeddings
    /// `cache` already has (for this bundle's encoder and token cap).
    pub fn classify_parallel(
        &self,
        emails: &[(String, EmailInput)],
        batching: Batching,
        progress: &(dyn Fn(usize) + Sync),
        cache: Option<&dyn EmbeddingCache>,
    ) -> Vec<Result<(Decision, String), EdgeError>> {
        let cleaned: Vec<Result<clean::Cleaned, CleanError>> = emails
            .iter()
            .map(|(_, input)| clean::clean(input, &self.bundle.clean))
            .collect();
        let texts: Vec<&str> = cleaned
            .iter()
            .filter_map(|c| c.as_ref().ok().map(|c| c.text.as_str()))
            .collect();
        let mut embeddings = match self
            .embedder
            .embed_cached(&texts, batching, progress, cache)
        {
            Ok(e) => e.into_iter(),
            Err(e) => {
                let msg = e.to_string();
                return emails
                    .iter()
                    .map(|_| Err(EdgeError::Embed(EmbedError::Run(msg.clone()))))
                    .collect();
            }
        };
        emails
            .iter()
            .zip(cleaned)
            .map(|((id, _), c)| {
                let c = c?;
                let embedding = embeddings.next().expect("one embedding per cleaned text");
                Ok((self.decide(id, &embedding, c.empty), c.text))
            })
            .collect()
    }

    /// Label probabilities for one embedding, in head label order: the
    /// linear head, mixed with nearest exemplars when the bundle has them.
    pub fn probabilities(&self, embedding: &[f32]) -> Vec<f32> {
        let head = self.bundle.head.probabilities(embedding);
        match (&self.neighbours, &self.bundle.exemplars) {
            (Some(index), Some(ex)) if ex.weight > 0.0 => {
                let knn = knn_distribution(index.as_ref(), ex, embedding, head.len());
                head.iter()
                    .zip(knn)
                    .map(|(h, k)| (1.0 - ex.weight) * h + ex.weight * k)
                    .collect()
            }
            _ => head,
        }
    }

    /// How far a decision's margin clears its gate threshold (what a
    /// forward budget watches; −∞ for an e-mail with no text).
    pub fn slack(&self, decision: &Decision) -> f32 {
        if matches!(decision.forward_reason, Some(ForwardReason::EmptyText)) {
            return f32::NEG_INFINITY;
        }
        self.bundle
            .gate
            .slack(&decision.candidates, &self.bundle.taxonomy)
    }

    /// Decides again with every gate threshold shifted by `offset` (a
    /// forward budget's): keeps or forwards the same candidates.
    pub fn regate(&self, decision: &mut Decision, offset: f32) {
        if matches!(decision.forward_reason, Some(ForwardReason::EmptyText)) {
            return;
        }
        let outcome =
            self.bundle
                .gate
                .decide_shifted(&decision.candidates, &self.bundle.taxonomy, offset);
        let (decided_by, forward_reason) = match outcome {
            GateOutcome::Keep => (DecidedBy::Edge, None),
            GateOutcome::Forward(r) => (DecidedBy::Backend, Some(r)),
        };
        decision.decided_by = decided_by;
        decision.forward_reason = forward_reason;
        decision.provisional = false;
        decision.mark_provisional();
    }

    /// Top-k candidates and the gate's decision for one embedding.
    pub fn decide(&self, id: &str, embedding: &[f32], empty_text: bool) -> Decision {
        let probs = self.probabilities(embedding);
        let candidates = top_k(
            &self.bundle.head.labels,
            &probs,
            self.bundle.gate.top_k.max(1),
        );
        let outcome = if empty_text {
            GateOutcome::Forward(ForwardReason::EmptyText)
        } else {
            self.bundle.gate.decide(&candidates, &self.bundle.taxonomy)
        };
        let (decided_by, forward_reason) = match outcome {
            GateOutcome::Keep => (DecidedBy::Edge, None),
            GateOutcome::Forward(r) => (DecidedBy::Backend, Some(r)),
        };
        let mut decision = Decision {
            id: id.to_string(),
            label: candidates[0].label.clone(),
            confidence: candidates[0].probability,
            provisional: false,
            decided_by,
            candidates,
            forward_reason,
        };
        // Until a backend answers, a forwarded e-mail has only the edge's guess.
        decision.mark_provisional();
        decision
    }
}

/// Similarity-weighted vote of the k nearest exemplars.
pub fn knn_distribution(
    index: &dyn NeighbourIndex,
    ex: &Exemplars,
    embedding: &[f32],
    n_labels: usize,
) -> Vec<f32> {
    // Sharp weights: a neighbour 0.05 closer in cosine counts e times more.
    const TAU: f32 = 0.05;
    let hits = index.search(embedding, ex.k);
    let mut dist = vec![0f32; n_labels];
    let best = hits.first().map(|h| h.1).unwrap_or(0.0);
    for (i, sim) in hits {
        dist[ex.label_index[i] as usize] += ((sim - best) / TAU).exp();
    }
    let sum: f32 = dist.iter().sum();
    if sum > 0.0 {
        dist.iter_mut().for_each(|d| *d /= sum);
    }
    dist
}

/// The `k` most probable labels, most probable first.
pub fn top_k(labels: &[String], probs: &[f32], k: usize) -> Vec<Candidate> {
    let mut idx: Vec<usize> = (0..probs.len()).collect();
    idx.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]));
    idx.into_iter()
        .take(k)
        .map(|i| Candidate {
            label: labels[i].clone(),
            probability: probs[i],
        })
        .collect()
}
