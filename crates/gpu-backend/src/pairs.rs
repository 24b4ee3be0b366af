//! (e-mail text, label text) pairs as the cross-encoder reads them:
//! `[CLS] e-mail [SEP] label [SEP]`, truncated to the token cap by cutting
//! the longer side first (in practice the e-mail; label texts are short).

use mailsort_shared::clean::truncate_bytes;
use thiserror::Error;
use tokenizers::{Tokenizer, TruncationParams, TruncationStrategy};

/// Why pairs could not be tokenized.
#[derive(Debug, Error)]
pub enum PairError {
    #[error("the reranker's tokenizer.json cannot be used: {0}")]
    Tokenizer(String),
    #[error("tokenizing pairs failed: {0}")]
    Encode(String),
}

/// One tokenized pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedPair {
    pub ids: Vec<u32>,
    pub type_ids: Vec<u32>,
}

impl EncodedPair {
    /// A well-formed pair of `len` tokens, for warm-up.
    pub fn synthetic(len: usize) -> Self {
        let len = len.max(3);
        // [CLS] "the" … [SEP] "the" [SEP] in BERT's uncased vocabulary.
        let mut ids = vec![1996; len];
        ids[0] = 101;
        ids[len - 3] = 102;
        ids[len - 1] = 102;
        let mut type_ids = vec![0; len];
        type_ids[len - 2] = 1;
        type_ids[len - 1] = 1;
        Self { ids, type_ids }
    }
}

/// Bytes of e-mail text kept per token of the cap before tokenizing. The
/// tokenizer only truncates after it has tokenized everything (and the text
/// is copied once per candidate label), so a 2 MB text cost about 1 GB; a
/// WordPiece token stands for 4–6 bytes of English and rarely over 20, so
/// 32 per token leaves every pair the tokens it would have had uncut.
const BYTES_PER_TOKEN: usize = 32;

/// The cross-encoder's tokenizer with the server's token cap.
pub struct PairEncoder {
    tokenizer: Tokenizer,
    token_cap: usize,
}

impl PairEncoder {
    /// Reads `tokenizer.json` text and sets truncation at `token_cap`.
    pub fn new(tokenizer_json: &str, token_cap: usize) -> Result<Self, PairError> {
        let bad = |e: tokenizers::Error| PairError::Tokenizer(e.to_string());
        let mut tokenizer: Tokenizer = tokenizer_json.parse().map_err(bad)?;
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: token_cap,
                strategy: TruncationStrategy::LongestFirst,
                ..Default::default()
            }))
            .map_err(bad)?;
        tokenizer.with_padding(None);
        Ok(Self {
            tokenizer,
            token_cap,
        })
    }

    /// The cap every pair is cut to.
    pub fn token_cap(&self) -> usize {
        self.token_cap
    }

    /// Tokenizes `text` against each label text.
    pub fn encode(&self, text: &str, labels: &[&str]) -> Result<Vec<EncodedPair>, PairError> {
        let text = truncate_bytes(text, self.token_cap * BYTES_PER_TOKEN);
        let inputs: Vec<(String, String)> = labels
            .iter()
            .map(|l| (text.to_string(), l.to_string()))
            .collect();
        let encodings = self
            .tokenizer
            .encode_batch(inputs, true)
            .map_err(|e| PairError::Encode(e.to_string()))?;
        Ok(encodings
            .into_iter()
            .map(|e| EncodedPair {
                ids: e.get_ids().to_vec(),
                type_ids: e.get_type_ids().to_vec(),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_cut_at_a_character_boundary() {
        assert_eq!(truncate_bytes("short", 100), "short");
        assert_eq!(truncate_bytes("abcdef", 3), "abc");
        // "é" is two bytes: a cut inside it backs off to before it.
        assert_eq!(truncate_bytes("aé", 2), "a");
        assert_eq!(truncate_bytes(&"ü".repeat(1_000_000), 33).len(), 32);
    }

    #[test]
    fn synthetic_pairs_have_the_pair_layout() {
        let p = EncodedPair::synthetic(8);
        assert_eq!(p.ids.len(), 8);
        assert_eq!(p.ids[0], 101);
        assert_eq!(p.ids[5], 102);
        assert_eq!(p.ids[7], 102);
        assert_eq!(p.type_ids, vec![0, 0, 0, 0, 0, 0, 1, 1]);
    }
}
