//! `mailsort sort`: file new INBOX mail into label folders. The loop is
//! the same for every store (a local Maildir, an IMAP account): take what
//! is pending, have the decider label it, then file, tag, keep or defer
//! each message, logging every action by Message-ID (never the body).
//!
//! Safety rests on the stores: a message leaves INBOX only by an atomic
//! move (or a copy that is confirmed before the original is expunged), so
//! a kill at any point leaves every message in exactly one place. Each
//! action is logged before it is taken, so the log's last record for a
//! message names the folder it is in, if it left INBOX.

use std::time::Duration;

use serde::Serialize;

use crate::error::MailboxError;

/// A message waiting in INBOX.
#[derive(Debug, Clone)]
pub struct Pending {
    /// The store's handle: a Maildir file id, or an IMAP UID.
    pub key: String,
    pub uid: u32,
    pub message_id: Option<String>,
    pub bytes: Vec<u8>,
}

impl Pending {
    /// What the log calls the message: its Message-ID, or the store's key.
    pub fn name(&self) -> &str {
        self.message_id.as_deref().unwrap_or(&self.key)
    }
}

/// Where new mail comes from and is filed to.
pub trait Store {
    /// Messages in INBOX not yet handled, oldest first, at most `limit`.
    fn pending(&mut self, limit: usize) -> Result<Vec<Pending>, MailboxError>;
    /// Moves the message into the label's folder (created when missing),
    /// after adding `keywords`.
    fn file(&mut self, msg: &Pending, label: &str, keywords: &[&str]) -> Result<(), MailboxError>;
    /// Leaves the message in INBOX, tagged with `keywords` (and so no
    /// longer pending).
    fn tag(&mut self, msg: &Pending, keywords: &[&str]) -> Result<(), MailboxError>;
    /// The message stays pending: it is retried on a later pass.
    fn defer(&mut self, msg: &Pending);
    /// A new pass begins: messages deferred in the last one are offered again.
    fn begin_pass(&mut self) {}
    /// Records that a batch is done (IMAP persists its UID state here).
    fn checkpoint(&mut self) -> Result<(), MailboxError>;
    /// Waits for new mail, at most `timeout` (IMAP IDLE where the server has
    /// it, else a sleep).
    fn wait(&mut self, timeout: Duration) -> Result<(), MailboxError>;
    /// The tag that stands for `label` in tag mode: a Gmail label where the
    /// server has them, else an IMAP keyword.
    fn label_keyword(&self, label: &str) -> String {
        keyword_for(label)
    }
}

/// An IMAP keyword for a label: atom characters only.
pub fn keyword_for(label: &str) -> String {
    label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.$/".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// What the decider made of one message.
#[derive(Debug, Clone)]
pub enum Verdict {
    Labelled {
        label: String,
        confidence: f32,
        /// `edge` or `backend`.
        decided_by: &'static str,
        /// The edge's guess for a forwarded message the backend did not answer.
        provisional: bool,
        /// Why the backend did not answer, when it was asked and failed.
        backend_error: Option<String>,
        /// The edge's own label, where the backend changed it.
        edge_label: Option<String>,
    },
    /// The message cannot be classified (its text is unreadable).
    Unreadable(String),
}

/// Labels a batch of messages (edge first, the ambiguous ones through the
/// backend).
pub trait Decider {
    fn decide(&mut self, batch: &[Pending]) -> Vec<Verdict>;
}

/// What to do when the backend cannot answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendDown {
    /// Leave the message in INBOX and retry with back-off.
    Wait,
    /// File by the edge's label, tagged provisional.
    Edge,
}

/// Filing: move into folders, or tag in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Move,
    Tag,
}

/// Keywords mailsort sets. `$` keywords are the IMAP convention for
/// client-defined ones.
pub const ABSTAIN_KEYWORD: &str = "$MailsortAbstain";
pub const PROVISIONAL_KEYWORD: &str = "$MailsortProvisional";
pub const SORTED_KEYWORD: &str = "$MailsortSorted";

/// How `sort` behaves.
#[derive(Debug, Clone)]
pub struct SortOptions {
    pub mode: Mode,
    /// Below this confidence the message stays in INBOX with the abstain
    /// keyword.
    pub abstain_below: f32,
    pub on_backend_down: BackendDown,
    /// Print the actions, change nothing.
    pub dry_run: bool,
    /// One pass over what is there, then stop.
    pub once: bool,
    /// How long one wait for new mail lasts (the IDLE timeout or the poll
    /// interval).
    pub poll: Duration,
    /// Messages classified together.
    pub batch: usize,
    /// The longest back-off while the backend is down (wait mode).
    pub max_backoff: Duration,
}

impl Default for SortOptions {
    fn default() -> Self {
        Self {
            mode: Mode::Move,
            abstain_below: 0.0,
            on_backend_down: BackendDown::Wait,
            dry_run: false,
            once: false,
            poll: Duration::from_secs(60),
            batch: 32,
            max_backoff: Duration::from_secs(300),
        }
    }
}

/// One action, as logged (one JSON line each).
#[derive(Debug, Clone, Serialize)]
pub struct Action {
    pub message_id: String,
    /// `filed`, `tagged`, `abstained`, `deferred`, `kept` (unreadable), or
    /// `failed` when the store refused the change logged just before.
    pub action: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub folder: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<&'static str>,
    /// The edge's label where the backend chose another.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub edge_label: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub provisional: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
}

/// Totals over a run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SortTotals {
    pub filed: usize,
    pub tagged: usize,
    pub abstained: usize,
    pub deferred: usize,
    pub kept_unreadable: usize,
    pub by_edge: usize,
    pub by_backend: usize,
    pub provisional: usize,
}

/// Runs the sorter until a one-shot pass ends (or forever when following).
/// `log` receives every action. A store error ends the run: what was
/// already filed stays filed, and the rest stays in INBOX.
pub fn run(
    store: &mut dyn Store,
    decider: &mut dyn Decider,
    opts: &SortOptions,
    log: &mut dyn FnMut(&Action),
) -> Result<SortTotals, MailboxError> {
    let mut totals = SortTotals::default();
    let mut backoff = Duration::from_secs(1);
    loop {
        store.begin_pass();
        let mut deferred_any = false;
        loop {
            let batch = store.pending(opts.batch.max(1))?;
            if batch.is_empty() {
                break;
            }
            let verdicts = decider.decide(&batch);
            let mut progressed = false;
            for (msg, verdict) in batch.iter().zip(verdicts) {
                let (action, change) = plan(store, msg, verdict, opts, &mut totals);
                if action.action == "deferred" {
                    deferred_any = true;
                } else {
                    progressed = true;
                }
                // Logged before the store changes: a message outside INBOX
                // always has its record, whenever the sorter is killed. A
                // record whose change never happened leaves the message in
                // INBOX, where the next run handles it again.
                log(&action);
                if let Err(e) = apply(store, msg, change) {
                    log(&Action {
                        action: "failed",
                        folder: None,
                        why: Some(e.to_string()),
                        ..action
                    });
                    return Err(e);
                }
            }
            store.checkpoint()?;
            // A dry run changes nothing, and a batch that only deferred will
            // come back the same: both end the pass.
            if opts.dry_run || !progressed {
                break;
            }
        }
        if opts.once && (!deferred_any || opts.dry_run) {
            return Ok(totals);
        }
        if deferred_any {
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(opts.max_backoff);
        } else {
            backoff = Duration::from_secs(1);
            store.wait(opts.poll)?;
        }
    }
}

/// The store change one action needs.
enum Change {
    None,
    Defer,
    Tag(Vec<String>),
    File {
        label: String,
        keywords: Vec<String>,
    },
}

fn apply(store: &mut dyn Store, msg: &Pending, change: Change) -> Result<(), MailboxError> {
    match change {
        Change::None => Ok(()),
        Change::Defer => {
            store.defer(msg);
            Ok(())
        }
        Change::Tag(kw) => store.tag(msg, &kw.iter().map(String::as_str).collect::<Vec<_>>()),
        Change::File { label, keywords } => store.file(
            msg,
            &label,
            &keywords.iter().map(String::as_str).collect::<Vec<_>>(),
        ),
    }
}

/// What to do with one message, and the log record that says so.
fn plan(
    store: &dyn Store,
    msg: &Pending,
    verdict: Verdict,
    opts: &SortOptions,
    totals: &mut SortTotals,
) -> (Action, Change) {
    let mut a = Action {
        message_id: msg.name().to_string(),
        action: "kept",
        folder: None,
        label: None,
        confidence: None,
        decided_by: None,
        edge_label: None,
        provisional: false,
        why: None,
        dry_run: opts.dry_run,
    };
    let unless_dry = |c: Change| if opts.dry_run { Change::None } else { c };
    let (label, confidence, decided_by, provisional, backend_error, edge_label) = match verdict {
        Verdict::Unreadable(why) => {
            a.why = Some(why);
            totals.kept_unreadable += 1;
            return (a, unless_dry(Change::Tag(vec![ABSTAIN_KEYWORD.into()])));
        }
        Verdict::Labelled {
            label,
            confidence,
            decided_by,
            provisional,
            backend_error,
            edge_label,
        } => (
            label,
            confidence,
            decided_by,
            provisional,
            backend_error,
            edge_label,
        ),
    };
    a.edge_label = edge_label;
    a.label = Some(label.clone());
    a.confidence = Some(confidence);
    a.decided_by = Some(decided_by);
    a.provisional = provisional;
    a.why = backend_error.clone();
    if backend_error.is_some() && opts.on_backend_down == BackendDown::Wait {
        a.action = "deferred";
        totals.deferred += 1;
        return (a, unless_dry(Change::Defer));
    }
    if confidence < opts.abstain_below {
        a.action = "abstained";
        totals.abstained += 1;
        return (a, unless_dry(Change::Tag(vec![ABSTAIN_KEYWORD.into()])));
    }
    let mut keywords: Vec<String> = Vec::new();
    if provisional {
        keywords.push(PROVISIONAL_KEYWORD.to_string());
        totals.provisional += 1;
    }
    match decided_by {
        "backend" => totals.by_backend += 1,
        _ => totals.by_edge += 1,
    }
    let change = match opts.mode {
        Mode::Move => {
            a.action = "filed";
            a.folder = Some(label.clone());
            totals.filed += 1;
            Change::File { label, keywords }
        }
        Mode::Tag => {
            a.action = "tagged";
            keywords.push(store.label_keyword(&label));
            keywords.push(SORTED_KEYWORD.to_string());
            totals.tagged += 1;
            Change::Tag(keywords)
        }
    };
    (a, unless_dry(change))
}
