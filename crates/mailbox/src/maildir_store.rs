//! A local Maildir++ as `sort`'s store: INBOX is the Maildir itself, a
//! label's folder is `.Label` beside it (Dovecot's default layout), and
//! filing is one `rename(2)`, atomic on one file system: a message is in
//! INBOX or in its folder, never in both or neither.
//!
//! Keywords use Dovecot's scheme (letters `a`–`z` in the file name's flags,
//! named in `dovecot-keywords`), so Dovecot serving this Maildir later
//! shows them. INBOX is the whole state: what was filed left it, and what
//! was kept carries a keyword.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use maildir::Maildir;

use crate::error::MailboxError;
use crate::folders;
use crate::message;
use crate::sort::{ABSTAIN_KEYWORD, Pending, SORTED_KEYWORD, Store};

/// A Maildir++ root whose INBOX is sorted.
pub struct MaildirStore {
    root: PathBuf,
    inbox: Maildir,
    max_message_bytes: u64,
    /// Deferred in this pass: not offered again until the next pass.
    deferred: Vec<String>,
}

impl MaildirStore {
    /// Opens the Maildir at `root`, which must exist (cur/ and new/).
    pub fn open(root: &Path, max_message_bytes: u64) -> Result<Self, MailboxError> {
        if !(root.join("cur").is_dir() && root.join("new").is_dir()) {
            return Err(MailboxError::NotAMailbox {
                path: root.display().to_string(),
                why: "no cur/ and new/: not a Maildir".into(),
            });
        }
        let inbox = Maildir::from(root.to_path_buf());
        inbox.create_dirs().map_err(|e| MailboxError::io(root, e))?;
        Ok(Self {
            root: root.to_path_buf(),
            inbox,
            max_message_bytes,
            deferred: Vec::new(),
        })
    }

    /// The Maildir of a label's folder, created when missing.
    pub fn folder(&self, label: &str) -> Result<Maildir, MailboxError> {
        let dir = self.root.join(folders::maildirpp_dir(label));
        let md = Maildir::from(dir.clone());
        md.create_dirs().map_err(|e| MailboxError::io(&dir, e))?;
        let marker = dir.join("maildirfolder");
        if !marker.exists() {
            fs::write(&marker, b"").map_err(|e| MailboxError::io(&marker, e))?;
        }
        Ok(md)
    }

    /// The letter Dovecot uses for `keyword` in this Maildir, added to
    /// `dovecot-keywords` when new.
    fn letter(&self, keyword: &str) -> Result<char, MailboxError> {
        let path = self.root.join("dovecot-keywords");
        let text = fs::read_to_string(&path).unwrap_or_default();
        let mut used = Vec::new();
        for line in text.lines() {
            if let Some((n, name)) = line.split_once(' ')
                && let Ok(n) = n.parse::<u8>()
            {
                if name == keyword {
                    return Ok((b'a' + n) as char);
                }
                used.push(n);
            }
        }
        let n = (0..26u8)
            .find(|n| !used.contains(n))
            .ok_or_else(|| MailboxError::State {
                path: path.display().to_string(),
                why: "all 26 keyword letters are taken".into(),
            })?;
        let mut text = text;
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&format!("{n} {keyword}\n"));
        let tmp = path.with_extension("tmp");
        fs::write(&tmp, text).map_err(|e| MailboxError::io(&tmp, e))?;
        fs::rename(&tmp, &path).map_err(|e| MailboxError::io(&path, e))?;
        Ok((b'a' + n) as char)
    }

    fn handled_letters(&self) -> Vec<char> {
        [ABSTAIN_KEYWORD, SORTED_KEYWORD]
            .iter()
            .filter_map(|k| self.known_letter(k))
            .collect()
    }

    fn known_letter(&self, keyword: &str) -> Option<char> {
        let text = fs::read_to_string(self.root.join("dovecot-keywords")).ok()?;
        text.lines().find_map(|l| {
            let (n, name) = l.split_once(' ')?;
            let n = n.parse::<u8>().ok()?;
            (name == keyword).then_some((b'a' + n) as char)
        })
    }

    /// Moves a message from new/ to cur/ (where flags live) and returns its
    /// path there.
    fn in_cur(&self, id: &str) -> Result<PathBuf, MailboxError> {
        let entry = self.inbox.find(id).ok_or_else(|| MailboxError::Io {
            path: format!("{}: message {id}", self.root.display()),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "gone from INBOX"),
        })?;
        if entry.path().parent().is_some_and(|p| p.ends_with("new")) {
            self.inbox
                .move_new_to_cur(id)
                .map_err(|e| MailboxError::io(entry.path(), e))?;
            let entry = self.inbox.find(id).ok_or_else(|| MailboxError::Io {
                path: format!("{}: message {id}", self.root.display()),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "gone from INBOX"),
            })?;
            return Ok(entry.path().clone());
        }
        Ok(entry.path().clone())
    }

    fn add_keywords(&self, id: &str, keywords: &[&str]) -> Result<(), MailboxError> {
        if keywords.is_empty() {
            return Ok(());
        }
        let path = self.in_cur(id)?;
        let mut letters = String::new();
        for k in keywords {
            letters.push(self.letter(k)?);
        }
        self.inbox
            .add_flags(id, &letters)
            .map_err(|e| MailboxError::io(&path, e))
    }
}

impl Store for MaildirStore {
    fn pending(&mut self, limit: usize) -> Result<Vec<Pending>, MailboxError> {
        let handled = self.handled_letters();
        let mut entries: Vec<(String, PathBuf)> = Vec::new();
        for list in [self.inbox.list_new(), self.inbox.list_cur()] {
            for e in list.flatten() {
                let info_letters: String = e
                    .flags()
                    .chars()
                    .filter(|c| c.is_ascii_lowercase())
                    .collect();
                if handled.iter().any(|c| info_letters.contains(*c)) {
                    continue;
                }
                if self.deferred.iter().any(|d| d == e.id()) {
                    continue;
                }
                entries.push((e.id().to_string(), e.path().clone()));
            }
        }
        // Maildir file names start with the delivery time: oldest first.
        entries.sort();
        let mut out = Vec::new();
        for (id, path) in entries.into_iter().take(limit) {
            let size = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            let (bytes, message_id) = if size > self.max_message_bytes {
                // Only the head, for the Message-ID; the empty body makes
                // the decider keep the message in INBOX.
                let mut head = Vec::new();
                if let Ok(f) = fs::File::open(&path) {
                    let _ = f.take(64 * 1024).read_to_end(&mut head);
                }
                (Vec::new(), message::headers(&head).message_id)
            } else {
                match fs::read(&path) {
                    Ok(b) => {
                        let mid = message::headers(&b).message_id;
                        (b, mid)
                    }
                    Err(_) => continue, // moved away meanwhile
                }
            };
            out.push(Pending {
                message_id,
                key: id,
                uid: 0,
                bytes,
            });
        }
        Ok(out)
    }

    fn file(&mut self, msg: &Pending, label: &str, keywords: &[&str]) -> Result<(), MailboxError> {
        let target = self.folder(label)?;
        self.add_keywords(&msg.key, keywords)?;
        self.inbox
            .move_to(&msg.key, &target)
            .map_err(|e| MailboxError::io(target.path(), e))
    }

    fn tag(&mut self, msg: &Pending, keywords: &[&str]) -> Result<(), MailboxError> {
        self.add_keywords(&msg.key, keywords)
    }

    fn defer(&mut self, msg: &Pending) {
        self.deferred.push(msg.key.clone());
    }

    fn checkpoint(&mut self) -> Result<(), MailboxError> {
        Ok(())
    }

    fn begin_pass(&mut self) {
        self.deferred.clear();
    }

    fn wait(&mut self, timeout: Duration) -> Result<(), MailboxError> {
        // Poll: wake early when new/ changes.
        let seen = self.inbox.count_new();
        let step = Duration::from_millis(500);
        let mut waited = Duration::ZERO;
        while waited < timeout {
            std::thread::sleep(step.min(timeout - waited));
            waited += step;
            if self.inbox.count_new() != seen {
                break;
            }
        }
        Ok(())
    }
}
