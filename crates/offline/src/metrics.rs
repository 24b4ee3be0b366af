//! Accuracy figures for `mailsort eval`.

use std::collections::BTreeMap;

use mailsort_shared::types::{DecidedBy, Decision};
use serde::Serialize;

/// What `mailsort eval --json` prints.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct EvalReport {
    pub n: usize,
    /// Top-1 accuracy of the edge's label on every e-mail (edge only).
    pub accuracy: f64,
    pub macro_f1: f64,
    /// Share of e-mails the gate forwards to the backend.
    pub forwarded_rate: f64,
    /// Accuracy on the e-mails kept at the edge.
    pub edge_accuracy: f64,
    /// Accuracy of the edge's provisional label on the forwarded e-mails.
    pub forwarded_accuracy: f64,
    /// Gold label among the top 5 candidates.
    pub top5_recall: f64,
    /// Gold label among the forwarded top-k (what a reranker could reach).
    pub forwarded_topk_recall: f64,
    /// Accuracy if a perfect reranker fixed every forwarded e-mail whose gold
    /// label is among its candidates: the ceiling of edge + backend.
    pub oracle_end_to_end_accuracy: f64,
    /// Gold labels the bundle does not know.
    pub unknown_gold_labels: usize,
    /// With a backend: the final decisions (edge's where kept, reranker's
    /// where forwarded).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_to_end: Option<EndToEnd>,
}

/// Accuracy of edge + backend together.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct EndToEnd {
    /// The reranker that answered, as the backend names it.
    pub reranker: String,
    /// Final label right, over all e-mails.
    pub accuracy: f64,
    pub macro_f1: f64,
    /// Final label right on the forwarded e-mails.
    pub forwarded_accuracy: f64,
    /// Forwarded e-mails the backend answered.
    pub reranked: usize,
    /// Forwarded e-mails it never answered, busy or down past the retries:
    /// they keep the edge's label.
    pub unanswered: usize,
}

/// Scores final decisions (the backend's where it answered).
pub fn end_to_end(finals: &[(&Decision, &str)], reranker: &str) -> EndToEnd {
    let r = evaluate(finals, &[]);
    let reranked = finals
        .iter()
        .filter(|(d, _)| d.decided_by == DecidedBy::Backend && !d.provisional)
        .count();
    EndToEnd {
        reranker: reranker.to_string(),
        accuracy: r.accuracy,
        macro_f1: r.macro_f1,
        forwarded_accuracy: r.forwarded_accuracy,
        reranked,
        unanswered: 0,
    }
}

/// Scores decisions against gold labels (pairs in any order).
pub fn evaluate(pairs: &[(&Decision, &str)], known_labels: &[String]) -> EvalReport {
    let n = pairs.len();
    let mut correct = 0usize;
    let mut kept = 0usize;
    let mut kept_correct = 0usize;
    let mut fwd_correct = 0usize;
    let mut top5 = 0usize;
    let mut fwd_topk = 0usize;
    let mut unknown = 0usize;
    // label -> (tp, fp, fn)
    let mut counts: BTreeMap<&str, (usize, usize, usize)> = BTreeMap::new();
    for (d, gold) in pairs {
        let ok = d.label == *gold;
        correct += ok as usize;
        if !known_labels.iter().any(|l| l == gold) {
            unknown += 1;
        }
        let in_top5 = d.candidates.iter().take(5).any(|c| c.label == *gold);
        top5 += in_top5 as usize;
        if d.decided_by == DecidedBy::Edge {
            kept += 1;
            kept_correct += ok as usize;
        } else {
            fwd_correct += ok as usize;
            fwd_topk += d.candidates.iter().any(|c| c.label == *gold) as usize;
        }
        if ok {
            counts.entry(gold).or_default().0 += 1;
        } else {
            counts.entry(d.label.as_str()).or_default().1 += 1;
            counts.entry(gold).or_default().2 += 1;
        }
    }
    let f1s: Vec<f64> = counts
        .values()
        .filter(|(tp, _, fnn)| tp + fnn > 0)
        .map(|&(tp, fp, fnn)| {
            if tp == 0 {
                0.0
            } else {
                2.0 * tp as f64 / (2 * tp + fp + fnn) as f64
            }
        })
        .collect();
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let forwarded = n - kept;
    EvalReport {
        n,
        accuracy: ratio(correct, n),
        macro_f1: if f1s.is_empty() {
            0.0
        } else {
            f1s.iter().sum::<f64>() / f1s.len() as f64
        },
        forwarded_rate: ratio(forwarded, n),
        edge_accuracy: ratio(kept_correct, kept),
        forwarded_accuracy: ratio(fwd_correct, forwarded),
        top5_recall: ratio(top5, n),
        forwarded_topk_recall: ratio(fwd_topk, forwarded),
        oracle_end_to_end_accuracy: ratio(kept_correct + fwd_topk, n),
        unknown_gold_labels: unknown,
        end_to_end: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mailsort_shared::types::Candidate;

    fn d(label: &str, by: DecidedBy, cands: &[&str]) -> Decision {
        Decision {
            id: "x".into(),
            label: label.into(),
            confidence: 0.5,
            decided_by: by,
            candidates: cands
                .iter()
                .map(|l| Candidate {
                    label: (*l).into(),
                    probability: 0.1,
                })
                .collect(),
            forward_reason: None,
            provisional: false,
        }
    }

    #[test]
    fn counts_accuracy_gate_and_f1() {
        let a = d("a", DecidedBy::Edge, &["a", "b"]);
        let b = d("b", DecidedBy::Backend, &["b", "a"]);
        let c = d("a", DecidedBy::Edge, &["a", "c"]);
        let labels: Vec<String> = ["a", "b"].iter().map(|s| s.to_string()).collect();
        let r = evaluate(&[(&a, "a"), (&b, "a"), (&c, "c")], &labels);
        assert_eq!(r.n, 3);
        assert!((r.accuracy - 1.0 / 3.0).abs() < 1e-9);
        assert!((r.forwarded_rate - 1.0 / 3.0).abs() < 1e-9);
        assert!((r.edge_accuracy - 0.5).abs() < 1e-9);
        assert!((r.top5_recall - 1.0).abs() < 1e-9);
        assert!((r.oracle_end_to_end_accuracy - 2.0 / 3.0).abs() < 1e-9);
        assert_eq!(r.unknown_gold_labels, 1);
        // a: tp1 fp1 fn1 -> 0.5; c: fn1 -> 0; b: fp1 only, no gold -> excluded.
        assert!((r.macro_f1 - 0.25).abs() < 1e-9);
    }

    #[test]
    fn end_to_end_counts_reranked_answers() {
        let kept = d("a", DecidedBy::Edge, &["a", "b"]);
        let reranked = d("a", DecidedBy::Backend, &["a", "b"]);
        let mut provisional = d("b", DecidedBy::Backend, &["b", "a"]);
        provisional.provisional = true;
        let e = end_to_end(&[(&kept, "a"), (&reranked, "a"), (&provisional, "a")], "r");
        assert!((e.accuracy - 2.0 / 3.0).abs() < 1e-9);
        assert!((e.forwarded_accuracy - 0.5).abs() < 1e-9);
        assert_eq!(e.reranked, 1);
    }
}
