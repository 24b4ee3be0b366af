//! How long offline jobs report what they are doing, without choosing how
//! it is shown (the CLI draws progress bars on stderr).

/// Receives a long job's steps. `advance` may be called from several threads.
pub trait Progress: Sync {
    /// A counted step begins: `total` items of `what`.
    fn start(&self, what: &str, total: usize);
    /// `n` more items of the current step are done.
    fn advance(&self, n: usize);
    /// The current counted step is over.
    fn finish(&self);
    /// A one-line remark between steps.
    fn note(&self, message: &str);
}

/// Reports nothing.
pub struct Silent;

impl Progress for Silent {
    fn start(&self, _: &str, _: usize) {}
    fn advance(&self, _: usize) {}
    fn finish(&self) {}
    fn note(&self, _: &str) {}
}

/// Embeds `texts` on `batching`'s threads, reporting each batch as done.
pub fn embed(
    embedder: &mailsort_edge::Embedder,
    texts: &[&str],
    batching: mailsort_edge::Batching,
    what: &str,
    progress: &dyn Progress,
) -> Result<Vec<Vec<f32>>, mailsort_edge::EmbedError> {
    progress.start(what, texts.len());
    let out = embedder.embed_parallel(texts, batching, &|n| progress.advance(n));
    progress.finish();
    out
}
