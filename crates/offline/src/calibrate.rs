//! Calibration: the head's temperature, and gate thresholds for a target
//! forwarded share or a target accuracy at the edge, fitted out of fold at
//! build time or on a dev split the bundle never saw ([`calibrate_on_dev`]).

use std::collections::BTreeMap;

use mailsort_edge::classifier::top_k;
use mailsort_edge::{Batching, EdgeClassifier, EmbedError};
use mailsort_shared::bundle::{Bundle, softmax};
use mailsort_shared::dataset::LabelledEmail;
use mailsort_shared::gate::{GateConfig, GateOutcome};
use mailsort_shared::taxonomy::Taxonomy;
use mailsort_shared::types::Candidate;
use serde::Serialize;
use thiserror::Error;

use crate::progress::{self, Progress};

/// Why a dev split could not calibrate a bundle.
#[derive(Debug, Error)]
pub enum CalibrateError {
    #[error("dev labels unknown to the bundle: {0}")]
    UnknownLabels(String),
    #[error(transparent)]
    Embed(#[from] EmbedError),
}

/// A bundle recalibrated on a dev split.
pub struct DevCalibration {
    /// The bundle with its new gate (and temperature, when refitted).
    pub bundle: Bundle,
    pub fit: GateFit,
    /// (before, after), when the temperature was refitted.
    pub temperature: Option<(f32, f32)>,
}

/// Sets the gate of `classifier`'s bundle for `target` on labelled dev
/// `rows`, optionally refitting the head's temperature there first.
pub fn calibrate_on_dev(
    classifier: &mut EdgeClassifier,
    rows: &[LabelledEmail],
    target: Target,
    refit_temperature: bool,
    batching: Batching,
    progress: &dyn Progress,
) -> Result<DevCalibration, CalibrateError> {
    let labels = classifier.bundle().head.labels.clone();
    let unknown: Vec<&str> = rows
        .iter()
        .filter_map(|r| r.label.as_deref())
        .filter(|l| !labels.iter().any(|x| x == l))
        .collect();
    if !unknown.is_empty() {
        return Err(CalibrateError::UnknownLabels(unknown.join(", ")));
    }
    let cfg = classifier.bundle().clean;
    let texts: Vec<String> = rows.iter().map(|r| r.cleaned_text(&cfg)).collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let x = progress::embed(classifier.embedder(), &refs, batching, "dev", progress)?;
    let mut temperature = None;
    if refit_temperature {
        let logits: Vec<Vec<f32>> = x
            .iter()
            .map(|v| classifier.bundle().head.logits(v))
            .collect();
        let gold: Vec<usize> = rows
            .iter()
            .map(|r| {
                labels
                    .iter()
                    .position(|l| Some(l.as_str()) == r.label.as_deref())
                    .expect("every dev label was checked above")
            })
            .collect();
        let t = fit_temperature(&logits, &gold);
        temperature = Some((classifier.bundle().head.temperature, t));
        classifier.bundle_mut().head.temperature = t;
    }
    let top = classifier.bundle().gate.top_k.max(2);
    let scored: Vec<Scored> = x
        .iter()
        .zip(rows)
        .map(|(v, r)| Scored {
            candidates: top_k(&labels, &classifier.probabilities(v), top),
            gold: r.label.as_deref().unwrap_or(""),
        })
        .collect();
    let current = classifier.bundle();
    let (gate, fit) = fit_gate(&scored, &current.taxonomy, &current.gate, target);
    let mut bundle = current.clone();
    bundle.gate = gate;
    bundle.report.dev_examples = rows.len();
    bundle.report.calibrated_forward_rate = Some(fit.forward_rate);
    bundle.report.calibrated_edge_accuracy = Some(fit.edge_accuracy);
    Ok(DevCalibration {
        bundle,
        fit,
        temperature,
    })
}

/// Fits the temperature that minimises the negative log-likelihood of the
/// gold labels (`gold[i]` indexes `logits[i]`), searching log-spaced values
/// and refining around the best.
pub fn fit_temperature(logits: &[Vec<f32>], gold: &[usize]) -> f32 {
    let nll = |t: f32| -> f64 {
        logits
            .iter()
            .zip(gold)
            .map(|(l, &g)| -(softmax(l, t)[g].max(1e-12) as f64).ln())
            .sum()
    };
    let mut best = (1.0f32, f64::INFINITY);
    for i in 0..=60 {
        let t = 10f32.powf(-2.0 + 3.0 * i as f32 / 60.0);
        let v = nll(t);
        if v < best.1 {
            best = (t, v);
        }
    }
    // Golden-section refinement within one grid step either side.
    let (mut lo, mut hi) = (best.0 / 1.13, best.0 * 1.13);
    let g = 0.618_034f32;
    for _ in 0..30 {
        let a = hi - g * (hi - lo);
        let b = lo + g * (hi - lo);
        if nll(a) < nll(b) {
            hi = b;
        } else {
            lo = a;
        }
    }
    (lo + hi) / 2.0
}

/// What calibration aims for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    /// Forward at most this share of e-mails, keeping the best edge accuracy.
    ForwardRate(f32),
    /// Reach this accuracy on kept e-mails, forwarding as few as possible.
    EdgeAccuracy(f32),
}

/// The gate chosen and what it achieved on the calibration split.
#[derive(Debug, Clone, Serialize)]
pub struct GateFit {
    pub forward_rate: f32,
    pub edge_accuracy: f32,
    pub margin_threshold: f32,
    pub confusable_threshold: f32,
    pub confusable_pairs: usize,
    pub siblings_confusable: bool,
}

/// One calibration example: its candidates (sorted) and gold label.
pub struct Scored<'a> {
    pub candidates: Vec<Candidate>,
    pub gold: &'a str,
}

/// Label pairs the calibration split confuses often: at least 3 errors and
/// at least 5% of the gold label's examples.
pub fn confusable_pairs(scored: &[Scored]) -> Vec<(String, String)> {
    let mut per_gold: BTreeMap<&str, usize> = BTreeMap::new();
    let mut errors: BTreeMap<(String, String), usize> = BTreeMap::new();
    for s in scored {
        *per_gold.entry(s.gold).or_default() += 1;
        if let Some(top) = s.candidates.first()
            && top.label != s.gold
        {
            let (a, b) = if top.label.as_str() < s.gold {
                (top.label.clone(), s.gold.to_string())
            } else {
                (s.gold.to_string(), top.label.clone())
            };
            *errors.entry((a, b)).or_default() += 1;
        }
    }
    errors
        .into_iter()
        .filter(|((a, b), n)| {
            let support = per_gold
                .get(a.as_str())
                .copied()
                .unwrap_or(0)
                .min(per_gold.get(b.as_str()).copied().unwrap_or(0));
            *n >= 3 && *n as f32 >= 0.05 * support.max(1) as f32
        })
        .map(|(pair, _)| pair)
        .collect()
}

/// Chooses the margin threshold (and a stricter one for confusable pairs,
/// when that helps) for the target. Tries a few ratios between the two
/// thresholds and keeps the one with the best result on `scored`.
pub fn fit_gate(
    scored: &[Scored],
    taxonomy: &Taxonomy,
    base: &GateConfig,
    target: Target,
) -> (GateConfig, GateFit) {
    let pairs = confusable_pairs(scored);
    let has_parents = taxonomy.labels().iter().any(|l| l.parent.is_some());
    // (ratio of the confusable threshold to the plain one, siblings count as confusable)
    let mut variants = vec![(1.0f32, false)];
    for factor in [1.25f32, 1.5, 2.0] {
        variants.push((factor, false));
        if has_parents {
            variants.push((factor, true));
        }
    }
    let mut best: Option<(GateConfig, GateFit)> = None;
    for (factor, siblings) in variants {
        let mut gate = GateConfig {
            per_label: BTreeMap::new(),
            confusable_pairs: if factor > 1.0 {
                pairs.clone()
            } else {
                Vec::new()
            },
            siblings_confusable: siblings,
            // Which kinds the edge keeps follows from a fusion fitted on
            // what the old thresholds forwarded: refit it after these.
            keep_at_edge: Vec::new(),
            ..base.clone()
        };
        let (t, rate, acc) = search_threshold(scored, taxonomy, &mut gate, factor, target);
        gate.margin_threshold = t;
        gate.confusable_threshold = (t * factor).min(1.0);
        let fit = GateFit {
            forward_rate: rate,
            edge_accuracy: acc,
            margin_threshold: t,
            confusable_threshold: gate.confusable_threshold,
            confusable_pairs: gate.confusable_pairs.len(),
            siblings_confusable: siblings,
        };
        let better = match (&best, target) {
            (None, _) => true,
            (Some((_, b)), Target::ForwardRate(_)) => fit.edge_accuracy > b.edge_accuracy + 1e-6,
            (Some((_, b)), Target::EdgeAccuracy(goal)) => {
                let reaches = fit.edge_accuracy >= goal;
                let b_reaches = b.edge_accuracy >= goal;
                (reaches && !b_reaches)
                    || (reaches == b_reaches && fit.forward_rate < b.forward_rate - 1e-6)
            }
        };
        if better {
            best = Some((gate, fit));
        }
    }
    best.expect("at least one variant is tried")
}

/// (forward rate, edge accuracy) of a gate on the scored set.
pub fn gate_outcome(scored: &[Scored], taxonomy: &Taxonomy, gate: &GateConfig) -> (f32, f32) {
    let mut kept = 0usize;
    let mut kept_ok = 0usize;
    for s in scored {
        if gate.decide(&s.candidates, taxonomy) == GateOutcome::Keep {
            kept += 1;
            kept_ok += (s.candidates[0].label == s.gold) as usize;
        }
    }
    let n = scored.len().max(1);
    (
        (n - kept) as f32 / n as f32,
        if kept == 0 {
            0.0
        } else {
            kept_ok as f32 / kept as f32
        },
    )
}

/// Bisection on the margin threshold: the forwarded share grows with it.
fn search_threshold(
    scored: &[Scored],
    taxonomy: &Taxonomy,
    gate: &mut GateConfig,
    factor: f32,
    target: Target,
) -> (f32, f32, f32) {
    let eval = |gate: &mut GateConfig, t: f32| {
        gate.margin_threshold = t;
        gate.confusable_threshold = (t * factor).min(1.0);
        gate_outcome(scored, taxonomy, gate)
    };
    let (mut lo, mut hi) = (0.0f32, 1.0f32);
    for _ in 0..40 {
        let mid = (lo + hi) / 2.0;
        let (rate, acc) = eval(gate, mid);
        let ok = match target {
            Target::ForwardRate(r) => rate <= r,
            Target::EdgeAccuracy(a) => acc < a,
        };
        // For a forward-rate target we want the largest threshold that stays
        // within the rate; for an accuracy target, the smallest that reaches it.
        if ok {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let t = match target {
        Target::ForwardRate(_) => lo,
        Target::EdgeAccuracy(_) => hi,
    };
    let (rate, acc) = eval(gate, t);
    (t, rate, acc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temperature_recovers_overconfidence() {
        // Logits scaled by 4 relative to a model that is right 70% of the time.
        let mut logits = Vec::new();
        let mut gold = Vec::new();
        for i in 0..1000 {
            logits.push(vec![4.0 * 1.0, 4.0 * 0.15]);
            gold.push(if i % 10 < 7 { 0 } else { 1 });
        }
        let t = fit_temperature(&logits, &gold);
        let p = softmax(&logits[0], t)[0];
        assert!((p - 0.7).abs() < 0.01, "p={p} t={t}");
    }

    #[test]
    fn gate_hits_the_forward_rate() {
        let tax = Taxonomy::from_training_labels([("a", None), ("b", None)]).unwrap();
        let scored: Vec<Scored> = (0..200)
            .map(|i| {
                let p = 0.5 + (i as f32) / 400.0;
                Scored {
                    candidates: vec![
                        Candidate {
                            label: "a".into(),
                            probability: p,
                        },
                        Candidate {
                            label: "b".into(),
                            probability: 1.0 - p,
                        },
                    ],
                    gold: if i % 3 == 0 && i < 60 { "b" } else { "a" },
                }
            })
            .collect();
        let (gate, fit) = fit_gate(
            &scored,
            &tax,
            &GateConfig::default(),
            Target::ForwardRate(0.3),
        );
        assert!((fit.forward_rate - 0.3).abs() <= 0.01, "{fit:?}");
        assert!(fit.edge_accuracy > 0.95);
        assert_eq!(gate_outcome(&scored, &tax, &gate).0, fit.forward_rate);
        let (_, fit) = fit_gate(
            &scored,
            &tax,
            &GateConfig::default(),
            Target::EdgeAccuracy(1.0),
        );
        assert_eq!(fit.edge_accuracy, 1.0);
        assert!(fit.forward_rate <= 0.31);
    }
}
