//! `skiff system …`: the node as a whole — the local store (`check`, `df`, `prune`) and the
//! daemon (`info`).

use crate::client::Client;
use crate::home::Home;
use clap::{Args, Subcommand};
use hyper::Method;
use skiff_api::SystemInfo;

#[derive(Debug, Subcommand)]
pub enum SystemCommand {
    /// Verify every blob's digest and every tag's image; list leftovers of interrupted writes
    #[command(after_help = "Examples:\n  \
skiff system check\n  \
skiff system check --repair        remove corrupt blobs, dangling tags and leftovers\n\n\
Leftovers (temp files of writes killed mid-way) are harmless and are not problems: they are\n\
never read, and the next skiff command that opens the store removes them. A write in flight in\n\
another process holds a lock on its temp file and is never touched.\n\n\
Exit status: 0 nothing wrong (or all repaired), 1 problems found.")]
    Check(CheckArgs),
    /// The daemon: versions, engine settings, pools, workload counts, HTTP apps, memory
    #[command(after_help = "Examples:\n  \
skiff system info\n  \
skiff system info --format json | jq .http")]
    Info(InfoArgs),
    /// Disk used by images and compiled code, and how much of it no image name needs
    #[command(after_help = "Examples:\n  \
skiff system df\n  \
skiff system df --format json | jq '.[].reclaimable_bytes'")]
    Df(crate::cmd::disk::DfArgs),
    /// Remove stopped workloads, blobs no image name reaches, their compiled code and leftovers
    #[command(after_help = "Examples:\n  \
skiff system prune        asks first (on a terminal)\n  \
skiff system prune -f\n\n\
Running workloads, tagged images and their compiled code stay.")]
    Prune(crate::cmd::disk::PruneArgs),
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Remove what is wrong: corrupt blobs, foreign files, dangling tags, leftovers
    #[arg(long)]
    pub repair: bool,
}

#[derive(Debug, Args)]
pub struct InfoArgs {
    /// Output format
    #[arg(long, value_enum, default_value = "table")]
    pub format: crate::cmd::inspect::Format,
}

/// `check` works on the store directly; `info` asks the daemon (`client` is only called then).
pub fn system(
    home: &Home,
    client: impl FnOnce() -> anyhow::Result<Client>,
    cmd: SystemCommand,
) -> anyhow::Result<u8> {
    match cmd {
        SystemCommand::Check(args) => check(home, args),
        SystemCommand::Info(args) => info(&client()?, args),
        SystemCommand::Df(args) => crate::cmd::disk::df(home, args),
        SystemCommand::Prune(args) => crate::cmd::disk::prune(home, client, args),
    }
}

fn check(home: &Home, args: CheckArgs) -> anyhow::Result<u8> {
    // As is: a check reports leftovers rather than sweeping them first.
    let store = home.store_as_is()?;
    let r = store.check(args.repair)?;
    for p in &r.problems {
        println!("{}{p}", if r.repaired { "removed: " } else { "" });
    }
    for l in &r.leftovers {
        println!(
            "{}leftover of an interrupted write: {} ({} bytes)",
            if r.repaired { "removed: " } else { "" },
            l.path.display(),
            l.bytes
        );
    }
    if r.in_flight > 0 {
        println!(
            "{} write(s) in flight in other skiff processes (left alone)",
            r.in_flight
        );
    }
    let leftovers = r.leftovers.len();
    println!(
        "Checked {} blobs and {} tags: {} problem{}{}; {} leftover{} of interrupted writes{}",
        r.blobs,
        r.tags,
        r.problems.len(),
        if r.problems.len() == 1 { "" } else { "s" },
        if r.repaired && !r.problems.is_empty() {
            ", repaired"
        } else {
            ""
        },
        leftovers,
        if leftovers == 1 { "" } else { "s" },
        match (leftovers, r.repaired) {
            (0, _) => "",
            (_, true) => ", removed",
            (_, false) => " (harmless; --repair removes them, as does the next skiff command)",
        }
    );
    if !r.problems.is_empty() && !r.repaired {
        println!("Run `skiff system check --repair` to remove them.");
        return Ok(1);
    }
    Ok(0)
}

fn info(client: &Client, args: InfoArgs) -> anyhow::Result<u8> {
    let (_, info) = client.call::<SystemInfo>(Method::GET, "/v1/info", None::<&()>)?;
    let i = info.ok_or_else(|| anyhow::anyhow!("the daemon answered nothing"))?;
    if let crate::cmd::inspect::Format::Json = args.format {
        println!("{}", crate::term::json(&i)?);
        return Ok(0);
    }
    let w = &i.workloads;
    // A daemon on TCP may be another machine's: its words are escaped like an image's.
    let t = crate::term::for_terminal;
    println!("Version:          {}", t(&i.version));
    println!("Wasmtime:         {}", t(&i.wasmtime_version));
    println!("Home:             {}", t(&i.home));
    println!("API socket:       {}", t(&i.api.socket));
    println!(
        "API TCP:          {}",
        t(i.api.tcp.as_deref().unwrap_or("-"))
    );
    println!(
        "Engine:           {} allocator, settings {}, wasm stack {} KiB, epoch tick {} ms",
        if i.engine.pooling {
            "pooling"
        } else {
            "on-demand"
        },
        t(i.engine.settings_id.as_deref().unwrap_or("-")),
        i.engine.max_wasm_stack_bytes >> 10,
        i.engine.epoch_tick_ms
    );
    println!("Worker threads:   {}", i.pools.worker_threads);
    println!("Loaded programs:  {}", i.pools.loaded_programs);
    println!(
        "Workloads:        {} ({} running, {} restarting, {} exited, {} stopped, {} created; {} tasks, {} apps)",
        w.total, w.running, w.restarting, w.exited, w.stopped, w.created, w.tasks, w.apps
    );
    println!(
        "Memory (RSS):     {:.1} MiB",
        i.memory.rss_bytes as f64 / (1 << 20) as f64
    );
    println!(
        "Logs:             rotated at {} KiB, {} files kept",
        i.logs.max_size_bytes >> 10,
        i.logs.max_files
    );
    match &i.policy {
        Some(p) => println!("Trust policy:     {} (checks every upload)", t(p)),
        None => println!("Trust policy:     - (every binary is accepted; see docs/trust.md)"),
    }
    match &i.http {
        None => println!("HTTP apps:        - (start the daemon with --http-listen ADDR)"),
        Some(h) => {
            println!(
                "HTTP apps:        http://{} ({} routes)",
                t(&h.listen),
                h.routes
            );
            println!(
                "App code cache:   {} loaded, {:.1} of {:.1} MiB; {} loads, {} evictions",
                h.loaded_apps,
                h.loaded_bytes as f64 / (1 << 20) as f64,
                h.budget_bytes as f64 / (1 << 20) as f64,
                h.loads,
                h.evictions
            );
        }
    }
    Ok(0)
}
