//! A Maildir++ tree as `mailsort import` and `mailsort sort` read it. The
//! input is split at NUL bytes into entries: an entry's first line names a
//! folder (`.Folder.Sub` in Maildir++ terms; empty for INBOX), the rest is
//! one message file in it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailsort_mailbox::maildir_store::MaildirStore;
use mailsort_mailbox::sort::Store;
use mailsort_mailbox::{ImportOptions, import::import_path};

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir_in(scratch()).expect("a scratch directory");
    let root = dir.path();
    make_maildir(root);
    for (n, entry) in data.split(|&b| b == 0).take(32).enumerate() {
        let (name, message) = match entry.iter().position(|&b| b == b'\n') {
            Some(i) => (&entry[..i], &entry[i + 1..]),
            None => (&[][..], entry),
        };
        let folder = folder_name(name);
        let at = if folder.is_empty() {
            root.to_path_buf()
        } else {
            root.join(format!(".{folder}"))
        };
        make_maildir(&at);
        let sub = if n % 2 == 0 { "cur" } else { "new" };
        std::fs::write(at.join(sub).join(format!("{n}.fuzz:2,S")), message).expect("scratch space");
    }
    let opts = ImportOptions {
        min_per_label: 1,
        max_message_bytes: 64 * 1024,
        ..ImportOptions::default()
    };
    if let Ok(imported) = import_path(root, &opts) {
        assert_eq!(imported.rows.len(), imported.summary.kept());
    }
    let mut store = MaildirStore::open(root, 64 * 1024).expect("the Maildir was just made");
    if let Ok(pending) = store.pending(64) {
        assert!(pending.iter().all(|p| p.bytes.len() <= 64 * 1024));
    }
});

/// A folder name from the input, kept to characters a file name can hold
/// so that the tree is built as written.
fn folder_name(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw)
        .chars()
        .filter(|c| !matches!(c, '/' | '\0'))
        .take(64)
        .collect::<String>()
        .trim_start_matches('.')
        .to_string()
}

fn make_maildir(at: &std::path::Path) {
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(at.join(sub)).expect("scratch space");
    }
}

fn scratch() -> std::path::PathBuf {
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}
