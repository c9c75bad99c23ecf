//! `skiff stats` and `skiff top`: what running workloads use, from the daemon's `/v1/stats`.

use crate::client::Client;
use crate::cmd::images::human_size;
use crate::table::{parse_list_format, ListFormat};
use clap::Args;
use hyper::Method;
use skiff_api::{StatsResponse, Workload, WorkloadStats};
use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// How often a live `stats` samples, and the window of its CPU %.
const INTERVAL: Duration = Duration::from_secs(1);

/// Show running workloads' memory, CPU and requests, live (Docker's stats)
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
skiff stats                         every running workload, refreshed each second\n  \
skiff stats --no-stream api job     one sample of two workloads\n  \
skiff stats --no-stream --format '{{.Name}}\\t{{.MemUsage}}'\n\n\
MEM is what the memory limit counts (linear memories and tables) of the workload's live \
instances; CPU % is wasm execution over the last second (100% = one core), counted in 10 ms \
ticks; REQUESTS are an app's since the daemon started. A workload that ends while shown \
leaves the table.")]
pub struct StatsArgs {
    /// Print one sample (CPU % over one second) and exit
    #[arg(long)]
    pub no_stream: bool,

    /// Output format: table, json, or a template such as '{{.Name}}\t{{.CPU}}'
    #[arg(long, default_value = "table", value_parser = parse_list_format)]
    pub format: ListFormat,

    /// Only these workloads (names or ID prefixes) [default: every running one]
    #[arg(value_name = "WORKLOAD")]
    pub workloads: Vec<String>,
}

/// Show what runs in a workload: its instances, memory and CPU time (Docker's top)
#[derive(Debug, Args)]
#[command(
    after_help = "A Wasm workload has no processes: it is one instance (a task) or one \
instance per request in progress (an app), inside the daemon. This shows those.\n\n\
Examples:\n  skiff top job\n  skiff top api"
)]
pub struct TopArgs {
    /// Workload name, ID or ID prefix
    pub workload: String,
}

fn sample(client: &Client) -> anyhow::Result<(Instant, StatsResponse)> {
    let (_, s) = client.call::<StatsResponse>(Method::GET, "/v1/stats", None::<&()>)?;
    let s = s.ok_or_else(|| anyhow::anyhow!("the daemon answered no stats"))?;
    Ok((Instant::now(), s))
}

fn wanted(names: &[String], w: &WorkloadStats) -> bool {
    names.is_empty()
        || names
            .iter()
            .any(|n| *n == w.name || w.id.starts_with(n.as_str()))
}

pub fn stats(client: &Client, args: StatsArgs) -> anyhow::Result<u8> {
    let mut before = sample(client)?;
    let present = |s: &StatsResponse, n: &String| {
        s.workloads
            .iter()
            .any(|w| *n == w.name || w.id.starts_with(n.as_str()))
    };
    if let Some(missing) = args.workloads.iter().find(|n| !present(&before.1, n)) {
        anyhow::bail!("{missing}: no such running workload (see skiff ps -a)");
    }
    let terminal = std::io::stdout().is_terminal();
    let interrupted = interrupts();
    loop {
        // Ctrl-C ends the live view as the way out of it, not as a failure: exit 0, as `top`'s q.
        match interrupted.recv_timeout(INTERVAL) {
            Ok(()) => return Ok(0),
            Err(RecvTimeoutError::Timeout) => {}
            // No handler could be installed: the default action stands, only the wait remains.
            Err(RecvTimeoutError::Disconnected) => std::thread::sleep(INTERVAL),
        }
        let now = sample(client)?;
        let rows = rows(&args.workloads, &before, &now);
        if args.no_stream {
            return print(&args.format, &now.1, rows).map(|()| 0);
        }
        if terminal && !matches!(args.format, ListFormat::Json) {
            // As `docker stats`: the table redrawn in place.
            print!("\x1b[2J\x1b[H");
        }
        print(&args.format, &now.1, rows)?;
        before = now;
    }
}

/// Ctrl-C (SIGINT), caught rather than left to its default action: a shell starts background
/// commands with SIGINT ignored, and an inherited `SIG_IGN` would leave the live view
/// unstoppable from its own terminal (seen when the tests ran under `cmd &`).
fn interrupts() -> Receiver<()> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
        else {
            return;
        };
        if rt.block_on(tokio::signal::ctrl_c()).is_ok() {
            let _ = tx.send(());
        }
    });
    rx
}

/// The table's rows (header first), CPU % from the change between two samples. A workload only
/// in `now` (it started in between) gets its CPU % from its whole time so far: none shown.
fn rows(
    names: &[String],
    (t0, before): &(Instant, StatsResponse),
    (t1, now): &(Instant, StatsResponse),
) -> Vec<Vec<String>> {
    let elapsed = t1.duration_since(*t0).as_millis().max(1) as f64;
    let earlier: HashMap<&str, u64> = before
        .workloads
        .iter()
        .map(|w| (w.id.as_str(), w.cpu_ms))
        .collect();
    let mut rows = vec![[
        "ID",
        "NAME",
        "KIND",
        "CPU %",
        "MEM USAGE / LIMIT",
        "MEM %",
        "INSTANCES",
        "REQUESTS",
    ]
    .map(String::from)
    .to_vec()];
    for w in now.workloads.iter().filter(|w| wanted(names, w)) {
        let cpu = earlier
            .get(w.id.as_str())
            .map(|c0| {
                format!(
                    "{:.2}%",
                    w.cpu_ms.saturating_sub(*c0) as f64 * 100.0 / elapsed
                )
            })
            .unwrap_or_else(|| "--".into());
        let mem_pct = w.memory_bytes as f64 * 100.0 / w.memory_limit_bytes.max(1) as f64;
        rows.push(vec![
            w.id[..w.id.len().min(12)].to_string(),
            w.name.clone(),
            kind(w),
            cpu,
            format!(
                "{} / {}",
                human_size(w.memory_bytes),
                human_size(w.memory_limit_bytes)
            ),
            format!("{mem_pct:.2}%"),
            w.instances.to_string(),
            match w.kind {
                skiff_api::WorkloadKind::App => w.requests.to_string(),
                skiff_api::WorkloadKind::Task => "--".into(),
            },
        ]);
    }
    rows
}

fn kind(w: &WorkloadStats) -> String {
    match w.kind {
        skiff_api::WorkloadKind::Task => "task".into(),
        skiff_api::WorkloadKind::App => "app".into(),
    }
}

fn print(format: &ListFormat, s: &StatsResponse, rows: Vec<Vec<String>>) -> anyhow::Result<()> {
    match format {
        ListFormat::Json => {
            let names: Vec<&str> = rows.iter().skip(1).map(|r| r[1].as_str()).collect();
            let shown: Vec<&WorkloadStats> = s
                .workloads
                .iter()
                .filter(|w| names.contains(&w.name.as_str()))
                .collect();
            println!("{}", crate::term::json(&shown)?);
            Ok(())
        }
        f => crate::table::print(f, &rows),
    }
}

pub fn top(client: &Client, args: TopArgs) -> anyhow::Result<u8> {
    let (_, w) = client.call::<Workload>(
        Method::GET,
        &format!("/v1/workloads/{}", args.workload),
        None::<&()>,
    )?;
    let w = w.ok_or_else(|| anyhow::anyhow!("the daemon answered no workload"))?;
    let (_, s) = sample(client)?;
    let Some(st) = s.workloads.iter().find(|s| s.id == w.id) else {
        anyhow::bail!(
            "{}: not running (status {}); see skiff ps -a",
            args.workload,
            crate::cmd::ps::status(&w, std::time::SystemTime::now())
        );
    };
    let mut command = vec![w
        .spec
        .image_name
        .clone()
        .unwrap_or_else(|| w.spec.image.clone())];
    command.extend(w.spec.guest.args.iter().cloned());
    let rows = vec![
        ["INSTANCES", "MEM", "CPU TIME", "STATUS", "COMMAND"]
            .map(String::from)
            .to_vec(),
        vec![
            st.instances.to_string(),
            human_size(st.memory_bytes),
            format!("{:.2}s", st.cpu_ms as f64 / 1000.0),
            crate::cmd::ps::status(&w, std::time::SystemTime::now()),
            command.join(" "),
        ],
    ];
    crate::table::print(&ListFormat::Table, &rows)?;
    Ok(0)
}
