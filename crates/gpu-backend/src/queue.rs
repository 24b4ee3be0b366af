//! The one queue in front of the model, and the batcher that drains it.
//!
//! Requests add jobs (one e-mail's candidate pairs each). A single thread owns
//! the cross-encoder and forms batches across jobs: once it holds work, it
//! waits at most `max_batch_delay` for more, up to `max_batch_tokens` padded
//! tokens. Pairs from all gathered jobs are sorted by length and cut into
//! model calls of similar length, so short e-mails are not padded to long
//! ones. Jobs whose client has hung up or whose deadline has passed are
//! dropped before they reach the model. Admission is bounded twice: past
//! `max_queue_pairs` pairs, and when the work already queued would take
//! longer than the new job's deadline at the measured rate, [`Queue::submit`]
//! refuses and the client gets 429 at once, rather than waiting only to
//! time out (under overload the server then keeps serving what it admits
//! within its deadline). While the engine's circuit breaker is open (a
//! remote reranker that is down), new work gets 503 at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use thiserror::Error;
use tokio::sync::oneshot;

use crate::metrics::Metrics;
use crate::pairs::EncodedPair;
use crate::remote::breaker::Breaker;
use crate::scorer::{ScoreError, Scorer};

/// Batching settings.
#[derive(Debug, Clone)]
pub struct BatchConfig {
    pub max_batch_tokens: usize,
    pub max_batch_delay: Duration,
    /// One job per model call (the baseline that benchmarks compare with).
    pub no_batching: bool,
    pub max_queue_pairs: usize,
}

/// Why a job got no scores.
#[derive(Debug, Clone, Error)]
pub enum QueueError {
    #[error("queue full: {pending} pairs pending")]
    Full {
        pending: usize,
        /// Estimated seconds until the queue has drained.
        retry_after_s: u64,
    },
    #[error("the deadline passed while queued")]
    Expired,
    #[error("the batcher has stopped")]
    Stopped,
    #[error("the reranking engine is unavailable: {reason}")]
    Unavailable { reason: String, retry_after_s: u64 },
    #[error("{0}")]
    Model(String),
}

impl From<ScoreError> for QueueError {
    fn from(e: ScoreError) -> Self {
        match e {
            ScoreError::Failed(m) => Self::Model(m),
            ScoreError::Unavailable {
                reason,
                retry_after_s,
            } => Self::Unavailable {
                reason,
                retry_after_s,
            },
            ScoreError::Timeout => Self::Expired,
        }
    }
}

type Reply = oneshot::Sender<Result<Vec<f32>, QueueError>>;

struct Job {
    pairs: Vec<EncodedPair>,
    deadline: Instant,
    enqueued: Instant,
    reply: Reply,
}

impl Job {
    fn padded_tokens(&self) -> usize {
        self.pairs.iter().map(|p| p.ids.len()).max().unwrap_or(0) * self.pairs.len()
    }
}

/// The handle requests submit to. Cloning shares the queue.
#[derive(Clone)]
pub struct Queue {
    tx: mpsc::Sender<Job>,
    pending: Arc<AtomicUsize>,
    max_pending: usize,
    rate: Arc<PairRate>,
    metrics: Arc<Metrics>,
    breaker: Option<Arc<Breaker>>,
}

/// Pairs scored per second of model time, smoothed (f32 bits; 0 = unknown).
#[derive(Default)]
struct PairRate(AtomicU32);

impl PairRate {
    fn get(&self) -> f32 {
        f32::from_bits(self.0.load(Ordering::Relaxed))
    }

    fn observe(&self, pairs: usize, seconds: f32) {
        if seconds <= 0.0 || pairs == 0 {
            return;
        }
        let now = pairs as f32 / seconds;
        let old = self.get();
        let new = if old == 0.0 {
            now
        } else {
            0.8 * old + 0.2 * now
        };
        self.0.store(new.to_bits(), Ordering::Relaxed);
    }
}

/// The batcher thread; dropping every [`Queue`] ends it after the work
/// already queued.
pub struct Batcher {
    handle: Option<JoinHandle<()>>,
}

impl Batcher {
    /// Waits until the thread has drained the queue and stopped.
    pub fn join(mut self) {
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Starts the batcher thread around `model`.
pub fn start(
    model: Box<dyn Scorer>,
    config: BatchConfig,
    metrics: Arc<Metrics>,
) -> (Queue, Batcher) {
    let (tx, rx) = mpsc::channel();
    let pending = Arc::new(AtomicUsize::new(0));
    let rate = Arc::new(PairRate::default());
    let queue = Queue {
        tx,
        pending: pending.clone(),
        max_pending: config.max_queue_pairs,
        rate: rate.clone(),
        metrics: metrics.clone(),
        breaker: model.breaker(),
    };
    let worker = Worker {
        model,
        rx,
        config,
        pending,
        rate,
        metrics,
        carried: None,
    };
    let handle = std::thread::Builder::new()
        .name("mailsort-batcher".into())
        .spawn(move || worker.run())
        .expect("spawning the batcher thread");
    (
        queue,
        Batcher {
            handle: Some(handle),
        },
    )
}

impl Queue {
    /// Admits one e-mail's pairs, or refuses when the queue is full. The
    /// receiver yields one score per pair, in order.
    pub fn submit(
        &self,
        pairs: Vec<EncodedPair>,
        deadline: Instant,
    ) -> Result<oneshot::Receiver<Result<Vec<f32>, QueueError>>, QueueError> {
        if let Some(b) = &self.breaker {
            b.admit().map_err(|open| QueueError::Unavailable {
                reason: open.reason,
                retry_after_s: open.retry_after.as_secs().max(1),
            })?;
        }
        let n = pairs.len();
        let rate = self.rate.get();
        let drain_s = |pending: usize| {
            if rate > 0.0 {
                (pending + n) as f32 / rate
            } else {
                0.0
            }
        };
        let budget_s = deadline
            .saturating_duration_since(Instant::now())
            .as_secs_f32();
        let admitted = self
            .pending
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |p| {
                // An empty queue always admits, so one slow job cannot lock
                // the server out.
                let fits = p + n <= self.max_pending && (p == 0 || drain_s(p) <= budget_s);
                fits.then_some(p + n)
            });
        if let Err(pending) = admitted {
            return Err(QueueError::Full {
                pending,
                retry_after_s: drain_s(pending).ceil().max(1.0) as u64,
            });
        }
        self.metrics.queue_pairs.add(n as i64);
        let (reply, rx) = oneshot::channel();
        let job = Job {
            pairs,
            deadline,
            enqueued: Instant::now(),
            reply,
        };
        if self.tx.send(job).is_err() {
            self.release(n);
            return Err(QueueError::Stopped);
        }
        Ok(rx)
    }

    /// Pairs admitted and not yet answered.
    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::Acquire)
    }

    fn release(&self, n: usize) {
        self.pending.fetch_sub(n, Ordering::AcqRel);
        self.metrics.queue_pairs.sub(n as i64);
    }
}

struct Worker {
    model: Box<dyn Scorer>,
    rx: mpsc::Receiver<Job>,
    config: BatchConfig,
    pending: Arc<AtomicUsize>,
    rate: Arc<PairRate>,
    metrics: Arc<Metrics>,
    /// A job taken from the channel that did not fit the last batch.
    carried: Option<Job>,
}

impl Worker {
    fn run(mut self) {
        while let Some(jobs) = self.gather() {
            self.execute(jobs);
        }
    }

    /// Blocks for the first job, then collects more until the token budget
    /// or the delay is reached. None once every sender is gone.
    fn gather(&mut self) -> Option<Vec<Job>> {
        let first = match self.carried.take() {
            Some(job) => job,
            None => self.rx.recv().ok()?,
        };
        let mut tokens = first.padded_tokens();
        let until = Instant::now() + self.config.max_batch_delay;
        let mut jobs = vec![first];
        while !self.config.no_batching && tokens < self.config.max_batch_tokens {
            let wait = until.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(wait) {
                Ok(job) => {
                    let t = job.padded_tokens();
                    if tokens + t > self.config.max_batch_tokens {
                        self.carried = Some(job);
                        break;
                    }
                    tokens += t;
                    jobs.push(job);
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
            }
        }
        Some(jobs)
    }

    fn finish(&self, job: Job, result: Result<Vec<f32>, QueueError>) {
        let n = job.pairs.len();
        self.pending.fetch_sub(n, Ordering::AcqRel);
        self.metrics.queue_pairs.sub(n as i64);
        let _ = job.reply.send(result);
    }

    fn execute(&mut self, jobs: Vec<Job>) {
        let now = Instant::now();
        let mut live = Vec::with_capacity(jobs.len());
        for job in jobs {
            if job.deadline <= now {
                self.metrics
                    .dropped_pairs
                    .with_label_values(&["deadline"])
                    .inc_by(job.pairs.len() as u64);
                self.finish(job, Err(QueueError::Expired));
            } else if job.reply.is_closed() {
                self.metrics
                    .dropped_pairs
                    .with_label_values(&["client_gone"])
                    .inc_by(job.pairs.len() as u64);
                self.finish(job, Err(QueueError::Stopped));
            } else {
                self.metrics
                    .stage_seconds
                    .with_label_values(&["queue"])
                    .observe((now - job.enqueued).as_secs_f64());
                live.push(job);
            }
        }
        if live.is_empty() {
            return;
        }

        let order = by_length(&live);
        let mut scores: Vec<Vec<f32>> = live.iter().map(|j| vec![0.0; j.pairs.len()]).collect();
        let mut failure: Option<QueueError> = None;
        // The engine must answer before the first deadline of the batch.
        let deadline = live
            .iter()
            .map(|j| j.deadline)
            .min()
            .expect("live is not empty");
        for chunk in chunks(&live, &order, self.config.max_batch_tokens) {
            let batch: Vec<&EncodedPair> = chunk.iter().map(|&(j, p)| &live[j].pairs[p]).collect();
            let width = batch.last().map_or(0, |p| p.ids.len());
            self.metrics.batch_pairs.observe(batch.len() as f64);
            self.metrics
                .batch_tokens
                .observe((width * batch.len()) as f64);
            let started = Instant::now();
            match self.model.score(&batch, deadline) {
                Ok(s) => {
                    self.rate
                        .observe(batch.len(), started.elapsed().as_secs_f32());
                    for (&(j, p), v) in chunk.iter().zip(s) {
                        scores[j][p] = v;
                    }
                }
                Err(e) => {
                    tracing::error!("model call failed: {e}");
                    failure = Some(e.into());
                    break;
                }
            }
            self.metrics
                .stage_seconds
                .with_label_values(&["model"])
                .observe(started.elapsed().as_secs_f64());
        }
        for (job, s) in live.into_iter().zip(scores) {
            let result = match &failure {
                Some(e) => Err(e.clone()),
                None => Ok(s),
            };
            self.finish(job, result);
        }
    }
}

/// (job, pair) of every pair, shortest first.
fn by_length(live: &[Job]) -> Vec<(usize, usize)> {
    let mut order: Vec<(usize, usize)> = live
        .iter()
        .enumerate()
        .flat_map(|(j, job)| (0..job.pairs.len()).map(move |p| (j, p)))
        .collect();
    order.sort_by_key(|&(j, p)| live[j].pairs[p].ids.len());
    order
}

/// Cuts the length-sorted pairs into model calls of at most `max_tokens`
/// padded tokens (a single pair always fits).
fn chunks<'a>(
    live: &[Job],
    order: &'a [(usize, usize)],
    max_tokens: usize,
) -> Vec<&'a [(usize, usize)]> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, &(j, p)) in order.iter().enumerate() {
        // Sorted ascending, so the pair at i is the widest so far.
        let width = live[j].pairs[p].ids.len();
        if i > start && width * (i - start + 1) > max_tokens {
            out.push(&order[start..i]);
            start = i;
        }
    }
    if start < order.len() {
        out.push(&order[start..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(lengths: &[usize]) -> Job {
        let (reply, _) = oneshot::channel();
        Job {
            pairs: lengths.iter().map(|&n| EncodedPair::synthetic(n)).collect(),
            deadline: Instant::now(),
            enqueued: Instant::now(),
            reply,
        }
    }

    #[test]
    fn chunks_respect_the_token_budget_and_keep_every_pair() {
        let live = vec![job(&[10, 50, 12]), job(&[48, 11]), job(&[100])];
        let order = by_length(&live);
        let out = chunks(&live, &order, 100);
        let widths: Vec<Vec<usize>> = out
            .iter()
            .map(|c| c.iter().map(|&(j, p)| live[j].pairs[p].ids.len()).collect())
            .collect();
        // Short pairs share a call; long ones are not padded with them.
        assert_eq!(widths, vec![vec![10, 11, 12], vec![48, 50], vec![100]]);
        for c in &out {
            let width = c
                .iter()
                .map(|&(j, p)| live[j].pairs[p].ids.len())
                .max()
                .unwrap();
            assert!(c.len() == 1 || width * c.len() <= 100);
        }
    }

    #[test]
    fn a_pair_wider_than_the_budget_still_gets_a_call() {
        let live = vec![job(&[300, 20])];
        let order = vec![(0, 1), (0, 0)];
        let out = chunks(&live, &order, 128);
        assert_eq!(out.len(), 2);
        assert_eq!(out[1], &[(0, 0)]);
    }
}
