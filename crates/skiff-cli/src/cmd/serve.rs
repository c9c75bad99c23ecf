//! `skiff serve`: serve wasi:http components on one listener, routed by Host and path prefix.

use crate::cmd::run::{parse_env, read_env_file};
use crate::cmd::source::{pull_if_missing, resolve, PullPolicy};
use crate::home::Home;
use crate::units::{parse_duration, parse_max_open, parse_size};
use anyhow::Context;
use clap::Args;
use skiff_engine::http::{HttpAppConfig, HttpLimits, OutboundPolicy, OutboundRule};
use skiff_engine::{Engine, Mount, Sandbox};
use skiff_http::{AddError, AppSet, Route, ServerLimits, TlsFiles};
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
skiff serve --tls-cert cert.pem --tls-key key.pem --admin-listen 127.0.0.1:9090 app.wasm"
)]
pub struct ServeArgs {
    /// Address to serve on (port 0 picks a free port; the bound address is printed)
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Address for /metrics (Prometheus) and /healthz; off unless given
    #[arg(long, value_name = "ADDR")]
    pub admin_listen: Option<SocketAddr>,

    /// Serve HTTPS with this PEM certificate chain (needs --tls-key)
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// The PEM private key of --tls-cert
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Set a guest environment variable: [APP::]K=V, or [APP::]K to pass the host's value
    #[arg(short = 'e', long = "env", value_name = "[APP::]K=V")]
    pub env: Vec<String>,

    /// Read guest environment variables from a file of K=V lines
    #[arg(long, value_name = "[APP::]FILE")]
    pub env_file: Vec<String>,

    /// Mount a host directory: [APP::]HOST:GUEST[:ro]
    #[arg(short = 'v', long = "volume", value_name = "[APP::]HOST:GUEST[:ro]")]
    pub volumes: Vec<String>,

    /// Allow outbound HTTP to scheme://host[:port] (wildcards: *.example.com, *, :*); none by default
    #[arg(long, value_name = "[APP::]PATTERN")]
    pub allow_outbound: Vec<String>,

    /// Allow TCP/UDP sockets and name lookup to every app
    #[arg(long)]
    pub net: bool,

    /// Memory per instance: every linear memory plus every table (8 bytes per element),
    /// together [default: 128m]
    #[arg(long, value_name = "[APP::]SIZE")]
    pub memory: Vec<String>,

    /// Time a request may spend executing wasm; 504 beyond [default: 500ms]
    #[arg(long, value_name = "[APP::]DURATION")]
    pub cpu_time: Vec<String>,

    /// Wall-clock time per request, from arrival to the guest's end; 504 beyond [default: 60s]
    #[arg(long, value_name = "[APP::]DURATION")]
    pub timeout: Vec<String>,

    /// Instances of an app alive at once; more requests wait, then get 503 [default: 100]
    #[arg(long, value_name = "[APP::]N")]
    pub max_concurrent: Vec<String>,

    /// How long a request waits for a free instance before 503 [default: 1s]
    #[arg(long, value_name = "[APP::]DURATION")]
    pub queue_timeout: Vec<String>,

    /// Largest request body; 413 beyond [default: 10m]
    #[arg(long, value_name = "[APP::]SIZE")]
    pub max_body: Vec<String>,

    /// Open files, sockets and other handles per instance; past it the request fails (500)
    /// [default: 1024]
    #[arg(long, value_name = "[APP::]N")]
    pub max_open: Vec<String>,

    /// Outbound HTTP requests one request may have in flight; past it the guest gets
    /// connection-limit-reached [default: 16]
    #[arg(long, value_name = "[APP::]N")]
    pub max_outbound: Vec<String>,

    /// Outbound HTTP requests all of an app's instances may have in flight together; past it
    /// the guest gets connection-limit-reached [default: 256]
    #[arg(long, value_name = "[APP::]N")]
    pub max_app_outbound: Vec<String>,

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
    route: Route,
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
                (src, Route::parse(r).map_err(anyhow::Error::msg)?)
            }
            _ => (rest, Route::any()),
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

fn valid_name(n: &str) -> bool {
    n.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// `APP::VALUE` → (Some(APP), VALUE); anything else applies to every app.
fn scoped<'a>(s: &'a str, names: &[&str], flag: &str) -> anyhow::Result<(Option<String>, &'a str)> {
    if let Some((app, v)) = s.split_once("::") {
        if valid_name(app) {
            if !names.contains(&app) {
                anyhow::bail!(
                    "{flag} {s}: there is no app named {app:?} (apps: {})",
                    names.join(", ")
                );
            }
            return Ok((Some(app.to_string()), v));
        }
    }
    Ok((None, s))
}

/// Values of a repeatable flag that apply to `app`, in order.
fn values_for<'a>(
    vals: &'a [String],
    app: &str,
    names: &[&str],
    flag: &str,
) -> anyhow::Result<Vec<&'a str>> {
    let mut out = Vec::new();
    for v in vals {
        let (scope, v) = scoped(v, names, flag)?;
        if scope.as_deref().is_none_or(|s| s == app) {
            out.push(v);
        }
    }
    Ok(out)
}

/// A limit: the app's own value if given, else the last global one, else the default.
fn limit<T>(
    vals: &[String],
    app: &str,
    names: &[&str],
    flag: &str,
    default: T,
    parse: impl Fn(&str) -> Result<T, String>,
) -> anyhow::Result<T> {
    let mut global = None;
    let mut own = None;
    for v in vals {
        let (scope, raw) = scoped(v, names, flag)?;
        let parsed = parse(raw).map_err(|e| anyhow::anyhow!("{flag} {v}: {e}"))?;
        match scope {
            None => global = Some(parsed),
            Some(s) if s == app => own = Some(parsed),
            Some(_) => {}
        }
    }
    Ok(own.or(global).unwrap_or(default))
}

fn parse_count(s: &str) -> Result<u32, String> {
    match s.parse::<u32>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!(
            "invalid count {s:?}: expected a whole number above 0"
        )),
    }
}

fn app_config(args: &ServeArgs, spec: &AppSpec, names: &[&str]) -> anyhow::Result<HttpAppConfig> {
    let app = spec.name.as_str();
    let limits = HttpLimits {
        memory: limit(
            &args.memory,
            app,
            names,
            "--memory",
            HttpLimits::DEFAULT_MEMORY,
            parse_size,
        )?,
        cpu_time: limit(
            &args.cpu_time,
            app,
            names,
            "--cpu-time",
            HttpLimits::DEFAULT_CPU_TIME,
            parse_duration,
        )?,
        timeout: limit(
            &args.timeout,
            app,
            names,
            "--timeout",
            HttpLimits::DEFAULT_TIMEOUT,
            parse_duration,
        )?,
        max_concurrent: limit(
            &args.max_concurrent,
            app,
            names,
            "--max-concurrent",
            HttpLimits::DEFAULT_MAX_CONCURRENT,
            parse_count,
        )?,
        queue_timeout: limit(
            &args.queue_timeout,
            app,
            names,
            "--queue-timeout",
            HttpLimits::DEFAULT_QUEUE_TIMEOUT,
            parse_duration,
        )?,
        max_body: limit(
            &args.max_body,
            app,
            names,
            "--max-body",
            HttpLimits::DEFAULT_MAX_BODY,
            parse_size,
        )?,
        max_open: limit(
            &args.max_open,
            app,
            names,
            "--max-open",
            HttpLimits::DEFAULT_MAX_OPEN as u32,
            parse_max_open,
        )? as usize,
        max_outbound: limit(
            &args.max_outbound,
            app,
            names,
            "--max-outbound",
            HttpLimits::DEFAULT_MAX_OUTBOUND,
            parse_count,
        )?,
        max_app_outbound: limit(
            &args.max_app_outbound,
            app,
            names,
            "--max-app-outbound",
            HttpLimits::DEFAULT_MAX_APP_OUTBOUND,
            parse_count,
        )?,
    };
    let mut env = Vec::new();
    for file in values_for(&args.env_file, app, names, "--env-file")? {
        env.extend(read_env_file(Path::new(file))?);
    }
    for spec in values_for(&args.env, app, names, "-e")? {
        env.extend(parse_env(spec)?);
    }
    let mounts = values_for(&args.volumes, app, names, "-v")?
        .into_iter()
        .map(|v| Mount::parse(v).map_err(anyhow::Error::msg))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let rules = values_for(&args.allow_outbound, app, names, "--allow-outbound")?
        .into_iter()
        .map(|p| OutboundRule::parse(p).map_err(anyhow::Error::msg))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(HttpAppConfig {
        name: spec.name.clone(),
        sandbox: Sandbox {
            args: vec![spec.name.clone()],
            env,
            mounts,
            stdin: false,
            network: args.net,
            // Each request's output goes to the log, tagged with the app and request id.
            ..Sandbox::default()
        },
        limits,
        outbound: OutboundPolicy {
            rules,
            shared: None,
        },
    })
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
    let configs = specs
        .iter()
        .map(|s| app_config(&args, s, &names))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if args.max_header_size < 8192 {
        anyhow::bail!("--max-header-size must be at least 8k");
    }

    let engine = skiff_http::engine_for(
        &configs,
        (!args.no_cache).then(|| home.compile_cache()),
        usize::try_from(args.stack).context("--stack is too large")?,
    )?;
    let mut apps = AppSet::new(&engine);
    for (spec, config) in specs.iter().zip(configs) {
        let load = |engine: &Engine| -> anyhow::Result<_> {
            pull_if_missing(home, &spec.source, args.pull)?;
            let bytes = resolve(home, &spec.source)?.bytes;
            engine.load(&bytes).with_context(|| spec.source.clone())
        };
        apps.add(&spec.source, load, config, spec.route.clone())
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
        for spec in &specs {
            writeln!(out, "app {} {} -> {}", spec.name, spec.route, spec.source)?;
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
        assert_eq!(a.route.to_string(), "api.example.com/");
        let b = AppSpec::parse("./dir/http-hello.wasm").unwrap();
        assert_eq!(b.name, "http-hello");
        assert_eq!(b.route, Route::any());
        let c = AppSpec::parse("shop.wasm@/shop").unwrap();
        assert_eq!(
            (c.name.as_str(), c.route.to_string().as_str()),
            ("shop", "/shop")
        );
        // A digest reference keeps its @sha256:, and may still take a route.
        let d = AppSpec::parse("x=reg/app@sha256:abcd").unwrap();
        assert_eq!(d.source, "reg/app@sha256:abcd");
        let e = AppSpec::parse("x=reg/app@sha256:abcd@/x").unwrap();
        assert_eq!(
            (e.source.as_str(), e.route.to_string().as_str()),
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

    #[test]
    fn scoped_values() {
        let names = ["api", "shop"];
        let vals = vec!["64m".to_string(), "shop::32m".to_string()];
        assert_eq!(
            limit(&vals, "api", &names, "--memory", 1, parse_size).unwrap(),
            64 << 20
        );
        assert_eq!(
            limit(&vals, "shop", &names, "--memory", 1, parse_size).unwrap(),
            32 << 20
        );
        assert_eq!(
            limit(&[], "shop", &names, "--memory", 7, parse_size).unwrap(),
            7
        );
        let bad = vec!["nope::1m".to_string()];
        assert!(limit(&bad, "api", &names, "--memory", 1, parse_size)
            .unwrap_err()
            .to_string()
            .contains("no app named"));
        // An IPv6 outbound pattern is not mistaken for a scope.
        let v = vec!["http://[::1]:80".to_string()];
        assert_eq!(
            values_for(&v, "api", &names, "--allow-outbound").unwrap(),
            vec!["http://[::1]:80"]
        );
    }
}
