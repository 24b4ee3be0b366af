//! `mailsort bench-stages`: the edge's layers timed one e-mail at a time on
//! one thread (cleaning, tokenising, embedding, head and gate), as p50 and
//! p99: the per-layer latency `mailsort plan` reports.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Result, bail};
use clap::Args;
use mailsort_capacity::results::{EdgeStages, Quantiles};
use mailsort_offline::inputs;
use mailsort_shared::clean;

use super::{ModelArgs, load_classifier};

#[derive(Args)]
pub struct BenchStagesArgs {
    #[arg(long)]
    bundle: PathBuf,
    /// E-mails to classify (JSONL, mbox or .eml).
    #[arg(long)]
    input: PathBuf,
    /// How many e-mails from the input.
    #[arg(long, default_value_t = 200)]
    n: usize,
    /// A name for the input in the output (default: its folder's name).
    #[arg(long)]
    set: Option<String>,
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    model: ModelArgs,
}

pub fn run(args: BenchStagesArgs) -> Result<()> {
    let classifier = load_classifier(&args.bundle, &args.model)?;
    let mut emails =
        inputs::read_any(&args.input, clean::CleanConfig::default().max_message_bytes)?;
    emails.truncate(args.n);
    if emails.is_empty() {
        bail!("{}: no e-mails to time", args.input.display());
    }
    let cfg = &classifier.bundle().clean;
    let embedder = classifier.embedder();
    // One warm-up e-mail, so the first timing holds no one-off setup.
    if let Ok(c) = clean::clean(&emails[0].input, cfg) {
        embedder.embed(&[c.text.as_str()])?;
    }
    let (mut c_s, mut t_s, mut e_s, mut h_s, mut all) = (vec![], vec![], vec![], vec![], vec![]);
    for e in &emails {
        let t0 = Instant::now();
        let Ok(cleaned) = clean::clean(&e.input, cfg) else {
            continue;
        };
        let t1 = Instant::now();
        let ids = embedder.tokenize(&[cleaned.text.as_str()])?;
        let t2 = Instant::now();
        let emb = embedder.embed_ids(&ids)?;
        let t3 = Instant::now();
        let decision = classifier.decide(&e.id, &emb[0], cleaned.empty);
        let t4 = Instant::now();
        std::hint::black_box(decision);
        c_s.push((t1 - t0).as_secs_f64());
        t_s.push((t2 - t1).as_secs_f64());
        e_s.push((t3 - t2).as_secs_f64());
        h_s.push((t4 - t3).as_secs_f64());
        all.push((t4 - t0).as_secs_f64());
    }
    let q = |v: &[f64]| Quantiles::from_seconds(v).expect("at least the warm-up e-mail cleaned");
    if all.is_empty() {
        bail!("{}: no e-mail could be cleaned", args.input.display());
    }
    let set = args.set.unwrap_or_else(|| {
        args.input
            .parent()
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    });
    let stages = EdgeStages {
        set,
        token_cap: cfg.token_cap,
        emails: all.len(),
        clean: q(&c_s),
        tokenize: q(&t_s),
        embed: q(&e_s),
        head_gate: q(&h_s),
        total: q(&all),
    };
    if args.json {
        println!("{}", serde_json::to_string(&stages)?);
    } else {
        println!(
            "{} e-mails of {}, token cap {}, one at a time",
            stages.emails, stages.set, stages.token_cap
        );
        println!("{:<12} {:>9} {:>9}", "stage", "p50 ms", "p99 ms");
        for (name, s) in [
            ("clean", stages.clean),
            ("tokenize", stages.tokenize),
            ("embed", stages.embed),
            ("head+gate", stages.head_gate),
            ("total", stages.total),
        ] {
            println!("{:<12} {:>9.3} {:>9.3}", name, s.p50_ms, s.p99_ms);
        }
    }
    Ok(())
}
