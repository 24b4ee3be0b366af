//! `mailsort sort`: files new INBOX mail into label folders, from a local
//! Maildir or an IMAP account. The edge labels every message; the
//! ambiguous ones go to the backend when one is given. One JSON line per
//! action goes to standard output (never a body).

use std::fs;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use mailsort_edge::EdgeClassifier;
use mailsort_mailbox::imap::{self, ImapStore};
use mailsort_mailbox::maildir_store::MaildirStore;
use mailsort_mailbox::message;
use mailsort_mailbox::sort::{
    self, Action, BackendDown, Decider, Mode, Pending, SortOptions, Store, Verdict,
};
use mailsort_shared::budget::ForwardBudget;
use mailsort_shared::types::{DecidedBy, EmailInput};

use super::{ImapArgs, ModelArgs, RunArgs, load_classifier};
use crate::backend_client::BackendClient;

#[derive(Clone, Copy, ValueEnum)]
enum OnBackendDown {
    /// Leave the message in INBOX and retry with back-off.
    Wait,
    /// File it by the edge's label, with the $MailsortProvisional keyword.
    Edge,
}

#[derive(Clone, Copy, ValueEnum)]
enum FileMode {
    /// Move into the label's folder (created when missing).
    Move,
    /// Leave in INBOX and tag: a Gmail label on Gmail, else an IMAP keyword.
    Tag,
}

#[derive(Args)]
pub struct SortArgs {
    /// A local Maildir (its INBOX: the Maildir itself, folders `.Label`
    /// beside it) or an IMAP account (`imaps://USER@HOST[:PORT]`).
    mailbox: PathBuf,
    #[arg(long)]
    bundle: PathBuf,
    /// The backend that reranks ambiguous messages. Without it the edge's
    /// label is filed, marked provisional.
    #[arg(long, env = "MAILSORT_BACKEND")]
    backend: Option<String>,
    #[arg(long, env = "MAILSORT_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// When the backend cannot answer.
    #[arg(long, value_enum, default_value = "wait")]
    on_backend_down: OnBackendDown,
    #[arg(long, value_enum, default_value = "move")]
    mode: FileMode,
    /// Below this confidence a message stays in INBOX with the
    /// $MailsortAbstain keyword.
    #[arg(long, default_value_t = 0.0)]
    abstain_below: f32,
    /// Print what would be done; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// One pass over INBOX, then stop (default: follow new mail).
    #[arg(long)]
    once: bool,
    /// Seconds per wait for new mail (the IDLE timeout, or the polling
    /// interval where the server has no IDLE).
    #[arg(long, default_value_t = 60)]
    poll_seconds: u64,
    /// Where the IMAP state (UIDVALIDITY, last UID handled) is kept.
    /// Default: `$XDG_STATE_HOME/mailsort` (or `~/.local/state/mailsort`).
    #[arg(long)]
    state: Option<PathBuf>,
    /// Append the action log here instead of standard output.
    #[arg(long)]
    log: Option<PathBuf>,
    /// Messages larger than this stay in INBOX (abstain keyword).
    #[arg(long, default_value_t = 25)]
    max_message_mb: u64,
    /// Messages classified together.
    #[arg(long, default_value_t = 32)]
    sort_batch: usize,
    /// Hold this share of mail forwarded to the backend (a running
    /// quantile over the last --budget-window messages) instead of the
    /// bundle's fixed thresholds.
    #[arg(long)]
    forward_budget: Option<f32>,
    #[arg(long, default_value_t = 500)]
    budget_window: usize,
    #[command(flatten)]
    imap: ImapArgs,
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    run: RunArgs,
}

/// The edge, then the backend for what the edge forwards.
struct EdgeThenBackend {
    classifier: EdgeClassifier,
    budget: Option<ForwardBudget>,
    backend: Option<BackendClient>,
    run: RunArgs,
}

impl Decider for EdgeThenBackend {
    fn decide(&mut self, batch: &[Pending]) -> Vec<Verdict> {
        let inputs: Vec<(String, EmailInput)> = batch
            .iter()
            .map(|m| {
                (
                    m.name().to_string(),
                    EmailInput::Raw {
                        raw: message::raw_text(&m.bytes),
                    },
                )
            })
            .collect();
        let outcomes =
            self.classifier
                .classify_parallel(&inputs, self.run.batching(), &|_| {}, None);
        let mut decided = Vec::new();
        let mut verdicts: Vec<Option<Verdict>> = Vec::with_capacity(batch.len());
        let mut slots = Vec::new();
        for (m, o) in batch.iter().zip(outcomes) {
            match o {
                _ if m.bytes.is_empty() => verdicts.push(Some(Verdict::Unreadable(
                    "empty, or over --max-message-mb".into(),
                ))),
                Ok(d) => {
                    slots.push(verdicts.len());
                    verdicts.push(None);
                    decided.push(d);
                }
                Err(e) => verdicts.push(Some(Verdict::Unreadable(e.to_string()))),
            }
        }
        if let Some(budget) = self.budget.as_mut() {
            for (d, _) in decided.iter_mut() {
                let slack = self.classifier.slack(d);
                self.classifier.regate(d, budget.offset());
                budget.observe(slack);
            }
        }
        let edge_labels: Vec<String> = decided.iter().map(|(d, _)| d.label.clone()).collect();
        let mut backend_error = None;
        if let Some(client) = &self.backend
            && decided.iter().any(|(d, _)| d.needs_rerank())
        {
            let r = client.rerank_forwarded(&self.classifier.bundle().id, &decided);
            for (i, result) in r.results {
                result.apply_to(&mut decided[i].0);
            }
            backend_error = r.failure.map(|f| f.message);
        }
        for ((slot, (d, _)), edge) in slots.into_iter().zip(decided).zip(edge_labels) {
            let forwarded_unanswered = d.provisional;
            verdicts[slot] = Some(Verdict::Labelled {
                edge_label: (edge != d.label).then_some(edge),
                label: d.label,
                confidence: d.confidence,
                decided_by: if d.decided_by == DecidedBy::Backend && !d.provisional {
                    "backend"
                } else {
                    "edge"
                },
                provisional: forwarded_unanswered,
                backend_error: if forwarded_unanswered {
                    backend_error.clone()
                } else {
                    None
                },
            });
        }
        verdicts
            .into_iter()
            .map(|v| v.expect("every slot is filled above"))
            .collect()
    }
}

fn default_state_dir() -> PathBuf {
    std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(|| PathBuf::from("."))
        .join("mailsort")
}

pub fn run(args: SortArgs) -> Result<()> {
    let classifier = load_classifier(&args.bundle, &args.model)?;
    let backend = args
        .backend
        .as_deref()
        .map(|url| BackendClient::new(url, args.api_key.as_deref()))
        .transpose()?;
    if backend.is_none() {
        eprintln!(
            "no --backend: ambiguous messages are filed by the edge, with $MailsortProvisional"
        );
    }
    let max_bytes = args.max_message_mb * 1024 * 1024;
    let name = args.mailbox.to_string_lossy().into_owned();
    let mut store: Box<dyn Store> = if imap::is_imap_url(&name) {
        let account = args.imap.account(&name)?;
        let state = args.state.clone().unwrap_or_else(|| {
            default_state_dir().join(format!(
                "imap-{}@{}-{}.json",
                account.user, account.host, account.port
            ))
        });
        let s = ImapStore::open(
            &account,
            &state,
            max_bytes,
            matches!(args.mode, FileMode::Tag),
        )?;
        for n in &s.notices {
            eprintln!("{n}");
        }
        eprintln!(
            "sorting {name} (state {}: UIDVALIDITY {}, last UID {})",
            state.display(),
            s.state().uid_validity,
            s.state().last_uid
        );
        Box::new(s)
    } else {
        Box::new(MaildirStore::open(&args.mailbox, max_bytes)?)
    };
    let opts = SortOptions {
        mode: match args.mode {
            FileMode::Move => Mode::Move,
            FileMode::Tag => Mode::Tag,
        },
        abstain_below: args.abstain_below,
        on_backend_down: match (args.on_backend_down, backend.is_some()) {
            (OnBackendDown::Wait, true) => BackendDown::Wait,
            _ => BackendDown::Edge,
        },
        dry_run: args.dry_run,
        once: args.once,
        poll: Duration::from_secs(args.poll_seconds.max(1)),
        batch: args.sort_batch,
        ..SortOptions::default()
    };
    let mut out: Box<dyn Write> = match &args.log {
        Some(p) => Box::new(
            fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .with_context(|| format!("cannot open {}", p.display()))?,
        ),
        None => Box::new(std::io::stdout()),
    };
    let budget = args
        .forward_budget
        .map(|t| ForwardBudget::new(t, args.budget_window))
        .transpose()?;
    let mut decider = EdgeThenBackend {
        classifier,
        budget,
        backend,
        run: args.run.clone(),
    };
    let mut log = |a: &Action| {
        // A log that cannot be written must not stop filing; say so once.
        let line = serde_json::to_string(a).expect("actions are plain data");
        if writeln!(out, "{line}").and_then(|_| out.flush()).is_err() {
            eprintln!("cannot write the action log");
        }
    };
    let totals = sort::run(store.as_mut(), &mut decider, &opts, &mut log)?;
    eprintln!("{}", serde_json::to_string(&totals)?);
    Ok(())
}
