//! The real backend binary on loopback, spoken to over real HTTP: auth,
//! limits and error codes, batching that does not change scores, a full
//! queue, deadlines, hang-ups, /v1/classify against the edge core, and
//! graceful shutdown.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;
use mailsort_edge::EdgeClassifier;
use mailsort_shared::bundle::Bundle;
use mailsort_shared::types::EmailInput;
use serde_json::{Value, json};

/// Banking labels of the test bundle.
fn labels() -> Vec<String> {
    let bundle = Bundle::decode(&std::fs::read(bundle()).unwrap()).unwrap();
    bundle.head.labels.clone()
}

/// Real e-mail texts of very different lengths: BANKING77 queries and
/// 20 Newsgroups posts (cut by the token cap).
fn texts(n: usize) -> Vec<String> {
    let short = rows(&datasets().join("banking77/test.jsonl"), 97, n / 2);
    let long = rows(
        &datasets().join("20newsgroups/test.jsonl.gz"),
        211,
        n - short.len(),
    );
    short
        .iter()
        .chain(&long)
        .map(|r| {
            format!(
                "{} {}",
                r["subject"].as_str().unwrap_or(""),
                r["body"].as_str().unwrap()
            )
        })
        .collect()
}

fn rerank_email(id: usize, text: &str, labels: &[String]) -> Value {
    // Five candidates that differ per e-mail.
    let candidates: Vec<Value> = (0..5)
        .map(|k| json!({"label": labels[(id * 7 + k * 11) % labels.len()]}))
        .collect();
    json!({"id": id.to_string(), "text": text, "candidates": candidates})
}

fn scores(result: &Value) -> Vec<(String, f64)> {
    let mut s: Vec<(String, f64)> = result["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["label"].as_str().unwrap().to_string(),
                c["score"].as_f64().unwrap(),
            )
        })
        .collect();
    s.sort_by(|a, b| a.0.cmp(&b.0));
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_are_required_and_checked() {
    let server = Server::start(&[]);
    let body = json!({"bundle": "b77", "emails": [rerank_email(0, "my card is lost", &labels())]});
    let url = server.url("/v1/rerank");

    let r = client().post(&url).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "unauthorized");

    let r = client()
        .post(&url)
        .bearer_auth("test-key-0123456789abcdeX")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    let (status, out) = post(&url, &body).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["results"][0]["candidates"].as_array().unwrap().len(), 5);

    // Probes and the API description need no key.
    for path in ["/health", "/ready", "/metrics", "/openapi.json"] {
        assert_eq!(get_status(&server.base, path), Some(200), "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_clear_json_errors() {
    let server = Server::start(&["--max-body-bytes", "8192", "--max-candidates", "6"]);
    let url = server.url("/v1/rerank");
    let labels = labels();
    let ok = rerank_email(0, "my card is lost", &labels);

    let cases: Vec<(Value, u16, &str)> = vec![
        (
            json!({"bundle": "b77", "emails": [{"id": "1", "text": "x".repeat(9000), "candidates": [{"label": labels[0]}]}]}),
            413,
            "payload_too_large",
        ),
        (
            json!({"bundle": "b77", "emails": [{"id": "1", "text": "x", "candidates": [{"label": "no_such_label"}]}]}),
            422,
            "unknown_label",
        ),
        (
            json!({"bundle": "nope", "emails": [ok.clone()]}),
            422,
            "unknown_bundle",
        ),
        (
            json!({"bundle": "b77", "emails": []}),
            422,
            "invalid_request",
        ),
        (
            json!({"bundle": "b77", "emails": [{"id": "1", "text": "x", "candidates": labels[..7].iter().map(|l| json!({"label": l})).collect::<Vec<_>>()}]}),
            422,
            "invalid_request",
        ),
        (
            json!({"bundle": "b77", "emails": [{"id": "1", "text": "x", "candidates": [{"label": labels[0]}, {"label": labels[0]}]}]}),
            422,
            "invalid_request",
        ),
        (
            json!({"bundle": "b77", "emails": [{"id": "1", "text": "x", "candidates": [{"label": labels[0], "probability": 0.5}, {"label": labels[1]}]}]}),
            422,
            "invalid_request",
        ),
        (
            json!({"bundle": "b77", "emails": [{"id": "1", "text": "x", "candidates": [{"label": labels[0], "probability": 7.0}]}]}),
            422,
            "invalid_request",
        ),
        (
            json!({"bundle": "b77", "emails": [{"id": 1, "text": "x", "candidates": []}]}),
            422,
            "invalid_json",
        ),
        (
            json!({"bundle": "b77", "emails": [ok.clone()], "extra": true}),
            422,
            "invalid_json",
        ),
        (json!([1, 2, 3]), 422, "invalid_json"),
        (
            json!({"bundle": "b77", "deadline_ms": 5, "emails": [ok.clone()]}),
            422,
            "invalid_request",
        ),
    ];
    for (body, status, code) in cases {
        let (s, out) = post(&url, &body).await;
        assert_eq!(
            (s, out["code"].as_str().unwrap_or("")),
            (status, code),
            "{out}"
        );
        assert!(out["error"].as_str().is_some_and(|e| !e.is_empty()));
    }

    let raw = |body: &'static str, ctype: &'static str| {
        let c = client()
            .post(server.url("/v1/rerank"))
            .bearer_auth(KEY)
            .header("content-type", ctype)
            .body(body);
        async move {
            let r = c.send().await.unwrap();
            let s = r.status().as_u16();
            (s, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (s, out) = raw("{\"bundle\": ", "application/json").await;
    assert_eq!((s, out["code"].as_str().unwrap()), (422, "invalid_json"));
    let (s, out) = raw("{}", "text/plain").await;
    assert_eq!(
        (s, out["code"].as_str().unwrap()),
        (415, "unsupported_media_type")
    );

    let r = client().get(&url).bearer_auth(KEY).send().await.unwrap();
    assert_eq!(r.status(), 405);
    let r = client()
        .get(server.url("/v2/nothing"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // Still healthy, and every failure was counted by code.
    let (s, _) = post(&url, &json!({"bundle": "b77", "emails": [ok]})).await;
    assert_eq!(s, 200);
    let metrics = metrics_text(&server).await;
    assert!(
        metrics.contains("mailsort_errors_total{code=\"unknown_label\"} 1"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batched_scores_equal_one_at_a_time_scores() {
    // The GPU budget, so that requests really share model calls on CPU too.
    let server = Server::start(&["--max-batch-delay-ms", "20", "--max-batch-tokens", "16384"]);
    // This test is about scores, not latency: a loaded machine must not
    // turn it into a deadline failure.
    const DEADLINE_MS: u64 = 30_000;
    let url = server.url("/v1/rerank");
    let labels = labels();
    let emails: Vec<Value> = texts(16)
        .iter()
        .enumerate()
        .map(|(i, t)| rerank_email(i, t, &labels))
        .collect();

    let (s, together) = post(
        &url,
        &json!({"bundle": "b77", "emails": emails, "deadline_ms": DEADLINE_MS}),
    )
    .await;
    assert_eq!(s, 200, "{together}");

    // One e-mail per request, all in flight at once (batched across requests).
    let concurrent = futures_join(emails.iter().map(|e| {
        let url = url.clone();
        let body = json!({"bundle": "b77", "emails": [e], "deadline_ms": DEADLINE_MS});
        async move { post(&url, &body).await }
    }))
    .await;

    let mut max_diff = 0f64;
    for (i, email) in emails.iter().enumerate() {
        // And strictly one at a time.
        let (s, alone) = post(
            &url,
            &json!({"bundle": "b77", "emails": [email], "deadline_ms": DEADLINE_MS}),
        )
        .await;
        assert_eq!(s, 200);
        let a = scores(&together["results"][i]);
        let b = scores(&alone["results"][0]);
        let c = scores(&concurrent[i].1["results"][0]);
        assert_eq!(together["results"][i]["id"], email["id"]);
        for ((x, y), z) in a.iter().zip(&b).zip(&c) {
            assert_eq!(x.0, y.0);
            max_diff = max_diff.max((x.1 - y.1).abs()).max((z.1 - y.1).abs());
        }
    }
    assert!(max_diff < 1e-4, "batched vs single max |diff| {max_diff}");

    // Batches really were formed: some model call held more than 5 pairs.
    let metrics = metrics_text(&server).await;
    let sum = metric(&metrics, "mailsort_batch_pairs_sum");
    let count = metric(&metrics, "mailsort_batch_pairs_count");
    assert!(sum / count > 5.0, "mean batch {sum}/{count}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_answers_429_with_retry_after() {
    // Room for two e-mails of five candidates; the batcher holds work for 1 s.
    let server = Server::start(&["--max-queue-pairs", "10", "--max-batch-delay-ms", "1000"]);
    let url = server.url("/v1/rerank");
    let labels = labels();
    let responses = futures_join((0..8).map(|i| {
        let url = url.clone();
        let body =
            json!({"bundle": "b77", "emails": [rerank_email(i, "where is my card", &labels)]});
        async move {
            let r = client()
                .post(&url)
                .bearer_auth(KEY)
                .json(&body)
                .send()
                .await
                .unwrap();
            let retry = r
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_string());
            (r.status().as_u16(), retry, r.json::<Value>().await.unwrap())
        }
    }))
    .await;
    let full: Vec<_> = responses.iter().filter(|r| r.0 == 429).collect();
    let ok = responses.iter().filter(|r| r.0 == 200).count();
    assert!(!full.is_empty(), "no 429 among {responses:?}");
    assert!(ok >= 1, "nothing was admitted: {responses:?}");
    assert_eq!(full.len() + ok, 8, "{responses:?}");
    for (_, retry, body) in full {
        assert_eq!(body["code"], "queue_full");
        assert!(retry.as_deref().is_some_and(|r| r.parse::<u64>().is_ok()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadlines_and_hang_ups_drop_queued_work() {
    let server = Server::start(&["--max-batch-delay-ms", "1500"]);
    let url = server.url("/v1/rerank");
    let labels = labels();

    let body =
        json!({"bundle": "b77", "deadline_ms": 200, "emails": [rerank_email(1, "card", &labels)]});
    let (s, out) = post(&url, &body).await;
    assert_eq!(
        (s, out["code"].as_str().unwrap()),
        (504, "deadline_exceeded")
    );

    // A client that gives up after 200 ms: its pairs never reach the model.
    let body = json!({"bundle": "b77", "emails": [rerank_email(2, "card", &labels)]});
    let gone = client()
        .post(&url)
        .bearer_auth(KEY)
        .timeout(Duration::from_millis(200))
        .json(&body)
        .send()
        .await;
    assert!(gone.is_err());
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let metrics = metrics_text(&server).await;
    assert_eq!(
        metric(
            &metrics,
            "mailsort_dropped_pairs_total{reason=\"client_gone\"}"
        ),
        5.0,
        "{metrics}"
    );
    assert_eq!(
        metric(
            &metrics,
            "mailsort_dropped_pairs_total{reason=\"deadline\"}"
        ),
        5.0
    );
    assert_eq!(metric(&metrics, "mailsort_queue_pairs"), 0.0);
    // The request cancelled by the hang-up leaves the in-flight gauge (the
    // autoscaler's signal) and is counted, as 499.
    assert_eq!(metric(&metrics, "mailsort_in_flight_requests"), 0.0);
    assert_eq!(
        metric(
            &metrics,
            "mailsort_requests_total{endpoint=\"/v1/rerank\",status=\"499\"}"
        ),
        1.0,
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classify_runs_the_edge_and_reranks_what_it_forwards() {
    let server = Server::start(&[]);
    let test = rows(&datasets().join("banking77/test.jsonl"), 13, 60);
    let mut emails: Vec<Value> = test
        .iter()
        .enumerate()
        .map(|(i, r)| json!({"id": format!("m{i}"), "subject": r["subject"], "body": r["body"]}))
        .collect();
    emails.push(json!({"id": "bad", "raw": "this is not a message"}));
    let (s, out) = post(
        &server.url("/v1/classify"),
        &json!({"bundle": "b77", "emails": emails}),
    )
    .await;
    assert_eq!(s, 200, "{out}");
    let results = out["results"].as_array().unwrap();
    assert_eq!(results.len(), 61);
    assert_eq!(results[60]["error"]["code"], "unreadable_email");

    // The same bundle natively: kept e-mails get the same decision; the
    // forwarded ones come back decided by the backend among the same
    // candidates.
    let bundle = Bundle::decode(&std::fs::read(bundle()).unwrap()).unwrap();
    let onnx = std::fs::read(model_dir().join("model_int8.onnx")).unwrap();
    let edge = EdgeClassifier::new(bundle, &onnx).unwrap();
    let inputs: Vec<(String, EmailInput)> = test
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let input = EmailInput::Pair {
                subject: r["subject"].as_str().unwrap().into(),
                body: r["body"].as_str().unwrap().into(),
            };
            (format!("m{i}"), input)
        })
        .collect();
    let native = edge.classify(&inputs, 8);
    let (mut kept, mut forwarded) = (0, 0);
    for (result, native) in results.iter().zip(native) {
        let native = native.unwrap();
        let d = &result["decision"];
        assert_eq!(d["id"], native.id.as_str());
        if native.forward_reason.is_none() {
            kept += 1;
            assert_eq!(d["decided_by"], "edge");
            assert_eq!(d["label"], native.label.as_str());
            assert!(
                (d["confidence"].as_f64().unwrap() - f64::from(native.confidence)).abs() < 1e-4
            );
        } else {
            forwarded += 1;
            assert_eq!(d["decided_by"], "backend");
            assert!(d["provisional"].is_null());
            let theirs: BTreeSet<&str> = d["candidates"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["label"].as_str().unwrap())
                .collect();
            let ours: BTreeSet<&str> = native.candidates.iter().map(|c| c.label.as_str()).collect();
            assert_eq!(theirs, ours);
            let total: f64 = d["candidates"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["probability"].as_f64().unwrap())
                .sum();
            assert!((total - 1.0).abs() < 1e-4);
        }
    }
    assert!(
        kept > 0 && forwarded > 0,
        "kept {kept}, forwarded {forwarded}"
    );
    let metrics = metrics_text(&server).await;
    assert_eq!(
        metric(&metrics, "mailsort_forwarded_total"),
        forwarded as f64
    );
}

/// The probe that once took the server to 9 GB: 50 requests of 64 e-mails
/// at once. Each now gets an answer or a refusal within its deadline plus
/// a second, and memory stays bounded. `EDGE_FLAGS` overrides the pool
/// (`--edge-workers 50 --edge-queue-units 100000` is the old behaviour,
/// and fails here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_classify_requests_is_refused_not_piled_up() {
    let flags = std::env::var("EDGE_FLAGS").unwrap_or_default();
    let server = Server::start(&flags.split_whitespace().collect::<Vec<_>>());
    let emails: Vec<Value> = rows(&datasets().join("banking77/test.jsonl"), 7, 64)
        .iter()
        .enumerate()
        .map(|(i, r)| json!({"id": format!("m{i}"), "subject": r["subject"], "body": r["body"]}))
        .collect();
    let body = json!({"bundle": "b77", "deadline_ms": 10_000, "emails": emails});
    let url = server.url("/v1/classify");
    let answers = futures_join((0..50).map(|_| {
        let (url, body) = (url.clone(), body.clone());
        async move {
            let t = std::time::Instant::now();
            let r = client()
                .post(&url)
                .bearer_auth(KEY)
                .json(&body)
                .send()
                .await;
            (r.map(|r| r.status().as_u16()).ok(), t.elapsed())
        }
    }))
    .await;
    let peak = server.peak_rss_bytes();
    let statuses: Vec<_> = answers.iter().map(|a| a.0).collect();
    let slowest = answers.iter().map(|a| a.1).max().unwrap();
    let ok = statuses.iter().filter(|s| **s == Some(200)).count();
    let refused = statuses.iter().filter(|s| **s == Some(429)).count();
    eprintln!(
        "burst: {ok} answered, {refused} refused, slowest {slowest:?}, peak RSS {} MB",
        peak >> 20
    );
    assert!(
        statuses.iter().all(|s| matches!(s, Some(200 | 429 | 504))),
        "{statuses:?}"
    );
    assert!(ok >= 1 && refused >= 1, "{statuses:?}");
    assert!(
        slowest < Duration::from_secs(11),
        "slowest answer {slowest:?}"
    );
    assert!(peak < 1536 << 20, "peak RSS {} MB", peak >> 20);
    // Nothing is left running: a small request is answered at once.
    let small = json!({"bundle": "b77", "deadline_ms": 2_000,
        "emails": [{"id": "after", "subject": "card", "body": "my card was declined"}]});
    let (s, out) = post(&url, &small).await;
    assert_eq!(s, 200, "{out}");
}

/// Slowloris: connections that send nothing hold a slot only until the
/// header timeout, no more than `--max-connections` are open, and a body
/// that stops half-way gets 408.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_slow_clients_are_cut_off_and_connections_capped() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;
    let server = Server::start(&[
        "--max-connections",
        "3",
        "--header-timeout-ms",
        "1500",
        "--body-timeout-ms",
        "500",
    ]);
    let addr = server.base.trim_start_matches("http://").to_string();
    let mut idle = Vec::new();
    for _ in 0..3 {
        idle.push(TcpStream::connect(&addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let past_cap = client()
        .get(server.url("/health"))
        .timeout(Duration::from_millis(500))
        .send()
        .await;
    assert!(
        past_cap.is_err(),
        "a fourth connection was served past the cap"
    );
    // The server closes each idle connection after the header timeout.
    for mut conn in idle {
        let mut buf = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(5), conn.read_to_end(&mut buf)).await;
        assert!(closed.is_ok(), "an idle connection was kept open");
    }
    let (s, _) = post(&server.url("/v1/rerank"), &json!({})).await;
    assert_eq!(s, 422, "the server did not recover its connection slots");

    let mut slow = TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /v1/rerank HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"bundle\":"
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut answer))
        .await
        .expect("a stalled body is answered")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request_timeout"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_document_describes_the_api() {
    let server = Server::start(&[]);
    // Without a key: the generic document, no bundle or label names.
    let open = get_json(&server, "/openapi.json").await;
    assert!(open["components"]["schemas"]["CandidateIn"]["properties"]["label"]["enum"].is_null());
    assert!(!open.to_string().contains("b77"));
    let doc = get_json_with_key(&server, "/openapi.json").await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/v1/rerank",
        "/v1/classify",
        "/health",
        "/ready",
        "/metrics",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} missing");
    }
    assert!(doc["components"]["schemas"]["RerankRequest"].is_object());
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    // The live document carries this server's bundles, labels and limits.
    let schemas = &doc["components"]["schemas"];
    assert_eq!(
        schemas["RerankRequest"]["properties"]["emails"]["maxItems"],
        64
    );
    assert_eq!(
        schemas["CandidateIn"]["properties"]["label"]["enum"]
            .as_array()
            .unwrap()
            .len(),
        labels().len()
    );
    assert!(
        schemas["RerankRequest"]["properties"]["bundle"]["enum"]
            .as_array()
            .unwrap()
            .contains(&json!("b77"))
    );
    for path in ["/health", "/ready"] {
        let open = get_json(&server, path).await;
        assert_eq!(open, json!({"status": "ok"}), "{path} without a key");
    }
    let health = get_json_with_key(&server, "/health").await;
    assert_eq!(health["status"], "ok");
    assert_eq!(health["reranker"]["device"], "cpu");
    assert_eq!(health["reranker"]["precision"], "fp32");
    assert_eq!(health["bundles"][0]["name"], "b77");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_in_flight_requests() {
    let server = Server::start(&["--max-batch-delay-ms", "800"]);
    let url = server.url("/v1/rerank");
    let body = json!({"bundle": "b77", "emails": [rerank_email(3, "card", &labels())]});
    let pending = tokio::spawn(async move { post(&url, &body).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let status = tokio::task::spawn_blocking(move || server.terminate())
        .await
        .unwrap();
    let (s, out) = pending.await.unwrap();
    assert_eq!(s, 200, "{out}");
    assert!(status.success(), "exit {status:?}");
}

#[test]
fn a_wrong_model_file_stops_start_up_with_a_clear_error() {
    let dir = std::env::temp_dir().join(format!("mailsort-wrong-reranker-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["manifest.json", "tokenizer.json", "model_fp16.onnx"] {
        std::fs::copy(reranker_dir().join(f), dir.join(f)).unwrap();
    }
    // The encoder's file where the reranker's should be.
    std::fs::copy(
        model_dir().join("model_int8.onnx"),
        dir.join("model_fp32.onnx"),
    )
    .unwrap();
    let out = Server::command(&["--reranker-dir", dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("does not match the reranker manifest"),
        "{stderr}"
    );

    let out = Server::command(&[])
        .env_remove("MAILSORT_API_KEYS")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no API keys"));
}

/// Awaits all futures concurrently, results in order.
async fn futures_join<F: std::future::Future + Send + 'static>(
    futs: impl IntoIterator<Item = F>,
) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futs.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.expect("task finished"));
    }
    out
}

async fn get_json(server: &Server, path: &str) -> Value {
    get_json_as(server, path, None).await
}

async fn get_json_with_key(server: &Server, path: &str) -> Value {
    get_json_as(server, path, Some(KEY)).await
}

async fn get_json_as(server: &Server, path: &str, key: Option<&str>) -> Value {
    let mut request = client().get(server.url(path));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    request.send().await.unwrap().json().await.unwrap()
}

async fn metrics_text(server: &Server) -> String {
    client()
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The value of one sample line of the Prometheus text format.
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or(0.0)
}

#[test]
fn pairs_are_cut_where_the_reranker_was_trained_unless_told_otherwise() {
    // A copy of the reranker whose manifest records (or omits) its training
    // length; start-up checks the batch budget against the resulting cap.
    let src = reranker_dir();
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(src.join("manifest.json")).unwrap()).unwrap();
    let start = |max_tokens: Option<u16>, extra: &[&str]| {
        let dir = std::env::temp_dir().join(format!(
            "mailsort-reranker-len-{}-{max_tokens:?}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        for f in ["tokenizer.json", "model_fp32.onnx", "model_fp16.onnx"] {
            let _ = std::fs::remove_file(dir.join(f));
            std::os::unix::fs::symlink(src.join(f).canonicalize().unwrap(), dir.join(f)).unwrap();
        }
        let mut m = manifest.clone();
        m["max_tokens"] = serde_json::json!(max_tokens);
        std::fs::write(dir.join("manifest.json"), m.to_string()).unwrap();
        let mut args = vec!["--reranker-dir", dir.to_str().unwrap()];
        args.extend_from_slice(extra);
        let out = Server::command(&args)
            .env_remove("MAILSORT_TOKEN_CAP")
            .output()
            .unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = start(Some(200), &["--max-batch-tokens", "150"]);
    assert!(err.contains("at the token cap (200)"), "{err}");
    let err = start(None, &["--max-batch-tokens", "150"]);
    assert!(err.contains("at the token cap (256)"), "{err}");
    let err = start(
        Some(200),
        &["--max-batch-tokens", "150", "--token-cap", "384"],
    );
    assert!(err.contains("at the token cap (384)"), "{err}");
}
