//! What the endpoints do, independent of HTTP: validate against the bundle,
//! tokenize pairs, queue them for the batcher, turn scores into
//! probabilities; where the bundle has a second-opinion head, embed the
//! e-mails with its encoder meanwhile and fuse its probabilities too; for
//! `/v1/classify`, run the edge first and rerank only what its gate
//! forwards.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mailsort_edge::Batching;
use mailsort_ort_embed::second_opinion::SecondOpinionEncoder;
use mailsort_shared::api::{
    ClassifyEmail, ClassifyResult, ErrorBody, ErrorCode, RerankEmail, RerankResult, RerankerInfo,
    ScoredCandidate,
};
use mailsort_shared::fusion::{FusionFit, fuse};
use mailsort_shared::types::EmailInput;

use crate::bundles::{Bundles, LoadedBundle};
use crate::edge_pool::EdgePool;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::pairs::PairEncoder;
use crate::queue::Queue;
use crate::remote::RemoteStatus;

/// Shortest deadline a request may ask for: below it no reranking can finish.
pub const MIN_DEADLINE_MS: u64 = 100;

/// Request limits.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_emails: usize,
    pub max_candidates: usize,
    pub default_deadline: Duration,
    pub max_deadline: Duration,
}

/// One validated e-mail of a rerank request.
struct Checked<'b> {
    /// The reranker's text for each candidate, in request order.
    texts: Vec<&'b str>,
    /// The edge's probabilities, when every candidate carried one.
    edge: Option<Vec<f32>>,
}

/// One e-mail's model work: its text, the reranker's text and the label of
/// each candidate, and which models its fusion reads.
struct ModelJob {
    text: String,
    label_texts: Vec<String>,
    labels: Vec<String>,
    scores: bool,
    head: bool,
}

/// An e-mail's cross-encoder scores and second-opinion probabilities, each
/// where it was run.
type ModelOutput = (Option<Vec<f32>>, Option<Vec<f32>>);

/// Everything a request needs once the server is ready.
pub struct Engine {
    pub bundles: Bundles,
    /// Where `/v1/classify`'s edge stage runs.
    pub edge: EdgePool,
    pub encoder: PairEncoder,
    pub queue: Queue,
    pub reranker: RerankerInfo,
    /// The remote engine, when `--reranker remote`.
    pub remote: Option<RemoteStatus>,
    /// The second-opinion encoder, when `--second-opinion-dir`.
    pub second_opinion: Option<Arc<SecondOpinionEncoder>>,
    pub limits: Limits,
    pub metrics: Arc<Metrics>,
}

impl Engine {
    /// The bundle a request names.
    pub fn bundle(&self, key: &str) -> Result<&LoadedBundle, ApiError> {
        self.bundles
            .get(key)
            .ok_or_else(|| ApiError::UnknownBundle {
                name: key.to_string(),
                known: self.bundles.describe(),
            })
    }

    /// When a request's work must be done.
    pub fn deadline(&self, requested_ms: Option<u64>) -> Result<(Instant, u64), ApiError> {
        if let Some(ms) = requested_ms
            && ms < MIN_DEADLINE_MS
        {
            return Err(ApiError::InvalidRequest(format!(
                "deadline_ms must be at least {MIN_DEADLINE_MS} (got {ms})"
            )));
        }
        let d = requested_ms
            .map(Duration::from_millis)
            .unwrap_or(self.limits.default_deadline)
            .min(self.limits.max_deadline);
        Ok((Instant::now() + d, d.as_millis() as u64))
    }

    fn check_count(&self, n: usize) -> Result<(), ApiError> {
        if n == 0 || n > self.limits.max_emails {
            return Err(ApiError::InvalidRequest(format!(
                "send 1 to {} e-mails per request (got {n})",
                self.limits.max_emails
            )));
        }
        Ok(())
    }

    /// Checks a rerank request against the bundle and limits; returns each
    /// e-mail's label texts and edge probabilities (when complete).
    fn validate<'b>(
        &self,
        bundle: &'b LoadedBundle,
        emails: &[RerankEmail],
    ) -> Result<Vec<Checked<'b>>, ApiError> {
        self.check_count(emails.len())?;
        emails
            .iter()
            .map(|e| {
                let edge = e
                    .check_candidates(self.limits.max_candidates)
                    .map_err(ApiError::InvalidRequest)?;
                let texts = e
                    .candidates
                    .iter()
                    .map(|c| {
                        bundle
                            .label_text(&c.label)
                            .ok_or_else(|| ApiError::UnknownLabel {
                                label: c.label.clone(),
                                email: e.id.clone(),
                                bundle: bundle.name.clone(),
                            })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Checked { texts, edge })
            })
            .collect()
    }

    /// Reranks each e-mail's candidates. Each model runs only on the
    /// e-mails whose fusion reads it, unless `score_all`.
    pub async fn rerank(
        self: &Arc<Self>,
        bundle_key: &str,
        emails: Vec<RerankEmail>,
        score_all: bool,
        deadline: (Instant, u64),
    ) -> Result<(String, Vec<RerankResult>), ApiError> {
        let bundle = self.bundle(bundle_key)?;
        let plan = self.validate(bundle, &emails)?;
        self.metrics
            .emails
            .with_label_values(&["rerank"])
            .inc_by(emails.len() as u64);
        let mut fits = Vec::with_capacity(emails.len());
        let mut jobs = Vec::with_capacity(emails.len());
        for (e, c) in emails.iter().zip(&plan) {
            let labels: Vec<String> = e.candidates.iter().map(|c| c.label.clone()).collect();
            let fit = bundle.fit_for_candidates(&labels, c.edge.as_deref());
            jobs.push(ModelJob {
                text: e.text.clone(),
                label_texts: c.texts.iter().map(|t| t.to_string()).collect(),
                scores: score_all || fit.uses_scores(c.edge.is_some()),
                head: score_all || fit.uses_head(),
                labels,
            });
            fits.push(fit);
        }
        let outputs = self.run_models(bundle_key, jobs, deadline).await?;
        let results = emails
            .into_iter()
            .zip(plan)
            .zip(fits.into_iter().zip(outputs))
            .map(|((email, checked), (fit, (scores, head)))| {
                let labels: Vec<String> = email.candidates.into_iter().map(|c| c.label).collect();
                ranked(
                    email.id,
                    labels,
                    scores,
                    checked.edge.as_deref(),
                    head.as_deref(),
                    fit,
                )
            })
            .collect();
        Ok((bundle.id.clone(), results))
    }

    /// Runs the edge on whole e-mails and reranks what its gate forwards.
    pub async fn classify(
        self: &Arc<Self>,
        bundle_key: &str,
        emails: Vec<ClassifyEmail>,
        deadline: (Instant, u64),
    ) -> Result<(String, Vec<ClassifyResult>), ApiError> {
        let bundle = self.bundle(bundle_key)?;
        self.check_count(emails.len())?;
        self.metrics
            .emails
            .with_label_values(&["classify"])
            .inc_by(emails.len() as u64);
        let bundle_id = bundle.id.clone();
        let engine = self.clone();
        let cost = EdgePool::cost(emails.iter().map(|e| e.input.byte_len()));
        let (ids, inputs): (Vec<String>, Vec<(String, EmailInput)>) = emails
            .into_iter()
            .map(|e| (e.id.clone(), (e.id, e.input)))
            .unzip();
        let started = Instant::now();
        let key = bundle_key.to_string();
        let outcomes = self
            .edge
            .run(inputs, cost, deadline.0, move |chunk| {
                let bundle = engine.bundle(&key).expect("bundle was found above");
                bundle.classifier.classify_with_text(chunk, chunk.len())
            })
            .await
            .map_err(|e| ApiError::from_edge(e, deadline.1))?;
        self.metrics
            .stage_seconds
            .with_label_values(&["edge"])
            .observe(started.elapsed().as_secs_f64());

        let mut results = Vec::with_capacity(ids.len());
        let mut forwarded = Vec::new();
        for (id, outcome) in ids.into_iter().zip(outcomes) {
            match outcome {
                Err(e) => results.push(ClassifyResult {
                    id,
                    decision: None,
                    error: Some(ErrorBody {
                        error: e.to_string(),
                        code: ErrorCode::UnreadableEmail,
                    }),
                }),
                Ok((mut decision, text)) => {
                    if decision.needs_rerank() {
                        forwarded.push((results.len(), text));
                    } else {
                        // No text to rerank: the edge's guess is all there is.
                        decision.mark_provisional();
                    }
                    results.push(ClassifyResult {
                        id,
                        decision: Some(decision),
                        error: None,
                    });
                }
            }
        }
        self.metrics.forwarded.inc_by(forwarded.len() as u64);
        if forwarded.is_empty() {
            return Ok((bundle_id, results));
        }

        let mut jobs = Vec::with_capacity(forwarded.len());
        let mut fits = Vec::with_capacity(forwarded.len());
        for (i, text) in &forwarded {
            let decision = results[*i]
                .decision
                .as_ref()
                .expect("forwarded e-mails have a decision");
            let label_texts = decision
                .candidates
                .iter()
                .map(|c| {
                    bundle
                        .label_text(&c.label)
                        .map(str::to_string)
                        .expect("the edge only proposes labels of its own bundle")
                })
                .collect();
            let fit = bundle.fusion.fit_for(decision.forward_reason.as_ref());
            jobs.push(ModelJob {
                text: text.clone(),
                label_texts,
                labels: decision
                    .candidates
                    .iter()
                    .map(|c| c.label.clone())
                    .collect(),
                scores: fit.uses_scores(true),
                head: fit.uses_head(),
            });
            fits.push(fit);
        }
        let outputs = self.run_models(bundle_key, jobs, deadline).await?;
        for (((i, _), fit), (scores, head)) in forwarded.into_iter().zip(fits).zip(outputs) {
            let decision = results[i]
                .decision
                .as_mut()
                .expect("forwarded e-mails have a decision");
            let labels: Vec<String> = decision
                .candidates
                .iter()
                .map(|c| c.label.clone())
                .collect();
            let edge: Vec<f32> = decision.candidates.iter().map(|c| c.probability).collect();
            let r = ranked(
                decision.id.clone(),
                labels,
                scores,
                Some(&edge),
                head.as_deref(),
                fit,
            );
            r.apply_to(decision);
        }
        Ok((bundle_id, results))
    }

    /// Each job's cross-encoder scores and second-opinion probabilities,
    /// for the models it asks for (`None` for the others, and for the head
    /// where the bundle has none). The two models run side by side.
    async fn run_models(
        self: &Arc<Self>,
        bundle_key: &str,
        jobs: Vec<ModelJob>,
        deadline: (Instant, u64),
    ) -> Result<Vec<ModelOutput>, ApiError> {
        let n = jobs.len();
        let (mut score_at, mut score_jobs) = (Vec::new(), Vec::new());
        let (mut head_at, mut head_jobs) = (Vec::new(), Vec::new());
        for (i, job) in jobs.into_iter().enumerate() {
            if job.head {
                head_at.push(i);
                head_jobs.push((job.text.clone(), job.labels));
            }
            if job.scores {
                score_at.push(i);
                score_jobs.push((job.text, job.label_texts));
            }
        }
        let (scores, heads) = tokio::try_join!(
            self.score(score_jobs, deadline),
            self.second_opinion(bundle_key, head_jobs, deadline)
        )?;
        // Counted once answered, so that a failed or retried request does
        // not count its e-mails twice.
        let skipped = |model: &str, ran: usize| {
            self.metrics
                .skipped
                .with_label_values(&[model])
                .inc_by((n - ran) as u64);
        };
        skipped("cross_encoder", score_at.len());
        debug_assert_eq!(scores.len(), score_at.len(), "one reply per scored job");
        let mut out: Vec<ModelOutput> = vec![(None, None); n];
        for (i, s) in score_at.into_iter().zip(scores) {
            out[i].0 = Some(s);
        }
        if let Some(heads) = heads {
            skipped("second_opinion", head_at.len());
            debug_assert_eq!(heads.len(), head_at.len(), "one reply per head job");
            for (i, h) in head_at.into_iter().zip(heads) {
                out[i].1 = Some(h);
            }
        }
        Ok(out)
    }

    /// The second opinion's probabilities over each (text, candidate
    /// labels) job, in order; `None` where the bundle has no head.
    async fn second_opinion(
        self: &Arc<Self>,
        bundle_key: &str,
        jobs: Vec<(String, Vec<String>)>,
        (deadline, deadline_ms): (Instant, u64),
    ) -> Result<Option<Vec<Vec<f32>>>, ApiError> {
        let Some(encoder) = self.second_opinion.clone() else {
            return Ok(None);
        };
        if self.bundle(bundle_key)?.second_opinion.is_none() {
            return Ok(None);
        }
        if jobs.is_empty() {
            return Ok(Some(Vec::new()));
        }
        let engine = self.clone();
        let key = bundle_key.to_string();
        let started = Instant::now();
        let task = tokio::task::spawn_blocking(move || {
            let texts: Vec<&str> = jobs.iter().map(|(t, _)| t.as_str()).collect();
            let vectors = encoder
                .embedder
                .embed_parallel(&texts, Batching::one_thread(16), &|_| {})
                .map_err(|e| ApiError::Model(format!("second opinion: {e}")))?;
            let head = &engine
                .bundle(&key)
                .expect("the bundle was found above")
                .second_opinion
                .as_ref()
                .expect("the bundle has a head, checked above")
                .file;
            Ok::<_, ApiError>(
                vectors
                    .iter()
                    .zip(&jobs)
                    .map(|(v, (_, labels))| {
                        let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
                        head.over_candidates(v, &labels)
                    })
                    .collect(),
            )
        });
        let probs = tokio::time::timeout_at(deadline.into(), task)
            .await
            .map_err(|_| ApiError::DeadlineExceeded { deadline_ms })?
            .map_err(|e| ApiError::Model(format!("second-opinion task: {e}")))??;
        self.metrics
            .stage_seconds
            .with_label_values(&["second_opinion"])
            .observe(started.elapsed().as_secs_f64());
        Ok(Some(probs))
    }

    /// Tokenizes (text, label texts) jobs, queues them and waits for scores.
    async fn score(
        self: &Arc<Self>,
        jobs: Vec<(String, Vec<String>)>,
        (deadline, deadline_ms): (Instant, u64),
    ) -> Result<Vec<Vec<f32>>, ApiError> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let engine = self.clone();
        let started = Instant::now();
        let encoded = tokio::task::spawn_blocking(move || {
            jobs.iter()
                .map(|(text, labels)| {
                    let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
                    engine.encoder.encode(text, &labels)
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .await
        .map_err(|e| ApiError::Model(format!("tokenizer task: {e}")))??;
        self.metrics
            .stage_seconds
            .with_label_values(&["tokenize"])
            .observe(started.elapsed().as_secs_f64());

        // Submit everything first so one request's e-mails share batches.
        // If admission fails half-way, the receivers already made are
        // dropped and the batcher skips their jobs.
        let mut receivers = Vec::with_capacity(encoded.len());
        for pairs in encoded {
            let rx = self
                .queue
                .submit(pairs, deadline)
                .map_err(|e| ApiError::from_queue(e, deadline_ms))?;
            receivers.push(rx);
        }
        let expired = || ApiError::DeadlineExceeded { deadline_ms };
        let mut out = Vec::with_capacity(receivers.len());
        for rx in receivers {
            let reply = tokio::time::timeout_at(deadline.into(), rx)
                .await
                .map_err(|_| expired())?
                .map_err(|_| ApiError::ShuttingDown)?;
            out.push(reply.map_err(|e| ApiError::from_queue(e, deadline_ms))?);
        }
        Ok(out)
    }
}

/// One e-mail's result: its candidates fused by `fit`, most probable first.
/// `scores` is `None` only where `fit` does not use them.
fn ranked(
    id: String,
    labels: Vec<String>,
    scores: Option<Vec<f32>>,
    edge: Option<&[f32]>,
    head: Option<&[f32]>,
    fit: FusionFit,
) -> RerankResult {
    // A fit that does not use the scores ignores their values.
    let probs = match &scores {
        Some(s) => fuse(s, edge, head, fit),
        None => fuse(&vec![0.0; labels.len()], edge, head, fit),
    };
    let mut candidates: Vec<ScoredCandidate> = labels
        .into_iter()
        .zip(probs)
        .enumerate()
        .map(|(i, (label, probability))| ScoredCandidate {
            label,
            score: scores.as_ref().map(|s| s[i]),
            probability,
            head_probability: head.map(|h| h[i]),
        })
        .collect();
    candidates.sort_by(|a, b| b.probability.total_cmp(&a.probability));
    let best = &candidates[0];
    RerankResult {
        id,
        label: best.label.clone(),
        confidence: best.probability,
        candidates,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranked_sorts_and_picks_the_most_probable() {
        let plain = FusionFit::scores(1.0, 0.0);
        let r = ranked(
            "m".into(),
            vec!["a".into(), "b".into(), "c".into()],
            Some(vec![0.0, 2.0, 1.0]),
            None,
            None,
            plain,
        );
        assert_eq!(r.label, "b");
        let order: Vec<&str> = r.candidates.iter().map(|c| c.label.as_str()).collect();
        assert_eq!(order, ["b", "c", "a"]);
        assert_eq!(r.candidates[0].score, Some(2.0));
    }

    #[test]
    fn an_edge_only_fit_keeps_the_edges_label() {
        let r = ranked(
            "m".into(),
            vec!["a".into(), "b".into()],
            Some(vec![3.0, 0.0]),
            Some(&[0.3, 0.6]),
            None,
            FusionFit::EdgeOnly,
        );
        assert_eq!(r.label, "b");
        assert_eq!(r.candidates[1].score, Some(3.0));
        assert_eq!(r.candidates[1].head_probability, None);
    }

    #[test]
    fn the_heads_probabilities_are_fused_and_reported() {
        let r = ranked(
            "m".into(),
            vec!["a".into(), "b".into()],
            None,
            Some(&[0.6, 0.4]),
            Some(&[0.1, 0.9]),
            FusionFit::EdgeHead { head_weight: 0.6 },
        );
        assert_eq!(r.label, "b");
        let b = r.candidates.iter().find(|c| c.label == "b").unwrap();
        assert_eq!(b.head_probability, Some(0.9));
        assert_eq!(b.score, None);
    }
}
