//! The user's labels: ids, names, descriptions, optional parents and examples.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// One label of a taxonomy. (No `skip_serializing_if` here: the bundle's
/// postcard encoding is not self-describing.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Label {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub parent: Option<String>,
    /// Example texts that stand for this label when few e-mails are labelled.
    #[serde(default)]
    pub examples: Vec<String>,
}

impl Label {
    /// The text that describes the label in words: name and description.
    pub fn text(&self) -> String {
        match &self.description {
            Some(d) if !d.trim().is_empty() => format!("{}: {}", self.name, d),
            _ => self.name.clone(),
        }
    }

    /// The text a cross-encoder reranker reads for this label: [`Label::text`]
    /// followed by up to `examples` of its examples, as in
    /// `card arrival: when will my card come. e.g. Where is my card? | …`.
    /// A reranker is trained with one such format (`label_examples` in its
    /// manifest); `training/train_reranker.py` builds the same string.
    pub fn rerank_text(&self, examples: usize) -> String {
        let picked: Vec<String> = self
            .examples
            .iter()
            .map(|e| e.split_whitespace().collect::<Vec<_>>().join(" "))
            .filter(|e| !e.is_empty())
            .take(examples)
            .collect();
        match picked.is_empty() {
            true => self.text(),
            false => format!("{}. e.g. {}", self.text(), picked.join(" | ")),
        }
    }
}

/// A validated set of labels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Taxonomy {
    labels: Vec<Label>,
}

/// What is wrong with a taxonomy file.
#[derive(Debug, Error, PartialEq)]
pub enum TaxonomyError {
    #[error("taxonomy is not valid YAML or JSON: {0}")]
    Syntax(String),
    #[error("taxonomy has no labels")]
    Empty,
    #[error("label #{index} has an empty id")]
    EmptyId { index: usize },
    #[error("label id `{0}` appears more than once")]
    DuplicateId(String),
    #[error("label `{label}` names parent `{parent}`, which is not a label of the taxonomy")]
    UnknownParent { label: String, parent: String },
    #[error("labels form a parent cycle: {0}")]
    Cycle(String),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum TaxonomyFile {
    List(Vec<Label>),
    Object { labels: Vec<Label> },
}

impl Taxonomy {
    /// Parses YAML or JSON (JSON is YAML), either a list of labels or
    /// `{labels: [...]}`, and validates it.
    pub fn parse(text: &str) -> Result<Self, TaxonomyError> {
        let file: TaxonomyFile =
            serde_norway::from_str(text).map_err(|e| TaxonomyError::Syntax(e.to_string()))?;
        let labels = match file {
            TaxonomyFile::List(l) | TaxonomyFile::Object { labels: l } => l,
        };
        Self::new(labels)
    }

    /// Validates labels: non-empty unique ids, known parents, no cycles.
    /// A label without a name is named after its id.
    pub fn new(mut labels: Vec<Label>) -> Result<Self, TaxonomyError> {
        if labels.is_empty() {
            return Err(TaxonomyError::Empty);
        }
        let mut seen = HashSet::new();
        for (index, l) in labels.iter_mut().enumerate() {
            l.id = l.id.trim().to_string();
            if l.id.is_empty() {
                return Err(TaxonomyError::EmptyId { index });
            }
            if !seen.insert(l.id.clone()) {
                return Err(TaxonomyError::DuplicateId(l.id.clone()));
            }
            if l.name.trim().is_empty() {
                l.name = humanise(&l.id);
            }
        }
        let parents: HashMap<&str, Option<&str>> = labels
            .iter()
            .map(|l| (l.id.as_str(), l.parent.as_deref()))
            .collect();
        for l in &labels {
            if let Some(p) = &l.parent
                && !parents.contains_key(p.as_str())
            {
                return Err(TaxonomyError::UnknownParent {
                    label: l.id.clone(),
                    parent: p.clone(),
                });
            }
        }
        for l in &labels {
            let mut path = vec![l.id.as_str()];
            let mut cur = l.parent.as_deref();
            while let Some(p) = cur {
                if path.contains(&p) {
                    path.push(p);
                    return Err(TaxonomyError::Cycle(path.join(" -> ")));
                }
                path.push(p);
                cur = parents[p];
            }
        }
        Ok(Self { labels })
    }

    /// A flat taxonomy made from the labels seen in training data, with each
    /// label's group (the datasets' `parent` field) kept as a parent label.
    pub fn from_training_labels<'a>(
        pairs: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
    ) -> Result<Self, TaxonomyError> {
        let mut leaves: BTreeMap<String, Option<String>> = BTreeMap::new();
        for (label, parent) in pairs {
            leaves
                .entry(label.to_string())
                .or_insert(parent.map(str::to_string));
        }
        let mut groups: Vec<String> = leaves.values().flatten().cloned().collect();
        groups.sort();
        groups.dedup();
        groups.retain(|g| !leaves.contains_key(g));
        let mut labels: Vec<Label> = groups
            .into_iter()
            .map(|g| Label {
                name: humanise(&g),
                id: g,
                description: None,
                parent: None,
                examples: vec![],
            })
            .collect();
        labels.extend(leaves.into_iter().map(|(id, parent)| Label {
            name: humanise(&id),
            id,
            description: None,
            parent,
            examples: vec![],
        }));
        Self::new(labels)
    }

    /// All labels, in file order.
    /// Sets a label's examples where it has none (user-written examples
    /// win). Returns whether they were set.
    pub fn fill_examples(&mut self, id: &str, examples: Vec<String>) -> bool {
        match self.labels.iter_mut().find(|l| l.id == id) {
            Some(l) if l.examples.is_empty() => {
                l.examples = examples;
                true
            }
            _ => false,
        }
    }

    pub fn labels(&self) -> &[Label] {
        &self.labels
    }

    /// The label with this id.
    pub fn get(&self, id: &str) -> Option<&Label> {
        self.labels.iter().find(|l| l.id == id)
    }

    /// True when both labels exist and share a parent.
    pub fn are_siblings(&self, a: &str, b: &str) -> bool {
        match (
            self.get(a).and_then(|l| l.parent.as_ref()),
            self.get(b).and_then(|l| l.parent.as_ref()),
        ) {
            (Some(pa), Some(pb)) => pa == pb,
            _ => false,
        }
    }
}

/// `card_arrival` → `card arrival`, `comp.sys.mac.hardware` → `comp sys mac hardware`.
fn humanise(id: &str) -> String {
    id.replace(['_', '-', '.', '/'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rerank_text_appends_examples_and_user_examples_win() {
        let yaml = "labels:\n  - id: card_arrival\n    description: when will my card come\n  - id: refund\n    examples: [\"I want my  money\\nback\"]\n";
        let mut t = Taxonomy::parse(yaml).unwrap();
        assert!(t.fill_examples(
            "card_arrival",
            vec!["Where is my card?".into(), "Card not here".into()]
        ));
        assert!(!t.fill_examples("refund", vec!["replaced?".into()]));
        assert!(!t.fill_examples("nope", vec!["x".into()]));
        let card = t.get("card_arrival").unwrap();
        assert_eq!(card.rerank_text(0), "card arrival: when will my card come");
        assert_eq!(
            card.rerank_text(1),
            "card arrival: when will my card come. e.g. Where is my card?"
        );
        assert_eq!(
            card.rerank_text(5),
            "card arrival: when will my card come. e.g. Where is my card? | Card not here"
        );
        assert_eq!(
            t.get("refund").unwrap().rerank_text(3),
            "refund. e.g. I want my money back"
        );
    }

    #[test]
    fn parses_yaml_and_json_forms() {
        let yaml = "labels:\n  - id: billing\n    description: invoices and payments\n  - id: billing.refund\n    parent: billing\n    examples: [\"I want my money back\"]\n";
        let t = Taxonomy::parse(yaml).unwrap();
        assert_eq!(t.labels().len(), 2);
        assert_eq!(t.get("billing").unwrap().name, "billing");
        assert_eq!(t.get("billing.refund").unwrap().examples.len(), 1);
        let json = r#"[{"id": "a", "name": "A"}, {"id": "b"}]"#;
        assert_eq!(Taxonomy::parse(json).unwrap().labels().len(), 2);
    }

    #[test]
    fn rejects_duplicates_unknown_parents_cycles_and_empty() {
        assert_eq!(
            Taxonomy::parse("[{id: a}, {id: a}]"),
            Err(TaxonomyError::DuplicateId("a".into()))
        );
        assert!(matches!(
            Taxonomy::parse("[{id: a, parent: zzz}]"),
            Err(TaxonomyError::UnknownParent { .. })
        ));
        let err = Taxonomy::parse("[{id: a, parent: b}, {id: b, parent: c}, {id: c, parent: a}]")
            .unwrap_err();
        assert!(
            matches!(err, TaxonomyError::Cycle(ref s) if s.starts_with("a -> b -> c -> a")),
            "{err}"
        );
        assert_eq!(Taxonomy::parse("[]"), Err(TaxonomyError::Empty));
        assert!(matches!(
            Taxonomy::parse("[{id: ' '}]"),
            Err(TaxonomyError::EmptyId { index: 0 })
        ));
        assert!(matches!(
            Taxonomy::parse("labels: [ {id: a"),
            Err(TaxonomyError::Syntax(_))
        ));
    }

    #[test]
    fn training_labels_keep_their_groups_as_parents() {
        let t = Taxonomy::from_training_labels([
            ("sci.med", Some("science")),
            ("sci.space", Some("science")),
            ("rec.autos", Some("recreation")),
        ])
        .unwrap();
        assert!(t.are_siblings("sci.med", "sci.space"));
        assert!(!t.are_siblings("sci.med", "rec.autos"));
        assert_eq!(t.get("science").unwrap().parent, None);
    }
}
