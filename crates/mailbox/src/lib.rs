//! Where mail lives. Reading labelled mail from Maildir, mbox, Gmail
//! Takeout and IMAP (`import`), writing labelled rows back as mail
//! (`export`), and filing new INBOX mail into label folders (`sort`, over
//! a local Maildir or an IMAP account). The rules that map a folder to a
//! label live in `folders`, so every direction agrees.

pub mod error;
pub mod export;
pub mod folders;
pub mod imap;
pub mod import;
pub mod maildir_store;
pub mod message;
pub mod sort;

pub use error::MailboxError;
pub use import::{ImportOptions, ImportSummary, Imported};
