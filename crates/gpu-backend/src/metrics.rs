//! Prometheus metrics, served at `/metrics`.

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Every metric the server keeps.
pub struct Metrics {
    registry: Registry,
    /// Requests by endpoint and status code.
    pub requests: IntCounterVec,
    /// Failed requests by error code.
    pub errors: IntCounterVec,
    /// Whole-request latency by endpoint.
    pub request_seconds: HistogramVec,
    /// Time per stage: tokenize, queue (waiting for a batch), model, edge.
    pub stage_seconds: HistogramVec,
    /// Pairs admitted and not yet scored.
    pub queue_pairs: IntGauge,
    /// Requests being handled.
    pub in_flight: IntGauge,
    /// Pairs per model call.
    pub batch_pairs: Histogram,
    /// Padded tokens (pairs × longest) per model call.
    pub batch_tokens: Histogram,
    /// Pairs dropped before scoring: the client hung up or the deadline passed.
    pub dropped_pairs: IntCounterVec,
    /// E-mails received, by endpoint.
    pub emails: IntCounterVec,
    /// E-mails of /v1/classify that the gate sent to the reranker.
    pub forwarded: IntCounter,
    /// E-mails a model was not run on because their bundle's fusion does
    /// not read it, by model (cross_encoder, second_opinion).
    pub skipped: IntCounterVec,
    /// 1, labelled with the device, precision and model in use.
    pub model_info: IntGaugeVec,
    /// 1 per served bundle, labelled with the fusion it uses (`dev`: its
    /// own fusion file; `reranker_default`: the reranker's).
    pub bundle_info: IntGaugeVec,
    /// Calls to a remote reranker by outcome (ok, transient, refused,
    /// format, breaker_open).
    pub remote_calls: IntCounterVec,
    /// The remote's circuit breaker: 0 closed, 1 open, 2 half-open.
    pub remote_breaker_state: IntGauge,
}

fn buckets(start: f64, factor: f64, n: usize) -> Vec<f64> {
    prometheus::exponential_buckets(start, factor, n).expect("constant bucket layout is valid")
}

impl Metrics {
    /// Registers everything in a fresh registry.
    pub fn new() -> Self {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "mailsort_requests_total",
                "HTTP requests by endpoint and status",
            ),
            &["endpoint", "status"],
        )
        .expect("valid metric");
        let errors = IntCounterVec::new(
            Opts::new("mailsort_errors_total", "Failed requests by error code"),
            &["code"],
        )
        .expect("valid metric");
        let request_seconds = HistogramVec::new(
            HistogramOpts::new("mailsort_request_seconds", "Request latency by endpoint")
                .buckets(buckets(0.001, 2.0, 16)),
            &["endpoint"],
        )
        .expect("valid metric");
        let stage_seconds = HistogramVec::new(
            HistogramOpts::new(
                "mailsort_stage_seconds",
                "Time per stage: tokenize, queue, model, edge",
            )
            .buckets(buckets(0.0001, 2.0, 20)),
            &["stage"],
        )
        .expect("valid metric");
        let queue_pairs =
            IntGauge::new("mailsort_queue_pairs", "Pairs admitted and not yet scored")
                .expect("valid metric");
        let in_flight = IntGauge::new("mailsort_in_flight_requests", "Requests being handled")
            .expect("valid metric");
        let batch_pairs = Histogram::with_opts(
            HistogramOpts::new("mailsort_batch_pairs", "Pairs per model call")
                .buckets(buckets(1.0, 2.0, 11)),
        )
        .expect("valid metric");
        let batch_tokens = Histogram::with_opts(
            HistogramOpts::new(
                "mailsort_batch_tokens",
                "Padded tokens (pairs x longest) per model call",
            )
            .buckets(buckets(16.0, 2.0, 14)),
        )
        .expect("valid metric");
        let dropped_pairs = IntCounterVec::new(
            Opts::new(
                "mailsort_dropped_pairs_total",
                "Pairs dropped before scoring, by reason (client_gone, deadline)",
            ),
            &["reason"],
        )
        .expect("valid metric");
        let emails = IntCounterVec::new(
            Opts::new("mailsort_emails_total", "E-mails received by endpoint"),
            &["endpoint"],
        )
        .expect("valid metric");
        let forwarded = IntCounter::new(
            "mailsort_forwarded_total",
            "E-mails of /v1/classify that the gate sent to the reranker",
        )
        .expect("valid metric");
        let skipped = IntCounterVec::new(
            Opts::new(
                "mailsort_skipped_emails_total",
                "E-mails a model was not run on because the bundle's fusion does not read it",
            ),
            &["model"],
        )
        .expect("valid metric");
        let model_info = IntGaugeVec::new(
            Opts::new("mailsort_model_info", "The reranker in use"),
            &["device", "precision", "model"],
        )
        .expect("valid metric");
        let bundle_info = IntGaugeVec::new(
            Opts::new(
                "mailsort_bundle_info",
                "Served bundles and the fusion each uses",
            ),
            &["bundle", "fusion"],
        )
        .expect("valid metric");
        let remote_calls = IntCounterVec::new(
            Opts::new(
                "mailsort_remote_calls_total",
                "Calls to the remote reranker by outcome (ok, transient, refused, format, breaker_open)",
            ),
            &["outcome"],
        )
        .expect("valid metric");
        let remote_breaker_state = IntGauge::new(
            "mailsort_remote_breaker_state",
            "The remote reranker's circuit breaker: 0 closed, 1 open, 2 half-open",
        )
        .expect("valid metric");
        for c in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(errors.clone()),
            Box::new(request_seconds.clone()),
            Box::new(stage_seconds.clone()),
            Box::new(queue_pairs.clone()),
            Box::new(in_flight.clone()),
            Box::new(batch_pairs.clone()),
            Box::new(batch_tokens.clone()),
            Box::new(dropped_pairs.clone()),
            Box::new(emails.clone()),
            Box::new(forwarded.clone()),
            Box::new(skipped.clone()),
            Box::new(model_info.clone()),
            Box::new(bundle_info.clone()),
            Box::new(remote_calls.clone()),
            Box::new(remote_breaker_state.clone()),
        ] {
            registry.register(c).expect("metric names are unique");
        }
        Self {
            registry,
            requests,
            errors,
            request_seconds,
            stage_seconds,
            queue_pairs,
            in_flight,
            batch_pairs,
            batch_tokens,
            dropped_pairs,
            emails,
            forwarded,
            skipped,
            model_info,
            bundle_info,
            remote_calls,
            remote_breaker_state,
        }
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("writing to a Vec cannot fail");
        String::from_utf8(out).expect("the text format is UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
