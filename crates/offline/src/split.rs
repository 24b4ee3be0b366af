//! A stratified dev split carved out of labelled e-mails, for calibrating
//! on mail the bundle never saw.

use std::collections::BTreeMap;

use mailsort_shared::dataset::LabelledEmail;
use rand::seq::SliceRandom;
use rand::{SeedableRng, rngs::StdRng};

/// Splits `rows` into (train, dev), putting about `dev_fraction` of each
/// label's e-mails into dev (never a label's last one), shuffled by `seed`.
pub fn stratified(
    rows: Vec<LabelledEmail>,
    dev_fraction: f32,
    seed: u64,
) -> (Vec<LabelledEmail>, Vec<LabelledEmail>) {
    let mut by_label: BTreeMap<String, Vec<LabelledEmail>> = BTreeMap::new();
    for r in rows {
        by_label
            .entry(r.label.clone().unwrap_or_default())
            .or_default()
            .push(r);
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut train, mut dev) = (Vec::new(), Vec::new());
    for (_, mut group) in by_label {
        group.shuffle(&mut rng);
        let n_dev = ((group.len() as f32) * dev_fraction).round() as usize;
        let n_dev = n_dev.min(group.len().saturating_sub(1));
        dev.extend(group.drain(..n_dev));
        train.extend(group);
    }
    (train, dev)
}

/// The indices `0..n` in an order shuffled by `seed`: how evaluation feeds
/// a test split to a stateful gate, as live mail arrives mixed rather than
/// sorted by label.
pub fn shuffled_order(n: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut StdRng::seed_from_u64(seed));
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: usize, label: &str) -> LabelledEmail {
        serde_json::from_value(serde_json::json!({
            "id": id.to_string(), "subject": "", "body": "b", "label": label
        }))
        .expect("a valid row")
    }

    #[test]
    fn every_label_keeps_a_training_email() {
        let rows: Vec<LabelledEmail> = (0..10).map(|i| row(i, "a")).chain([row(10, "b")]).collect();
        let (train, dev) = stratified(rows, 0.3, 13);
        assert_eq!(dev.len(), 3);
        assert_eq!(train.len(), 8);
        assert!(train.iter().any(|r| r.label.as_deref() == Some("b")));
    }
}
