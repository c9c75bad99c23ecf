//! `GET /metrics`: the node in Prometheus text: its workloads, its apps' own families (the
//! `skiff_app_*` ones: loads, evictions, versions), and then every family `skiff serve` has,
//! with the same names and labels, rendered by the same code (`skiff_http::ServerMetrics`).
//! The data plane's server counts each request once, on its app's counters (per name, so they
//! survive redeploys): a few relaxed atomic adds, no lock on the hot path.

use crate::daemon::Daemon;
use skiff_api::Status;
use skiff_http::AppSeries;
use std::fmt::Write as _;

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
    let series: Vec<AppSeries<'_>> = per_app
        .iter()
        .map(|(app, c)| AppSeries {
            name: app,
            requests: c.http(),
            engine: Some(c.engine()),
        })
        .collect();
    apps.server_metrics.render(&mut o, &series);
    o
}
