//! The one metrics model of `skiff serve`, the shim and the daemon: the same families, names
//! and labels wherever an app is served (docs/metrics.md lists them). Kept in per-app atomics:
//! recording a request takes no lock. Each answered request is counted once, by the server,
//! on the [`RequestMetrics`] of the app the route led to (see `Backend::requests`).

use skiff_engine::http::AppStats;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Upper bounds of the latency histogram, in seconds (time to the response head).
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Status classes, the `class` label of `skiff_http_requests_total`.
///
/// A class rather than the code (`code="200"`, promhttp's choice): five counters per app, not
/// one per code, because a daemon serves thousands of apps (10,000 apps × 600 codes × 8 bytes
/// would be 48 MB of counters for a node whose apps take ~10 KiB each), and a class is what
/// alerts are written on (the 5xx ratio). Which limit turned a request into a 503 or a 504 is
/// in `skiff_limit_hits_total{limit}`, and every error's code is in the log by request id.
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// Time to the response head of one app's requests, as a Prometheus histogram.
#[derive(Default)]
struct Latency {
    buckets: [AtomicU64; BUCKETS.len() + 1],
    sum_micros: AtomicU64,
}

impl Latency {
    fn record(&self, elapsed: Duration) {
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
    fn write(&self, o: &mut String, app: &str) {
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

/// One app's answered requests, by status class, and how long they took to their head.
#[derive(Default)]
pub struct RequestMetrics {
    classes: [AtomicU64; 5],
    latency: Latency,
}

impl RequestMetrics {
    pub fn record(&self, status: u16, elapsed: Duration) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.classes[class].fetch_add(1, Relaxed);
        self.latency.record(elapsed);
    }
}

/// One app's series: its name (the `app` label), its requests, and the engine's counters of
/// its instances (none for requests no route matched, listed as app `-`).
#[derive(Clone, Copy)]
pub struct AppSeries<'a> {
    pub name: &'a str,
    pub requests: &'a RequestMetrics,
    pub engine: Option<&'a AppStats>,
}

fn family(o: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Every per-app family, family by family (Prometheus wants a family's lines together).
fn write_apps(o: &mut String, apps: &[AppSeries<'_>]) {
    family(
        o,
        "skiff_http_requests_total",
        "counter",
        "Requests answered, by app and status class.",
    );
    for a in apps {
        for (class, n) in CLASSES.iter().zip(&a.requests.classes) {
            let n = n.load(Relaxed);
            if n > 0 {
                let _ = writeln!(
                    o,
                    "skiff_http_requests_total{{app=\"{}\",class=\"{class}\"}} {n}",
                    a.name
                );
            }
        }
    }
    family(
        o,
        "skiff_http_request_duration_seconds",
        "histogram",
        "Time to the response head, by app.",
    );
    for a in apps {
        a.requests.latency.write(o, a.name);
    }
    let engine: Vec<(&str, &AppStats)> = apps
        .iter()
        .filter_map(|a| a.engine.map(|e| (a.name, e)))
        .collect();
    write_engine_stats(o, &engine);
}

/// The engine's counters of each app (live instances, traps, limit hits, outbound denials).
fn write_engine_stats(o: &mut String, apps: &[(&str, &AppStats)]) {
    type Get = fn(&AppStats) -> u64;
    let simple: [(&str, &str, &str, Get); 4] = [
        (
            "skiff_instances_live",
            "gauge",
            "Wasm instances alive now, by app.",
            |s| s.live.load(Relaxed),
        ),
        (
            "skiff_instances_reused_total",
            "counter",
            "Requests served by an instance an earlier request had used (--reuse), by app.",
            |s| s.reused.load(Relaxed),
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
        family(o, name, kind, help);
        for (app, s) in apps {
            let _ = writeln!(o, "{name}{{app=\"{app}\"}} {}", get(s));
        }
    }
    family(
        o,
        "skiff_memory_bytes",
        "gauge",
        "Linear memory and tables held by the app's live instances, by app.",
    );
    for (app, s) in apps {
        let _ = writeln!(
            o,
            "skiff_memory_bytes{{app=\"{app}\"}} {}",
            s.usage.memory_bytes()
        );
    }
    family(
        o,
        "skiff_cpu_seconds_total",
        "counter",
        "Time the app's guests spent running wasm, in 10 ms epoch ticks, by app.",
    );
    for (app, s) in apps {
        let secs = s.usage.cpu_time().as_secs_f64();
        let _ = writeln!(o, "skiff_cpu_seconds_total{{app=\"{app}\"}} {secs}");
    }
    family(
        o,
        "skiff_limit_hits_total",
        "counter",
        "Requests stopped or refused by a limit, by app and limit.",
    );
    for (app, s) in apps {
        for (limit, c) in [
            ("memory", &s.memory_limit),
            ("cpu_time", &s.cpu_limit),
            ("timeout", &s.timeouts),
            ("concurrency", &s.overloaded),
            ("instance_pool", &s.pool_full),
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

/// A server's own counters: its connections, and the requests no route matched. Rendered with
/// the apps' series by [`ServerMetrics::render`], the one renderer of `skiff serve`'s admin
/// endpoint and the daemon's `/metrics`.
#[derive(Default)]
pub struct ServerMetrics {
    pub(crate) conns: ConnMetrics,
    pub(crate) unrouted: RequestMetrics,
}

impl ServerMetrics {
    /// Append the families of `apps` (plus app `-`: requests no route matched) and of the
    /// server's connections to `o`, in Prometheus text.
    pub fn render(&self, o: &mut String, apps: &[AppSeries<'_>]) {
        let mut all = Vec::with_capacity(apps.len() + 1);
        all.extend_from_slice(apps);
        all.push(AppSeries {
            name: "-",
            requests: &self.unrouted,
            engine: None,
        });
        write_apps(o, &all);
        let conns = &self.conns;
        family(
            o,
            "skiff_http_connections_open",
            "gauge",
            "Client connections open now.",
        );
        let _ = writeln!(
            o,
            "skiff_http_connections_open {}",
            conns.open.load(Relaxed)
        );
        family(
            o,
            "skiff_http_connections_total",
            "counter",
            "Client connections accepted.",
        );
        let _ = writeln!(
            o,
            "skiff_http_connections_total {}",
            conns.accepted.load(Relaxed)
        );
        family(
            o,
            "skiff_tls_handshake_failures_total",
            "counter",
            "TLS handshakes that failed or did not finish in time.",
        );
        let _ = writeln!(
            o,
            "skiff_tls_handshake_failures_total {}",
            conns.tls_failures.load(Relaxed)
        );
        family(
            o,
            "skiff_http_connections_closed_total",
            "counter",
            "Connections the server closed, by reason.",
        );
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_count_by_class_and_every_family_has_its_type() {
        let server = ServerMetrics::default();
        let requests = RequestMetrics::default();
        let stats = AppStats::default();
        requests.record(200, Duration::from_millis(1));
        requests.record(204, Duration::from_millis(1));
        requests.record(503, Duration::from_millis(1));
        server.unrouted.record(404, Duration::from_micros(10));
        let mut o = String::new();
        server.render(
            &mut o,
            &[AppSeries {
                name: "web",
                requests: &requests,
                engine: Some(&stats),
            }],
        );
        for line in [
            "skiff_http_requests_total{app=\"web\",class=\"2xx\"} 2",
            "skiff_http_requests_total{app=\"web\",class=\"5xx\"} 1",
            "skiff_http_requests_total{app=\"-\",class=\"4xx\"} 1",
            "skiff_http_request_duration_seconds_count{app=\"web\"} 3",
            "skiff_limit_hits_total{app=\"web\",limit=\"instance_pool\"} 0",
            "skiff_http_connections_open 0",
        ] {
            assert!(o.lines().any(|l| l == line), "no {line:?} in\n{o}");
        }
        // Every sample's family is declared once, before its samples.
        let mut declared = std::collections::HashSet::new();
        for l in o.lines() {
            if let Some(t) = l.strip_prefix("# TYPE ") {
                let name = t.split(' ').next().unwrap();
                assert!(declared.insert(name.to_string()), "{name} declared twice");
            } else if !l.starts_with('#') {
                let name = l.split(['{', ' ']).next().unwrap();
                let family = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| name.strip_suffix(s))
                    .filter(|f| declared.contains(*f))
                    .unwrap_or(name);
                assert!(declared.contains(family), "{l} before its # TYPE");
            }
        }
    }
}
