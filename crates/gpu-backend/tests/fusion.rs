//! Per-bundle fusion files (`NAME.fusion.json` beside `NAME.msb`): refused
//! at start-up when made for another bundle or reranker, named in /health
//! and the metrics, and applied to that bundle's e-mails only.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use mailsort_shared::bundle::Bundle;
use serde_json::{Value, json};

/// A copy of the test bundle as `NAME.msb` in its own folder, so that a
/// fusion file can sit beside it.
fn bundle_copy(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "mailsort-fusion-test-{}-{name}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.msb"));
    std::fs::copy(bundle(), &path).unwrap();
    path
}

fn bundle_id(path: &Path) -> String {
    Bundle::decode(&std::fs::read(path).unwrap()).unwrap().id
}

fn reranker_sha256() -> String {
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(reranker_dir().join("manifest.json")).unwrap(),
    )
    .unwrap();
    manifest["fp32_sha256"].as_str().unwrap().to_string()
}

fn write_fusion(bundle: &Path, bundle_id: &str, reranker_sha256: &str) {
    let file = json!({
        "bundle_id": bundle_id,
        "reranker": {"name": "test", "sha256": reranker_sha256},
        "default": {"mode": "edge_only"},
        "by_reason": {},
        "dev_emails": 10,
        "dev_forwarded": 2,
        "report": {},
    });
    std::fs::write(bundle.with_extension("fusion.json"), file.to_string()).unwrap();
}

#[test]
fn a_fusion_file_for_another_bundle_or_reranker_stops_start_up() {
    let other = bundle_copy("other-bundle");
    write_fusion(&other, &"0".repeat(64), &reranker_sha256());
    let out = Server::command(&["--bundle", other.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("other-bundle.fusion.json") && stderr.contains("not this bundle"),
        "{stderr}"
    );

    let stale = bundle_copy("other-reranker");
    write_fusion(&stale, &bundle_id(&stale), &"0".repeat(64));
    let out = Server::command(&["--bundle", stale.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not the one served"), "{stderr}");

    let garbage = bundle_copy("garbage");
    std::fs::write(garbage.with_extension("fusion.json"), "{\"bundle_id\": 3}").unwrap();
    let out = Server::command(&["--bundle", garbage.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not a fusion file"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_bundle_uses_and_reports_its_own_fusion() {
    let fused = bundle_copy("fused");
    write_fusion(&fused, &bundle_id(&fused), &reranker_sha256());
    let server = Server::start(&["--bundle", fused.to_str().unwrap()]);

    let health: Value = client()
        .get(server.url("/health"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let fusion_of = |name: &str| {
        health["bundles"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["name"] == name)
            .map(|b| b["fusion"].as_str().unwrap().to_string())
            .unwrap()
    };
    assert!(fusion_of("fused").starts_with("dev: "), "{health}");
    assert!(fusion_of("b77").starts_with("reranker default"), "{health}");
    let metrics = client()
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"mailsort_bundle_info{bundle="fused",fusion="dev"} 1"#),
        "{metrics}"
    );

    // The edge's probabilities favour the third candidate; an edge-only
    // fusion keeps them as they are whatever the reranker scores, while the
    // other bundle's fusion (the reranker's) mixes the scores in.
    let bundle = Bundle::decode(&std::fs::read(&fused).unwrap()).unwrap();
    let labels = &bundle.head.labels;
    let probs = [0.2, 0.1, 0.4, 0.2, 0.1];
    let mut changed = 0;
    for (i, row) in rows(&datasets().join("banking77/test.jsonl"), 151, 12)
        .iter()
        .enumerate()
    {
        let candidates: Vec<Value> = (0..5)
            .map(|k| json!({"label": labels[(i * 7 + k * 11) % labels.len()], "probability": probs[k]}))
            .collect();
        let email = json!({"id": i.to_string(), "text": row["body"], "candidates": candidates});
        let ask = |b: &str| json!({"bundle": b, "emails": [email.clone()]});
        let (s, out) = post(&server.url("/v1/rerank"), &ask("fused")).await;
        assert_eq!(s, 200, "{out}");
        let result = &out["results"][0];
        assert_eq!(result["label"], candidates[2]["label"], "{out}");
        assert!((result["confidence"].as_f64().unwrap() - 0.4).abs() < 1e-5);
        let (s, plain) = post(&server.url("/v1/rerank"), &ask("b77")).await;
        assert_eq!(s, 200, "{plain}");
        let confidence = plain["results"][0]["confidence"].as_f64().unwrap();
        changed += usize::from((confidence - 0.4).abs() > 1e-3);
    }
    assert!(
        changed > 0,
        "the reranker's own fusion left every edge probability as it was"
    );
}
