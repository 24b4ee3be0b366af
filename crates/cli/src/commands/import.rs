//! `mailsort import`: labelled mail from a mailbox into labelled JSONL,
//! with the summary of what was read. `build`, `split`, `eval` and
//! `calibrate` read mailboxes directly too; this shows what they would see
//! and keeps a copy that does not need the mailbox again.

use std::fs;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use mailsort_mailbox::imap;
use mailsort_mailbox::import;

use super::{ImportArgs, print_summary};

#[derive(Args)]
pub struct ImportCmdArgs {
    /// A Maildir++ tree, a folder of Maildirs, a folder of mbox files, a
    /// Gmail Takeout mbox, or an IMAP account (`imaps://USER@HOST`).
    source: PathBuf,
    /// Labelled JSONL to write (one row per message: id, label, parent, raw).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Also write the whole summary (every skipped message and why) as JSON.
    #[arg(long)]
    summary_out: Option<PathBuf>,
    #[command(flatten)]
    import: ImportArgs,
}

pub fn run(args: ImportCmdArgs) -> Result<()> {
    let name = args.source.to_string_lossy();
    let imported = if imap::is_imap_url(&name) {
        imap::import_imap(&args.import.imap.account(&name)?, &args.import.options())?
    } else {
        import::import_path(&args.source, &args.import.options())?
    };
    print_summary(&imported.summary);
    if let Some(path) = &args.summary_out {
        fs::write(path, serde_json::to_vec_pretty(&imported.summary)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if let Some(path) = &args.out {
        let file =
            fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
        let mut w = BufWriter::new(file);
        for row in &imported.rows {
            writeln!(w, "{}", serde_json::to_string(row)?)?;
        }
        w.flush()?;
        eprintln!("wrote {} rows to {}", imported.rows.len(), path.display());
    }
    Ok(())
}
