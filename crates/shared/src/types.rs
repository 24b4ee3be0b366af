//! Types that cross process boundaries (CLI output, browser, Worker, backend).

use serde::{Deserialize, Serialize};

/// An e-mail as a client hands it over: either a raw RFC 5322 / MIME message
/// or an already separated subject and body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum EmailInput {
    /// The whole message, headers included, as text (`message/rfc822`).
    Raw { raw: String },
    /// Subject and plain-text (or HTML) body.
    Pair {
        #[serde(default)]
        subject: String,
        #[serde(default)]
        body: String,
    },
}

impl EmailInput {
    /// Bytes of text it carries.
    pub fn byte_len(&self) -> usize {
        match self {
            Self::Raw { raw } => raw.len(),
            Self::Pair { subject, body } => subject.len() + body.len(),
        }
    }
}

/// One label the classifier considers, with its calibrated probability.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Candidate {
    pub label: String,
    pub probability: f32,
}

/// Who settles the label of an e-mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum DecidedBy {
    Edge,
    Backend,
}

/// Why the gate sent an e-mail on to the backend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ForwardReason {
    /// p(top1) − p(top2) is below the threshold that applies to the top label.
    LowMargin { margin: f32, threshold: f32 },
    /// The two leading labels are known to be confused with each other and
    /// the margin is below the stricter threshold for such pairs.
    ConfusableSiblings {
        first: String,
        second: String,
        margin: f32,
        threshold: f32,
    },
    /// Cleaning left no text to classify.
    EmptyText,
}

/// The outcome for one e-mail. When `decided_by` is `backend`, `label` is the
/// edge's best guess until the backend answers (`provisional` says so).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Decision {
    pub id: String,
    pub label: String,
    pub confidence: f32,
    pub decided_by: DecidedBy,
    pub candidates: Vec<Candidate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forward_reason: Option<ForwardReason>,
    /// True while the label is only the edge's guess for a forwarded e-mail.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub provisional: bool,
}

impl ForwardReason {
    /// The kinds the edge may keep instead of forwarding
    /// ([`crate::gate::GateConfig::keep_at_edge`]): those with candidates
    /// to keep. An e-mail with no text has none.
    pub const KEEPABLE_KINDS: [&'static str; 2] = ["low_margin", "confusable_siblings"];

    /// The reason's name, as in JSON (`low_margin`, `confusable_siblings`,
    /// `empty_text`).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::LowMargin { .. } => "low_margin",
            Self::ConfusableSiblings { .. } => "confusable_siblings",
            Self::EmptyText => "empty_text",
        }
    }
}

impl Decision {
    /// Whether the backend should rerank this decision: the gate forwarded
    /// it and cleaning left text to read. Every face (CLI, browser, Worker,
    /// backend) asks this one question before calling the reranker.
    pub fn needs_rerank(&self) -> bool {
        self.decided_by == DecidedBy::Backend
            && !matches!(self.forward_reason, Some(ForwardReason::EmptyText))
            && !self.candidates.is_empty()
    }

    /// A forwarded decision the backend did not settle (not needed, not
    /// reachable, or it failed): the edge's label stands, marked as only
    /// a guess.
    pub fn mark_provisional(&mut self) {
        if self.decided_by == DecidedBy::Backend {
            self.provisional = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forwarded(reason: ForwardReason) -> Decision {
        Decision {
            id: "m".into(),
            label: "a".into(),
            confidence: 0.5,
            decided_by: DecidedBy::Backend,
            candidates: vec![Candidate {
                label: "a".into(),
                probability: 0.5,
            }],
            forward_reason: Some(reason),
            provisional: false,
        }
    }

    #[test]
    fn only_forwarded_decisions_with_text_are_reranked() {
        let low = forwarded(ForwardReason::LowMargin {
            margin: 0.1,
            threshold: 0.2,
        });
        assert!(low.needs_rerank());
        assert!(!forwarded(ForwardReason::EmptyText).needs_rerank());
        let mut kept = low.clone();
        kept.decided_by = DecidedBy::Edge;
        kept.forward_reason = None;
        assert!(!kept.needs_rerank());
    }

    #[test]
    fn a_reasons_kind_is_its_json_tag() {
        for reason in [
            ForwardReason::LowMargin {
                margin: 0.1,
                threshold: 0.2,
            },
            ForwardReason::ConfusableSiblings {
                first: "a".into(),
                second: "b".into(),
                margin: 0.1,
                threshold: 0.2,
            },
            ForwardReason::EmptyText,
        ] {
            let json = serde_json::to_value(&reason).expect("serialises");
            assert_eq!(json["kind"], reason.kind());
            // Every kind with candidates may be kept at the edge; no other.
            assert_eq!(
                ForwardReason::KEEPABLE_KINDS.contains(&reason.kind()),
                reason != ForwardReason::EmptyText
            );
        }
    }

    #[test]
    fn only_forwarded_decisions_become_provisional() {
        let mut d = forwarded(ForwardReason::EmptyText);
        d.mark_provisional();
        assert!(d.provisional);
        let mut kept = d.clone();
        kept.decided_by = DecidedBy::Edge;
        kept.provisional = false;
        kept.mark_provisional();
        assert!(!kept.provisional);
    }
}
