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

/// Runs `f` (a compile), and says so if it takes more than a second: a spinner on a terminal,
/// one line otherwise. A cache hit (microseconds) says nothing; a 13 MB JS component's first
/// compile (35 s) no longer looks like a hang.
pub fn compiling<T>(stream: Stream, what: &str, size: u64, f: impl FnOnce() -> T) -> T {
    let text = format!("Compiling {what} ({})", human_size(size));
    when_slow(std::time::Duration::from_secs(1), f, move || {
        if !stream.is_terminal() {
            stream.line(&format!(
                "{text}; the first compile takes a while, later runs use the compile cache"
            ));
            return None;
        }
        let spinner = ProgressBar::with_draw_target(
            None,
            match stream {
                Stream::Stdout => ProgressDrawTarget::stdout(),
                Stream::Stderr => ProgressDrawTarget::stderr(),
            },
        );
        spinner.set_style(
            ProgressStyle::with_template("{spinner} {msg} {elapsed}").expect("a valid template"),
        );
        spinner.set_message(text);
        spinner.enable_steady_tick(std::time::Duration::from_millis(100));
        Some(Box::new(move || spinner.finish_and_clear()) as Box<dyn FnOnce() + Send>)
    })
}

/// Runs `f`; if it is still running after `after`, calls `slow` (on another thread), and then
/// what `slow` returned once `f` is done.
fn when_slow<T>(
    after: std::time::Duration,
    f: impl FnOnce() -> T,
    slow: impl FnOnce() -> Option<Box<dyn FnOnce() + Send>> + Send + 'static,
) -> T {
    use std::sync::{Arc, Condvar};
    let done = Arc::new((Mutex::new(false), Condvar::new()));
    let watcher = {
        let done = done.clone();
        std::thread::spawn(move || {
            let (lock, cv) = &*done;
            let guard = lock.lock().unwrap_or_else(|p| p.into_inner());
            let (guard, _) = cv
                .wait_timeout_while(guard, after, |d| !*d)
                .unwrap_or_else(|p| p.into_inner());
            if *guard {
                return;
            }
            drop(guard);
            let finish = slow();
            let guard = lock.lock().unwrap_or_else(|p| p.into_inner());
            drop(
                cv.wait_while(guard, |d| !*d)
                    .unwrap_or_else(|p| p.into_inner()),
            );
            if let Some(finish) = finish {
                finish();
            }
        })
    };
    let result = f();
    let (lock, cv) = &*done;
    *lock.lock().unwrap_or_else(|p| p.into_inner()) = true;
    cv.notify_all();
    let _ = watcher.join();
    result
}

#[cfg(test)]
mod tests {
    use super::when_slow;
    use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn only_slow_work_is_announced_and_its_announcement_ended() {
        let (said, ended) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
        let watch = |work: Duration| {
            let (said, ended) = (said.clone(), ended.clone());
            when_slow(
                Duration::from_millis(200),
                || std::thread::sleep(work),
                move || {
                    said.fetch_add(1, SeqCst);
                    Some(Box::new(move || {
                        ended.fetch_add(1, SeqCst);
                    }) as Box<dyn FnOnce() + Send>)
                },
            )
        };
        // Far from the threshold both ways, so a loaded machine does not change the outcome.
        watch(Duration::ZERO);
        assert_eq!((said.load(SeqCst), ended.load(SeqCst)), (0, 0));
        watch(Duration::from_secs(3));
        assert_eq!((said.load(SeqCst), ended.load(SeqCst)), (1, 1));
    }
}
