//! A raw message, as every face cleans it: MIME parsing, charset
//! decoding, HTML to text, quote, signature and disclaimer stripping, the
//! byte and token caps.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailsort_shared::clean::{CleanConfig, clean_raw};

fuzz_target!(|data: &[u8]| {
    let config = CleanConfig::default();
    if let Ok(cleaned) = clean_raw(data, &config) {
        // The word budget is what keeps the tokenizer's work bounded.
        assert!(cleaned.text.split_whitespace().count() <= config.token_cap);
        assert_eq!(cleaned.empty, cleaned.text.is_empty());
    }
});
