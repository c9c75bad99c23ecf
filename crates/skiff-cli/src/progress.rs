//! What push and pull show while blobs move: a bar per blob with bytes and speed on a terminal,
//! one plain line per blob otherwise (logs, CI), nothing with `-q`.

use crate::cmd::images::human_size;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use skiff_registry::{BlobOutcome, Direction, Progress};
use skiff_store::Digest;
use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::Instant;

/// Where the report goes: `skiff pull` and `push` write to stdout as Docker does; a pull made
/// by `skiff run` writes to stderr, because stdout belongs to the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn is_terminal(self) -> bool {
        match self {
            Stream::Stdout => std::io::stdout().is_terminal(),
            Stream::Stderr => std::io::stderr().is_terminal(),
        }
    }

    /// Print one line (ignoring a closed pipe: the transfer matters more than its report).
    pub fn line(self, text: &str) {
        let _ = match self {
            Stream::Stdout => writeln!(std::io::stdout(), "{text}"),
            Stream::Stderr => writeln!(std::io::stderr(), "{text}"),
        };
    }
}

pub struct Reporter {
    direction: Direction,
    stream: Stream,
    quiet: bool,
    bars: Option<MultiProgress>,
    blobs: Mutex<HashMap<Digest, Blob>>,
}

struct Blob {
    bar: Option<ProgressBar>,
    started: Instant,
    size: u64,
}

impl Reporter {
    pub fn new(direction: Direction, stream: Stream, quiet: bool) -> Reporter {
        let bars = (!quiet && stream.is_terminal()).then(|| {
            MultiProgress::with_draw_target(match stream {
                Stream::Stdout => ProgressDrawTarget::stdout(),
                Stream::Stderr => ProgressDrawTarget::stderr(),
            })
        });
        Reporter {
            direction,
            stream,
            quiet,
            bars,
            blobs: Mutex::new(HashMap::new()),
        }
    }

    /// A line of the report (not shown with `-q`), printed above any bars.
    pub fn say(&self, text: &str) {
        if self.quiet {
            return;
        }
        match &self.bars {
            Some(m) => {
                let _ = m.println(text);
            }
            None => self.stream.line(text),
        }
    }

    fn blobs(&self) -> std::sync::MutexGuard<'_, HashMap<Digest, Blob>> {
        self.blobs.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn speed(bytes: u64, since: Instant) -> String {
    let secs = since.elapsed().as_secs_f64().max(1e-3);
    format!("{}/s", human_size((bytes as f64 / secs) as u64))
}

impl Progress for Reporter {
    fn start(&self, digest: &Digest, size: u64, _direction: Direction) {
        if self.quiet {
            return;
        }
        let bar = self.bars.as_ref().map(|m| {
            let bar = m.add(ProgressBar::new(size));
            // Sizes as every other size skiff prints (human_size: Docker's kB/MB); no rate
            // while moving (a push's is the socket's, not the registry's: it is given at the
            // end); the bar takes what the terminal has left, so a narrow one does not wrap.
            bar.set_style(
                ProgressStyle::with_template("{prefix}: [{wide_bar}] {sizes} {msg}")
                    .expect("a valid template")
                    .with_key("sizes", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
                        let total = s.len().map(human_size).unwrap_or_default();
                        let _ = write!(w, "{}/{total}", human_size(s.pos()));
                    })
                    .progress_chars("=> "),
            );
            bar.set_prefix(digest.short().to_string());
            bar
        });
        // A retry starts the blob again from 0.
        if let Some(old) = self.blobs().insert(
            digest.clone(),
            Blob {
                bar,
                started: Instant::now(),
                size,
            },
        ) {
            if let Some(b) = old.bar {
                b.finish_and_clear();
            }
        }
    }

    fn advance(&self, digest: &Digest, n: u64) {
        if let Some(Blob { bar: Some(bar), .. }) = self.blobs().get(digest) {
            bar.inc(n);
            // On a push, "sent" is "handed to the socket": the kernel buffers megabytes, and
            // the registry stores the blob before it answers. A full bar says so instead of
            // looking stuck at 100% (the final line's speed is from the registry's answer).
            if self.direction == Direction::Up && bar.length().is_some_and(|l| bar.position() >= l)
            {
                bar.set_message("sent, storing");
            }
        }
    }

    fn done(&self, digest: &Digest, outcome: BlobOutcome) {
        if self.quiet {
            return;
        }
        let blob = self.blobs().remove(digest);
        let text = match (outcome, &blob) {
            (BlobOutcome::Transferred, Some(b)) => format!(
                "{} ({}, {})",
                match self.direction {
                    Direction::Up => "Pushed",
                    Direction::Down => "Pull complete",
                },
                human_size(b.size),
                speed(b.size, b.started)
            ),
            (BlobOutcome::Transferred, None) => "Done".to_string(),
            (BlobOutcome::Present, _) => match self.direction {
                Direction::Up => "Layer already exists".to_string(),
                Direction::Down => "Already exists".to_string(),
            },
            (BlobOutcome::Mounted, _) => "Mounted from another repository".to_string(),
        };
        match blob.and_then(|b| b.bar) {
            Some(bar) => {
                // The finished line keeps only what it says, and stays on screen (push and
                // pull alike).
                bar.set_style(ProgressStyle::with_template("{prefix}: {msg}").expect("valid"));
                bar.finish_with_message(text)
            }
            None => self.say(&format!("{}: {text}", digest.short())),
        }
    }

    fn retry(&self, digest: &Digest, attempt: u32, reason: &str) {
        // Shown even with -q: a slow transfer should say why.
        let text = format!("{}: retrying (attempt {attempt}): {reason}", digest.short());
        match &self.bars {
            Some(m) => {
                let _ = m.println(text);
            }
            None => Stream::Stderr.line(&text),
        }
    }
}
