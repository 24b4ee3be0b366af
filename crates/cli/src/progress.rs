//! Progress on stderr: indicatif bars for counted steps, lines for remarks.

use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressStyle};
use mailsort_offline::progress::Progress;

/// A progress bar on stderr (hidden when stderr is not a terminal).
pub fn bar(len: usize, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(len as u64);
    pb.set_style(
        ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} ({per_sec}, eta {eta})")
            .expect("the template is a valid constant")
            .progress_chars("=> "),
    );
    pb.set_message(what.to_string());
    pb
}

/// [`Progress`] as bars and lines on stderr.
#[derive(Default)]
pub struct Bars {
    current: Mutex<Option<ProgressBar>>,
}

impl Bars {
    fn with_bar(&self, f: impl FnOnce(&mut Option<ProgressBar>)) {
        f(&mut self
            .current
            .lock()
            .expect("no thread panics while drawing progress"));
    }
}

impl Progress for Bars {
    fn start(&self, what: &str, total: usize) {
        self.with_bar(|b| *b = Some(bar(total, what)));
    }

    fn advance(&self, n: usize) {
        self.with_bar(|b| {
            if let Some(b) = b {
                b.inc(n as u64);
            }
        });
    }

    fn finish(&self) {
        self.with_bar(|b| {
            if let Some(b) = b.take() {
                b.finish_and_clear();
            }
        });
    }

    fn note(&self, message: &str) {
        eprintln!("{message}");
    }
}
