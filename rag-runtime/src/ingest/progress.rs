//! Ingest progress on stderr.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

/// Progress as a bar on a terminal, as a line per tenth otherwise, or not at all.
pub enum Progress {
    Bar(ProgressBar),
    Lines {
        total: u64,
        done: u64,
        next_tenth: u64,
    },
    Silent,
}

impl Progress {
    pub fn for_stderr(total: u64) -> Self {
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} chunks ({per_sec}, eta {eta})")
                    .expect("valid template"),
            );
            Self::Bar(bar)
        } else {
            Self::Lines {
                total,
                done: 0,
                next_tenth: 1,
            }
        }
    }

    pub(super) fn advance(&mut self, n: u64) {
        match self {
            Self::Bar(bar) => bar.inc(n),
            Self::Lines {
                total,
                done,
                next_tenth,
            } => {
                *done += n;
                // One line per tenth reached, however many a batch crosses.
                let tenth = (*done * 10).checked_div(*total).unwrap_or(10);
                if tenth >= *next_tenth {
                    eprintln!("ingest: {done}/{total} chunks");
                    *next_tenth = tenth + 1;
                }
            }
            Self::Silent => {}
        }
    }

    pub(super) fn finish(&self) {
        if let Self::Bar(bar) = self {
            bar.finish();
        }
    }
}
