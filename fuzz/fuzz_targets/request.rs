//! A request body as the backend decodes and checks it: `/v1/rerank`'s and
//! `/v1/classify`'s JSON, the candidate rules, and the cleaning each
//! classify e-mail goes through.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailsort_shared::api::{ClassifyRequest, RerankRequest};
use mailsort_shared::clean::{CleanConfig, clean};

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = serde_json::from_slice::<RerankRequest>(data) {
        for email in &request.emails {
            if let Ok(Some(probs)) = email.check_candidates(16) {
                assert_eq!(probs.len(), email.candidates.len());
                assert!(probs.iter().all(|p| (0.0..=1.0).contains(p)));
            }
        }
    }
    if let Ok(request) = serde_json::from_slice::<ClassifyRequest>(data) {
        let config = CleanConfig::default();
        for email in &request.emails {
            let _ = email.input.byte_len();
            let _ = clean(&email.input, &config);
        }
    }
});
