//! Progress bars for long work (hashing, uploading, downloading): shown on a terminal, silent otherwise.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A byte-count progress bar that draws only when stderr is a terminal and output is not quiet.
#[derive(Debug, Clone)]
pub struct Bytes(ProgressBar);

impl Bytes {
    pub fn new(label: &str, total: u64, quiet: bool) -> Bytes {
        let bar = ProgressBar::with_draw_target(Some(total), draw_target(quiet));
        let style = ProgressStyle::with_template(
            "{msg:>10} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        bar.set_message(label.to_owned());
        Bytes(bar)
    }

    pub fn inc(&self, n: u64) {
        self.0.inc(n);
    }

    pub fn set_total(&self, total: u64) {
        self.0.set_length(total);
    }

    pub fn finish(&self) {
        self.0.finish_and_clear();
    }
}

fn draw_target(quiet: bool) -> ProgressDrawTarget {
    if quiet || !std::io::stderr().is_terminal() {
        ProgressDrawTarget::hidden()
    } else {
        ProgressDrawTarget::stderr()
    }
}

impl crate::registry::UploadProgress for Bytes {
    fn start(&self, _files: u64, bytes: u64) {
        self.0.reset();
        self.set_total(bytes);
    }

    fn advance(&self, bytes: u64) {
        self.inc(bytes);
    }
}
