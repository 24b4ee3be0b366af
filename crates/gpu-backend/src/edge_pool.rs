//! The edge stage of `/v1/classify` (cleaning and embedding whole e-mails)
//! on a bounded pool. Requests are admitted by cost, so a burst is refused
//! at once rather than piled up, and run in chunks on a fixed number of
//! worker slots, so memory stays bounded however many requests arrive.
//! Admission also weighs the measured speed against the deadline, so work
//! that could not finish in time is refused up front. A request whose
//! deadline passes or whose client hangs up stops: the chunks not started
//! are dropped, and only those already running finish.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use thiserror::Error;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// Input bytes that count as one more unit of cost, beyond one per e-mail.
pub const COST_BYTES: usize = 64 * 1024;

/// Why the pool did not finish a request.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum PoolError {
    #[error("{in_use} of {capacity} units are admitted")]
    Busy { in_use: usize, capacity: usize },
    #[error("the deadline passed")]
    Expired,
    #[error("edge worker failed: {0}")]
    Failed(String),
}

/// How big the pool is.
#[derive(Debug, Clone, Copy)]
pub struct PoolConfig {
    /// Chunks running at once, each on its own blocking thread.
    pub workers: usize,
    /// Cost units running or waiting; a request that does not fit gets 429.
    pub capacity: usize,
    /// E-mails per chunk.
    pub chunk: usize,
}

/// Admission and worker slots for the edge stage.
pub struct EdgePool {
    admission: Arc<Semaphore>,
    capacity: usize,
    workers: Arc<Semaphore>,
    n_workers: usize,
    chunk: usize,
    /// Seconds one worker takes per unit of cost, a moving average over
    /// finished chunks; `None` until the first one.
    secs_per_unit: Arc<Mutex<Option<f64>>>,
}

impl EdgePool {
    pub fn new(config: PoolConfig) -> Self {
        let capacity = config.capacity.clamp(1, Semaphore::MAX_PERMITS);
        let n_workers = config.workers.max(1);
        Self {
            admission: Arc::new(Semaphore::new(capacity)),
            capacity,
            workers: Arc::new(Semaphore::new(n_workers)),
            n_workers,
            chunk: config.chunk.max(1),
            secs_per_unit: Arc::new(Mutex::new(None)),
        }
    }

    /// The cost of e-mails of these sizes: one unit each, and one more per
    /// [`COST_BYTES`] of input (parsing is linear in the raw size; what
    /// the encoder sees is capped by the bundle's token cap).
    pub fn cost(sizes: impl IntoIterator<Item = usize>) -> usize {
        sizes.into_iter().map(|b| 1 + b / COST_BYTES).sum()
    }

    /// Units admitted now.
    pub fn in_use(&self) -> usize {
        self.capacity - self.admission.available_permits()
    }

    fn busy(&self) -> PoolError {
        PoolError::Busy {
            in_use: self.in_use(),
            capacity: self.capacity,
        }
    }

    /// Runs `work` over `items` in chunks, on the pool's workers, before
    /// `deadline`; the results come back in order. A request is refused
    /// at once when its cost does not fit beside what is admitted, or when
    /// at the measured speed the work ahead of it and its own would not
    /// be done by its deadline. One costing more than the whole capacity
    /// is admitted alone. Dropping the future cancels the chunks not yet
    /// started.
    pub async fn run<I, T, F>(
        &self,
        items: Vec<I>,
        cost: usize,
        deadline: Instant,
        work: F,
    ) -> Result<Vec<T>, PoolError>
    where
        I: Send + Sync + 'static,
        T: Send + 'static,
        F: Fn(&[I]) -> Vec<T> + Send + Sync + 'static,
    {
        let units = cost.clamp(1, self.capacity);
        let known = *self
            .secs_per_unit
            .lock()
            .expect("never poisoned: no panics inside");
        if let Some(spu) = known {
            let ahead = (self.in_use() + units) as f64 * spu / self.n_workers as f64;
            if Instant::now() + Duration::from_secs_f64(ahead) > deadline {
                return Err(self.busy());
            }
        }
        let _admitted = self
            .admission
            .clone()
            .try_acquire_many_owned(units as u32)
            .map_err(|_| self.busy())?;
        let n = items.len();
        let unit_share = units as f64 / n.max(1) as f64;
        let items = Arc::new(items);
        let work = Arc::new(work);
        // All chunks wait for a worker together, in order, so a request's
        // chunks run side by side and requests finish first come, first
        // served. Dropping the set aborts the waiting ones.
        let mut chunks = JoinSet::new();
        for (i, start) in (0..n).step_by(self.chunk).enumerate() {
            let end = (start + self.chunk).min(n);
            let (workers, items, work) = (self.workers.clone(), items.clone(), work.clone());
            let speed = self.secs_per_unit.clone();
            chunks.spawn(async move {
                let worker = workers
                    .acquire_owned()
                    .await
                    .expect("the worker semaphore is never closed");
                // The slot moves into the thread: it is held until the chunk
                // really ends, even when the request has given up on it.
                let part = tokio::task::spawn_blocking(move || {
                    let _worker = worker;
                    let t = Instant::now();
                    let part = work(&items[start..end]);
                    let spu = t.elapsed().as_secs_f64() / ((end - start) as f64 * unit_share);
                    let mut avg = speed.lock().expect("never poisoned: no panics inside");
                    *avg = Some(avg.map_or(spu, |a| 0.8 * a + 0.2 * spu));
                    part
                })
                .await;
                (i, part)
            });
        }
        let mut parts: Vec<Option<Vec<T>>> = (0..chunks.len()).map(|_| None).collect();
        let gather = async {
            while let Some(done) = chunks.join_next().await {
                let (i, part) = done.map_err(|e| PoolError::Failed(e.to_string()))?;
                parts[i] = Some(part.map_err(|e| PoolError::Failed(e.to_string()))?);
            }
            Ok::<_, PoolError>(())
        };
        tokio::time::timeout_at(deadline.into(), gather)
            .await
            .map_err(|_| PoolError::Expired)??;
        Ok(parts
            .into_iter()
            .flat_map(|p| p.expect("every chunk finished"))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    fn pool(workers: usize, capacity: usize, chunk: usize) -> Arc<EdgePool> {
        Arc::new(EdgePool::new(PoolConfig {
            workers,
            capacity,
            chunk,
        }))
    }

    fn later(ms: u64) -> Instant {
        Instant::now() + Duration::from_millis(ms)
    }

    #[test]
    fn cost_counts_e_mails_and_their_size() {
        assert_eq!(EdgePool::cost([10, 100, COST_BYTES * 3 + 1]), 1 + 1 + 4);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn results_come_back_in_order_across_chunks() {
        let out = pool(2, 100, 3)
            .run((0..10).collect(), 10, later(5000), |xs: &[i32]| {
                xs.iter().map(|x| x * 2).collect()
            })
            .await
            .unwrap();
        assert_eq!(out, (0..10).map(|x| x * 2).collect::<Vec<_>>());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_request_that_does_not_fit_is_refused_at_once() {
        let p = pool(1, 10, 1);
        let slow = {
            let p = p.clone();
            tokio::spawn(async move {
                p.run(vec![0; 3], 8, later(5000), |xs: &[i32]| {
                    std::thread::sleep(Duration::from_millis(200));
                    xs.to_vec()
                })
                .await
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        let refused = p
            .run(vec![0; 3], 3, later(5000), |xs: &[i32]| xs.to_vec())
            .await;
        assert_eq!(
            refused,
            Err(PoolError::Busy {
                in_use: 8,
                capacity: 10
            })
        );
        assert!(
            !slow.is_finished(),
            "the refusal waited for the running request"
        );
        // Two units still fit, and a request larger than the pool runs alone
        // once the pool is empty.
        assert!(
            p.run(vec![1], 2, later(5000), |xs: &[i32]| xs.to_vec())
                .await
                .is_ok()
        );
        assert_eq!(slow.await.unwrap().unwrap().len(), 3);
        assert!(
            p.run(vec![1], 50, later(5000), |xs: &[i32]| xs.to_vec())
                .await
                .is_ok()
        );
        assert_eq!(p.in_use(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn work_that_cannot_meet_its_deadline_is_refused_up_front() {
        let p = pool(1, 100, 1);
        let slow = |xs: &[i32]| {
            std::thread::sleep(Duration::from_millis(50));
            xs.to_vec()
        };
        // Unknown speed: admitted, and the speed is measured (50 ms a unit).
        assert!(p.run(vec![0; 2], 2, later(5000), slow).await.is_ok());
        let ran = Arc::new(AtomicUsize::new(0));
        let counted = {
            let ran = ran.clone();
            move |xs: &[i32]| {
                ran.fetch_add(1, Ordering::SeqCst);
                xs.to_vec()
            }
        };
        // 40 units at 50 ms each cannot be done in 500 ms.
        let r = p.run(vec![0; 40], 40, later(500), counted).await;
        assert_eq!(
            r,
            Err(PoolError::Busy {
                in_use: 0,
                capacity: 100
            })
        );
        assert_eq!(ran.load(Ordering::SeqCst), 0);
        assert!(p.run(vec![0; 2], 2, later(5000), slow).await.is_ok());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_deadline_and_a_hang_up_stop_work_between_chunks() {
        let chunks_run = Arc::new(AtomicUsize::new(0));
        let counting = |ran: Arc<AtomicUsize>| {
            move |xs: &[i32]| {
                ran.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(100));
                xs.to_vec()
            }
        };
        let p = pool(1, 100, 1);
        let r = p
            .run(vec![0; 20], 20, later(250), counting(chunks_run.clone()))
            .await;
        assert_eq!(r, Err(PoolError::Expired));
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(chunks_run.load(Ordering::SeqCst) <= 4);

        // A dropped request (the client went away) runs no further chunk.
        chunks_run.store(0, Ordering::SeqCst);
        let gone = tokio::time::timeout(
            Duration::from_millis(150),
            p.run(vec![0; 20], 20, later(10_000), counting(chunks_run.clone())),
        )
        .await;
        assert!(gone.is_err());
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(chunks_run.load(Ordering::SeqCst) <= 3);
        assert_eq!(p.in_use(), 0);
    }
}
