//! `GET /metrics`: the node in Prometheus text, with every HTTP app's own series (the data
//! plane's server counts daemon apps together; the daemon knows them apart). Recording a request
//! is a few relaxed atomic adds on the app's own counters: no lock on the hot path.

use crate::daemon::Daemon;
use skiff_api::Status;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Upper bounds of the latency histogram, in seconds (time to the response head); `skiff
/// serve`'s buckets.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// One app's answered requests, by status class, and how long they took. Classes rather than
/// codes: 5 counters per app instead of 600, for a node with thousands of apps.
#[derive(Default)]
pub struct RequestMetrics {
    classes: [AtomicU64; 5],
    buckets: [AtomicU64; BUCKETS.len() + 1],
    sum_micros: AtomicU64,
}

impl RequestMetrics {
    pub fn record(&self, status: u16, elapsed: Duration) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.classes[class].fetch_add(1, Relaxed);
        let secs = elapsed.as_secs_f64();
        let i = BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(BUCKETS.len());
        self.buckets[i].fetch_add(1, Relaxed);
        self.sum_micros
            .fetch_add(elapsed.as_micros() as u64, Relaxed);
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
    let simple: [(&str, &str, &str, Gauge); 7] = [
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
        (
            "skiff_instances_live",
            "gauge",
            "Wasm instances of the app alive now.",
            |c| c.engine().live.load(Relaxed),
        ),
        (
            "skiff_guest_traps_total",
            "counter",
            "Guests of the app that trapped.",
            |c| c.engine().traps.load(Relaxed),
        ),
    ];
    for (name, kind, help, get) in simple {
        family(&mut o, name, kind, help);
        for (app, c) in &per_app {
            let _ = writeln!(o, "{name}{{app=\"{app}\"}} {}", get(c));
        }
    }
    family(
        &mut o,
        "skiff_outbound_denied_total",
        "counter",
        "Outbound HTTP requests of the app refused by its grants.",
    );
    for (app, c) in &per_app {
        let _ = writeln!(
            o,
            "skiff_outbound_denied_total{{app=\"{app}\"}} {}",
            c.engine().outbound_denied.load(Relaxed)
        );
    }
    family(
        &mut o,
        "skiff_limit_hits_total",
        "counter",
        "Requests of the app stopped or refused by a limit.",
    );
    for (app, c) in &per_app {
        let s = c.engine();
        for (limit, n) in [
            ("memory", &s.memory_limit),
            ("cpu_time", &s.cpu_limit),
            ("timeout", &s.timeouts),
            ("concurrency", &s.overloaded),
            ("body_size", &s.body_too_large),
        ] {
            let _ = writeln!(
                o,
                "skiff_limit_hits_total{{app=\"{app}\",limit=\"{limit}\"}} {}",
                n.load(Relaxed)
            );
        }
    }
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
        let m = c.http();
        let mut cumulative = 0;
        for (i, b) in m.buckets.iter().enumerate() {
            cumulative += b.load(Relaxed);
            let le = BUCKETS
                .get(i)
                .map_or_else(|| "+Inf".to_string(), |b| b.to_string());
            let _ = writeln!(o, "skiff_http_request_duration_seconds_bucket{{app=\"{app}\",le=\"{le}\"}} {cumulative}");
        }
        let _ = writeln!(
            o,
            "skiff_http_request_duration_seconds_sum{{app=\"{app}\"}} {}",
            m.sum_micros.load(Relaxed) as f64 / 1e6
        );
        let _ = writeln!(
            o,
            "skiff_http_request_duration_seconds_count{{app=\"{app}\"}} {cumulative}"
        );
    }
    o
}
