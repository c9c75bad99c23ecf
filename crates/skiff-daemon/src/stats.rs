//! `GET /v1/stats` (`skiff stats`, `skiff top`): what each running workload uses now, from the
//! counters the engine fills ([`skiff_engine::Usage`]): a task's own, an app's in the data
//! plane (kept across its versions and loads).

use crate::daemon::Daemon;
use skiff_api::{StatsResponse, Status, WorkloadKind, WorkloadStats};

pub fn stats(d: &Daemon) -> StatsResponse {
    let workloads = d
        .list()
        .into_iter()
        .filter(|w| matches!(w.state.status, Status::Running | Status::Restarting))
        .filter_map(|w| {
            let limits = &w.spec.guest.limits;
            let (usage, memory_limit_bytes, requests) = match w.kind {
                WorkloadKind::Task => (
                    d.usage_of(&w.id)?,
                    skiff_engine::Limits::from(limits).memory,
                    0,
                ),
                WorkloadKind::App => {
                    let counters = d.apps.as_ref()?.counters(&w.id)?;
                    (
                        counters.engine().usage.clone(),
                        skiff_engine::http::HttpLimits::from(limits).memory,
                        w.app.as_ref().map_or(0, |a| a.requests),
                    )
                }
            };
            Some(WorkloadStats {
                memory_bytes: usage.memory_bytes(),
                memory_limit_bytes,
                cpu_ms: u64::try_from(usage.cpu_time().as_millis()).unwrap_or(u64::MAX),
                instances: usage.instances(),
                requests,
                id: w.id,
                name: w.name,
                kind: w.kind,
                status: w.state.status,
            })
        })
        .collect();
    StatsResponse {
        time: crate::util::now(),
        workloads,
    }
}
