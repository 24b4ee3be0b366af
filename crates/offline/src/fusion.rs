//! Fitting a bundle's fusion on its dev split: for each kind of forwarded
//! e-mail (by forward reason), the temperature and edge weight under which
//! the reranker's scores and the edge's probabilities get the most dev
//! e-mails right, or the edge alone where the reranker does not beat it by
//! a clear margin: McNemar's test on the e-mails where the two disagree,
//! one-sided, so that a win of two e-mails in a hundred stays noise. "Edge
//! only" is always one of the fits, so on the dev split the backend can
//! never do worse than the edge.

use std::collections::BTreeMap;

use mailsort_shared::api::RerankResult;
use mailsort_shared::fusion::{FusionFit, FusionGroupReport, fuse};
use mailsort_shared::types::Decision;

/// Temperatures tried.
const TEMPERATURES: [f32; 10] = [0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0];
/// Edge weights tried (0: the reranker alone).
const EDGE_WEIGHTS: [f32; 10] = [0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 8.0];
/// Second-opinion weights tried beside the reranker's scores.
const HEAD_WEIGHTS: [f32; 4] = [0.5, 1.0, 2.0, 4.0];
/// Second-opinion shares tried against the edge alone (no reranker).
const HEAD_SHARES: [f32; 10] = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0];

/// One forwarded dev e-mail as the fitter sees it.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Its forward reason's kind (`low_margin`, …).
    pub reason: String,
    /// The reranker's raw scores, in the edge's candidate order.
    pub scores: Vec<f32>,
    /// The edge's probabilities, same order (most probable first).
    pub edge: Vec<f32>,
    /// The second opinion's probabilities, same order, where the bundle
    /// has one.
    pub head: Option<Vec<f32>>,
    /// Where the gold label is among the candidates, if it is.
    pub gold: Option<usize>,
}

impl Sample {
    /// A forwarded `decision`, the backend's `result` for it, and its gold
    /// label. `None` when the result does not score every candidate (ask
    /// the backend with `score_all`).
    pub fn new(decision: &Decision, result: &RerankResult, gold: &str) -> Option<Self> {
        // The result's candidates, in the edge's order.
        let answered: Vec<_> = decision
            .candidates
            .iter()
            .map(|c| result.candidates.iter().find(|r| r.label == c.label))
            .collect::<Option<_>>()?;
        Some(Self {
            reason: decision
                .forward_reason
                .as_ref()
                .map_or("none", |r| r.kind())
                .to_string(),
            scores: answered.iter().map(|r| r.score).collect::<Option<_>>()?,
            edge: decision.candidates.iter().map(|c| c.probability).collect(),
            head: answered.iter().map(|r| r.head_probability).collect(),
            gold: decision.candidates.iter().position(|c| c.label == gold),
        })
    }
}

/// How clear a win the reranker needs before it is trusted over the edge.
#[derive(Debug, Clone, Copy)]
pub struct FitOptions {
    /// At least this many more dev e-mails right than the edge…
    pub min_gain_emails: usize,
    /// …and a net gain of at least `z` standard deviations of McNemar's
    /// test: with `b` e-mails only the fusion gets right and `c` only the
    /// edge does, `b - c >= z * sqrt(b + c)` (1.64: one-sided 5%).
    pub z: f64,
    /// A reason with fewer dev e-mails than this uses the overall fit.
    pub min_group: usize,
}

impl Default for FitOptions {
    fn default() -> Self {
        Self {
            min_gain_emails: 2,
            z: 1.64,
            min_group: 30,
        }
    }
}

/// The fitted fusion of a dev split.
#[derive(Debug, Clone)]
pub struct Fitted {
    /// For every e-mail without a fit of its own kind.
    pub default: FusionFit,
    /// Reasons with enough dev e-mails for a fit of their own.
    pub by_reason: BTreeMap<String, FusionFit>,
    /// By reason, and `all`.
    pub report: BTreeMap<String, FusionGroupReport>,
}

/// Fits the fusion of `samples`.
pub fn fit(samples: &[Sample], opts: FitOptions) -> Fitted {
    let (default, all) = fit_group(samples, opts);
    let mut report = BTreeMap::from([("all".to_string(), all)]);
    let mut by_reason = BTreeMap::new();
    let mut reasons: Vec<&str> = samples.iter().map(|s| s.reason.as_str()).collect();
    reasons.sort_unstable();
    reasons.dedup();
    for reason in reasons {
        let group: Vec<Sample> = samples
            .iter()
            .filter(|s| s.reason == reason)
            .cloned()
            .collect();
        let (fit, r) = fit_group(&group, opts);
        if group.len() >= opts.min_group {
            by_reason.insert(reason.to_string(), fit);
            report.insert(reason.to_string(), r);
        } else {
            let hits = group.iter().filter(|s| right(s, default)).count();
            report.insert(
                reason.to_string(),
                FusionGroupReport {
                    chosen_right: hits,
                    ..r
                },
            );
        }
    }
    Fitted {
        default,
        by_reason,
        report,
    }
}

/// Whether the fused top label of `s` is its gold label.
fn right(s: &Sample, fit: FusionFit) -> bool {
    let Some(gold) = s.gold else { return false };
    let p = fuse(&s.scores, Some(&s.edge), s.head.as_deref(), fit);
    argmax(&p) == Some(gold)
}

fn argmax(p: &[f32]) -> Option<usize> {
    // First of equals wins: the edge's order breaks ties.
    p.iter()
        .enumerate()
        .fold(None, |best: Option<(usize, f32)>, (i, &v)| match best {
            Some((_, b)) if b >= v => best,
            _ => Some((i, v)),
        })
        .map(|(i, _)| i)
}

/// Every fit the grid tries: the reranker's scores with the edge as a
/// prior, and where every sample carries a second opinion, the same with
/// it added, and the edge with it alone.
fn grid(with_head: bool) -> Vec<FusionFit> {
    let mut fits = Vec::new();
    let head_weights: &[f32] = if with_head { &HEAD_WEIGHTS } else { &[] };
    for &temperature in &TEMPERATURES {
        for &edge_weight in &EDGE_WEIGHTS {
            for &head_weight in std::iter::once(&0.0).chain(head_weights) {
                fits.push(FusionFit::Fused {
                    temperature,
                    edge_weight,
                    head_weight,
                });
            }
        }
    }
    if with_head {
        fits.extend(
            HEAD_SHARES
                .iter()
                .map(|&head_weight| FusionFit::EdgeHead { head_weight }),
        );
    }
    fits
}

/// The best fit of a group by e-mails right (then by the gold label's
/// log-likelihood), or edge only where it does not win clearly.
fn fit_group(samples: &[Sample], opts: FitOptions) -> (FusionFit, FusionGroupReport) {
    let edge_right = samples
        .iter()
        .filter(|s| right(s, FusionFit::EdgeOnly))
        .count();
    let with_head = !samples.is_empty() && samples.iter().all(|s| s.head.is_some());
    let mut best: Option<(usize, f64, FusionFit)> = None;
    for fit in grid(with_head) {
        let mut hits = 0;
        let mut loglik = 0f64;
        for s in samples {
            let Some(gold) = s.gold else { continue };
            let p = fuse(&s.scores, Some(&s.edge), s.head.as_deref(), fit);
            hits += usize::from(argmax(&p) == Some(gold));
            loglik += f64::from(p[gold].max(1e-9)).ln();
        }
        let better = match best {
            None => true,
            Some((h, l, _)) => hits > h || (hits == h && loglik > l),
        };
        if better {
            best = Some((hits, loglik, fit));
        }
    }
    let (best_right, _, best_fit) = best.expect("the grid is not empty");
    let (mut only_fused, mut only_edge) = (0usize, 0usize);
    for s in samples {
        match (right(s, best_fit), right(s, FusionFit::EdgeOnly)) {
            (true, false) => only_fused += 1,
            (false, true) => only_edge += 1,
            _ => {}
        }
    }
    let net = only_fused as f64 - only_edge as f64;
    let clear = net >= opts.min_gain_emails as f64
        && net >= opts.z * ((only_fused + only_edge) as f64).sqrt();
    let chosen = if clear { best_fit } else { FusionFit::EdgeOnly };
    let chosen_right = if chosen == FusionFit::EdgeOnly {
        edge_right
    } else {
        best_right
    };
    (
        chosen,
        FusionGroupReport {
            emails: samples.len(),
            edge_right,
            chosen_right,
            best_fused_right: best_right,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` e-mails whose gold label is the edge's second candidate; the
    /// reranker scores it highest on `reranker_right` of them.
    fn samples(n: usize, reranker_right: usize, reason: &str) -> Vec<Sample> {
        (0..n)
            .map(|i| Sample {
                reason: reason.into(),
                scores: if i < reranker_right {
                    vec![0.0, 4.0]
                } else {
                    vec![4.0, 0.0]
                },
                edge: vec![0.55, 0.45],
                head: None,
                gold: Some(1),
            })
            .collect()
    }

    #[test]
    fn a_reranker_that_wins_clearly_is_trusted() {
        let f = fit(&samples(100, 60, "low_margin"), FitOptions::default());
        assert!(matches!(f.by_reason["low_margin"], FusionFit::Fused { .. }));
        let r = &f.report["low_margin"];
        assert_eq!((r.edge_right, r.chosen_right), (0, 60));
    }

    #[test]
    fn a_reranker_that_does_not_beat_the_edge_is_left_out() {
        // Gold is the edge's top label, and the reranker prefers the other.
        let mut s = samples(100, 100, "low_margin");
        for x in &mut s {
            x.gold = Some(0);
        }
        let f = fit(&s, FitOptions::default());
        assert_eq!(f.by_reason["low_margin"], FusionFit::EdgeOnly);
        assert_eq!(f.default, FusionFit::EdgeOnly);
        let r = &f.report["all"];
        assert_eq!((r.edge_right, r.chosen_right), (100, 100));
    }

    #[test]
    fn a_win_of_one_email_is_not_clear_enough() {
        // 20 e-mails with gold second and 20 with gold first that look
        // the same to both (no fit tells them apart), and one with gold
        // second that the reranker scores far ahead: the best fusion gets
        // one more right than the edge.
        let mut s = samples(20, 20, "confusable_siblings");
        let mut edge_right = samples(20, 20, "confusable_siblings");
        for x in &mut edge_right {
            x.gold = Some(0);
        }
        s.extend(edge_right);
        let mut strong = samples(1, 1, "confusable_siblings");
        strong[0].scores = vec![0.0, 40.0];
        s.extend(strong);
        let f = fit(&s, FitOptions::default());
        let r = &f.report["confusable_siblings"];
        assert_eq!((r.edge_right, r.best_fused_right), (20, 21));
        assert_eq!(f.by_reason["confusable_siblings"], FusionFit::EdgeOnly);
        assert_eq!(r.chosen_right, 20);
    }

    #[test]
    fn a_net_win_within_noise_is_not_trusted() {
        // The reranker alone gets 3 right that the edge misses and misses
        // 1 the edge gets: net +2 of 100, under McNemar's 1.64 sigma.
        let mut s = samples(3, 3, "low_margin");
        for x in &mut s {
            x.scores = vec![0.0, 40.0];
        }
        let mut lost = samples(1, 1, "low_margin");
        lost[0].scores = vec![0.0, 40.0];
        lost[0].gold = Some(0);
        s.extend(lost);
        let mut agree = samples(96, 0, "low_margin");
        for x in &mut agree {
            x.scores = vec![40.0, 0.0];
            x.gold = Some(0);
        }
        s.extend(agree);
        let f = fit(&s, FitOptions::default());
        let r = &f.report["low_margin"];
        assert_eq!((r.edge_right, r.best_fused_right), (97, 99));
        assert_eq!(f.by_reason["low_margin"], FusionFit::EdgeOnly);
    }

    #[test]
    fn a_second_opinion_that_wins_alone_is_chosen_without_the_reranker() {
        // The reranker is no help (it prefers the edge's wrong top label),
        // the second opinion is right on 70 of 100.
        let mut s = samples(100, 0, "low_margin");
        for (i, x) in s.iter_mut().enumerate() {
            x.head = Some(if i < 70 {
                vec![0.1, 0.9]
            } else {
                vec![0.9, 0.1]
            });
        }
        let f = fit(&s, FitOptions::default());
        assert!(
            matches!(f.by_reason["low_margin"], FusionFit::EdgeHead { .. }),
            "{:?}",
            f.by_reason
        );
        assert_eq!(f.report["low_margin"].chosen_right, 70);
    }

    #[test]
    fn small_groups_fall_back_to_the_overall_fit() {
        let mut s = samples(100, 60, "low_margin");
        s.extend(samples(5, 0, "confusable_siblings"));
        let f = fit(&s, FitOptions::default());
        assert!(!f.by_reason.contains_key("confusable_siblings"));
        assert_eq!(f.report["confusable_siblings"].emails, 5);
    }
}
