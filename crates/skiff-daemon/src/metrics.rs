//! `GET /metrics`: the node in Prometheus text, with every HTTP app's own series (the data
//! plane's server counts daemon apps together; the daemon knows them apart). Recording a request
//! is a few relaxed atomic adds on the app's own counters: no lock on the hot path.

use crate::daemon::Daemon;
use skiff_api::Status;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// One app's answered requests, by status class, and how long they took. Classes rather than
/// codes: 5 counters per app instead of 600, for a node with thousands of apps.
#[derive(Default)]
pub struct RequestMetrics {
    classes: [AtomicU64; 5],
    latency: skiff_http::Latency,
}

impl RequestMetrics {
    pub fn record(&self, status: u16, elapsed: Duration) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.classes[class].fetch_add(1, Relaxed);
        self.latency.record(elapsed);
    }
}

fn family(o: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

pub fn render(d: &Daemon) -> String {
    let mut o = String::with_capacity(4096);
    let all = d.list();
    family(
        &mut o,
        "skiff_workloads",
        "gauge",
        "Workloads by kind and status.",
    );
    let mut counts = std::collections::BTreeMap::new();
    for w in &all {
        let status = match w.state.status {
            Status::Created => "created",
            Status::Running => "running",
            Status::Restarting => "restarting",
            Status::Exited => "exited",
            Status::Stopped => "stopped",
        };
        let kind = match w.kind {
            skiff_api::WorkloadKind::Task => "task",
            skiff_api::WorkloadKind::App => "app",
        };
        *counts.entry((kind, status)).or_insert(0u64) += 1;
    }
    for ((kind, status), n) in counts {
        let _ = writeln!(
            o,
            "skiff_workloads{{kind=\"{kind}\",status=\"{status}\"}} {n}"
        );
    }
    let Some(apps) = &d.apps else {
        return o;
    };
    let info = apps.info();
    family(
        &mut o,
        "skiff_apps_loaded",
        "gauge",
        "Apps whose code is in memory.",
    );
    let _ = writeln!(o, "skiff_apps_loaded {}", info.loaded_apps);
    family(
        &mut o,
        "skiff_apps_loaded_bytes",
        "gauge",
        "What the loaded apps weigh against --app-cache-size.",
    );
    let _ = writeln!(o, "skiff_apps_loaded_bytes {}", info.loaded_bytes);
    // Every app's series, family by family (Prometheus wants a family's lines together).
    let per_app: Vec<(String, crate::apps::AppCounters)> = all
        .iter()
        .filter(|w| w.kind == skiff_api::WorkloadKind::App)
        .filter_map(|w| Some((w.name.clone(), apps.counters(&w.id)?)))
        .collect();
    type Gauge = fn(&crate::apps::AppCounters) -> u64;
    let simple: [(&str, &str, &str, Gauge); 5] = [
        (
            "skiff_app_requests_in_flight",
            "gauge",
            "Requests of the app in progress.",
            |c| c.in_flight(),
        ),
        (
            "skiff_app_loaded",
            "gauge",
            "1 while the app's code is in memory (scale to zero: 0 until its first request).",
            |c| c.loaded(),
        ),
        (
            "skiff_app_loads_total",
            "counter",
            "Times the app's code was loaded.",
            |c| c.loads(),
        ),
        (
            "skiff_app_evictions_total",
            "counter",
            "Times the memory budget unloaded the app.",
            |c| c.evictions(),
        ),
        (
            "skiff_app_version",
            "gauge",
            "Versions deployed under the app's name.",
            |c| c.version(),
        ),
    ];
    for (name, kind, help, get) in simple {
        family(&mut o, name, kind, help);
        for (app, c) in &per_app {
            let _ = writeln!(o, "{name}{{app=\"{app}\"}} {}", get(c));
        }
    }
    let engine: Vec<(&str, &skiff_engine::http::AppStats)> = per_app
        .iter()
        .map(|(app, c)| (app.as_str(), c.engine()))
        .collect();
    skiff_http::write_engine_stats(&mut o, &engine);
    family(
        &mut o,
        "skiff_http_requests_total",
        "counter",
        "Requests answered for the app, by status class.",
    );
    for (app, c) in &per_app {
        for (class, n) in CLASSES.iter().zip(&c.http().classes) {
            let n = n.load(Relaxed);
            if n > 0 {
                let _ = writeln!(
                    o,
                    "skiff_http_requests_total{{app=\"{app}\",class=\"{class}\"}} {n}"
                );
            }
        }
    }
    family(
        &mut o,
        "skiff_http_request_duration_seconds",
        "histogram",
        "Time to the response head, by app.",
    );
    for (app, c) in &per_app {
        c.http().latency.write(&mut o, app);
    }
    o
}
