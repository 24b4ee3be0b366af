//! Labelled mail from where people keep it: a Maildir++ tree, a folder of
//! Maildirs, a folder of mbox files, a Gmail Takeout mbox, or an IMAP
//! account. Every message keeps its raw bytes, so cleaning sees real MIME.
//! Each message that cannot be used is skipped with a reason; nothing
//! fails the whole import except a source that is not a mailbox at all.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use mailsort_shared::dataset::LabelledEmail;
use serde::Serialize;

use crate::error::MailboxError;
use crate::folders::{self, FolderFilter};
use crate::message::{self, RawMessage};

/// How to read a labelled mailbox.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    pub filter: FolderFilter,
    /// Labels with fewer messages are reported and left out: too few to learn.
    pub min_per_label: usize,
    /// Larger messages are skipped (Gmail's own limit is 25 MB).
    pub max_message_bytes: u64,
}

impl Default for ImportOptions {
    fn default() -> Self {
        Self {
            filter: FolderFilter::default(),
            min_per_label: 2,
            max_message_bytes: 25 * 1024 * 1024,
        }
    }
}

/// The kinds of source, as detected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// A Maildir whose `.Folder.Sub` directories are the labels.
    MaildirPlusPlus,
    /// A folder of Maildirs (`Folder/Sub/{cur,new,tmp}`).
    MaildirFolders,
    /// A folder of mbox files; the file name is the label.
    MboxFolder,
    /// One mbox whose messages carry `X-Gmail-Labels`.
    GmailTakeout,
    /// An IMAP account's folders.
    Imap,
}

/// A message skipped, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    pub at: String,
    pub reason: String,
}

/// What an import read.
#[derive(Debug, Clone, Serialize)]
pub struct ImportSummary {
    pub source: String,
    pub format: Format,
    /// Messages kept per label.
    pub per_label: BTreeMap<String, usize>,
    /// Labels left out for having fewer than `min_per_label` messages.
    pub too_few: BTreeMap<String, usize>,
    /// Folders left out by the folder filter.
    pub folders_left_out: Vec<String>,
    /// Copies of a message already read (same Message-ID).
    pub duplicates: usize,
    pub skipped: Vec<Skipped>,
}

impl ImportSummary {
    /// Messages kept.
    pub fn kept(&self) -> usize {
        self.per_label.values().sum()
    }
}

/// Labelled rows (raw only, id = Message-ID where there is one) and the
/// summary.
#[derive(Debug, Clone)]
pub struct Imported {
    pub rows: Vec<LabelledEmail>,
    pub summary: ImportSummary,
}

/// One message found under a label (or, for Takeout, under its candidate
/// labels), before de-duplication.
pub(crate) struct Found {
    pub labels: Vec<String>,
    pub message: RawMessage,
}

/// What a source yielded before the shared rules apply.
#[derive(Default)]
pub(crate) struct Gathered {
    pub found: Vec<Found>,
    pub skipped: Vec<Skipped>,
    pub folders_left_out: Vec<String>,
}

impl Gathered {
    fn skip(&mut self, at: impl Into<String>, reason: impl Into<String>) {
        self.skipped.push(Skipped {
            at: at.into(),
            reason: reason.into(),
        });
    }
}

/// Reads a local mailbox, detecting its format.
pub fn import_path(path: &Path, opts: &ImportOptions) -> Result<Imported, MailboxError> {
    let format = detect(path)?;
    let mut g = Gathered::default();
    match format {
        Format::MaildirPlusPlus => read_maildirpp(path, opts, &mut g)?,
        Format::MaildirFolders => read_maildir_folders(path, path, opts, &mut g)?,
        Format::MboxFolder => read_mbox_folder(path, path, opts, &mut g)?,
        Format::GmailTakeout => read_takeout(path, opts, &mut g)?,
        Format::Imap => unreachable!("detect never answers Imap for a path"),
    }
    Ok(assemble(path.display().to_string(), format, g, opts))
}

fn is_maildir(dir: &Path) -> bool {
    dir.join("cur").is_dir() && dir.join("new").is_dir()
}

/// Which kind of mailbox `path` is, or why it is none.
pub fn detect(path: &Path) -> Result<Format, MailboxError> {
    let not = |why: &str| MailboxError::NotAMailbox {
        path: path.display().to_string(),
        why: why.to_string(),
    };
    let meta = fs::metadata(path).map_err(|e| MailboxError::io(path, e))?;
    if meta.is_file() {
        return if mbox_has_gmail_labels(path)? {
            Ok(Format::GmailTakeout)
        } else {
            Err(not(
                "a single file that is not a Gmail Takeout mbox (no X-Gmail-Labels): give a folder of mbox files named after their labels",
            ))
        };
    }
    if is_maildir(path) {
        return Ok(Format::MaildirPlusPlus);
    }
    let mut maildirs = false;
    let mut files = false;
    for e in fs::read_dir(path).map_err(|e| MailboxError::io(path, e))? {
        let e = e.map_err(|e| MailboxError::io(path, e))?;
        let p = e.path();
        if p.is_dir() && (is_maildir(&p) || has_maildir_below(&p)) {
            maildirs = true;
        } else if p.is_file() && !hidden(&p) {
            files = true;
        }
    }
    match (maildirs, files) {
        (true, _) => Ok(Format::MaildirFolders),
        (false, true) => Ok(Format::MboxFolder),
        (false, false) => Err(not(
            "no Maildir (cur/ and new/), no folder of Maildirs and no mbox files in it",
        )),
    }
}

fn hidden(p: &Path) -> bool {
    p.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with('.'))
}

fn has_maildir_below(dir: &Path) -> bool {
    fs::read_dir(dir).into_iter().flatten().flatten().any(|e| {
        let p = e.path();
        p.is_dir() && (is_maildir(&p) || has_maildir_below(&p))
    })
}

fn mbox_has_gmail_labels(path: &Path) -> Result<bool, MailboxError> {
    let file = fs::File::open(path).map_err(|e| MailboxError::io(path, e))?;
    let it = mail_parser::mailbox::mbox::MessageIterator::new(BufReader::new(file));
    for m in it.take(20).flatten() {
        if message::headers(m.contents()).gmail_labels.is_some() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Reads every message of one Maildir (new/ and cur/) under `label`.
fn read_maildir(dir: &Path, label: &str, opts: &ImportOptions, g: &mut Gathered) {
    let mut files: Vec<PathBuf> = ["new", "cur"]
        .iter()
        .flat_map(|sub| fs::read_dir(dir.join(sub)).into_iter().flatten().flatten())
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    for p in files {
        if let Some(bytes) = read_message_file(&p, opts, g) {
            g.found.push(Found {
                labels: vec![label.to_string()],
                message: RawMessage {
                    location: p.display().to_string(),
                    bytes,
                },
            });
        }
    }
}

fn read_message_file(p: &Path, opts: &ImportOptions, g: &mut Gathered) -> Option<Vec<u8>> {
    let at = p.display().to_string();
    match fs::metadata(p) {
        Ok(m) if m.len() > opts.max_message_bytes => {
            g.skip(at, too_large(m.len(), opts));
            None
        }
        Ok(_) => match fs::read(p) {
            Ok(b) if message::looks_like_message(&b) => Some(b),
            Ok(_) => {
                g.skip(at, "not a message: no header line at the top");
                None
            }
            Err(e) => {
                g.skip(at, format!("cannot read: {e}"));
                None
            }
        },
        Err(e) => {
            g.skip(at, format!("cannot read: {e}"));
            None
        }
    }
}

pub(crate) fn too_large(len: u64, opts: &ImportOptions) -> String {
    const MB: f64 = 1024.0 * 1024.0;
    format!(
        "{:.1} MB, over the {:.0} MB limit",
        len as f64 / MB,
        opts.max_message_bytes as f64 / MB
    )
}

fn read_maildirpp(root: &Path, opts: &ImportOptions, g: &mut Gathered) -> Result<(), MailboxError> {
    let mut dirs: Vec<(String, PathBuf)> = Vec::new();
    for e in fs::read_dir(root).map_err(|e| MailboxError::io(root, e))? {
        let e = e.map_err(|e| MailboxError::io(root, e))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(label) = folders::label_of_maildirpp(&name)
            && is_maildir(&e.path())
        {
            dirs.push((label, e.path()));
        }
    }
    dirs.sort();
    if opts.filter.allows("INBOX") {
        read_maildir(root, "INBOX", opts, g);
    } else {
        g.folders_left_out.push("INBOX".into());
    }
    for (label, dir) in dirs {
        if opts.filter.allows(&label) {
            read_maildir(&dir, &label, opts, g);
        } else {
            g.folders_left_out.push(label);
        }
    }
    Ok(())
}

fn relative_label(root: &Path, p: &Path) -> String {
    let rel = p.strip_prefix(root).unwrap_or(p);
    let parts: Vec<String> = rel
        .components()
        .map(|c| {
            let s = c.as_os_str().to_string_lossy();
            // Thunderbird keeps a folder's children in `NAME.sbd/`.
            s.strip_suffix(".sbd").unwrap_or(&s).to_string()
        })
        .collect();
    let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
    folders::label_of(&refs)
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>, MailboxError> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(|e| MailboxError::io(dir, e))?
        .flatten()
        .map(|e| e.path())
        .collect();
    v.sort();
    Ok(v)
}

fn read_maildir_folders(
    root: &Path,
    dir: &Path,
    opts: &ImportOptions,
    g: &mut Gathered,
) -> Result<(), MailboxError> {
    for p in sorted_entries(dir)? {
        if !p.is_dir() || hidden(&p) || ["cur", "new", "tmp"].iter().any(|s| p.ends_with(s)) {
            continue;
        }
        let label = relative_label(root, &p);
        if is_maildir(&p) {
            if opts.filter.allows(&label) {
                read_maildir(&p, &label, opts, g);
            } else {
                g.folders_left_out.push(label.clone());
            }
        }
        read_maildir_folders(root, &p, opts, g)?;
    }
    Ok(())
}

fn read_mbox_folder(
    root: &Path,
    dir: &Path,
    opts: &ImportOptions,
    g: &mut Gathered,
) -> Result<(), MailboxError> {
    for p in sorted_entries(dir)? {
        if hidden(&p) {
            continue;
        }
        if p.is_dir() {
            read_mbox_folder(root, &p, opts, g)?;
            continue;
        }
        let mut label = relative_label(root, &p);
        for ext in [".mbox", ".mbx"] {
            if let Some(l) = label.strip_suffix(ext) {
                label = l.to_string();
            }
        }
        if label.ends_with(".msf") {
            continue; // Thunderbird's index files
        }
        if !opts.filter.allows(&label) {
            g.folders_left_out.push(label);
            continue;
        }
        read_mbox(&p, |_| vec![label.clone()], opts, g);
    }
    Ok(())
}

/// Reads one mbox; `labels_of` gives each message's candidate labels.
fn read_mbox(
    path: &Path,
    labels_of: impl Fn(&[u8]) -> Vec<String>,
    opts: &ImportOptions,
    g: &mut Gathered,
) {
    let at = path.display().to_string();
    let file = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) => return g.skip(at, format!("cannot read: {e}")),
    };
    let mut head = [0u8; 5];
    let starts_well = {
        use std::io::Read;
        let mut f = &file;
        f.read_exact(&mut head).is_ok() && &head == b"From "
    };
    if !starts_well {
        return g.skip(
            at,
            "not an mbox: it does not begin with a `From ` line (the whole file is skipped)",
        );
    }
    let file = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) => return g.skip(at, format!("cannot read: {e}")),
    };
    let it = mail_parser::mailbox::mbox::MessageIterator::new(BufReader::new(file));
    for (i, m) in it.enumerate() {
        let loc = format!("{at}#{}", i + 1);
        match m {
            Ok(m) => {
                let bytes = m.contents();
                if bytes.len() as u64 > opts.max_message_bytes {
                    g.skip(loc, too_large(bytes.len() as u64, opts));
                } else if !message::looks_like_message(bytes) {
                    g.skip(loc, "not a message: no header line after its `From ` line");
                } else {
                    let labels = labels_of(bytes);
                    g.found.push(Found {
                        labels,
                        message: RawMessage {
                            location: loc,
                            bytes: bytes.to_vec(),
                        },
                    });
                }
            }
            Err(e) => g.skip(loc, format!("cannot read: {e}")),
        }
    }
}

fn read_takeout(path: &Path, opts: &ImportOptions, g: &mut Gathered) -> Result<(), MailboxError> {
    let filter = opts.filter.clone();
    let before = g.found.len();
    read_mbox(
        path,
        |bytes| {
            message::headers(bytes)
                .gmail_labels
                .map(|h| folders::gmail_user_labels(&h))
                .unwrap_or_default()
                .into_iter()
                .filter(|l| filter.allows(l))
                .collect()
        },
        opts,
        g,
    );
    // Messages with no user label (only Inbox, Sent, …) teach nothing.
    let mut kept = Vec::with_capacity(g.found.len());
    let mut unlabelled = 0;
    for f in g.found.drain(before..) {
        if f.labels.is_empty() {
            unlabelled += 1;
        } else {
            kept.push(f);
        }
    }
    g.found.extend(kept);
    if unlabelled > 0 {
        g.skip(
            path.display().to_string(),
            format!("{unlabelled} messages with no user label (only Gmail's system labels)"),
        );
    }
    Ok(())
}

/// The shared rules: one row per Message-ID, a message with several labels
/// counted once under its rarest label (the most specific filing; ties by
/// name), and labels with too few messages left out.
pub(crate) fn assemble(
    source: String,
    format: Format,
    g: Gathered,
    opts: &ImportOptions,
) -> Imported {
    let Gathered {
        found,
        mut skipped,
        folders_left_out,
    } = g;
    // De-duplicate by Message-ID, merging the labels of every copy.
    let mut order: Vec<(String, Vec<String>, RawMessage)> = Vec::new();
    let mut by_id: HashMap<String, usize> = HashMap::new();
    let mut duplicates = 0;
    for f in found {
        let mid = message::headers(&f.message.bytes).message_id;
        let key = mid.clone().unwrap_or_else(|| f.message.location.clone());
        match by_id.get(&key) {
            Some(&i) => {
                duplicates += 1;
                for l in f.labels {
                    if !order[i].1.contains(&l) {
                        order[i].1.push(l);
                    }
                }
            }
            None => {
                by_id.insert(key.clone(), order.len());
                order.push((key, f.labels, f.message));
            }
        }
    }
    let mut freq: HashMap<&str, usize> = HashMap::new();
    for (_, labels, _) in &order {
        for l in labels {
            *freq.entry(l.as_str()).or_default() += 1;
        }
    }
    let chosen: Vec<String> = order
        .iter()
        .map(|(_, labels, _)| {
            labels
                .iter()
                .min_by(|a, b| freq[a.as_str()].cmp(&freq[b.as_str()]).then(a.cmp(b)))
                .cloned()
                .expect("every gathered message has at least one label")
        })
        .collect();
    let mut per_label: BTreeMap<String, usize> = BTreeMap::new();
    for l in &chosen {
        *per_label.entry(l.clone()).or_default() += 1;
    }
    let too_few: BTreeMap<String, usize> = per_label
        .iter()
        .filter(|(_, n)| **n < opts.min_per_label)
        .map(|(l, n)| (l.clone(), *n))
        .collect();
    per_label.retain(|l, _| !too_few.contains_key(l));
    let mut rows = Vec::with_capacity(order.len());
    for ((id, _, m), label) in order.into_iter().zip(chosen) {
        if too_few.contains_key(&label) {
            skipped.push(Skipped {
                at: m.location,
                reason: format!(
                    "its label {label:?} has fewer than {} messages",
                    opts.min_per_label
                ),
            });
            continue;
        }
        rows.push(LabelledEmail {
            id,
            subject: String::new(),
            body: String::new(),
            parent: folders::parent_of(&label),
            label: Some(label),
            raw: Some(message::raw_text(&m.bytes)),
        });
    }
    Imported {
        rows,
        summary: ImportSummary {
            source,
            format,
            per_label,
            too_few,
            folders_left_out,
            duplicates,
            skipped,
        },
    }
}
