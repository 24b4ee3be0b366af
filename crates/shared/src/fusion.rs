//! How a forwarded e-mail's final label is chosen from the reranker's scores
//! and the edge's probabilities: the fusion rule ([`fuse`]), the fit a
//! bundle uses for each kind of forwarded e-mail ([`FusionFit`]), and the
//! per-bundle fusion file that `mailsort calibrate-fusion` fits on a dev
//! split with the reranker that serves the bundle ([`FusionFile`]). The
//! backend applies it, and the fitter scores candidates with the same
//! [`fuse`], so what was measured on dev is what is served.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::types::ForwardReason;

/// The fusion of one kind of forwarded e-mail.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum FusionFit {
    /// Softmax of the scores over `temperature`, plus the edge's
    /// log-probabilities times `edge_weight`, plus the second opinion's
    /// log-probabilities times `head_weight` (0, and absent from older
    /// files, without one).
    Fused {
        temperature: f32,
        edge_weight: f32,
        #[serde(default, skip_serializing_if = "is_zero")]
        head_weight: f32,
    },
    /// `(1 - head_weight) log p_edge + head_weight log p_head`: the edge and
    /// the second opinion, without the cross-encoder.
    EdgeHead { head_weight: f32 },
    /// The edge's probabilities stand: on this kind of e-mail neither the
    /// reranker nor the second opinion beat the edge on the dev split.
    EdgeOnly,
}

fn is_zero(v: &f32) -> bool {
    *v == 0.0
}

impl FusionFit {
    /// The cross-encoder alone with the edge as a prior, no second opinion.
    pub const fn scores(temperature: f32, edge_weight: f32) -> Self {
        Self::Fused {
            temperature,
            edge_weight,
            head_weight: 0.0,
        }
    }

    /// Whether this fit reads the second opinion's probabilities.
    pub fn uses_head(&self) -> bool {
        match self {
            Self::Fused { head_weight, .. } | Self::EdgeHead { head_weight } => *head_weight != 0.0,
            Self::EdgeOnly => false,
        }
    }

    /// Whether [`fuse`] with this fit reads the cross-encoder's scores:
    /// always when fused, and otherwise only without the edge's
    /// probabilities, which leave the scores as all there is to go on.
    /// Where it does not, the backend need not run the cross-encoder.
    pub fn uses_scores(&self, has_edge: bool) -> bool {
        matches!(self, Self::Fused { .. }) || !has_edge
    }

    /// "T 0.80, edge weight 1.50", "edge + second opinion 0.70" or "edge only".
    pub fn describe(&self) -> String {
        match self {
            Self::Fused {
                temperature,
                edge_weight,
                head_weight,
            } if *head_weight != 0.0 => format!(
                "T {temperature:.2}, edge weight {edge_weight:.2}, second opinion {head_weight:.2}"
            ),
            Self::Fused {
                temperature,
                edge_weight,
                ..
            } => format!("T {temperature:.2}, edge weight {edge_weight:.2}"),
            Self::EdgeHead { head_weight } => {
                format!("edge + second opinion {head_weight:.2}, no reranker")
            }
            Self::EdgeOnly => "edge only".into(),
        }
    }
}

/// Probabilities over one e-mail's candidates. `head` is the second
/// opinion's probabilities over the same candidates, where the bundle has
/// one. Without the edge's probabilities, the edge's terms drop out (and an
/// edge-only fit falls back to the scores alone at temperature 1: there is
/// nothing else to go on); without the head, so do the head's.
pub fn fuse(
    scores: &[f32],
    edge: Option<&[f32]>,
    head: Option<&[f32]>,
    fit: FusionFit,
) -> Vec<f32> {
    let ln = |p: f32| p.max(1e-9).ln();
    let (temperature, edge_weight, head_weight) = match (fit, edge) {
        (FusionFit::EdgeOnly, Some(edge)) => return normalise(edge),
        (FusionFit::EdgeOnly, None) => (1.0, 0.0, 0.0),
        (FusionFit::EdgeHead { head_weight }, Some(edge)) => {
            let Some(head) = head else {
                return normalise(edge);
            };
            let logits: Vec<f32> = edge
                .iter()
                .zip(head)
                .map(|(&e, &h)| (1.0 - head_weight) * ln(e) + head_weight * ln(h))
                .collect();
            return softmax(&logits);
        }
        (FusionFit::EdgeHead { head_weight }, None) => (1.0, 0.0, head_weight),
        (
            FusionFit::Fused {
                temperature,
                edge_weight,
                head_weight,
            },
            _,
        ) => (temperature, edge_weight, head_weight),
    };
    let t = temperature.max(1e-3);
    let logits: Vec<f32> = scores
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let prior = edge.map_or(0.0, |e| edge_weight * ln(e[i]));
            let second = head.map_or(0.0, |h| head_weight * ln(h[i]));
            s / t + prior + second
        })
        .collect();
    softmax(&logits)
}

fn softmax(logits: &[f32]) -> Vec<f32> {
    crate::bundle::softmax(logits, 1.0)
}

/// The edge's top-k probabilities rescaled to sum to one over the candidates.
fn normalise(edge: &[f32]) -> Vec<f32> {
    let sum: f32 = edge.iter().sum();
    if sum > 0.0 {
        edge.iter().map(|p| p / sum).collect()
    } else {
        vec![1.0 / edge.len().max(1) as f32; edge.len()]
    }
}

/// Where a bundle's fusion file sits, where the backend looks for it:
/// beside the bundle, `x.msb` → `x.fusion.json`.
pub fn fusion_path(bundle: &Path) -> PathBuf {
    bundle.with_extension("fusion.json")
}

/// The reranker a fusion file was fitted with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RerankerRef {
    pub name: String,
    /// SHA-256 of its FP32 ONNX file (the FP16 file is made from it).
    pub sha256: String,
}

/// What the fit saw on the dev split, per kind of forwarded e-mail.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FusionGroupReport {
    /// Forwarded dev e-mails of this kind.
    pub emails: usize,
    /// Right with the edge's label alone.
    pub edge_right: usize,
    /// Right with the chosen fit.
    pub chosen_right: usize,
    /// Right with the best reranker fusion, chosen or not.
    pub best_fused_right: usize,
}

/// A bundle's fusion, fitted on its dev split with one reranker (the
/// `<bundle>.fusion.json` beside a `<bundle>.msb`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FusionFile {
    /// The bundle's id (SHA-256 of its payload).
    pub bundle_id: String,
    pub reranker: RerankerRef,
    /// SHA-256 of the second-opinion file it was fitted with, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub second_opinion_sha256: Option<String>,
    /// For kinds of e-mail without a fit of their own.
    pub default: FusionFit,
    /// By [`ForwardReason::kind`].
    pub by_reason: BTreeMap<String, FusionFit>,
    /// Dev e-mails classified, and forwarded ones reranked.
    pub dev_emails: usize,
    pub dev_forwarded: usize,
    /// By reason kind, and `all`.
    pub report: BTreeMap<String, FusionGroupReport>,
}

/// A fusion file that does not belong to what the server serves.
#[derive(Debug, Error)]
pub enum FusionMismatch {
    #[error(
        "it was fitted for bundle {fitted}, not this bundle ({served}); rerun `mailsort calibrate-fusion` for this bundle"
    )]
    Bundle { fitted: String, served: String },
    #[error(
        "it was fitted with reranker {name} (sha256 {fitted}), not the one served (sha256 {served}); rerun `mailsort calibrate-fusion` with this reranker"
    )]
    Reranker {
        name: String,
        fitted: String,
        served: String,
    },
    #[error(
        "it was fitted with second-opinion head {fitted}, but the bundle is served with {served}; rerun `mailsort calibrate-fusion`"
    )]
    SecondOpinion { fitted: String, served: String },
}

impl FusionFile {
    /// The fit for an e-mail forwarded for `reason`.
    pub fn fit_for(&self, reason: Option<&ForwardReason>) -> FusionFit {
        reason
            .and_then(|r| self.by_reason.get(r.kind()))
            .copied()
            .unwrap_or(self.default)
    }

    /// The kinds of forwarded e-mail on which this fusion keeps the edge's
    /// label, of those the gate can keep at the edge
    /// ([`ForwardReason::KEEPABLE_KINDS`]): forwarding them changes nothing.
    pub fn kinds_edge_only(&self) -> Vec<String> {
        ForwardReason::KEEPABLE_KINDS
            .iter()
            .filter(|k| {
                self.by_reason.get(**k).copied().unwrap_or(self.default) == FusionFit::EdgeOnly
            })
            .map(|k| k.to_string())
            .collect()
    }

    /// Whether any of its fits reads the second opinion.
    pub fn uses_head(&self) -> bool {
        self.default.uses_head() || self.by_reason.values().any(FusionFit::uses_head)
    }

    /// Refuses a file made for another bundle, another reranker, or another
    /// second-opinion head than the one served (`head_sha256`: the SHA-256
    /// of the bundle's second-opinion file, if it is served with one). A
    /// file whose fits never read the head does not care which is served.
    pub fn check(
        &self,
        bundle_id: &str,
        reranker_sha256: &str,
        head_sha256: Option<&str>,
    ) -> Result<(), FusionMismatch> {
        if self.bundle_id != bundle_id {
            return Err(FusionMismatch::Bundle {
                fitted: short(&self.bundle_id),
                served: short(bundle_id),
            });
        }
        if self.reranker.sha256 != reranker_sha256 {
            return Err(FusionMismatch::Reranker {
                name: self.reranker.name.clone(),
                fitted: short(&self.reranker.sha256),
                served: short(reranker_sha256),
            });
        }
        if self.uses_head() && self.second_opinion_sha256.as_deref() != head_sha256 {
            let name = |h: Option<&str>| h.map_or("none".to_string(), short);
            return Err(FusionMismatch::SecondOpinion {
                fitted: name(self.second_opinion_sha256.as_deref()),
                served: name(head_sha256),
            });
        }
        Ok(())
    }

    /// One line for `/health` and logs.
    pub fn describe(&self) -> String {
        let fits: Vec<String> = self
            .by_reason
            .iter()
            .map(|(kind, fit)| format!("{kind}: {}", fit.describe()))
            .chain([format!("other: {}", self.default.describe())])
            .collect();
        format!(
            "fitted on {} dev e-mails ({} forwarded): {}",
            self.dev_emails,
            self.dev_forwarded,
            fits.join("; ")
        )
    }
}

fn short(id: &str) -> String {
    id.chars().take(12).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAIN: FusionFit = FusionFit::scores(1.0, 0.0);

    #[test]
    fn fusion_without_edge_is_a_softmax() {
        let p = fuse(&[1.0, 0.0], None, None, PLAIN);
        assert!((p[0] - 1.0 / (1.0 + (-1.0f32).exp())).abs() < 1e-6);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6);
    }

    #[test]
    fn edge_evidence_can_overturn_a_small_score_gap() {
        let cal = FusionFit::scores(1.0, 1.0);
        // The reranker slightly prefers 0, the edge strongly prefers 1.
        let p = fuse(&[0.2, 0.0], Some(&[0.1, 0.9]), None, cal);
        assert!(p[1] > p[0]);
        let p = fuse(&[0.2, 0.0], Some(&[0.1, 0.9]), None, PLAIN);
        assert!(p[0] > p[1]);
    }

    #[test]
    fn fits_that_do_not_use_scores_ignore_them() {
        let edge = [0.5, 0.3, 0.2];
        let head = [0.1, 0.2, 0.7];
        for fit in [
            FusionFit::EdgeOnly,
            FusionFit::EdgeHead { head_weight: 0.6 },
            FusionFit::scores(0.5, 1.0),
        ] {
            for has_edge in [true, false] {
                let edge = has_edge.then_some(&edge[..]);
                let a = fuse(&[0.0; 3], edge, Some(&head), fit);
                let b = fuse(&[4.0, -2.0, 1.0], edge, Some(&head), fit);
                assert_eq!(
                    fit.uses_scores(has_edge),
                    a != b,
                    "{fit:?}, edge {has_edge}"
                );
            }
        }
    }

    #[test]
    fn edge_only_keeps_the_edges_order_whatever_the_scores() {
        let p = fuse(
            &[5.0, 0.0],
            Some(&[0.2, 0.6]),
            Some(&[0.9, 0.1]),
            FusionFit::EdgeOnly,
        );
        assert!((p[0] - 0.25).abs() < 1e-6 && (p[1] - 0.75).abs() < 1e-6);
    }

    #[test]
    fn the_second_opinion_can_overturn_the_edge_and_is_ignored_without_weight() {
        let edge = [0.6, 0.4];
        let head = [0.05, 0.95];
        let p = fuse(
            &[0.0, 0.0],
            Some(&edge),
            Some(&head),
            FusionFit::EdgeHead { head_weight: 0.5 },
        );
        assert!(p[1] > p[0], "{p:?}");
        let p = fuse(
            &[0.0, 0.0],
            Some(&edge),
            Some(&head),
            FusionFit::EdgeHead { head_weight: 0.0 },
        );
        assert!((p[0] - 0.6).abs() < 1e-5, "{p:?}");
        // Without a head an edge + head fit is the edge alone.
        let p = fuse(
            &[3.0, 0.0],
            Some(&edge),
            None,
            FusionFit::EdgeHead { head_weight: 0.9 },
        );
        assert!((p[0] - 0.6).abs() < 1e-6, "{p:?}");
        let all = FusionFit::Fused {
            temperature: 1.0,
            edge_weight: 1.0,
            head_weight: 2.0,
        };
        let p = fuse(&[0.5, 0.0], Some(&edge), Some(&head), all);
        assert!(p[1] > p[0], "{p:?}");
        let p = fuse(&[0.5, 0.0], Some(&edge), None, all);
        assert!(p[0] > p[1], "{p:?}");
    }

    #[test]
    fn older_files_without_a_head_weight_still_read() {
        let fit: FusionFit =
            serde_json::from_str(r#"{"mode":"fused","temperature":2.0,"edge_weight":1.0}"#)
                .unwrap();
        assert_eq!(fit, FusionFit::scores(2.0, 1.0));
        assert!(!fit.uses_head());
        let text = serde_json::to_string(&FusionFit::scores(2.0, 1.0)).unwrap();
        assert!(!text.contains("head_weight"), "{text}");
    }

    fn file() -> FusionFile {
        FusionFile {
            bundle_id: "b".repeat(64),
            reranker: RerankerRef {
                name: "r".into(),
                sha256: "s".repeat(64),
            },
            second_opinion_sha256: None,
            default: PLAIN,
            by_reason: [("low_margin".to_string(), FusionFit::EdgeOnly)].into(),
            dev_emails: 100,
            dev_forwarded: 15,
            report: BTreeMap::new(),
        }
    }

    #[test]
    fn each_reason_gets_its_fit_and_the_rest_the_default() {
        let f = file();
        let low = ForwardReason::LowMargin {
            margin: 0.1,
            threshold: 0.2,
        };
        assert_eq!(f.fit_for(Some(&low)), FusionFit::EdgeOnly);
        assert_eq!(f.fit_for(Some(&ForwardReason::EmptyText)), PLAIN);
        assert_eq!(f.fit_for(None), PLAIN);
    }

    #[test]
    fn the_edge_keeps_the_kinds_fused_as_edge_only() {
        let mut f = file();
        assert_eq!(f.kinds_edge_only(), ["low_margin"]);
        // A kind without a fit of its own follows the default; e-mails
        // without text are never kept (the edge has no label for them).
        f.default = FusionFit::EdgeOnly;
        assert_eq!(f.kinds_edge_only(), ["low_margin", "confusable_siblings"]);
        f.by_reason.insert("low_margin".into(), PLAIN);
        assert_eq!(f.kinds_edge_only(), ["confusable_siblings"]);
    }

    #[test]
    fn a_file_for_another_bundle_or_reranker_is_refused() {
        let f = file();
        assert!(f.check(&"b".repeat(64), &"s".repeat(64), None).is_ok());
        let e = f.check(&"c".repeat(64), &"s".repeat(64), None).unwrap_err();
        assert!(e.to_string().contains("not this bundle"), "{e}");
        let e = f.check(&"b".repeat(64), &"t".repeat(64), None).unwrap_err();
        assert!(e.to_string().contains("reranker r"), "{e}");
        // A file that never reads the head serves with or without one.
        assert!(f.check(&"b".repeat(64), &"s".repeat(64), Some("h")).is_ok());
        let mut with_head = file();
        with_head.default = FusionFit::EdgeHead { head_weight: 0.5 };
        with_head.second_opinion_sha256 = Some("h".repeat(64));
        let h = "h".repeat(64);
        assert!(
            with_head
                .check(&"b".repeat(64), &"s".repeat(64), Some(&h))
                .is_ok()
        );
        let e = with_head
            .check(&"b".repeat(64), &"s".repeat(64), None)
            .unwrap_err();
        assert!(e.to_string().contains("second-opinion"), "{e}");
        let e = with_head
            .check(&"b".repeat(64), &"s".repeat(64), Some(&"g".repeat(64)))
            .unwrap_err();
        assert!(e.to_string().contains("second-opinion"), "{e}");
    }
}
