//! `skiff logs`: a workload's output, from the daemon's log files.

use crate::client::Client;
use clap::Args;
use skiff_api::{LogLine, Stream};
use std::io::Write;

/// Print a workload's output (stdout and stderr, as the guest wrote them)
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  skiff logs job\n  skiff logs -f --tail 10 api\n  skiff logs -t job 2>/dev/null     stdout only, with times"
)]
pub struct LogsArgs {
    /// Keep printing new output until the workload ends
    #[arg(short, long)]
    pub follow: bool,

    /// Only the last N lines
    #[arg(short = 'n', long, value_name = "N")]
    pub tail: Option<usize>,

    /// Prefix each line with the time it was written
    #[arg(short, long)]
    pub timestamps: bool,

    /// Workload name, ID or ID prefix
    pub workload: String,
}

pub fn logs(client: &Client, args: LogsArgs) -> anyhow::Result<u8> {
    let mut path = format!(
        "/v1/workloads/{}/logs?follow={}",
        args.workload, args.follow
    );
    if let Some(n) = args.tail {
        path.push_str(&format!("&tail={n}"));
    }
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    client
        .stream_lines(&path, |line| {
            let l: LogLine = serde_json::from_slice(line)?;
            // The guest's output is passed through as it wrote it (its colours are its own, as
            // with `docker logs`; `| cat -v` shows them); the daemon's time stamp is escaped.
            let text = if args.timestamps {
                format!("{} {}", crate::term::for_terminal(&l.time), l.log)
            } else {
                l.log
            };
            // A closed pipe (`skiff logs x | head`) ends the command quietly.
            let r = match l.stream {
                Stream::Stdout => stdout
                    .lock()
                    .write_all(text.as_bytes())
                    .and_then(|_| stdout.lock().flush()),
                Stream::Stderr => stderr.lock().write_all(text.as_bytes()),
            };
            match r {
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                    Err(anyhow::anyhow!(BrokenPipe))
                }
                r => Ok(r?),
            }
        })
        .or_else(|e| if e.is::<BrokenPipe>() { Ok(()) } else { Err(e) })?;
    Ok(0)
}

#[derive(Debug, thiserror::Error)]
#[error("broken pipe")]
struct BrokenPipe;
