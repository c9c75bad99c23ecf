//! `skiff serve`: serve wasi:http components on one listener, routed by Host and path prefix.

use crate::cmd::flags::{valid_name, GuestFlags, HttpFlags, Scope};
use crate::cmd::source::{pull_if_missing, resolve_to_run, PullPolicy, Workload};
use crate::home::Home;
use crate::units::{parse_duration, parse_size};
use anyhow::Context;
use clap::Args;
use skiff_engine::http::HttpAppConfig;
use skiff_engine::Engine;
use skiff_http::{AddError, AppSet, Route, ServerLimits, TlsFiles};
use skiff_spec::GuestSpec;
use std::collections::HashMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Serve wasi:http components; limits on, nothing granted unless asked
#[derive(Debug, Args)]
#[command(
    after_help = "Apps: [NAME=]FILE|IMAGE[@ROUTE], ROUTE = [HOST]/PREFIX (default: every request).\n\
A request goes to the app whose host matches most specifically (exact, *.domain, any), then\n\
whose path prefix is longest; nothing matching is a 404. NAME defaults to the file's stem, or\n\
the image's repository name; an image not in the store is pulled first (see --pull).\n\n\
Per-app flags: prefix a value with APP:: to apply it to one app only; without a prefix it\n\
applies to every app (limits: the default that APP:: values override).\n\n\
Examples:\n  \
skiff serve hello.wasm                                     127.0.0.1:8080, every path\n  \
skiff serve --listen 0.0.0.0:8080 api=api.wasm@api.example.com/ shop=shop.wasm@/shop\n  \
skiff serve --allow-outbound 'https://*.example.com' --memory 64m --timeout 5s app.wasm\n  \
skiff serve -e api::TOKEN=x --memory shop::32m api=api.wasm@/api shop=shop.wasm@/\n  \
skiff serve --tls-cert cert.pem --tls-key key.pem --admin-listen 127.0.0.1:9090 app.wasm\n  \
skiff serve --access-log - app.wasm                        one line per request on stderr"
)]
// The shared flags take an `APP::` scope here: say so where each is listed.
#[command(mut_arg("volumes", |a| a.value_name("[APP::]HOST:GUEST[:ro]")))]
#[command(mut_arg("env", |a| a.value_name("[APP::]K=V")))]
#[command(mut_arg("env_file", |a| a.value_name("[APP::]FILE")))]
#[command(mut_arg("memory", |a| a.value_name("[APP::]SIZE")))]
#[command(mut_arg("max_open", |a| a.value_name("[APP::]N")))]
#[command(mut_arg("timeout", |a| a.value_name("[APP::]DURATION")))]
#[command(mut_arg("allow_outbound", |a| a.value_name("[APP::]PATTERN")))]
#[command(mut_arg("cpu_time", |a| a.value_name("[APP::]DURATION")))]
#[command(mut_arg("max_concurrent", |a| a.value_name("[APP::]N")))]
#[command(mut_arg("queue_timeout", |a| a.value_name("[APP::]DURATION")))]
#[command(mut_arg("max_body", |a| a.value_name("[APP::]SIZE")))]
#[command(mut_arg("max_outbound", |a| a.value_name("[APP::]N")))]
#[command(mut_arg("max_app_outbound", |a| a.value_name("[APP::]N")))]
#[command(mut_arg("reuse", |a| a.value_name("[APP::]N")))]
pub struct ServeArgs {
    /// Address to serve on (port 0 picks a free port; the bound address is printed)
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080", value_parser = crate::units::parse_listen)]
    pub listen: SocketAddr,

    /// Address for /metrics (Prometheus) and /healthz; off unless given
    #[arg(long, value_name = "ADDR", value_parser = crate::units::parse_listen)]
    pub admin_listen: Option<SocketAddr>,

    /// Write one line per request to FILE (`-`: stderr): time, app, method, path, status,
    /// bytes, duration, request id. Rotated at 16 MiB, 4 files kept; lines a flood outruns
    /// are dropped and counted, never waited for
    #[arg(long, value_name = "FILE")]
    pub access_log: Option<PathBuf>,

    /// Serve HTTPS with this PEM certificate chain (needs --tls-key)
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// The PEM private key of --tls-cert
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    #[command(flatten)]
    pub guest: GuestFlags,

    #[command(flatten)]
    pub http: HttpFlags,

    /// Open client connections at most; at the cap one doing nothing is closed (never sent a head first, else idle longest)
    #[arg(long, value_name = "N", default_value_t = ServerLimits::DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: usize,

    /// Time from connecting to a complete first request head (TLS included); closed beyond
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub header_timeout: Duration,

    /// A connection with no request in progress is closed after this long
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub idle_timeout: Duration,

    /// Slowest request body, per second, after --body-grace of waiting on it; 408 below; 0: off
    #[arg(long, value_name = "SIZE", default_value = "4k", value_parser = parse_size)]
    pub min_body_rate: u64,

    /// How long a request body may stall in all, besides what --min-body-rate earns it
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub body_grace: Duration,

    /// Largest request head (at least 8k); 431 beyond
    #[arg(long, value_name = "SIZE", default_value = "16k", value_parser = parse_size)]
    pub max_header_size: u64,

    /// On SIGINT/SIGTERM, how long in-flight requests may take to finish
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub grace: Duration,

    /// Wasm stack limit
    #[arg(long, value_name = "SIZE", default_value = "512k", value_parser = parse_size)]
    pub stack: u64,

    /// Compile every time; do not read or write the compile cache
    #[arg(long)]
    pub no_cache: bool,

    /// Pull images before serving: missing (if not in the store), always, never
    #[arg(long, value_enum, default_value = "missing", value_name = "WHEN")]
    pub pull: PullPolicy,

    /// The apps: [NAME=]FILE|IMAGE[@ROUTE]
    #[arg(value_name = "APP", required = true)]
    pub apps: Vec<String>,
}

/// One `[NAME=]FILE[@ROUTE]` argument.
#[derive(Debug, Clone, PartialEq)]
struct AppSpec {
    name: String,
    source: String,
    /// Given after `@`; else the image's, else every request.
    route: Option<Route>,
}

impl AppSpec {
    /// The route is what follows the last `@`, if that contains a `/`: image references may hold
    /// an `@sha256:` digest, which never does.
    fn parse(s: &str) -> anyhow::Result<AppSpec> {
        let (name, rest) = match s.split_once('=') {
            Some((n, r)) if valid_name(n) => (Some(n.to_string()), r),
            _ => (None, s),
        };
        let (source, route) = match rest.rsplit_once('@') {
            Some((src, r)) if r.contains('/') => {
                (src, Some(Route::parse(r).map_err(anyhow::Error::msg)?))
            }
            // `app.wasm@shop`: a route without its `/` after a file that exists (an image's
            // `@sha256:…` digest is not a route); Route::parse says what was likely meant.
            Some((src, r)) if !r.starts_with("sha256:") && std::path::Path::new(src).is_file() => {
                (src, Some(Route::parse(r).map_err(anyhow::Error::msg)?))
            }
            _ => (rest, None),
        };
        if source.is_empty() {
            anyhow::bail!(
                "invalid app {s:?}: no file; expected [NAME=]FILE[@ROUTE], e.g. api=api.wasm@/api"
            );
        }
        let name = match name {
            Some(n) => n,
            None => {
                let stem = default_name(source);
                let n: String = stem
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                            c
                        } else {
                            '-'
                        }
                    })
                    .collect();
                if n.is_empty() {
                    "app".to_string()
                } else {
                    n
                }
            }
        };
        Ok(AppSpec {
            name,
            source: source.to_string(),
            route,
        })
    }
}

/// What an unnamed app is called: a file's stem (`api.wasm` → `api`), or an image's repository
/// name without registry, tag or digest (`reg.io/team/api:2.1` → `api`).
fn default_name(source: &str) -> String {
    let path = Path::new(source);
    let is_file = source.ends_with(".wasm") || source.starts_with(['.', '/']) || path.exists();
    if !is_file {
        if let Ok(r) = skiff_image::Reference::parse(source) {
            return r.path().rsplit('/').next().unwrap_or(r.path()).to_string();
        }
    }
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The guest `app` is: the image's defaults under the flags for it (an explicit `@ROUTE` wins
/// over the image's route).
fn guest_spec(
    args: &ServeArgs,
    app: &AppSpec,
    names: &[&str],
    workload: &Workload,
) -> anyhow::Result<GuestSpec> {
    let scope = Scope {
        app: &app.name,
        names,
    };
    let mut grants = args.guest.grants(scope)?;
    args.http.apply(scope, &mut grants)?;
    grants.route = app.route.as_ref().map(Route::to_string);
    let mut spec = skiff_spec::resolve(&workload.defaults(), grants);
    workload.mount_files(&mut spec);
    Ok(spec)
}

pub fn serve(home: &Home, args: ServeArgs) -> anyhow::Result<u8> {
    let specs = args
        .apps
        .iter()
        .map(|s| AppSpec::parse(s))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
    for (i, n) in names.iter().enumerate() {
        if names[..i].contains(n) {
            anyhow::bail!(
                "two apps are named {n:?}: name them, e.g. a={}@/a",
                specs[i].source
            );
        }
    }
    // Each source once: apps of one file share its bytes (and below, its program).
    let mut workloads: HashMap<&str, Workload> = HashMap::new();
    for spec in &specs {
        if !workloads.contains_key(spec.source.as_str()) {
            pull_if_missing(home, &spec.source, args.pull)?;
            workloads.insert(&spec.source, resolve_to_run(home, &spec.source)?);
        }
    }
    let mut routes = Vec::new();
    let mut configs = Vec::new();
    for spec in &specs {
        let guest = guest_spec(&args, spec, &names, &workloads[spec.source.as_str()])?;
        tracing::debug!("app {}: {}", spec.name, serde_json::to_string(&guest)?);
        let route = match &guest.route {
            Some(r) => Route::parse(r)
                .map_err(|e| anyhow::anyhow!("{}: the image's route: {e}", spec.source))?,
            None => Route::any(),
        };
        configs.push(
            HttpAppConfig::from_spec(&spec.name, &spec.name, &guest, None)
                .map_err(anyhow::Error::msg)?,
        );
        routes.push(route);
    }
    if args.max_header_size < 8192 {
        anyhow::bail!("--max-header-size must be at least 8k");
    }

    let engine = skiff_http::engine_for(
        &configs,
        (!args.no_cache).then(|| home.compile_cache()),
        usize::try_from(args.stack).context("--stack is too large")?,
    )?;
    let mut apps = AppSet::new(&engine);
    for ((spec, config), route) in specs.iter().zip(configs).zip(&routes) {
        // Apps of one file share one program (AppSet loads each source once).
        let load = |engine: &Engine| -> anyhow::Result<_> {
            let bytes = &workloads[spec.source.as_str()].bytes;
            let stderr = crate::progress::Stream::Stderr;
            crate::progress::compiling(stderr, &spec.source, bytes.len() as u64, || {
                engine.load_for(bytes, skiff_engine::Purpose::Serve)
            })
            .with_context(|| spec.source.clone())
        };
        apps.add(&spec.source, load, config, route.clone())
            .map_err(|e| match e {
                AddError::Load(e) => e,
                AddError::App(e) => anyhow::Error::new(e).context(spec.source.clone()),
                AddError::Route(e) => anyhow::Error::msg(e),
            })?;
    }
    let mut config = apps.into_config(
        args.listen,
        ServerLimits {
            max_connections: args.max_connections,
            header_read_timeout: args.header_timeout,
            idle_timeout: args.idle_timeout,
            body_grace: args.body_grace,
            min_body_rate: args.min_body_rate,
            max_header_bytes: usize::try_from(args.max_header_size)
                .context("--max-header-size is too large")?,
            max_h2_streams: ServerLimits::DEFAULT_MAX_H2_STREAMS,
            grace: args.grace,
        },
    );
    config.admin_listen = args.admin_listen;
    config.access_log = match &args.access_log {
        Some(path) => Some(
            skiff_http::AccessLog::open(path)
                .with_context(|| format!("cannot open the access log {}", path.display()))?,
        ),
        None => None,
    };
    config.tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
        }),
        _ => None,
    };
    skiff_http::serve_until_signal(config, |server| {
        let scheme = if server.is_tls() { "https" } else { "http" };
        let mut out = std::io::stdout().lock();
        for (spec, route) in specs.iter().zip(&routes) {
            writeln!(out, "app {} {} -> {}", spec.name, route, spec.source)?;
        }
        if let Some(a) = server.admin_addr() {
            writeln!(out, "admin on http://{a}")?;
        }
        // Last, so that a reader waiting for this line knows everything is up.
        writeln!(out, "listening on {scheme}://{}", server.local_addr())?;
        out.flush()
    })?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_specs() {
        let a = AppSpec::parse("api=api.wasm@api.example.com/").unwrap();
        assert_eq!((a.name.as_str(), a.source.as_str()), ("api", "api.wasm"));
        assert_eq!(a.route.unwrap().to_string(), "api.example.com/");
        let b = AppSpec::parse("./dir/http-hello.wasm").unwrap();
        assert_eq!(b.name, "http-hello");
        assert_eq!(b.route, None);
        let c = AppSpec::parse("shop.wasm@/shop").unwrap();
        assert_eq!(
            (c.name.as_str(), c.route.unwrap().to_string().as_str()),
            ("shop", "/shop")
        );
        // A digest reference keeps its @sha256:, and may still take a route.
        let d = AppSpec::parse("x=reg/app@sha256:abcd").unwrap();
        assert_eq!(d.source, "reg/app@sha256:abcd");
        let e = AppSpec::parse("x=reg/app@sha256:abcd@/x").unwrap();
        assert_eq!(
            (e.source.as_str(), e.route.unwrap().to_string().as_str()),
            ("reg/app@sha256:abcd", "/x")
        );
        assert!(AppSpec::parse("x=@/x").is_err());
        // An image is named after its repository, without registry, tag or digest.
        let f = AppSpec::parse("registry.example.com/team/api:2.1@/api").unwrap();
        assert_eq!(
            (f.name.as_str(), f.source.as_str()),
            ("api", "registry.example.com/team/api:2.1")
        );
        let digest = format!("shop@sha256:{}", "ab".repeat(32));
        assert_eq!(AppSpec::parse(&digest).unwrap().name, "shop");
        assert!(AppSpec::parse("a.wasm@nohost").is_ok_and(|s| s.source == "a.wasm@nohost"));
    }
}
