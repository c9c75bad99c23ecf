//! `skiff logs`: a workload's output, from the daemon's log files.

use crate::client::Client;
use clap::Args;
use skiff_api::{LogLine, Stream};
use std::io::Write;

/// Print a workload's output (stdout and stderr, as the guest wrote them)
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  skiff logs job\n  skiff logs -f --tail 10 api\n  skiff logs -t job 2>/dev/null     stdout only, with times\n  skiff logs --since 10m api        the last ten minutes\n  skiff logs --since 2026-12-01T09:00:00Z --until 2026-12-01T10:00:00Z api"
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

    /// Only lines written since then: a time (2026-12-01T09:00:00Z) or an age (10m, 2h)
    #[arg(long, value_name = "WHEN", value_parser = parse_when)]
    pub since: Option<i64>,

    /// Only lines written before then: a time (2026-12-01T10:00:00Z) or an age (10m, 2h)
    #[arg(long, value_name = "WHEN", value_parser = parse_when)]
    pub until: Option<i64>,

    /// Workload name, ID or ID prefix
    pub workload: String,
}

/// `--since`/`--until` as Docker takes them: an RFC 3339 time, or an age before now.
pub(crate) fn parse_when(s: &str) -> Result<i64, String> {
    if let Some(t) = skiff_store::time::parse_rfc3339(s) {
        return Ok(t);
    }
    let age = match s {
        "now" => Ok(std::time::Duration::ZERO),
        _ => crate::units::parse_duration(s),
    };
    let age = age.map_err(|_| {
        format!(
            "invalid time {s:?}: expected e.g. 2026-12-01T09:00:00Z, an age such as 10m or 2h, or now"
        )
    })?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Ok(now.saturating_sub(age).as_secs() as i64)
}

pub fn logs(client: &Client, args: LogsArgs) -> anyhow::Result<u8> {
    let window = args.since.is_some() || args.until.is_some();
    let mut path = format!(
        "/v1/workloads/{}/logs?follow={}",
        args.workload, args.follow
    );
    // The daemon's tail counts every line; with a time window the last N lines *of the window*
    // are wanted, so the window is applied first, here, and the tail after it (the lines seen
    // so far when following: a follow's window has no end to count back from).
    let client_tail = match args.tail {
        Some(n) if window && !args.follow => Some(n),
        Some(n) => {
            path.push_str(&format!("&tail={n}"));
            None
        }
        None => None,
    };
    let in_window = |l: &LogLine| {
        let Some(t) = skiff_store::time::parse_rfc3339(&l.time) else {
            return !window;
        };
        args.since.is_none_or(|s| t >= s) && args.until.is_none_or(|u| t < u)
    };
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let print = |l: LogLine| {
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
    };
    let mut held: std::collections::VecDeque<LogLine> = std::collections::VecDeque::new();
    client
        .stream_lines(&path, |line| {
            let l: LogLine = serde_json::from_slice(line)?;
            if !in_window(&l) {
                return Ok(());
            }
            match client_tail {
                Some(n) => {
                    held.push_back(l);
                    if held.len() > n {
                        held.pop_front();
                    }
                    Ok(())
                }
                None => print(l),
            }
        })
        .and_then(|()| held.drain(..).try_for_each(print))
        .or_else(|e| if e.is::<BrokenPipe>() { Ok(()) } else { Err(e) })?;
    Ok(0)
}

#[derive(Debug, thiserror::Error)]
#[error("broken pipe")]
struct BrokenPipe;
