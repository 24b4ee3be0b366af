//! Folder names and labels: which folders hold labels, how a folder's path
//! becomes a label, and where a label is filed. Import, export and sort all
//! use these rules, so a label read from a folder is filed back into it.

/// Folders that hold no label by default: the inbox and the special-use
/// folders. Compared case-insensitively, on the top-level name.
pub const DEFAULT_EXCLUDED: [&str; 10] = [
    "INBOX",
    "Sent",
    "Sent Items",
    "Sent Messages",
    "Drafts",
    "Trash",
    "Deleted Items",
    "Junk",
    "Spam",
    "Deleted Messages",
];

/// Gmail's system labels in `X-Gmail-Labels`: never a user's label.
pub const GMAIL_SYSTEM: [&str; 12] = [
    "Inbox",
    "Sent",
    "Important",
    "Starred",
    "Opened",
    "Unread",
    "Draft",
    "Drafts",
    "Spam",
    "Trash",
    "Chat",
    "Archived",
];

/// Which folders become labels. Names are labels (`Work/Projects`);
/// `include` wins over `exclude`, and a parent's exclusion covers its
/// children.
#[derive(Debug, Clone)]
pub struct FolderFilter {
    pub exclude: Vec<String>,
    pub include: Vec<String>,
}

impl Default for FolderFilter {
    fn default() -> Self {
        Self {
            exclude: DEFAULT_EXCLUDED.iter().map(|s| s.to_string()).collect(),
            include: Vec::new(),
        }
    }
}

impl FolderFilter {
    /// Whether the folder with this label takes part.
    pub fn allows(&self, label: &str) -> bool {
        let covers = |name: &String| {
            label.eq_ignore_ascii_case(name)
                || label.len() > name.len()
                    && label.as_bytes()[name.len()] == b'/'
                    && label[..name.len()].eq_ignore_ascii_case(name)
        };
        if self.include.iter().any(covers) {
            return true;
        }
        !self.exclude.iter().any(covers)
    }
}

/// The label of a folder given its path components: joined with `/`.
pub fn label_of(components: &[&str]) -> String {
    components.join("/")
}

/// The parent label of a nested label (`Work/Projects` → `Work`).
pub fn parent_of(label: &str) -> Option<String> {
    label.rsplit_once('/').map(|(p, _)| p.to_string())
}

/// The Maildir++ directory name of a label: `.Work.Projects`. Maildir++
/// separates levels with `.`, so a dot inside a label is a level too, as
/// a Maildir++ server (Dovecot's default) would show it.
pub fn maildirpp_dir(label: &str) -> String {
    format!(".{}", label.replace('/', "."))
}

/// The label of a Maildir++ directory (`.Work.Projects` → `Work/Projects`),
/// or `None` for a name that is not a Maildir++ folder.
pub fn label_of_maildirpp(dir: &str) -> Option<String> {
    let name = dir.strip_prefix('.')?;
    if name.is_empty() || name.starts_with('.') {
        return None;
    }
    Some(name.replace('.', "/"))
}

/// The IMAP mailbox name of a label, on a server whose hierarchy
/// delimiter is `delimiter` (`None`: a flat server).
pub fn imap_mailbox(label: &str, delimiter: Option<&str>) -> String {
    match delimiter {
        Some(d) if d != "/" => label.replace('/', d),
        _ => label.to_string(),
    }
}

/// The label of an IMAP mailbox name.
pub fn label_of_imap(name: &str, delimiter: Option<&str>) -> String {
    match delimiter {
        Some(d) if d != "/" && !d.is_empty() => name.replace(d, "/"),
        _ => name.to_string(),
    }
}

/// The user labels in a Gmail `X-Gmail-Labels` value, in order: system
/// labels and `Category …` tabs dropped, quotes removed. Gmail writes
/// nested labels with `/` already.
pub fn gmail_user_labels(header: &str) -> Vec<String> {
    split_gmail_labels(header)
        .into_iter()
        .filter(|l| {
            !GMAIL_SYSTEM.iter().any(|s| s.eq_ignore_ascii_case(l))
                && !l.starts_with("Category ")
                && !l.starts_with("Category:")
                && !l.is_empty()
        })
        .collect()
}

/// Splits on commas outside double quotes.
fn split_gmail_labels(header: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in header.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur).trim().to_string()),
            '\r' | '\n' => {}
            _ => cur.push(c),
        }
    }
    out.push(cur.trim().to_string());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_filter_leaves_out_special_folders_and_their_children() {
        let f = FolderFilter::default();
        assert!(!f.allows("INBOX"));
        assert!(!f.allows("inbox"));
        assert!(!f.allows("Trash/Old"));
        assert!(f.allows("Work"));
        assert!(f.allows("Trashy"));
        let g = FolderFilter {
            include: vec!["Archive".into()],
            ..FolderFilter::default()
        };
        assert!(g.allows("Archive/2024"));
    }

    #[test]
    fn maildirpp_names_round_trip_for_slash_labels() {
        assert_eq!(maildirpp_dir("Work/Projects"), ".Work.Projects");
        assert_eq!(
            label_of_maildirpp(".Work.Projects").as_deref(),
            Some("Work/Projects")
        );
        assert_eq!(label_of_maildirpp(".."), None);
        assert_eq!(label_of_maildirpp("cur"), None);
        assert_eq!(parent_of("Work/Projects").as_deref(), Some("Work"));
        assert_eq!(parent_of("Work"), None);
    }

    #[test]
    fn imap_names_use_the_server_delimiter() {
        assert_eq!(imap_mailbox("a/b", Some(".")), "a.b");
        assert_eq!(label_of_imap("a.b", Some(".")), "a/b");
        assert_eq!(imap_mailbox("a/b", Some("/")), "a/b");
    }

    #[test]
    fn gmail_labels_drop_system_ones_and_keep_quoted_commas() {
        let l = gmail_user_labels(
            "Inbox,Important,\"Bills, 2024\",Work/Projects,Category Updates,Opened",
        );
        assert_eq!(
            l,
            vec!["Bills, 2024".to_string(), "Work/Projects".to_string()]
        );
    }
}
