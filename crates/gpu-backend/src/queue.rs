//! The one queue in front of the model, and the batcher that drains it.
//!
//! Requests add jobs (one e-mail's candidate pairs each). A single thread owns
//! the cross-encoder and forms batches across jobs: once it holds work, it
//! waits at most `max_batch_delay` for more, up to `max_batch_tokens` padded
//! tokens. Pairs from all gathered jobs are sorted by length and cut into
//! model calls of similar length, so short e-mails are not padded to long
//! ones. Jobs whose client has hung up or whose deadline has passed are
//! dropped before they reach the model. Admission is bounded in pairs:
//! past `max_queue_pairs`, [`Queue::submit`] refuses and the client gets 429.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use thiserror::Error;
use tokio::sync::oneshot;

use crate::cross_encoder::CrossEncoder;
use crate::metrics::Metrics;
use crate::pairs::EncodedPair;

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
    Full { pending: usize },
    #[error("the deadline passed while queued")]
    Expired,
    #[error("the batcher has stopped")]
    Stopped,
    #[error("{0}")]
    Model(String),
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
    metrics: Arc<Metrics>,
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
pub fn start(model: CrossEncoder, config: BatchConfig, metrics: Arc<Metrics>) -> (Queue, Batcher) {
    let (tx, rx) = mpsc::channel();
    let pending = Arc::new(AtomicUsize::new(0));
    let queue = Queue {
        tx,
        pending: pending.clone(),
        max_pending: config.max_queue_pairs,
        metrics: metrics.clone(),
    };
    let worker = Worker {
        model,
        rx,
        config,
        pending,
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
        let n = pairs.len();
        let admitted = self
            .pending
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |p| {
                (p + n <= self.max_pending).then_some(p + n)
            });
        if let Err(pending) = admitted {
            return Err(QueueError::Full { pending });
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
    model: CrossEncoder,
    rx: mpsc::Receiver<Job>,
    config: BatchConfig,
    pending: Arc<AtomicUsize>,
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

        // (job, pair) of every pair, shortest first.
        let mut order: Vec<(usize, usize)> = live
            .iter()
            .enumerate()
            .flat_map(|(j, job)| (0..job.pairs.len()).map(move |p| (j, p)))
            .collect();
        order.sort_by_key(|&(j, p)| live[j].pairs[p].ids.len());

        let mut scores: Vec<Vec<f32>> = live.iter().map(|j| vec![0.0; j.pairs.len()]).collect();
        let mut failure: Option<String> = None;
        for chunk in chunks(&live, &order, self.config.max_batch_tokens) {
            let batch: Vec<&EncodedPair> = chunk.iter().map(|&(j, p)| &live[j].pairs[p]).collect();
            let width = batch.last().map_or(0, |p| p.ids.len());
            self.metrics.batch_pairs.observe(batch.len() as f64);
            self.metrics
                .batch_tokens
                .observe((width * batch.len()) as f64);
            let started = Instant::now();
            match self.model.score(&batch) {
                Ok(s) => {
                    for (&(j, p), v) in chunk.iter().zip(s) {
                        scores[j][p] = v;
                    }
                }
                Err(e) => {
                    tracing::error!("model call failed: {e}");
                    failure = Some(e.to_string());
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
                Some(e) => Err(QueueError::Model(e.clone())),
                None => Ok(s),
            };
            self.finish(job, result);
        }
    }
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
