//! Embedding many texts on all cores, with a progress bar.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};
use mailsort_edge::Embedder;

/// A progress bar on stderr (hidden when stderr is not a terminal).
pub fn bar(len: usize, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(len as u64);
    pb.set_style(
        ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} ({per_sec}, eta {eta})")
            .expect("static template")
            .progress_chars("=> "),
    );
    pb.set_message(what.to_string());
    pb
}

/// Embeds `texts` in length-sorted batches spread over `threads` workers;
/// results are in input order.
pub fn embed_all(
    embedder: &Embedder,
    texts: &[&str],
    batch: usize,
    threads: Option<usize>,
    what: &str,
) -> Result<Vec<Vec<f32>>> {
    let ids = embedder.tokenize(texts)?;
    let mut order: Vec<usize> = (0..ids.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(ids[i].len()));
    let batches: Vec<&[usize]> = order.chunks(batch.max(1)).collect();
    let threads = threads
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        })
        .max(1);
    let next = AtomicUsize::new(0);
    let out = Mutex::new(vec![Vec::new(); ids.len()]);
    let pb = bar(texts.len(), what);
    let first_error = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let b = next.fetch_add(1, Ordering::Relaxed);
                    let Some(chunk) = batches.get(b) else { break };
                    let seqs: Vec<Vec<u32>> = chunk.iter().map(|&i| ids[i].clone()).collect();
                    match embedder.embed_ids(&seqs) {
                        Ok(vs) => {
                            let mut out =
                                out.lock().expect("no worker panics while holding the lock");
                            for (&i, v) in chunk.iter().zip(vs) {
                                out[i] = v;
                            }
                        }
                        Err(e) => {
                            first_error
                                .lock()
                                .expect("error slot lock")
                                .get_or_insert(e);
                            break;
                        }
                    }
                    pb.inc(chunk.len() as u64);
                }
            });
        }
    });
    pb.finish_and_clear();
    if let Some(e) = first_error.into_inner().expect("error slot lock") {
        return Err(e.into());
    }
    Ok(out.into_inner().expect("no worker panicked"))
}
