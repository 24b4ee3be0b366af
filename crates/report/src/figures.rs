//! The numbers behind every plot, computed from the per-e-mail decisions of
//! one evaluation run. The page embeds them as JSON, so a reader (or a
//! test) can check each figure against `mailsort eval --json`.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde::Serialize;

/// One test e-mail as the report sees it.
#[derive(Debug, Clone)]
pub struct ReportRow {
    pub gold: String,
    /// The edge's label (its provisional one where it forwarded).
    pub edge_label: String,
    /// The edge's calibrated probability for that label.
    pub confidence: f32,
    /// How far the e-mail cleared the gate's threshold (negative: below it).
    pub slack: f32,
    /// The gate forwarded the e-mail.
    pub forwarded: bool,
    /// The final label: the backend's where it answered, else the edge's.
    pub final_label: String,
}

/// A point of the gate's coverage–accuracy curve.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct CurvePoint {
    /// Share of e-mails the edge keeps.
    pub coverage: f64,
    /// Accuracy on the kept e-mails.
    pub accuracy: f64,
}

/// One bin of the reliability diagram.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ReliabilityBin {
    pub lo: f64,
    pub hi: f64,
    pub count: usize,
    pub mean_confidence: f64,
    pub accuracy: f64,
}

/// A (gold, predicted) pair the edge mixed up.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Confusion {
    pub gold: String,
    pub predicted: String,
    pub count: usize,
    /// The two labels share a parent in the taxonomy.
    pub siblings: bool,
}

/// Per-label figures, edge only.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LabelStats {
    pub label: String,
    /// Test e-mails with this gold label.
    pub support: usize,
    pub predicted: usize,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// Share of this label's e-mails (by gold label) the gate forwarded.
    pub forwarded_share: f64,
    /// Recall of the final labels, where a backend answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_to_end_recall: Option<f64>,
}

/// Edge only against end to end, on the same e-mails.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct EndToEndFigure {
    pub accuracy_edge: f64,
    pub accuracy_end_to_end: f64,
    pub forwarded_edge: f64,
    pub forwarded_end_to_end: f64,
}

/// Everything the page draws.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Figures {
    pub n: usize,
    pub accuracy: f64,
    pub macro_f1: f64,
    pub forwarded_rate: f64,
    /// Accuracy on the e-mails kept at the edge.
    pub edge_accuracy: f64,
    /// Accuracy of the edge's provisional label on forwarded e-mails.
    pub forwarded_accuracy: f64,
    pub coverage_curve: Vec<CurvePoint>,
    /// Where this run's gate sits on that curve.
    pub operating_point: CurvePoint,
    pub reliability: Vec<ReliabilityBin>,
    /// Expected calibration error over the reliability bins.
    pub expected_calibration_error: f64,
    /// The most frequent confusions, most frequent first.
    pub confusions: Vec<Confusion>,
    /// The labels of the confusion matrix (those most involved in confusions).
    pub matrix_labels: Vec<String>,
    /// `matrix[gold][predicted]` over `matrix_labels`.
    pub matrix: Vec<Vec<usize>>,
    pub per_label: Vec<LabelStats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_to_end: Option<EndToEndFigure>,
}

/// How many points the coverage curve keeps, how many bins the reliability
/// diagram has, and how many labels the confusion matrix shows.
const CURVE_POINTS: usize = 200;
const BINS: usize = 10;
const TOP_CONFUSIONS: usize = 15;
const MATRIX_LABELS: usize = 12;

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

impl Figures {
    /// `with_backend`: the final labels came from a backend, so the end-to-end
    /// figures are drawn. `siblings(a, b)`: the taxonomy's sibling test.
    pub fn compute(
        rows: &[ReportRow],
        with_backend: bool,
        siblings: &dyn Fn(&str, &str) -> bool,
    ) -> Self {
        let n = rows.len();
        let ok = |r: &ReportRow| r.edge_label == r.gold;
        let correct = rows.iter().filter(|r| ok(r)).count();
        let kept: Vec<&ReportRow> = rows.iter().filter(|r| !r.forwarded).collect();
        let kept_correct = kept.iter().filter(|r| ok(r)).count();
        let forwarded = n - kept.len();
        let fwd_correct = correct - kept_correct;

        let per_label = per_label(rows, with_backend);
        let scored: Vec<&LabelStats> = per_label.iter().filter(|l| l.support > 0).collect();
        let macro_f1 = if scored.is_empty() {
            0.0
        } else {
            scored.iter().map(|l| l.f1).sum::<f64>() / scored.len() as f64
        };
        let (reliability, ece) = reliability(rows);
        let (confusions, matrix_labels, matrix) = confusions(rows, siblings);
        let end_to_end = with_backend.then(|| {
            let fin = rows.iter().filter(|r| r.final_label == r.gold).count();
            let fin_fwd = rows
                .iter()
                .filter(|r| r.forwarded && r.final_label == r.gold)
                .count();
            EndToEndFigure {
                accuracy_edge: ratio(correct, n),
                accuracy_end_to_end: ratio(fin, n),
                forwarded_edge: ratio(fwd_correct, forwarded),
                forwarded_end_to_end: ratio(fin_fwd, forwarded),
            }
        });
        Figures {
            n,
            accuracy: ratio(correct, n),
            macro_f1,
            forwarded_rate: ratio(forwarded, n),
            edge_accuracy: ratio(kept_correct, kept.len()),
            forwarded_accuracy: ratio(fwd_correct, forwarded),
            coverage_curve: coverage_curve(rows),
            operating_point: CurvePoint {
                coverage: ratio(kept.len(), n),
                accuracy: ratio(kept_correct, kept.len()),
            },
            reliability,
            expected_calibration_error: ece,
            confusions,
            matrix_labels,
            matrix,
            per_label,
            end_to_end,
        }
    }
}

/// Keeps the e-mails the gate is surest of first: at coverage c, the share c
/// with the largest slack stays at the edge.
fn coverage_curve(rows: &[ReportRow]) -> Vec<CurvePoint> {
    let mut order: Vec<&ReportRow> = rows.iter().collect();
    order.sort_by(|a, b| b.slack.partial_cmp(&a.slack).unwrap_or(Ordering::Equal));
    let n = order.len();
    if n == 0 {
        return Vec::new();
    }
    let step = n.div_ceil(CURVE_POINTS).max(1);
    let mut out = Vec::new();
    let mut correct = 0usize;
    for (i, r) in order.iter().enumerate() {
        correct += (r.edge_label == r.gold) as usize;
        let k = i + 1;
        if k % step == 0 || k == n {
            out.push(CurvePoint {
                coverage: ratio(k, n),
                accuracy: ratio(correct, k),
            });
        }
    }
    out
}

fn reliability(rows: &[ReportRow]) -> (Vec<ReliabilityBin>, f64) {
    let mut bins: Vec<(usize, f64, usize)> = vec![(0, 0.0, 0); BINS];
    for r in rows {
        let c = r.confidence.clamp(0.0, 1.0) as f64;
        let b = ((c * BINS as f64) as usize).min(BINS - 1);
        bins[b].0 += 1;
        bins[b].1 += c;
        bins[b].2 += (r.edge_label == r.gold) as usize;
    }
    let n = rows.len();
    let mut ece = 0.0;
    let out = bins
        .iter()
        .enumerate()
        .map(|(i, &(count, conf, right))| {
            let mean_confidence = if count == 0 { 0.0 } else { conf / count as f64 };
            let accuracy = ratio(right, count);
            ece += ratio(count, n) * (accuracy - mean_confidence).abs();
            ReliabilityBin {
                lo: i as f64 / BINS as f64,
                hi: (i + 1) as f64 / BINS as f64,
                count,
                mean_confidence,
                accuracy,
            }
        })
        .collect();
    (out, ece)
}

type Matrix = (Vec<Confusion>, Vec<String>, Vec<Vec<usize>>);

fn confusions(rows: &[ReportRow], siblings: &dyn Fn(&str, &str) -> bool) -> Matrix {
    let mut pairs: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.edge_label != r.gold) {
        *pairs.entry((&r.gold, &r.edge_label)).or_default() += 1;
    }
    let mut ranked: Vec<((&str, &str), usize)> = pairs.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    // The matrix shows the labels that take part in the most confusions.
    let mut involvement: BTreeMap<&str, usize> = BTreeMap::new();
    for ((g, p), c) in &ranked {
        *involvement.entry(g).or_default() += c;
        *involvement.entry(p).or_default() += c;
    }
    let mut labels: Vec<(&str, usize)> = involvement.into_iter().collect();
    labels.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let matrix_labels: Vec<String> = labels
        .iter()
        .take(MATRIX_LABELS)
        .map(|(l, _)| l.to_string())
        .collect();
    let index: BTreeMap<&str, usize> = matrix_labels
        .iter()
        .enumerate()
        .map(|(i, l)| (l.as_str(), i))
        .collect();
    let mut matrix = vec![vec![0usize; matrix_labels.len()]; matrix_labels.len()];
    for r in rows {
        if let (Some(&g), Some(&p)) = (index.get(r.gold.as_str()), index.get(r.edge_label.as_str()))
        {
            matrix[g][p] += 1;
        }
    }
    let confusions = ranked
        .into_iter()
        .take(TOP_CONFUSIONS)
        .map(|((g, p), count)| Confusion {
            gold: g.to_string(),
            predicted: p.to_string(),
            count,
            siblings: siblings(g, p),
        })
        .collect();
    (confusions, matrix_labels, matrix)
}

fn per_label(rows: &[ReportRow], with_backend: bool) -> Vec<LabelStats> {
    #[derive(Default)]
    struct C {
        support: usize,
        predicted: usize,
        tp: usize,
        forwarded: usize,
        final_tp: usize,
    }
    let mut m: BTreeMap<&str, C> = BTreeMap::new();
    for r in rows {
        let g = m.entry(&r.gold).or_default();
        g.support += 1;
        g.forwarded += r.forwarded as usize;
        g.tp += (r.edge_label == r.gold) as usize;
        g.final_tp += (r.final_label == r.gold) as usize;
        m.entry(&r.edge_label).or_default().predicted += 1;
    }
    m.into_iter()
        .map(|(label, c)| {
            let precision = ratio(c.tp, c.predicted);
            let recall = ratio(c.tp, c.support);
            // As in the eval's macro F1: 2tp / (2tp + fp + fn).
            let f1 = ratio(2 * c.tp, c.predicted + c.support);
            LabelStats {
                label: label.to_string(),
                support: c.support,
                predicted: c.predicted,
                precision,
                recall,
                f1,
                forwarded_share: ratio(c.forwarded, c.support),
                end_to_end_recall: with_backend.then(|| ratio(c.final_tp, c.support)),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(gold: &str, edge: &str, conf: f32, slack: f32, fwd: bool, fin: &str) -> ReportRow {
        ReportRow {
            gold: gold.into(),
            edge_label: edge.into(),
            confidence: conf,
            slack,
            forwarded: fwd,
            final_label: fin.into(),
        }
    }

    #[test]
    fn figures_follow_the_rows() {
        let rows = vec![
            row("a", "a", 0.95, 0.5, false, "a"),
            row("a", "b", 0.55, -0.1, true, "a"),
            row("b", "b", 0.85, 0.3, false, "b"),
            row("c", "a", 0.45, -0.2, true, "c"),
        ];
        let f = Figures::compute(&rows, true, &|a, b| a != b && a != "c" && b != "c");
        assert_eq!(f.n, 4);
        assert!((f.accuracy - 0.5).abs() < 1e-12);
        assert!((f.forwarded_rate - 0.5).abs() < 1e-12);
        assert!((f.edge_accuracy - 1.0).abs() < 1e-12);
        assert_eq!(
            f.operating_point,
            CurvePoint {
                coverage: 0.5,
                accuracy: 1.0
            }
        );
        // Surest first: both kept e-mails are right, then the errors.
        assert_eq!(f.coverage_curve.first().unwrap().accuracy, 1.0);
        assert!((f.coverage_curve.last().unwrap().accuracy - 0.5).abs() < 1e-12);
        let e = f.end_to_end.unwrap();
        assert_eq!((e.accuracy_end_to_end, e.forwarded_end_to_end), (1.0, 1.0));
        assert_eq!(f.confusions.len(), 2);
        assert!(f.confusions.iter().any(|c| c.gold == "a" && c.siblings));
        assert!(f.confusions.iter().any(|c| c.gold == "c" && !c.siblings));
        // a: tp 1, predicted 2, support 2 -> F1 0.5; b: 1, 2, 1 -> 2/3; c: 0.
        assert!((f.macro_f1 - (0.5 + 2.0 / 3.0) / 3.0).abs() < 1e-12);
        let counted: usize = f.reliability.iter().map(|b| b.count).sum();
        assert_eq!(counted, 4);
        let total: usize = f.matrix.iter().flatten().sum();
        assert_eq!(total, 4);
    }

    #[test]
    fn empty_run_has_empty_figures() {
        let f = Figures::compute(&[], false, &|_, _| false);
        assert_eq!(f.n, 0);
        assert!(f.coverage_curve.is_empty() && f.end_to_end.is_none());
    }
}
