//! A circuit breaker in front of a remote engine: after a run of failed
//! calls it opens, and requests are refused at once (503) instead of each
//! waiting for its own timeout; after a cool-down one call is let through
//! to probe, and its success closes the breaker again.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;
use utoipa::ToSchema;

/// When to open and how long to stay open.
#[derive(Debug, Clone, Copy)]
pub struct BreakerConfig {
    /// Failed calls in a row that open the breaker.
    pub failures_to_open: u32,
    /// How long it stays open before a probe call is let through.
    pub cooldown: Duration,
}

/// The breaker's state, as `/health` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Calls go through.
    Closed,
    /// Calls are refused until the cool-down ends.
    Open,
    /// The cool-down is over: the next call probes the engine.
    HalfOpen,
}

/// Why the breaker refused.
#[derive(Debug, Clone)]
pub struct Open {
    /// The failure that opened it.
    pub reason: String,
    /// Until the next probe is allowed.
    pub retry_after: Duration,
}

/// The breaker's state and history, for `/health`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BreakerSnapshot {
    pub state: BreakerState,
    /// Failed calls since the last success.
    pub consecutive_failures: u32,
    /// Times it has opened since start.
    pub opened_total: u64,
    /// The last failure, if any call has failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Milliseconds until the next probe, while open.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_in_ms: Option<u64>,
}

#[derive(Debug)]
struct Inner {
    failures: u32,
    /// Set while open: when the next probe may go.
    open_until: Option<Instant>,
    opened_total: u64,
    last_error: Option<String>,
}

/// Shared by the batcher (which records outcomes) and admission (which
/// refuses while open).
#[derive(Debug)]
pub struct Breaker {
    config: BreakerConfig,
    inner: Mutex<Inner>,
}

impl Breaker {
    pub fn new(config: BreakerConfig) -> Self {
        Self {
            config: BreakerConfig {
                failures_to_open: config.failures_to_open.max(1),
                ..config
            },
            inner: Mutex::new(Inner {
                failures: 0,
                open_until: None,
                opened_total: 0,
                last_error: None,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // The state is a few counters, valid after any panic mid-update.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Ok when a call may go now: closed, or open with the cool-down over
    /// (that call is the probe).
    pub fn admit(&self) -> Result<(), Open> {
        self.admit_at(Instant::now())
    }

    fn admit_at(&self, now: Instant) -> Result<(), Open> {
        let inner = self.lock();
        match inner.open_until {
            Some(until) if now < until => Err(Open {
                reason: inner
                    .last_error
                    .clone()
                    .unwrap_or_else(|| "the engine failed".into()),
                retry_after: until - now,
            }),
            _ => Ok(()),
        }
    }

    /// A call answered: the breaker closes.
    pub fn success(&self) {
        let mut inner = self.lock();
        if inner.open_until.is_some() {
            tracing::info!("remote reranker answers again: circuit breaker closed");
        }
        inner.failures = 0;
        inner.open_until = None;
    }

    /// A call failed: past the threshold, or when the probe fails, the
    /// breaker opens for a cool-down.
    pub fn failure(&self, error: &str) {
        self.failure_at(error, Instant::now());
    }

    fn failure_at(&self, error: &str, now: Instant) {
        let mut inner = self.lock();
        inner.failures = inner.failures.saturating_add(1);
        inner.last_error = Some(error.to_string());
        let probing = inner.open_until.is_some();
        if probing || inner.failures >= self.config.failures_to_open {
            if !probing {
                tracing::warn!(
                    "remote reranker failed {} calls in a row: circuit breaker open for {} ms ({error})",
                    inner.failures,
                    self.config.cooldown.as_millis()
                );
                inner.opened_total += 1;
            }
            inner.open_until = Some(now + self.config.cooldown);
        }
    }

    /// The state now.
    pub fn snapshot(&self) -> BreakerSnapshot {
        self.snapshot_at(Instant::now())
    }

    fn snapshot_at(&self, now: Instant) -> BreakerSnapshot {
        let inner = self.lock();
        let (state, retry_in_ms) = match inner.open_until {
            None => (BreakerState::Closed, None),
            Some(until) if now < until => (
                BreakerState::Open,
                Some((until - now).as_millis().try_into().unwrap_or(u64::MAX)),
            ),
            Some(_) => (BreakerState::HalfOpen, None),
        };
        BreakerSnapshot {
            state,
            consecutive_failures: inner.failures,
            opened_total: inner.opened_total,
            last_error: inner.last_error.clone(),
            retry_in_ms,
        }
    }

    /// 0 closed, 1 open, 2 half-open (the metric's encoding).
    pub fn state_code(&self) -> i64 {
        match self.snapshot().state {
            BreakerState::Closed => 0,
            BreakerState::Open => 1,
            BreakerState::HalfOpen => 2,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker() -> Breaker {
        Breaker::new(BreakerConfig {
            failures_to_open: 3,
            cooldown: Duration::from_secs(5),
        })
    }

    #[test]
    fn opens_after_the_threshold_and_refuses_until_the_cooldown_ends() {
        let b = breaker();
        let t = Instant::now();
        b.failure_at("connection refused", t);
        b.failure_at("connection refused", t);
        assert!(b.admit_at(t).is_ok(), "two failures stay under three");
        b.failure_at("connection refused", t);
        let open = b.admit_at(t + Duration::from_secs(1)).unwrap_err();
        assert_eq!(open.reason, "connection refused");
        assert_eq!(open.retry_after, Duration::from_secs(4));
        let s = b.snapshot_at(t + Duration::from_secs(1));
        assert_eq!(s.state, BreakerState::Open);
        assert_eq!(s.opened_total, 1);
        assert_eq!(s.retry_in_ms, Some(4000));
        // After the cool-down one probe may go.
        assert!(b.admit_at(t + Duration::from_secs(5)).is_ok());
        assert_eq!(
            b.snapshot_at(t + Duration::from_secs(6)).state,
            BreakerState::HalfOpen
        );
    }

    #[test]
    fn a_failed_probe_reopens_at_once_and_a_success_closes() {
        let b = breaker();
        let t = Instant::now();
        for _ in 0..3 {
            b.failure_at("timeout", t);
        }
        let later = t + Duration::from_secs(6);
        assert!(b.admit_at(later).is_ok());
        b.failure_at("still down", later);
        let open = b.admit_at(later).unwrap_err();
        assert_eq!(open.reason, "still down");
        assert_eq!(
            b.snapshot_at(later).opened_total,
            1,
            "a failed probe extends the same opening"
        );
        b.success();
        let s = b.snapshot();
        assert_eq!(s.state, BreakerState::Closed);
        assert_eq!(s.consecutive_failures, 0);
        assert!(b.admit().is_ok());
    }

    #[test]
    fn a_success_resets_the_count_of_failures_in_a_row() {
        let b = breaker();
        b.failure("x");
        b.failure("x");
        b.success();
        b.failure("x");
        b.failure("x");
        assert_eq!(b.snapshot().state, BreakerState::Closed);
    }
}
