//! `skiff system info`.

use crate::client::Client;
use clap::{Args, Subcommand};
use hyper::Method;
use skiff_api::SystemInfo;

/// The daemon and its node
#[derive(Debug, Args)]
pub struct SystemArgs {
    #[command(subcommand)]
    pub command: SystemCommand,
}

#[derive(Debug, Subcommand)]
pub enum SystemCommand {
    /// Versions, engine settings, pools, workload counts, memory
    Info {
        #[arg(long, value_enum, default_value = "table")]
        format: crate::cmd::inspect::Format,
    },
}

pub fn system(client: &Client, args: SystemArgs) -> anyhow::Result<u8> {
    let SystemCommand::Info { format } = args.command;
    let (_, info) = client.call::<SystemInfo>(Method::GET, "/v1/info", None::<&()>)?;
    let i = info.ok_or_else(|| anyhow::anyhow!("the daemon answered nothing"))?;
    if let crate::cmd::inspect::Format::Json = format {
        println!("{}", serde_json::to_string_pretty(&i)?);
        return Ok(0);
    }
    let w = &i.workloads;
    println!("Version:          {}", i.version);
    println!("Wasmtime:         {}", i.wasmtime_version);
    println!("Home:             {}", i.home);
    println!("API socket:       {}", i.api.socket);
    println!("API TCP:          {}", i.api.tcp.as_deref().unwrap_or("-"));
    println!(
        "Engine:           {} allocator, settings {}, wasm stack {} KiB, epoch tick {} ms",
        if i.engine.pooling {
            "pooling"
        } else {
            "on-demand"
        },
        i.engine.settings_id.as_deref().unwrap_or("-"),
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
    Ok(0)
}
