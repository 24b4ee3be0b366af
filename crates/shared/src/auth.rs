//! The bearer-key check every mailsort server applies (the backend and the
//! Worker): `Authorization: Bearer <key>`, compared in constant time.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The key in an `Authorization` header value, if it uses the Bearer
/// scheme. The scheme name is case-insensitive (RFC 7235); surrounding
/// blanks are ignored.
pub fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Accepted keys, kept as SHA-256 digests so that comparing takes the same
/// time whatever the key's length or content.
#[derive(Clone)]
pub struct KeySet {
    digests: Vec<[u8; 32]>,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeySet({} keys)", self.digests.len())
    }
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

impl KeySet {
    /// The set of `keys` (trimmed).
    pub fn new<'a>(keys: impl IntoIterator<Item = &'a str>) -> Self {
        Self {
            digests: keys.into_iter().map(|k| digest(k.trim())).collect(),
        }
    }

    /// How many keys are accepted.
    pub fn len(&self) -> usize {
        self.digests.len()
    }

    /// True when no key is accepted (every request is refused).
    pub fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }

    /// True when `authorization` (the header's value) is `Bearer <a known key>`.
    pub fn check(&self, authorization: Option<&str>) -> bool {
        let Some(key) = authorization.and_then(bearer_token) else {
            return false;
        };
        let d = digest(key);
        // Compare against every key so timing does not reveal which matched.
        self.digests
            .iter()
            .fold(subtle::Choice::from(0), |acc, k| acc | k.ct_eq(&d))
            .into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_only_known_bearer_keys() {
        let k = KeySet::new(["0123456789abcdef", "fedcba9876543210"]);
        assert!(k.check(Some("Bearer 0123456789abcdef")));
        assert!(k.check(Some("bearer fedcba9876543210")));
        assert!(k.check(Some("  BEARER  0123456789abcdef ")));
        assert!(!k.check(Some("Bearer 0123456789abcdeX")));
        assert!(!k.check(Some("0123456789abcdef")));
        assert!(!k.check(Some("Basic 0123456789abcdef")));
        assert!(!k.check(Some("Bearer ")));
        assert!(!k.check(None));
    }

    #[test]
    fn an_empty_set_refuses_everything() {
        let k = KeySet::new([]);
        assert!(k.is_empty());
        assert!(!k.check(Some("Bearer anything-at-all-here")));
    }
}
