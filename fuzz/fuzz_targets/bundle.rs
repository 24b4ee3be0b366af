//! A bundle file. Random bytes almost never pass the checksum, so when the
//! first byte is odd the rest is taken as a payload and given a valid
//! header: the postcard decoding and the range checks behind it are what
//! a crafted file reaches.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailsort_shared::bundle::{Bundle, FORMAT_VERSION, MAGIC};
use sha2::{Digest, Sha256};

fuzz_target!(|data: &[u8]| {
    let bytes = match data.split_first() {
        Some((flag, payload)) if flag & 1 == 1 => {
            let mut file = MAGIC.to_vec();
            file.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
            file.extend_from_slice(&Sha256::digest(payload));
            file.extend_from_slice(payload);
            file
        }
        _ => data.to_vec(),
    };
    let Ok(bundle) = Bundle::decode(&bytes) else {
        return;
    };
    // What a loaded bundle is used for without a model: the head on an
    // embedding of its width, and the taxonomy's label texts.
    let probs = bundle.head.probabilities(&vec![0.1; bundle.model.dim]);
    assert_eq!(probs.len(), bundle.head.labels.len());
    // The range checks at load promise numbers, whatever the file held.
    assert!(probs.iter().all(|p| p.is_finite()), "{probs:?}");
    for label in &bundle.head.labels {
        assert!(bundle.taxonomy.get(label).is_some());
    }
});
