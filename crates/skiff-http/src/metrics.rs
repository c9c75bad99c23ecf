//! Prometheus text metrics, kept in per-app atomics: recording a request takes no lock.

use skiff_engine::http::AppStats;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

/// Upper bounds of the latency histogram, in seconds (time to the response head).
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
const STATUSES: usize = 600;

/// Time to the response head of one app's requests, as a Prometheus histogram. Shared by
/// `skiff serve`'s admin endpoint and the daemon's `/metrics`.
#[derive(Default)]
pub struct Latency {
    buckets: [AtomicU64; BUCKETS.len() + 1],
    sum_micros: AtomicU64,
}

impl Latency {
    pub fn record(&self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        let i = BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(BUCKETS.len());
        self.buckets[i].fetch_add(1, Relaxed);
        self.sum_micros
            .fetch_add(elapsed.as_micros() as u64, Relaxed);
    }

    /// The `_bucket`, `_sum` and `_count` lines of `skiff_http_request_duration_seconds` for `app`.
    pub fn write(&self, o: &mut String, app: &str) {
        let mut cumulative = 0;
        for (i, b) in self.buckets.iter().enumerate() {
            cumulative += b.load(Relaxed);
            let le = BUCKETS
                .get(i)
                .map_or_else(|| "+Inf".to_string(), |b| b.to_string());
            let _ = writeln!(
                o,
                "skiff_http_request_duration_seconds_bucket{{app=\"{app}\",le=\"{le}\"}} {cumulative}"
            );
        }
        let _ = writeln!(
            o,
            "skiff_http_request_duration_seconds_sum{{app=\"{app}\"}} {}",
            self.sum_micros.load(Relaxed) as f64 / 1e6
        );
        let _ = writeln!(
            o,
            "skiff_http_request_duration_seconds_count{{app=\"{app}\"}} {cumulative}"
        );
    }
}

/// The engine's counters of each app (live instances, traps, limit hits, outbound denials), as
/// Prometheus families: one definition for `skiff serve` and the daemon.
pub fn write_engine_stats(o: &mut String, apps: &[(&str, &AppStats)]) {
    type Get = fn(&AppStats) -> u64;
    let simple: [(&str, &str, &str, Get); 3] = [
        (
            "skiff_instances_live",
            "gauge",
            "Wasm instances alive now, by app.",
            |s| s.live.load(Relaxed),
        ),
        (
            "skiff_guest_traps_total",
            "counter",
            "Guests that trapped (panics, unreachable, stack overflow).",
            |s| s.traps.load(Relaxed),
        ),
        (
            "skiff_outbound_denied_total",
            "counter",
            "Outbound HTTP requests refused by the allow-list.",
            |s| s.outbound_denied.load(Relaxed),
        ),
    ];
    for (name, kind, help, get) in simple {
        let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (app, s) in apps {
            let _ = writeln!(o, "{name}{{app=\"{app}\"}} {}", get(s));
        }
    }
    o.push_str(
        "# HELP skiff_limit_hits_total Requests stopped or refused by a limit, by app and limit.\n",
    );
    o.push_str("# TYPE skiff_limit_hits_total counter\n");
    for (app, s) in apps {
        for (limit, c) in [
            ("memory", &s.memory_limit),
            ("cpu_time", &s.cpu_limit),
            ("timeout", &s.timeouts),
            ("concurrency", &s.overloaded),
            ("body_size", &s.body_too_large),
            ("outbound_concurrency", &s.outbound_limited),
        ] {
            let _ = writeln!(
                o,
                "skiff_limit_hits_total{{app=\"{app}\",limit=\"{limit}\"}} {}",
                c.load(Relaxed)
            );
        }
    }
}

/// Counters of one app (or of requests no route matched).
pub(crate) struct AppMetrics {
    pub(crate) name: String,
    statuses: Box<[AtomicU64]>,
    latency: Latency,
    engine: Option<Arc<AppStats>>,
}

impl AppMetrics {
    pub(crate) fn new(name: &str, engine: Option<Arc<AppStats>>) -> AppMetrics {
        AppMetrics {
            name: name.to_string(),
            statuses: (0..STATUSES).map(|_| AtomicU64::new(0)).collect(),
            latency: Latency::default(),
            engine,
        }
    }

    pub(crate) fn record(&self, status: u16, elapsed: Duration) {
        if let Some(c) = self.statuses.get(status as usize) {
            c.fetch_add(1, Relaxed);
        }
        self.latency.record(elapsed);
    }
}

/// Connection-level gauges and counters.
#[derive(Default)]
pub(crate) struct ConnMetrics {
    pub(crate) open: AtomicU64,
    pub(crate) accepted: AtomicU64,
    pub(crate) tls_failures: AtomicU64,
    /// Closed by the server, by reason: no head in time, idle, evicted at the cap, a response
    /// the client let stall.
    pub(crate) head_timeouts: AtomicU64,
    pub(crate) idle_closed: AtomicU64,
    pub(crate) evicted: AtomicU64,
    pub(crate) stalled: AtomicU64,
}

impl ConnMetrics {
    pub(crate) fn expired(&self, e: crate::Expiry) {
        use crate::Expiry::*;
        let c = match e {
            NoHead { evicted: true } | Idle { evicted: true } => &self.evicted,
            NoHead { evicted: false } => &self.head_timeouts,
            Idle { evicted: false } => &self.idle_closed,
            Stalled => &self.stalled,
        };
        c.fetch_add(1, Relaxed);
    }
}

pub(crate) fn render(apps: &[AppMetrics], conns: &ConnMetrics) -> String {
    let mut o = String::with_capacity(4096);
    o.push_str("# HELP skiff_http_requests_total Requests answered, by app and status.\n");
    o.push_str("# TYPE skiff_http_requests_total counter\n");
    for a in apps {
        for (code, c) in a.statuses.iter().enumerate() {
            let n = c.load(Relaxed);
            if n > 0 {
                let _ = writeln!(
                    o,
                    "skiff_http_requests_total{{app=\"{}\",status=\"{code}\"}} {n}",
                    a.name
                );
            }
        }
    }
    o.push_str("# HELP skiff_http_request_duration_seconds Time to the response head, by app.\n");
    o.push_str("# TYPE skiff_http_request_duration_seconds histogram\n");
    for a in apps {
        a.latency.write(&mut o, &a.name);
    }
    let engine: Vec<(&str, &AppStats)> = apps
        .iter()
        .filter_map(|a| a.engine.as_deref().map(|e| (a.name.as_str(), e)))
        .collect();
    write_engine_stats(&mut o, &engine);
    o.push_str("# HELP skiff_http_connections_open Client connections open now.\n");
    o.push_str("# TYPE skiff_http_connections_open gauge\n");
    let _ = writeln!(
        o,
        "skiff_http_connections_open {}",
        conns.open.load(Relaxed)
    );
    o.push_str("# TYPE skiff_http_connections_total counter\n");
    let _ = writeln!(
        o,
        "skiff_http_connections_total {}",
        conns.accepted.load(Relaxed)
    );
    o.push_str("# TYPE skiff_tls_handshake_failures_total counter\n");
    let _ = writeln!(
        o,
        "skiff_tls_handshake_failures_total {}",
        conns.tls_failures.load(Relaxed)
    );
    o.push_str(
        "# HELP skiff_http_connections_closed_total Connections the server closed, by reason.\n",
    );
    o.push_str("# TYPE skiff_http_connections_closed_total counter\n");
    for (reason, c) in [
        ("head-timeout", &conns.head_timeouts),
        ("idle", &conns.idle_closed),
        ("evicted", &conns.evicted),
        ("stalled", &conns.stalled),
    ] {
        let _ = writeln!(
            o,
            "skiff_http_connections_closed_total{{reason=\"{reason}\"}} {}",
            c.load(Relaxed)
        );
    }
    o
}
