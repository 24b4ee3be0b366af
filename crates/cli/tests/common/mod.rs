//! Shared helpers for the model-backed tests: where the fetched model and
//! the datasets are, subsets of real rows, and running the real CLI.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The model prepared by `mailsort models fetch`. Tests never skip without
/// it: they fail and say how to get it.
pub fn model_dir() -> PathBuf {
    let dir = std::env::var_os("MAILSORT_MODEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("models/all-MiniLM-L6-v2"));
    assert!(
        dir.join("model_int8.onnx").exists(),
        "no prepared model in {}: run `scripts/test.sh` (or `mailsort models fetch`) first",
        dir.display()
    );
    dir
}

pub fn datasets() -> PathBuf {
    let dir = std::env::var_os("MAILSORT_DATASETS")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("../shared/datasets"));
    assert!(
        dir.join("banking77/train.jsonl").exists(),
        "datasets not found in {}",
        dir.display()
    );
    dir
}

/// Every `stride`-th line of a dataset file (plain or .gz), up to `max`.
pub fn subset(file: &Path, stride: usize, max: usize) -> Vec<String> {
    let f = std::fs::File::open(file).unwrap();
    let reader: Box<dyn BufRead> = if file.extension().is_some_and(|e| e == "gz") {
        Box::new(BufReader::new(flate2::read::GzDecoder::new(f)))
    } else {
        Box::new(BufReader::new(f))
    };
    reader
        .lines()
        .map(|l| l.unwrap())
        .filter(|l| !l.trim().is_empty())
        .step_by(stride)
        .take(max)
        .collect()
}

pub fn write_lines(path: &Path, lines: &[String]) {
    let mut f = std::fs::File::create(path).unwrap();
    for l in lines {
        writeln!(f, "{l}").unwrap();
    }
}

/// Runs the real `mailsort` binary with the test model.
pub fn mailsort(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mailsort"))
        .args(args)
        .env("MAILSORT_MODEL_DIR", model_dir())
        .current_dir(repo_root())
        .output()
        .expect("mailsort runs")
}

/// Runs `mailsort` and insists it succeeds; returns stdout.
pub fn mailsort_ok(args: &[&str]) -> String {
    let out = mailsort(args);
    assert!(
        out.status.success(),
        "mailsort {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}
