//! `mailsort export`: labelled JSONL written as a mailbox (Maildir++, a
//! folder of Maildirs, mbox files, a Gmail Takeout mbox) or as an INBOX of
//! unlabelled messages for `mailsort sort`. For trying mailsort on a real
//! mail client with a public labelled set, and for tests.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use mailsort_mailbox::export::{self, ExportFormat};
use mailsort_offline::inputs;

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    /// A Maildir++ tree, each label a `.Label` folder.
    Maildir,
    /// A folder of Maildirs, `Label/{cur,new,tmp}`.
    Folders,
    /// A folder of mbox files, `Label.mbox`.
    Mbox,
    /// One mbox with Gmail's `X-Gmail-Labels`.
    Takeout,
    /// A Maildir with every message in its INBOX, unlabelled.
    Inbox,
}

#[derive(Args)]
pub struct ExportArgs {
    /// Labelled JSONL (`.jsonl` or `.jsonl.gz`).
    #[arg(long)]
    input: PathBuf,
    #[arg(long, value_enum)]
    format: Format,
    /// The mailbox to write (a folder; a file for takeout).
    #[arg(long)]
    out: PathBuf,
    /// At most this many messages per label (in file order).
    #[arg(long)]
    per_label: Option<usize>,
    /// At most this many messages in all.
    #[arg(long)]
    limit: Option<usize>,
    /// Also write each message's Message-ID and label (tab-separated), to
    /// check a sorted mailbox against.
    #[arg(long)]
    ids_out: Option<PathBuf>,
}

pub fn run(args: ExportArgs) -> Result<()> {
    let mut rows = inputs::read_labelled(&args.input, true)?;
    if let Some(k) = args.per_label {
        let mut seen = std::collections::HashMap::<String, usize>::new();
        rows.retain(|r| {
            let n = seen.entry(r.label.clone().unwrap_or_default()).or_default();
            *n += 1;
            *n <= k
        });
    }
    if let Some(n) = args.limit {
        rows.truncate(n);
    }
    if args.out.exists()
        && !matches!(args.format, Format::Takeout)
        && args.out.read_dir()?.next().is_some()
    {
        bail!(
            "{} exists and is not empty: export writes a fresh mailbox",
            args.out.display()
        );
    }
    let format = match args.format {
        Format::Maildir => ExportFormat::MaildirPlusPlus,
        Format::Folders => ExportFormat::MaildirFolders,
        Format::Mbox => ExportFormat::MboxFolder,
        Format::Takeout => ExportFormat::GmailTakeout,
        Format::Inbox => ExportFormat::Inbox,
    };
    let n = export::export(&rows, format, &args.out)?;
    if let Some(path) = &args.ids_out {
        let mut text = String::new();
        for r in &rows {
            text.push_str(&format!(
                "{}\t{}\n",
                export::exported_message_id(r),
                r.label.as_deref().unwrap_or_default()
            ));
        }
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    eprintln!("wrote {n} messages to {}", args.out.display());
    Ok(())
}
