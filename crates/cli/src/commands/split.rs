//! `mailsort split`: carve a stratified dev split out of a labelled file.

use std::fs;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use mailsort_offline::split;

use super::{ImportArgs, read_labelled};

#[derive(Args)]
pub struct SplitArgs {
    #[arg(long)]
    input: PathBuf,
    #[arg(long, default_value_t = 0.1)]
    dev_fraction: f32,
    #[arg(long)]
    train_out: PathBuf,
    #[arg(long)]
    dev_out: PathBuf,
    #[arg(long, default_value_t = 13)]
    seed: u64,
    #[command(flatten)]
    import: ImportArgs,
}

pub fn run(args: SplitArgs) -> Result<()> {
    if !(0.0..1.0).contains(&args.dev_fraction) || args.dev_fraction == 0.0 {
        bail!(
            "--dev-fraction must be between 0 and 1, got {}",
            args.dev_fraction
        );
    }
    let rows = read_labelled(&args.input, &args.import)?;
    let (train, dev) = split::stratified(rows, args.dev_fraction, args.seed);
    for (path, rows) in [(&args.train_out, &train), (&args.dev_out, &dev)] {
        let mut w = BufWriter::new(
            fs::File::create(path).with_context(|| format!("cannot write {}", path.display()))?,
        );
        for r in rows {
            writeln!(w, "{}", serde_json::to_string(r)?)?;
        }
        w.flush()
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    eprintln!("{} train, {} dev", train.len(), dev.len());
    Ok(())
}
