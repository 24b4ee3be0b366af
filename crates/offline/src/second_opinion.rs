//! Training a bundle's second-opinion head: the bundle's labelled e-mails,
//! cleaned exactly as its edge cleans them (that text is what the backend
//! receives), embedded by the second-opinion encoder, and a multinomial
//! logistic regression over those vectors ([`crate::train::fit_head`], the
//! same fit as the edge's head). A tenth of the e-mails is held out first
//! to measure the head and fit its temperature; the shipped head is then
//! trained on all of them.

use mailsort_edge::{Batching, EmbedError, EmbeddingCache};
use mailsort_ort_embed::second_opinion::SecondOpinionEncoder;
use mailsort_shared::bundle::{Bundle, softmax};
use mailsort_shared::dataset::LabelledEmail;
use mailsort_shared::second_opinion::{HeadReport, SecondOpinionFile, TOKEN_CAP};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use thiserror::Error;

use crate::progress::Progress;
use crate::train::{TrainError, TrainOptions, fit_head};

/// Why a head could not be trained.
#[derive(Debug, Error)]
pub enum HeadTrainError {
    #[error("embedding the training e-mails: {0}")]
    Embed(#[from] EmbedError),
    #[error(transparent)]
    Train(#[from] TrainError),
    #[error(
        "none of the {0} training e-mails has a label of this bundle's head; is this the bundle's training set?"
    )]
    NoLabelledEmails(usize),
}

/// Temperatures tried on the held-out e-mails.
const TEMPERATURES: [f32; 9] = [0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0];

/// Trains `bundle`'s head on `encoder` from `rows` (labels outside the
/// bundle's head are skipped). `cache`: the encoder's embedding cache.
pub fn train_head(
    encoder: &SecondOpinionEncoder,
    bundle: &Bundle,
    rows: &[LabelledEmail],
    batching: Batching,
    cache: Option<&dyn EmbeddingCache>,
    progress: &dyn Progress,
) -> Result<SecondOpinionFile, HeadTrainError> {
    let labels = &bundle.head.labels;
    let mut texts = Vec::new();
    let mut y = Vec::new();
    for row in rows {
        let Some(i) = row
            .label
            .as_ref()
            .and_then(|l| labels.iter().position(|x| x == l))
        else {
            continue;
        };
        texts.push(row.cleaned_text(&bundle.clean));
        y.push(i);
    }
    if texts.is_empty() {
        return Err(HeadTrainError::NoLabelledEmails(rows.len()));
    }
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    progress.start("second-opinion embeddings", refs.len());
    let x = encoder
        .embedder
        .embed_cached(&refs, batching, &|n| progress.advance(n), cache);
    progress.finish();
    let x = x?;

    let opts = TrainOptions::default();
    let mut order: Vec<usize> = (0..x.len()).collect();
    order.shuffle(&mut rand::rngs::StdRng::seed_from_u64(13));
    let held = order.len() / 10;
    let (held_out, kept) = order.split_at(held);
    let pick = |idx: &[usize]| -> (Vec<Vec<f32>>, Vec<usize>) {
        idx.iter().map(|&i| (x[i].clone(), y[i])).unzip()
    };
    let (holdout_accuracy, temperature) = if held >= 20 {
        progress.note(&format!(
            "fitting the head on {} e-mails, {held} held out…",
            kept.len()
        ));
        let (xk, yk) = pick(kept);
        let (xh, yh) = pick(held_out);
        let head = fit_head(&xk, &yk, labels, &opts)?;
        let logits: Vec<Vec<f32>> = xh.iter().map(|v| head.logits(v)).collect();
        let right = logits
            .iter()
            .zip(&yh)
            .filter(|(l, y)| argmax(l) == **y)
            .count();
        let nll = |t: f32| -> f32 {
            logits
                .iter()
                .zip(&yh)
                .map(|(l, &y)| -softmax(l, t)[y].max(1e-9).ln())
                .sum()
        };
        let t = TEMPERATURES
            .into_iter()
            .min_by(|a, b| nll(*a).total_cmp(&nll(*b)))
            .expect("the grid is not empty");
        (Some(right as f32 / held as f32), t)
    } else {
        (None, 1.0)
    };
    progress.note(&format!("fitting the head on all {} e-mails…", x.len()));
    let mut head = fit_head(&x, &y, labels, &opts)?;
    head.temperature = temperature;
    Ok(SecondOpinionFile {
        bundle_id: bundle.id.clone(),
        encoder: encoder.encoder.clone(),
        token_cap: TOKEN_CAP,
        head,
        report: HeadReport {
            examples: x.len(),
            holdout_accuracy,
        },
    })
}

fn argmax(v: &[f32]) -> usize {
    v.iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |(i, _)| i)
}
