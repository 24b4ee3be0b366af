//! API keys: read from a file and/or the environment; checked by the shared
//! bearer check (`mailsort_shared::auth`), in constant time.

use std::fs;
use std::path::Path;

use mailsort_shared::auth::KeySet;
use thiserror::Error;

/// Why the key set could not be built.
#[derive(Debug, Error)]
pub enum AuthError {
    #[error("cannot read API keys from {path}: {detail}")]
    Read { path: String, detail: String },
    #[error(
        "no API keys: set MAILSORT_API_KEYS or --api-keys-file, or pass --no-auth to serve without authentication"
    )]
    NoKeys,
    #[error("API keys must be at least 16 characters (one in {0} is shorter)")]
    TooShort(String),
}

/// The accepted keys.
#[derive(Clone, Debug)]
pub struct ApiKeys {
    keys: KeySet,
}

impl ApiKeys {
    /// Keys from `inline` (already split) plus one per line of `file`.
    pub fn load(inline: &[String], file: Option<&Path>) -> Result<Self, AuthError> {
        let mut keys: Vec<(String, String)> = inline
            .iter()
            .map(|k| (k.trim().to_string(), "MAILSORT_API_KEYS".to_string()))
            .collect();
        if let Some(path) = file {
            let text = fs::read_to_string(path).map_err(|e| AuthError::Read {
                path: path.display().to_string(),
                detail: e.to_string(),
            })?;
            keys.extend(
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .map(|l| (l.to_string(), path.display().to_string())),
            );
        }
        keys.retain(|(k, _)| !k.is_empty());
        if keys.is_empty() {
            return Err(AuthError::NoKeys);
        }
        if let Some((_, from)) = keys.iter().find(|(k, _)| k.len() < 16) {
            return Err(AuthError::TooShort(from.clone()));
        }
        Ok(Self {
            keys: KeySet::new(keys.iter().map(|(k, _)| k.as_str())),
        })
    }

    /// True when `authorization` is `Bearer <a known key>`.
    pub fn check(&self, authorization: Option<&str>) -> bool {
        self.keys.check(authorization)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> ApiKeys {
        ApiKeys::load(
            &["0123456789abcdef".into(), "fedcba9876543210".into()],
            None,
        )
        .expect("valid keys")
    }

    #[test]
    fn accepts_only_known_bearer_keys() {
        let k = keys();
        assert!(k.check(Some("Bearer 0123456789abcdef")));
        assert!(k.check(Some("Bearer fedcba9876543210")));
        assert!(!k.check(Some("Bearer 0123456789abcdeX")));
        assert!(!k.check(Some("0123456789abcdef")));
        assert!(!k.check(Some("Basic 0123456789abcdef")));
        assert!(!k.check(None));
    }

    #[test]
    fn refuses_empty_and_short_key_sets() {
        assert!(matches!(ApiKeys::load(&[], None), Err(AuthError::NoKeys)));
        assert!(matches!(
            ApiKeys::load(&[" ".into()], None),
            Err(AuthError::NoKeys)
        ));
        assert!(matches!(
            ApiKeys::load(&["short".into()], None),
            Err(AuthError::TooShort(_))
        ));
    }
}
