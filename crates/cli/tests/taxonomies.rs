//! The taxonomy files shipped for the sets in ../shared/datasets parse, name
//! every label of their set's training split, and describe each one (the
//! reranker's label text is name + description).

mod common;

use std::collections::BTreeSet;

use mailsort_offline::inputs::read_labelled;
use mailsort_shared::taxonomy::Taxonomy;

fn check(taxonomy_file: &str, train: &str, need_descriptions: bool) {
    let text = std::fs::read_to_string(common::repo_root().join(taxonomy_file))
        .unwrap_or_else(|e| panic!("{taxonomy_file}: {e}"));
    let taxonomy = Taxonomy::parse(&text).unwrap_or_else(|e| panic!("{taxonomy_file}: {e}"));
    let rows = read_labelled(&common::datasets().join(train), true).expect("training split");
    let labels: BTreeSet<String> = rows.into_iter().filter_map(|r| r.label).collect();
    for label in &labels {
        let entry = taxonomy
            .get(label)
            .unwrap_or_else(|| panic!("{taxonomy_file} lacks the label {label:?}"));
        if need_descriptions {
            let description = entry.description.as_deref().unwrap_or("");
            assert!(
                description.len() >= 10,
                "{taxonomy_file}: {label:?} has no description"
            );
        }
    }
}

#[test]
fn banking77_taxonomy_covers_and_describes_every_intent() {
    check("taxonomies/banking77.yaml", "banking77/train.jsonl", true);
}

#[test]
fn newsgroups_taxonomy_covers_and_describes_every_group() {
    check(
        "taxonomies/20newsgroups.yaml",
        "20newsgroups/train.jsonl.gz",
        true,
    );
}

#[test]
fn support_taxonomy_covers_every_queue() {
    check(
        "examples/support-taxonomy.yaml",
        "support-tickets/train.jsonl",
        false,
    );
}
