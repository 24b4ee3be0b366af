//! Errors of the mailbox layer. Per-message problems are not errors: they
//! are skips in an import's summary, or messages left in INBOX by `sort`.

use std::path::Path;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum MailboxError {
    #[error("{path}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not a mailbox: {why}")]
    NotAMailbox { path: String, why: String },
    #[error(
        "not an IMAP address: {0} (expected imaps://USER@HOST[:PORT], imap://USER@HOST[:PORT] with --starttls, or imap://USER@127.0.0.1 with --allow-plaintext)"
    )]
    BadUrl(String),
    #[error(
        "refusing plain-text IMAP to {host}: only loopback may go without TLS, and only with --allow-plaintext"
    )]
    Plaintext { host: String },
    #[error("cannot connect to {addr}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("TLS with {host} failed")]
    Tls {
        host: String,
        source: std::io::Error,
    },
    #[error("the server rejected the login for {user}: {message}")]
    Login { user: String, message: String },
    #[error("IMAP: {context}")]
    Imap {
        context: String,
        source: async_imap::error::Error,
    },
    #[error("the server does not support {0}, which this needs")]
    Unsupported(&'static str),
    #[error("state file {path} cannot be used: {why}")]
    State { path: String, why: String },
    #[error("no IMAP password: set MAILSORT_IMAP_PASSWORD (or --password-file)")]
    NoPassword,
}

impl MailboxError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.display().to_string(),
            source,
        }
    }

    pub(crate) fn imap(
        context: impl Into<String>,
    ) -> impl FnOnce(async_imap::error::Error) -> Self {
        let context = context.into();
        move |source| Self::Imap { context, source }
    }
}
