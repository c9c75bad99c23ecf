//! `GET /v1/info` (`skiff system info`).

use crate::daemon::Daemon;
use skiff_api::{
    EngineInfo, LogSettings, MemoryInfo, PoolInfo, Status, SystemInfo, WorkloadCounts, WorkloadKind,
};

pub fn info(d: &Daemon) -> SystemInfo {
    let mut c = WorkloadCounts::default();
    for w in d.list() {
        c.total += 1;
        match w.state.status {
            Status::Running => c.running += 1,
            Status::Restarting => c.restarting += 1,
            Status::Exited => c.exited += 1,
            Status::Stopped => c.stopped += 1,
            Status::Created => c.created += 1,
        }
        match w.kind {
            WorkloadKind::Task => c.tasks += 1,
            WorkloadKind::App => c.apps += 1,
        }
    }
    SystemInfo {
        version: env!("CARGO_PKG_VERSION").to_string(),
        wasmtime_version: skiff_engine::WASMTIME_VERSION.to_string(),
        home: d.info.home.display().to_string(),
        api: d.info.api.clone(),
        engine: EngineInfo {
            // The apps' engine: the one a pool matters for (tasks always allocate on demand).
            pooling: d.apps.as_ref().is_some_and(|a| a.engine().is_pooling()),
            settings_id: d.engine.settings_id().map(str::to_string),
            max_wasm_stack_bytes: skiff_engine::EngineConfig::DEFAULT_STACK as u64,
            epoch_tick_ms: 10,
        },
        pools: PoolInfo {
            worker_threads: d.info.worker_threads as u64,
            loaded_programs: d.loaded_programs() as u64,
        },
        workloads: c,
        memory: MemoryInfo {
            rss_bytes: rss_bytes(),
        },
        logs: LogSettings {
            max_size_bytes: d.log_config.max_size,
            max_files: d.log_config.max_files,
        },
        http: d.apps.as_ref().map(|a| a.info()),
        policy: d.info.policy.as_ref().map(|p| p.source().to_string()),
    }
}

/// From `/proc/self/statm` (resident pages × page size); 0 where there is no procfs.
fn rss_bytes() -> u64 {
    let pages = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u64>().ok())
        })
        .unwrap_or(0);
    pages * 4096
}
