//! Labelled rows written back as mail: the mailboxes that `import` reads
//! (for tests, demos and moving a labelled set into a mail client), and an
//! INBOX of unlabelled messages for `sort`.

use std::fs;
use std::io::Write;
use std::path::Path;

use maildir::Maildir;
use mailsort_shared::dataset::LabelledEmail;

use crate::error::MailboxError;
use crate::folders;

/// The mailbox shapes `export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// A Maildir++ tree: each label a `.Label` folder.
    MaildirPlusPlus,
    /// A folder of Maildirs: `Label/{cur,new,tmp}`.
    MaildirFolders,
    /// A folder of mbox files, `Label.mbox`.
    MboxFolder,
    /// One mbox with `X-Gmail-Labels: Inbox,Label`.
    GmailTakeout,
    /// A Maildir whose INBOX (`new/`) holds every message, unlabelled.
    Inbox,
}

/// The Message-ID a row's message carries: its own where the raw message
/// has one, else made from the row's id.
pub fn message_id_for(row: &LabelledEmail) -> String {
    let clean: String = row
        .id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-._".contains(c) {
                c
            } else {
                '.'
            }
        })
        .collect();
    format!("{clean}@mailsort.invalid")
}

/// The Message-ID the exported message of `row` carries (without angle
/// brackets).
pub fn exported_message_id(row: &LabelledEmail) -> String {
    crate::message::headers(&message_bytes(row))
        .message_id
        .unwrap_or_else(|| message_id_for(row))
}

/// The raw message of a row: its `raw` (with a Message-ID added when it has
/// none), or a plain-text UTF-8 message made from subject and body.
pub fn message_bytes(row: &LabelledEmail) -> Vec<u8> {
    let mid = message_id_for(row);
    if let Some(raw) = &row.raw {
        if crate::message::headers(raw.as_bytes()).message_id.is_some() {
            return raw.clone().into_bytes();
        }
        return format!("Message-ID: <{mid}>\n{raw}").into_bytes();
    }
    let subject = encode_header(&row.subject);
    format!(
        "Message-ID: <{mid}>\r\nFrom: sender@mailsort.invalid\r\nTo: you@mailsort.invalid\r\nSubject: {subject}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{}\r\n",
        row.body.replace("\r\n", "\n").replace('\n', "\r\n")
    )
    .into_bytes()
}

/// RFC 2047 for non-ASCII subjects (base64 words), one line.
fn encode_header(s: &str) -> String {
    let s = s.replace(['\r', '\n'], " ");
    if s.is_ascii() {
        return s;
    }
    use std::fmt::Write as _;
    let mut out = String::new();
    let bytes = s.as_bytes();
    // Split on char boundaries into chunks of at most 45 bytes.
    let mut start = 0;
    while start < bytes.len() {
        let mut end = (start + 45).min(bytes.len());
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        let _ = write!(out, "=?utf-8?b?{}?=", base64(&bytes[start..end]));
        start = end;
    }
    out
}

fn base64(b: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in b.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn label(row: &LabelledEmail) -> &str {
    row.label.as_deref().unwrap_or("unlabelled")
}

/// Writes `rows` at `out` in `format`. Returns the messages written.
pub fn export(
    rows: &[LabelledEmail],
    format: ExportFormat,
    out: &Path,
) -> Result<usize, MailboxError> {
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |e| MailboxError::io(&p, e)
    };
    match format {
        ExportFormat::MaildirPlusPlus | ExportFormat::Inbox => {
            let root = Maildir::from(out.to_path_buf());
            root.create_dirs().map_err(io(out))?;
            for r in rows {
                let md = if format == ExportFormat::Inbox {
                    Maildir::from(out.to_path_buf())
                } else {
                    let dir = out.join(folders::maildirpp_dir(label(r)));
                    let md = Maildir::from(dir.clone());
                    md.create_dirs().map_err(io(&dir))?;
                    fs::write(dir.join("maildirfolder"), b"").map_err(io(&dir))?;
                    md
                };
                md.store_new(&message_bytes(r)).map_err(|e| {
                    MailboxError::io(md.path(), std::io::Error::other(e.to_string()))
                })?;
            }
        }
        ExportFormat::MaildirFolders => {
            for r in rows {
                let dir = label(r)
                    .split('/')
                    .fold(out.to_path_buf(), |p, c| p.join(c));
                let md = Maildir::from(dir.clone());
                md.create_dirs().map_err(io(&dir))?;
                md.store_new(&message_bytes(r))
                    .map_err(|e| MailboxError::io(&dir, std::io::Error::other(e.to_string())))?;
            }
        }
        ExportFormat::MboxFolder => {
            fs::create_dir_all(out).map_err(io(out))?;
            let mut files: std::collections::BTreeMap<String, fs::File> = Default::default();
            for r in rows {
                let name = label(r).replace('/', ".sbd/");
                if !files.contains_key(&name) {
                    let path = out.join(format!("{name}.mbox"));
                    if let Some(d) = path.parent() {
                        fs::create_dir_all(d).map_err(io(d))?;
                    }
                    files.insert(name.clone(), fs::File::create(&path).map_err(io(&path))?);
                }
                let f = files.get_mut(&name).expect("inserted above");
                write_mbox_message(f, &message_bytes(r)).map_err(io(out))?;
            }
        }
        ExportFormat::GmailTakeout => {
            if let Some(d) = out.parent() {
                fs::create_dir_all(d).map_err(io(d))?;
            }
            let mut f = fs::File::create(out).map_err(io(out))?;
            for r in rows {
                let labels = format!("X-Gmail-Labels: Opened,{}\r\n", label(r).replace(',', " "));
                let mut m = labels.into_bytes();
                m.extend(message_bytes(r));
                write_mbox_message(&mut f, &m).map_err(io(out))?;
            }
        }
    }
    Ok(rows.len())
}

/// One mboxrd message: a `From ` line, body lines starting with `>*From `
/// quoted with one more `>`.
fn write_mbox_message(f: &mut impl Write, bytes: &[u8]) -> std::io::Result<()> {
    f.write_all(b"From mailsort@mailsort.invalid Thu Jan  1 00:00:00 1970\n")?;
    let text = String::from_utf8_lossy(bytes);
    for line in text.split_inclusive('\n') {
        let l = line.trim_end_matches(['\r', '\n']);
        if l.trim_start_matches('>').starts_with("From ") {
            f.write_all(b">")?;
        }
        f.write_all(l.as_bytes())?;
        f.write_all(b"\n")?;
    }
    f.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_rfc_examples() {
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64(b"fooba"), "Zm9vYmE=");
        assert_eq!(base64(b"foob"), "Zm9vYg==");
    }
}
