//! The gate: keep an e-mail at the edge or forward it to the backend.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::taxonomy::Taxonomy;
use crate::types::{Candidate, ForwardReason};

/// Thresholds on the margin p(top1) − p(top2) of calibrated probabilities.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateConfig {
    /// Candidates reported (and forwarded) per e-mail.
    pub top_k: usize,
    /// Keep at the edge when the margin is at least this.
    pub margin_threshold: f32,
    /// Overrides of `margin_threshold` for a top label.
    #[serde(default)]
    pub per_label: BTreeMap<String, f32>,
    /// The stricter threshold used when the two leading labels are confusable.
    pub confusable_threshold: f32,
    /// Unordered pairs of labels known to be confused (from a dev split).
    #[serde(default)]
    pub confusable_pairs: Vec<(String, String)>,
    /// Also treat labels that share a parent in the taxonomy as confusable.
    pub siblings_confusable: bool,
    /// Kinds of forward reason ([`ForwardReason::kind`]) the edge keeps
    /// instead of forwarding: those whose fusion, fitted on dev, keeps the
    /// edge's label anyway (`mailsort calibrate-fusion --keep-at-edge`), so
    /// a round trip would change nothing. Empty until then; recalibrating
    /// the thresholds clears it.
    #[serde(default)]
    pub keep_at_edge: Vec<String>,
}

impl Default for GateConfig {
    /// Forwards nothing until `mailsort calibrate` sets real thresholds.
    fn default() -> Self {
        Self {
            top_k: 5,
            margin_threshold: 0.0,
            per_label: BTreeMap::new(),
            confusable_threshold: 0.0,
            confusable_pairs: Vec::new(),
            siblings_confusable: false,
            keep_at_edge: Vec::new(),
        }
    }
}

/// What the gate decided.
#[derive(Debug, Clone, PartialEq)]
pub enum GateOutcome {
    Keep,
    Forward(ForwardReason),
}

/// The most candidates a bundle may report per e-mail.
pub const MAX_TOP_K: usize = 64;

impl GateConfig {
    /// Range checks: 1 to [`MAX_TOP_K`] candidates; every threshold a
    /// margin between two probabilities can be compared with, in [0, 1].
    pub fn check(&self) -> Result<(), String> {
        if !(1..=MAX_TOP_K).contains(&self.top_k) {
            return Err(format!(
                "the gate's top_k {} is outside 1..={MAX_TOP_K}",
                self.top_k
            ));
        }
        let in_range = |t: f32| t.is_finite() && (0.0..=1.0).contains(&t);
        if !in_range(self.margin_threshold) {
            return Err(format!(
                "the gate's margin threshold {} is outside [0, 1]",
                self.margin_threshold
            ));
        }
        if !in_range(self.confusable_threshold) {
            return Err(format!(
                "the gate's confusable threshold {} is outside [0, 1]",
                self.confusable_threshold
            ));
        }
        if let Some((label, t)) = self.per_label.iter().find(|(_, t)| !in_range(**t)) {
            return Err(format!(
                "the gate's threshold {t} for label `{label}` is outside [0, 1]"
            ));
        }
        if let Some(kind) = self
            .keep_at_edge
            .iter()
            .find(|k| !ForwardReason::KEEPABLE_KINDS.contains(&k.as_str()))
        {
            return Err(format!(
                "the gate keeps `{kind}` at the edge, which is not a forward reason it can keep (only {})",
                ForwardReason::KEEPABLE_KINDS.join(", ")
            ));
        }
        Ok(())
    }

    /// True when `a` and `b` are a known confusable pair or, if enabled, siblings.
    pub fn confusable(&self, a: &str, b: &str, taxonomy: &Taxonomy) -> bool {
        (self.siblings_confusable && taxonomy.are_siblings(a, b))
            || self
                .confusable_pairs
                .iter()
                .any(|(x, y)| (x == a && y == b) || (x == b && y == a))
    }

    /// Decides from candidates sorted by falling probability.
    pub fn decide(&self, candidates: &[Candidate], taxonomy: &Taxonomy) -> GateOutcome {
        self.decide_shifted(candidates, taxonomy, 0.0)
    }

    /// How far the margin clears the threshold that applies (negative:
    /// forwarded by the calibrated gate; −∞ without candidates). A forward
    /// budget compares this with its offset.
    pub fn slack(&self, candidates: &[Candidate], taxonomy: &Taxonomy) -> f32 {
        let Some(first) = candidates.first() else {
            return f32::NEG_INFINITY;
        };
        let (second, p2) = candidates
            .get(1)
            .map(|c| (c.label.as_str(), c.probability))
            .unwrap_or(("", 0.0));
        let threshold = *self
            .per_label
            .get(&first.label)
            .unwrap_or(&self.margin_threshold);
        let applies = if !second.is_empty() && self.confusable(&first.label, second, taxonomy) {
            self.confusable_threshold.max(threshold)
        } else {
            threshold
        };
        first.probability - p2 - applies
    }

    /// `decide` with every threshold raised by `offset` (a forward budget's).
    /// A budget therefore holds the share its thresholds pick; the kinds
    /// kept at the edge come off it.
    pub fn decide_shifted(
        &self,
        candidates: &[Candidate],
        taxonomy: &Taxonomy,
        offset: f32,
    ) -> GateOutcome {
        match self.thresholds_decide(candidates, taxonomy, offset) {
            GateOutcome::Forward(reason)
                if self.keep_at_edge.iter().any(|k| k == reason.kind()) =>
            {
                GateOutcome::Keep
            }
            outcome => outcome,
        }
    }

    /// The reason the thresholds alone give for forwarding these
    /// candidates, kept kinds included (None: they clear every threshold).
    /// The backend picks a forwarded e-mail's fusion by it, as the fit did.
    pub fn forward_reason(
        &self,
        candidates: &[Candidate],
        taxonomy: &Taxonomy,
    ) -> Option<ForwardReason> {
        match self.thresholds_decide(candidates, taxonomy, 0.0) {
            GateOutcome::Forward(reason) => Some(reason),
            GateOutcome::Keep => None,
        }
    }

    /// What the thresholds alone decide, before the kinds kept at the edge.
    fn thresholds_decide(
        &self,
        candidates: &[Candidate],
        taxonomy: &Taxonomy,
        offset: f32,
    ) -> GateOutcome {
        let Some(first) = candidates.first() else {
            return GateOutcome::Forward(ForwardReason::EmptyText);
        };
        let (second_label, p2) = candidates
            .get(1)
            .map(|c| (c.label.as_str(), c.probability))
            .unwrap_or(("", 0.0));
        let margin = first.probability - p2;
        let threshold = self
            .per_label
            .get(&first.label)
            .unwrap_or(&self.margin_threshold)
            + offset;
        if !second_label.is_empty()
            && self.confusable(&first.label, second_label, taxonomy)
            && margin < (self.confusable_threshold + offset).max(threshold)
        {
            return GateOutcome::Forward(ForwardReason::ConfusableSiblings {
                first: first.label.clone(),
                second: second_label.to_string(),
                margin,
                threshold: (self.confusable_threshold + offset).max(threshold),
            });
        }
        if margin < threshold {
            return GateOutcome::Forward(ForwardReason::LowMargin { margin, threshold });
        }
        GateOutcome::Keep
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(label: &str, p: f32) -> Candidate {
        Candidate {
            label: label.into(),
            probability: p,
        }
    }

    #[test]
    fn thresholds_out_of_range_are_refused() {
        assert!(GateConfig::default().check().is_ok());
        let with = |f: &dyn Fn(&mut GateConfig)| {
            let mut g = GateConfig::default();
            f(&mut g);
            g.check()
        };
        assert!(with(&|g| g.top_k = 0).unwrap_err().contains("top_k 0"));
        assert!(with(&|g| g.margin_threshold = f32::NAN).is_err());
        assert!(with(&|g| g.confusable_threshold = 1.5).is_err());
        assert!(
            with(&|g| g.keep_at_edge = vec!["empty_text".into()])
                .unwrap_err()
                .contains("`empty_text`")
        );
        assert!(with(&|g| g.keep_at_edge = vec!["low_margin".into()]).is_ok());
        assert!(
            with(&|g| {
                g.per_label.insert("x".into(), -0.1);
            })
            .unwrap_err()
            .contains("`x`")
        );
    }

    #[test]
    fn margin_per_label_and_siblings() {
        let tax = Taxonomy::from_training_labels([("a", Some("g")), ("b", Some("g")), ("c", None)])
            .unwrap();
        let mut gate = GateConfig {
            margin_threshold: 0.3,
            confusable_threshold: 0.6,
            ..GateConfig::default()
        };
        assert_eq!(
            gate.decide(&[c("a", 0.7), c("c", 0.2)], &tax),
            GateOutcome::Keep
        );
        assert!(matches!(
            gate.decide(&[c("a", 0.5), c("c", 0.4)], &tax),
            GateOutcome::Forward(ForwardReason::LowMargin { .. })
        ));
        // Siblings only count once enabled.
        assert_eq!(
            gate.decide(&[c("a", 0.7), c("b", 0.2)], &tax),
            GateOutcome::Keep
        );
        gate.siblings_confusable = true;
        assert!(matches!(
            gate.decide(&[c("a", 0.7), c("b", 0.2)], &tax),
            GateOutcome::Forward(ForwardReason::ConfusableSiblings { .. })
        ));
        gate.per_label.insert("c".into(), 0.9);
        assert!(matches!(
            gate.decide(&[c("c", 0.8), c("a", 0.1)], &tax),
            GateOutcome::Forward(_)
        ));
        // The slack is the margin over the threshold that applies, and a
        // forward budget's offset shifts every threshold alike.
        let s = gate.slack(&[c("a", 0.7), c("c", 0.2)], &tax);
        assert!((s - 0.2).abs() < 1e-6, "{s}");
        assert!(matches!(
            gate.decide_shifted(&[c("a", 0.7), c("c", 0.2)], &tax, 0.25),
            GateOutcome::Forward(ForwardReason::LowMargin { .. })
        ));
        let s = gate.slack(&[c("a", 0.7), c("b", 0.2)], &tax);
        assert!((s - (0.5 - 0.6)).abs() < 1e-6, "{s}");
        assert_eq!(
            gate.decide_shifted(&[c("a", 0.7), c("b", 0.2)], &tax, -0.2),
            GateOutcome::Keep
        );
        gate.confusable_pairs.push(("c".into(), "a".into()));
        assert!(gate.confusable("a", "c", &tax));
        // Kinds kept at the edge are kept; the others still go.
        gate.keep_at_edge = vec!["confusable_siblings".into()];
        assert_eq!(
            gate.decide(&[c("a", 0.7), c("b", 0.2)], &tax),
            GateOutcome::Keep
        );
        assert_eq!(
            gate.decide(&[c("c", 0.8), c("a", 0.1)], &tax),
            GateOutcome::Keep
        );
        assert!(matches!(
            gate.decide(&[c("b", 0.5), c("c", 0.4)], &tax),
            GateOutcome::Forward(ForwardReason::LowMargin { .. })
        ));
        gate.keep_at_edge.push("low_margin".into());
        assert_eq!(
            gate.decide(&[c("b", 0.5), c("c", 0.4)], &tax),
            GateOutcome::Keep
        );
        // The thresholds' reason stays what it was: the fusion is picked by it.
        assert!(matches!(
            gate.forward_reason(&[c("b", 0.5), c("c", 0.4)], &tax),
            Some(ForwardReason::LowMargin { .. })
        ));
        assert_eq!(
            gate.forward_reason(&[c("a", 0.9), c("c", 0.05)], &tax),
            None
        );
        gate.keep_at_edge.clear();
        assert!(matches!(
            gate.decide(&[], &tax),
            GateOutcome::Forward(ForwardReason::EmptyText)
        ));
    }
}
