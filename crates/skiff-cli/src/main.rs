//! `skiff`: run WebAssembly workloads the way Docker runs containers.
//!
//! This binary is flags and presentation; the work happens in the library crates. Errors become
//! exit codes in exactly one place, [`exit::code_for`].

mod cli;
mod client;
mod cmd;
mod compose;
mod exit;
mod hints;
mod home;
mod progress;
mod remote;
mod table;
mod term;
mod units;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    end_quietly_when_stdout_closes();
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        // --help and --version are not errors; a bad flag is skiff's failure (125), as in Docker.
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                exit::SKIFF_FAILED
            } else {
                0
            });
        }
    };
    // A server's log is its output: serve logs requests that fail and guest output by default,
    // the daemon its start, its stop and what it refused.
    let level = cli.log_level.unwrap_or(match cli.command {
        cli::Command::Serve(_) | cli::Command::Daemon(_) => cli::LogLevel::Info,
        _ => cli::LogLevel::Warn,
    });
    let stamped = matches!(
        cli.command,
        cli::Command::Serve(_) | cli::Command::Daemon(_)
    );
    init_logging(level, stamped);
    match cmd::dispatch(cli) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            let code = exit::code_for(&err);
            // Errors quote what they were given (an image's words, a daemon's answer): one
            // line, escaped. The hint is skiff's own lines, escaped where it quotes.
            eprintln!("skiff: {}", term::for_terminal(&exit::message_for(&err)));
            if let Some(hint) = exit::hint_for(&err) {
                eprintln!("{hint}");
            }
            ExitCode::from(code)
        }
    }
}

/// `skiff images | head -1`: the reader goes away, and the next line skiff prints fails with
/// EPIPE. Rust ignores SIGPIPE (so that servers see EPIPE on a closed socket instead of dying), and
/// `println!` turns the failed write into a panic: exit 101 and a backtrace. Here that one panic
/// ends skiff as a closed pipe ends `ls` or `docker`: quietly, exit 141 (128 + SIGPIPE). SIGPIPE is
/// not restored instead because the daemon, `serve` and the CLI's own socket to the daemon rely on
/// EPIPE being an error, not a signal. Any other panic keeps the default report.
fn end_quietly_when_stdout_closes() {
    const EPIPE: &str = "(os error 32)";
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info.payload_as_str().unwrap_or("");
        if msg.starts_with("failed printing to stdout") && msg.contains(EPIPE) {
            std::process::exit(exit::STDOUT_CLOSED.into());
        }
        default(info)
    }));
}

/// `stamped`: lines carry their time (UTC, RFC 3339), for the long-running verbs whose stderr is
/// a log (`serve`, `daemon`); a one-shot command's messages do not need one.
fn init_logging(level: cli::LogLevel, stamped: bool) {
    let filter = match level {
        cli::LogLevel::Error => tracing::Level::ERROR,
        cli::LogLevel::Warn => tracing::Level::WARN,
        cli::LogLevel::Info => tracing::Level::INFO,
        cli::LogLevel::Debug => tracing::Level::DEBUG,
        cli::LogLevel::Trace => tracing::Level::TRACE,
    };
    let fmt = tracing_subscriber::fmt()
        .with_max_level(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false);
    if stamped {
        fmt.init();
    } else {
        fmt.without_time().init();
    }
}
