//! An mbox file, read by `mailsort import` both ways it can be: as a
//! folder of mbox files (the file name is the label), and as a Gmail
//! Takeout mbox (labels from `X-Gmail-Labels`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailsort_mailbox::{ImportOptions, import::import_path};

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir_in(scratch()).expect("a scratch directory");
    let folder = dir.path().join("folder");
    std::fs::create_dir(&folder).expect("a fresh directory");
    std::fs::write(folder.join("Work.mbox"), data).expect("scratch space");
    let opts = ImportOptions {
        min_per_label: 1,
        ..ImportOptions::default()
    };
    check(import_path(&folder, &opts));
    let takeout = dir.path().join("takeout.mbox");
    std::fs::write(&takeout, data).expect("scratch space");
    check(import_path(&takeout, &opts));
});

fn check(result: Result<mailsort_mailbox::Imported, mailsort_mailbox::MailboxError>) {
    if let Ok(imported) = result {
        assert_eq!(imported.rows.len(), imported.summary.kept());
    }
}

/// Memory-backed when the machine has it: every run writes files.
fn scratch() -> std::path::PathBuf {
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}
