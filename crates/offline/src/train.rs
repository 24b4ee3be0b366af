//! Learning label vectors from labelled e-mails (native only).
//!
//! The head is a multinomial logistic regression over frozen sentence
//! embeddings (linfa-logistic). Everything that is calibrated (temperature,
//! the nearest-exemplar mix, gate thresholds) is fitted on out-of-sample
//! predictions: the training set is cut into folds, each fold is scored by a
//! head trained on the others, and the shipped head is the mean of the fold
//! heads; exemplar evidence for each e-mail comes from all the other e-mails.
//! No e-mail is ever scored by a model that saw it.

use linfa::prelude::*;
use linfa_logistic::MultiLogisticRegression;
use mailsort_shared::bundle::{Exemplars, LinearHead, softmax};
use mailsort_shared::gate::GateConfig;
use mailsort_shared::taxonomy::Taxonomy;
use mailsort_shared::types::Candidate;
use ndarray016::{Array1, Array2};
use thiserror::Error;

use crate::calibrate::{self, GateFit, Scored, Target};
use mailsort_edge::classifier::{knn_distribution, top_k};
use mailsort_edge::neighbours::{FlatIndex, NeighbourIndex};

/// Why training failed.
#[derive(Debug, Error)]
pub enum TrainError {
    #[error("logistic regression failed: {0}")]
    Fit(String),
    #[error("need at least 2 labels with examples, found {0}")]
    TooFewLabels(usize),
}

/// Training settings.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    /// L2 penalty of the logistic regression (loss summed over examples).
    pub alpha: f32,
    pub max_iterations: u64,
    /// Folds for out-of-fold calibration (2 or more).
    pub folds: usize,
    /// Neighbours for the exemplar evidence.
    pub knn_k: usize,
    /// Mixing weights of exemplar evidence tried against the head alone.
    pub knn_weights: Vec<f32>,
    pub target: Target,
    pub top_k: usize,
}

impl Default for TrainOptions {
    fn default() -> Self {
        Self {
            alpha: 0.05,
            max_iterations: 150,
            folds: 5,
            knn_k: 10,
            knn_weights: vec![0.25, 0.5],
            target: Target::ForwardRate(0.15),
            top_k: 5,
        }
    }
}

/// What training measured, out of fold.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TrainReport {
    pub examples: usize,
    pub labels: usize,
    pub temperature: f32,
    pub oof_accuracy_head: f32,
    pub oof_accuracy_knn: f32,
    /// (weight, accuracy) of each mix tried.
    pub oof_accuracy_mixes: Vec<(f32, f32)>,
    /// Weight of exemplar evidence shipped (0 = head only).
    pub knn_weight: f32,
    pub oof_accuracy_shipped: f32,
    pub gate: GateFit,
}

/// The trained parts of a bundle.
pub struct Trained {
    pub head: LinearHead,
    pub exemplars: Option<Exemplars>,
    pub gate: GateConfig,
    pub report: TrainReport,
    /// Each training e-mail's top-k candidates out of fold, as the shipped
    /// edge would have ranked it without seeing it: the hard negatives a
    /// reranker is trained on.
    pub oof_candidates: Vec<Vec<Candidate>>,
}

/// Fits a head on unit vectors `x` with label indices `y` (into `labels`).
pub fn fit_head(
    x: &[Vec<f32>],
    y: &[usize],
    labels: &[String],
    opts: &TrainOptions,
) -> Result<LinearHead, TrainError> {
    let dim = x.first().map(Vec::len).unwrap_or(0);
    let present: std::collections::BTreeSet<usize> = y.iter().copied().collect();
    if present.len() < 2 {
        return Err(TrainError::TooFewLabels(present.len()));
    }
    let xs = Array2::from_shape_fn((x.len(), dim), |(i, j)| x[i][j]);
    let ys = Array1::from(y.to_vec());
    let ds = Dataset::new(xs, ys);
    let model = MultiLogisticRegression::default()
        .alpha(opts.alpha)
        .max_iterations(opts.max_iterations)
        .fit(&ds)
        .map_err(|e| TrainError::Fit(e.to_string()))?;
    // Labels with no examples in this fit keep a very low bias so they are
    // never predicted but the head keeps its full shape.
    let mut weights = vec![0f32; labels.len() * dim];
    let mut bias = vec![-30f32; labels.len()];
    let params = model.params();
    let intercept = model.intercept();
    for (col, &class) in model.classes().iter().enumerate() {
        for j in 0..dim {
            weights[class * dim + j] = params[[j, col]];
        }
        bias[class] = intercept[col];
    }
    Ok(LinearHead {
        labels: labels.to_vec(),
        dim,
        weights,
        bias,
        temperature: 1.0,
    })
}

/// Trains head, exemplar mix and gate on e-mails `x`/`y`. `extra_x`/`extra_y`
/// (label names, descriptions, examples) join every training fold but are
/// never scored. `progress` is told each finished step.
#[allow(clippy::too_many_arguments)]
pub fn train(
    x: &[Vec<f32>],
    y: &[usize],
    extra_x: &[Vec<f32>],
    extra_y: &[usize],
    labels: &[String],
    taxonomy: &Taxonomy,
    opts: &TrainOptions,
    mut progress: impl FnMut(&str),
) -> Result<Trained, TrainError> {
    let n = x.len();
    let folds = opts.folds.max(2);
    // Deterministic interleaved folds: stratified enough for shuffled labels
    // and reproducible.
    let fold_of: Vec<usize> = fold_assignment(y, folds);
    let mut oof_logits = vec![Vec::new(); n];
    let mut fold_heads = Vec::with_capacity(folds);
    for f in 0..folds {
        let train_idx: Vec<usize> = (0..n).filter(|&i| fold_of[i] != f).collect();
        let test_idx: Vec<usize> = (0..n).filter(|&i| fold_of[i] == f).collect();
        let mut tx: Vec<Vec<f32>> = train_idx.iter().map(|&i| x[i].clone()).collect();
        let mut ty: Vec<usize> = train_idx.iter().map(|&i| y[i]).collect();
        tx.extend_from_slice(extra_x);
        ty.extend_from_slice(extra_y);
        let head = fit_head(&tx, &ty, labels, opts)?;
        fold_heads.push(head.clone());
        for &i in &test_idx {
            oof_logits[i] = head.logits(&x[i]);
        }
        progress(&format!("fold {}/{} trained", f + 1, folds));
    }
    let oof_knn = leave_one_out_knn(x, y, labels.len(), opts.knn_k);
    progress("exemplar evidence scored (leave one out)");
    let temperature = calibrate::fit_temperature(&oof_logits, y);
    let head_probs: Vec<Vec<f32>> = oof_logits.iter().map(|l| softmax(l, temperature)).collect();
    let acc = |probs: &dyn Fn(usize) -> Vec<f32>| -> f32 {
        (0..n).filter(|&i| argmax(&probs(i)) == y[i]).count() as f32 / n as f32
    };
    let acc_head = acc(&|i| head_probs[i].clone());
    let acc_knn = acc(&|i| oof_knn[i].clone());
    let mix = |w: f32, i: usize| -> Vec<f32> {
        head_probs[i]
            .iter()
            .zip(&oof_knn[i])
            .map(|(h, k)| (1.0 - w) * h + w * k)
            .collect()
    };
    let mixes: Vec<(f32, f32)> = opts
        .knn_weights
        .iter()
        .map(|&w| (w, acc(&|i| mix(w, i))))
        .collect();
    // Exemplars cost bundle size and time: ship them only for a clear gain.
    let (knn_weight, acc_shipped) = mixes
        .iter()
        .copied()
        .filter(|&(_, a)| a > acc_head + 0.003)
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap_or((0.0, acc_head));
    progress(&format!(
        "out-of-sample accuracy: head {:.4}, exemplars {:.4}, shipped {:.4} (exemplar weight {knn_weight})",
        acc_head, acc_knn, acc_shipped
    ));

    let scored: Vec<Scored> = (0..n)
        .map(|i| Scored {
            candidates: top_k(labels, &mix(knn_weight, i), opts.top_k.max(2)),
            gold: &labels[y[i]],
        })
        .collect();
    let base = GateConfig {
        top_k: opts.top_k,
        ..GateConfig::default()
    };
    let (gate, fit) = calibrate::fit_gate(&scored, taxonomy, &base, opts.target);
    let oof_candidates: Vec<Vec<Candidate>> = scored
        .into_iter()
        .map(|s| {
            let mut c = s.candidates;
            c.truncate(opts.top_k.max(1));
            c
        })
        .collect();

    // The shipped head is the mean of the fold heads (for a linear head, the
    // mean of their logits). A head refitted on all data would be more
    // confident than the heads whose out-of-fold scores set the temperature
    // and thresholds, and would forward less than calibrated.
    let mut head = average_heads(&fold_heads);
    head.temperature = temperature;
    let exemplars = (knn_weight > 0.0).then(|| {
        Exemplars::from_vectors(
            head.dim,
            x,
            y.iter().map(|&l| l as u32).collect(),
            opts.knn_k,
            knn_weight,
        )
    });
    Ok(Trained {
        head,
        exemplars,
        gate,
        report: TrainReport {
            examples: n,
            labels: labels.len(),
            temperature,
            oof_accuracy_head: acc_head,
            oof_accuracy_knn: acc_knn,
            oof_accuracy_mixes: mixes,
            knn_weight,
            oof_accuracy_shipped: acc_shipped,
            gate: fit,
        },
        oof_candidates,
    })
}

/// Exemplar evidence for each training e-mail from all the others. Unlike
/// the head, exemplars are shipped whole, so scoring each e-mail against
/// every other one (not against 4/5 of them) matches what new mail meets.
fn leave_one_out_knn(x: &[Vec<f32>], y: &[usize], n_labels: usize, k: usize) -> Vec<Vec<f32>> {
    let dim = x.first().map(Vec::len).unwrap_or(0);
    let ex = Exemplars::from_vectors(dim, x, y.iter().map(|&l| l as u32).collect(), k, 0.0);
    let index = FlatIndex::new(&ex);
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let chunk = x.len().div_ceil(threads).max(1);
    let mut out = vec![Vec::new(); x.len()];
    std::thread::scope(|s| {
        for (c, slot) in out.chunks_mut(chunk).enumerate() {
            let (index, ex) = (&index, &ex);
            s.spawn(move || {
                for (j, dist) in slot.iter_mut().enumerate() {
                    let i = c * chunk + j;
                    let others = Excluding {
                        inner: index,
                        skip: i,
                    };
                    *dist = knn_distribution(&others, ex, &x[i], n_labels);
                }
            });
        }
    });
    out
}

/// A neighbour index that never returns one exemplar.
struct Excluding<'a> {
    inner: &'a FlatIndex,
    skip: usize,
}

impl NeighbourIndex for Excluding<'_> {
    fn search(&self, query: &[f32], k: usize) -> Vec<(usize, f32)> {
        let mut hits = self.inner.search(query, k + 1);
        hits.retain(|&(i, _)| i != self.skip);
        hits.truncate(k);
        hits
    }
}

/// For each label, up to `n` typical e-mails to show the reranker: the
/// eligible ones (e.g. short enough to read) closest in cosine to the
/// label's centroid, skipping near-duplicates (cosine above 0.9) of one
/// already picked. The reranker then reads what the label's e-mails look
/// like, not only its one-line description. Indices into `x`, best first.
pub fn pick_examples(
    x: &[Vec<f32>],
    y: &[usize],
    eligible: &[bool],
    n_labels: usize,
    n: usize,
) -> Vec<Vec<usize>> {
    let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(p, q)| p * q).sum::<f32>();
    let mut members = vec![Vec::new(); n_labels];
    for (i, &l) in y.iter().enumerate() {
        if l < n_labels {
            members[l].push(i);
        }
    }
    members
        .into_iter()
        .map(|idx| {
            let Some(first) = idx.first() else {
                return Vec::new();
            };
            let mut centroid = vec![0f32; x[*first].len()];
            for &i in &idx {
                for (c, v) in centroid.iter_mut().zip(&x[i]) {
                    *c += v;
                }
            }
            let mut ranked: Vec<(usize, f32)> = idx
                .iter()
                .filter(|&&i| eligible[i])
                .map(|&i| (i, dot(&x[i], &centroid)))
                .collect();
            ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            let mut picked: Vec<usize> = Vec::new();
            for (i, _) in ranked {
                if picked.len() == n {
                    break;
                }
                if picked.iter().all(|&j| dot(&x[i], &x[j]) <= 0.9) {
                    picked.push(i);
                }
            }
            picked
        })
        .collect()
}

/// The element-wise mean of heads with the same labels and width.
fn average_heads(heads: &[LinearHead]) -> LinearHead {
    let mut out = heads[0].clone();
    let k = heads.len() as f32;
    for (i, w) in out.weights.iter_mut().enumerate() {
        *w = heads.iter().map(|h| h.weights[i]).sum::<f32>() / k;
    }
    for (i, b) in out.bias.iter_mut().enumerate() {
        *b = heads.iter().map(|h| h.bias[i]).sum::<f32>() / k;
    }
    out
}

/// Round-robin within each label, so every fold sees every label.
fn fold_assignment(y: &[usize], folds: usize) -> Vec<usize> {
    let mut seen = std::collections::HashMap::new();
    y.iter()
        .map(|&l| {
            let c = seen.entry(l).or_insert(0usize);
            *c += 1;
            (*c - 1) % folds
        })
        .collect()
}

fn argmax(v: &[f32]) -> usize {
    v.iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(i, _)| i)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(v: Vec<f32>) -> Vec<f32> {
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.into_iter().map(|x| x / n).collect()
    }

    #[test]
    fn picked_examples_are_central_eligible_and_not_duplicates() {
        let x = vec![
            unit(vec![1.0, 0.0, 0.0]),  // label 0, on the centroid's side
            unit(vec![1.0, 0.05, 0.0]), // near-duplicate of 0
            unit(vec![1.0, 0.6, 0.0]),  // label 0, further out
            unit(vec![0.9, 0.1, 0.0]),  // label 0, central but too long
            unit(vec![0.0, 0.0, 1.0]),  // label 1
        ];
        let y = vec![0, 0, 0, 0, 1];
        let eligible = vec![true, true, true, false, true];
        let picks = pick_examples(&x, &y, &eligible, 3, 2);
        assert_eq!(picks[0].len(), 2);
        assert!(
            !picks[0].contains(&3),
            "ineligible e-mail picked: {picks:?}"
        );
        assert!(
            !(picks[0].contains(&0) && picks[0].contains(&1)),
            "near-duplicates both picked: {picks:?}"
        );
        assert!(picks[0].contains(&2), "{picks:?}");
        assert_eq!(picks[1], vec![4]);
        assert!(picks[2].is_empty(), "a label without e-mails gets none");
    }

    #[test]
    fn separable_clusters_are_learned_and_calibrated() {
        let labels: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let tax =
            Taxonomy::from_training_labels(labels.iter().map(|l| (l.as_str(), None))).unwrap();
        let mut x = Vec::new();
        let mut y = Vec::new();
        for i in 0..150 {
            let l = i % 3;
            let mut v = vec![0.1f32; 8];
            v[l] = 1.0 + ((i * 7) % 5) as f32 * 0.05;
            v[3 + (i % 5)] += 0.3;
            x.push(unit(v));
            y.push(l);
        }
        let opts = TrainOptions {
            folds: 3,
            ..TrainOptions::default()
        };
        let t = train(&x, &y, &[], &[], &labels, &tax, &opts, |_| {}).unwrap();
        assert!(t.report.oof_accuracy_head > 0.99, "{:?}", t.report);
        let p = t.head.probabilities(&x[1]);
        assert_eq!(argmax(&p), 1);
        assert_eq!(fold_assignment(&[0, 0, 1, 0, 1], 2), vec![0, 1, 0, 0, 1]);
    }
}
