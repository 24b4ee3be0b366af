//! `mailsort eval`: accuracy of a bundle on a labelled test set, edge only
//! and, with `--backend`, end to end.

use std::fs;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Args;
use mailsort_edge::EdgeClassifier;
use mailsort_offline::candidates::{self, CandidateRow};
use mailsort_offline::metrics::{self, EvalReport};
use mailsort_offline::split;
use mailsort_report::{ReportInput, ReportRow};
use mailsort_shared::budget::ForwardBudget;
use mailsort_shared::types::{DecidedBy, Decision};

use super::classify::{Labelled, decide_labelled};
use super::{
    CacheArgs, ImportArgs, ModelArgs, RunArgs, limit_rows, load_classifier, read_labelled,
};
use crate::backend_client::BackendClient;

#[derive(Args)]
pub struct EvalArgs {
    #[arg(long)]
    bundle: PathBuf,
    #[arg(long)]
    test: PathBuf,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// Use only the first N test rows.
    #[arg(long)]
    limit: Option<usize>,
    /// Also write every decision as JSONL here.
    #[arg(long)]
    decisions_out: Option<PathBuf>,
    /// Also write each e-mail's text, gold label and candidates (JSONL),
    /// for calibrating a reranker on a dev split.
    #[arg(long)]
    candidates_out: Option<PathBuf>,
    /// A running `mailsort-backend` (http://host:port): forwarded e-mails
    /// are reranked there and end-to-end accuracy is reported.
    #[arg(long)]
    backend: Option<String>,
    /// Bearer key for --backend.
    #[arg(long, env = "MAILSORT_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Seconds a request to --backend is retried, with back-off, while the
    /// backend is busy (429) or down (no connection, 502–504). E-mails it
    /// still cannot answer keep the edge's label, provisional, and are
    /// counted as unanswered.
    #[arg(long, default_value_t = 60.0)]
    backend_retry_s: f64,
    /// Hold this forwarded share with a running forward budget (see
    /// docs/backend.md) instead of the bundle's fixed thresholds. The test
    /// mail is fed in a shuffled order (seed 13), as live mail arrives
    /// mixed rather than sorted by label.
    #[arg(long)]
    forward_budget: Option<f32>,
    /// E-mails the forward budget looks back over.
    #[arg(long, default_value_t = 500)]
    budget_window: usize,
    /// Also write an HTML report with plots (index.html), its figures
    /// (figures.json) and this run's JSON (eval.json) into this folder.
    #[arg(long)]
    report: Option<PathBuf>,
    #[command(flatten)]
    cache: CacheArgs,
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    run: RunArgs,
    #[command(flatten)]
    import: ImportArgs,
}

pub fn run(args: EvalArgs) -> Result<()> {
    let backend = args
        .backend
        .as_deref()
        .map(|url| {
            anyhow::ensure!(
                args.backend_retry_s.is_finite() && args.backend_retry_s >= 0.0,
                "--backend-retry-s must be 0 or more seconds (got {})",
                args.backend_retry_s
            );
            Ok(BackendClient::new(url, args.api_key.as_deref())?
                .with_retry(std::time::Duration::from_secs_f64(args.backend_retry_s)))
        })
        .transpose()?;
    let classifier = load_classifier(&args.bundle, &args.model)?;
    let rows = limit_rows(read_labelled(&args.test, &args.import)?, args.limit);
    let Labelled { mut decided, gold } =
        decide_labelled(&classifier, &rows, &args.run, &args.cache)?;
    if let Some(target) = args.forward_budget {
        let mut budget = ForwardBudget::new(target, args.budget_window)?;
        for i in split::shuffled_order(decided.len(), 13) {
            let d = &mut decided[i].0;
            let slack = classifier.slack(d);
            classifier.regate(d, budget.offset());
            budget.observe(slack);
        }
    }
    if let Some(path) = &args.candidates_out {
        let taxonomy = &classifier.bundle().taxonomy;
        let rows: Vec<CandidateRow> = decided
            .iter()
            .zip(&gold)
            .map(|((d, text), g)| {
                let forwarded = d.decided_by == DecidedBy::Backend;
                CandidateRow::new(&d.id, text, g, forwarded, &d.candidates, taxonomy)
            })
            .collect();
        candidates::write(path, &rows)?;
        eprintln!("wrote {} candidate rows to {}", rows.len(), path.display());
    }
    let edge_pairs: Vec<(&Decision, &str)> = decided
        .iter()
        .map(|(d, _)| d)
        .zip(gold.iter().map(String::as_str))
        .collect();
    let mut report = metrics::evaluate(&edge_pairs, &classifier.bundle().head.labels);
    let mut finals: Vec<Decision> = decided.iter().map(|(d, _)| d.clone()).collect();
    if let Some(client) = &backend {
        let reranked = client.rerank_forwarded(&classifier.bundle().id, &decided);
        if let Some(f) = &reranked.failure {
            // A refusal (wrong key, unknown bundle) would be the same for
            // every request: an evaluation without the backend is no
            // evaluation of it.
            if !f.transient {
                bail!("the backend refused the forwarded e-mails: {f}");
            }
            eprintln!(
                "warning: {} forwarded e-mails got no answer from the backend ({f}); they keep the edge's label",
                reranked.unanswered.len()
            );
        }
        for (i, result) in reranked.results {
            result.apply_to(&mut finals[i]);
        }
        let pairs: Vec<(&Decision, &str)> =
            finals.iter().zip(gold.iter().map(String::as_str)).collect();
        let mut e2e = metrics::end_to_end(&pairs, &reranked.reranker);
        e2e.unanswered = reranked.unanswered.len();
        report.end_to_end = Some(e2e);
    }
    if let Some(path) = &args.decisions_out {
        let mut w = BufWriter::new(fs::File::create(path)?);
        for d in &finals {
            writeln!(w, "{}", serde_json::to_string(d)?)?;
        }
        w.flush()?;
    }
    if let Some(dir) = &args.report {
        write_report(dir, &args, &classifier, &decided, &finals, &gold, &report)?;
    }
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_report(&report);
    }
    Ok(())
}

/// The HTML report of this run: the same decisions as the JSON.
fn write_report(
    dir: &std::path::Path,
    args: &EvalArgs,
    classifier: &EdgeClassifier,
    decided: &[(Decision, String)],
    finals: &[Decision],
    gold: &[String],
    report: &EvalReport,
) -> Result<()> {
    let rows: Vec<ReportRow> = decided
        .iter()
        .zip(finals)
        .zip(gold)
        .map(|(((d, _), f), g)| ReportRow {
            gold: g.clone(),
            edge_label: d.label.clone(),
            confidence: d.confidence,
            slack: classifier.slack(d),
            forwarded: d.decided_by == DecidedBy::Backend,
            final_label: f.label.clone(),
        })
        .collect();
    let bundle = classifier.bundle();
    let mut facts = vec![
        (
            "bundle".to_string(),
            format!("{} (id {})", args.bundle.display(), bundle.id),
        ),
        ("test e-mails".to_string(), args.test.display().to_string()),
    ];
    if let Some(e) = &report.end_to_end {
        let url = args.backend.as_deref().unwrap_or_default();
        facts.push((
            "backend".to_string(),
            format!("{url}, reranker {}", e.reranker),
        ));
    }
    if let Some(t) = args.forward_budget {
        facts.push((
            "gate".to_string(),
            format!(
                "forward budget {:.1}% over {} e-mails",
                100.0 * t,
                args.budget_window
            ),
        ));
    }
    // "banking77/test.jsonl" says more than "test.jsonl".
    let tail: Vec<String> = args
        .test
        .components()
        .rev()
        .take(2)
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let title = format!(
        "mailsort evaluation: {}",
        tail.into_iter().rev().collect::<Vec<_>>().join("/")
    );
    let eval_json = serde_json::to_value(report)?;
    let siblings = |a: &str, b: &str| bundle.taxonomy.are_siblings(a, b);
    let (_, files) = mailsort_report::write_report(
        dir,
        &ReportInput {
            title: &title,
            facts: &facts,
            rows: &rows,
            with_backend: report.end_to_end.is_some(),
            eval_json: &eval_json,
            siblings: &siblings,
        },
    )?;
    eprintln!("wrote the report to {}", files.html.display());
    Ok(())
}

fn print_report(r: &EvalReport) {
    println!("e-mails               {}", r.n);
    println!("accuracy (edge only)  {:.2}%", 100.0 * r.accuracy);
    println!("macro F1              {:.2}%", 100.0 * r.macro_f1);
    println!("top-5 recall          {:.2}%", 100.0 * r.top5_recall);
    println!("forwarded             {:.2}%", 100.0 * r.forwarded_rate);
    println!("accuracy kept at edge {:.2}%", 100.0 * r.edge_accuracy);
    println!(
        "forwarded top-k recall {:.2}%",
        100.0 * r.forwarded_topk_recall
    );
    println!(
        "oracle edge+backend   {:.2}%",
        100.0 * r.oracle_end_to_end_accuracy
    );
    if let Some(e) = &r.end_to_end {
        println!("reranker              {}", e.reranker);
        println!(
            "accuracy end-to-end   {:.2}% (backend right on {:.2}% of forwarded, edge {:.2}%)",
            100.0 * e.accuracy,
            100.0 * e.forwarded_accuracy,
            100.0 * r.forwarded_accuracy
        );
        if e.unanswered > 0 {
            println!(
                "unanswered by backend  {} (the edge's label kept)",
                e.unanswered
            );
        }
    }
    if r.unknown_gold_labels > 0 {
        println!(
            "gold labels unknown to the bundle: {}",
            r.unknown_gold_labels
        );
    }
}
