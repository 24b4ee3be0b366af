//! (e-mail text, label text) pairs as the cross-encoder reads them:
//! `[CLS] e-mail [SEP] label [SEP]`, truncated to the token cap by cutting
//! the longer side first (in practice the e-mail; label texts are short).
//! Each pair keeps the text its tokens came from, cut where the tokens end,
//! for engines that tokenize themselves (a remote reranker).

use std::sync::Arc;

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
    /// The e-mail text the tokens cover (shared by the e-mail's pairs).
    pub email: Arc<str>,
    /// The label text the tokens cover.
    pub label: Arc<str>,
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
        Self {
            ids,
            type_ids,
            email: vec!["the"; len - 3].join(" ").into(),
            label: "the".into(),
        }
    }
}

/// The end of the text that sequence `seq`'s tokens cover (byte offsets,
/// as `Tokenizer::encode` gives them), so that a cut text re-tokenizes to
/// the same tokens.
fn covered(encoding: &tokenizers::Encoding, seq: usize, text: &str) -> usize {
    let end = encoding
        .get_sequence_ids()
        .iter()
        .zip(encoding.get_offsets())
        .filter(|(s, _)| **s == Some(seq))
        .map(|(_, &(_, end))| end)
        .max()
        .unwrap_or(0);
    // Offsets fall on character boundaries; the check keeps a tokenizer
    // that thinks otherwise from panicking the server.
    if text.is_char_boundary(end) {
        end
    } else {
        text.len()
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
        // Pairs with longer labels keep less of the e-mail; equal cuts share
        // one copy of the text.
        let mut last: Option<(usize, Arc<str>)> = None;
        Ok(encodings
            .into_iter()
            .zip(labels)
            .map(|(e, label)| {
                let end = covered(&e, 0, text);
                let email = match &last {
                    Some((n, t)) if *n == end => t.clone(),
                    _ => {
                        let t: Arc<str> = text[..end].into();
                        last = Some((end, t.clone()));
                        t
                    }
                };
                EncodedPair {
                    ids: e.get_ids().to_vec(),
                    type_ids: e.get_type_ids().to_vec(),
                    email,
                    label: label[..covered(&e, 1, label)].into(),
                }
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

    fn committed_tokenizer() -> String {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../models/reranker-generic/tokenizer.json"
        );
        std::fs::read_to_string(path).expect("the committed reranker's tokenizer.json")
    }

    #[test]
    fn the_kept_text_retokenizes_to_the_pairs_tokens() {
        let encoder = PairEncoder::new(&committed_tokenizer(), 24).unwrap();
        let email = "Hello, my new card hasn't arrived yet and I've been waiting for over two weeks now; what can I do about it?";
        let labels = [
            "card arrival",
            "card delivery estimate: when the card will arrive",
        ];
        let pairs = encoder.encode(email, &labels).unwrap();
        let mut whole: Tokenizer = committed_tokenizer().parse().unwrap();
        whole.with_truncation(None).unwrap();
        whole.with_padding(None);
        for (pair, label) in pairs.iter().zip(labels) {
            assert_eq!(pair.ids.len(), 24, "cut to the cap");
            assert!(email.starts_with(&*pair.email) && pair.email.len() < email.len());
            assert_eq!(&*pair.label, label, "short labels are kept whole");
            let again = whole
                .encode((pair.email.to_string(), pair.label.to_string()), true)
                .unwrap();
            assert_eq!(again.get_ids(), &pair.ids[..], "{:?}", pair.email);
        }
        // The longer label leaves less of the e-mail.
        assert!(pairs[1].email.len() < pairs[0].email.len());
        let short = encoder.encode("Card?", &labels).unwrap();
        assert_eq!(&*short[0].email, "Card?");
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
