//! An HTML body as a subject-and-body pair, and HTML straight through the
//! nesting limit and html2text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailsort_shared::clean::{
    CleanConfig, MAX_HTML_DEPTH, clean_pair, html_to_text, limit_nesting,
};

fuzz_target!(|data: &[u8]| {
    let html = String::from_utf8_lossy(data);
    let limited = limit_nesting(&html, MAX_HTML_DEPTH);
    assert!(limited.len() <= html.len());
    let _ = html_to_text(&html);
    let config = CleanConfig::default();
    let cleaned = clean_pair("", &html, &config);
    assert!(cleaned.text.split_whitespace().count() <= config.token_cap);
});
