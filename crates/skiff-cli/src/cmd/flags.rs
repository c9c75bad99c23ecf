//! The grant and limit flags shared by every verb that describes a guest (`run`, `run -d`,
//! `serve`, `deploy`), flattened into each verb's arguments as wasmtime's `RunCommon` is: one
//! spelling, one help text, one parser, and one result, the operator's grants as a
//! `skiff_spec::GuestSpec` that `skiff_spec::resolve` puts over an image's defaults.
//!
//! `serve` runs several apps: a value prefixed with `APP::` applies to that app only; one
//! without applies to every app (for limits: the default that `APP::` values override). The
//! other verbs have one app ([`Scope::ONE`]): the same parser takes their values as given.

use crate::units::{parse_duration, parse_max_open, parse_memory, parse_size};
use clap::Args;
use skiff_spec::{millis, parse_env, read_env_file, GuestSpec, Mount};
use std::path::Path;

/// What the guest is granted and its limits; every verb that runs a guest has these.
#[derive(Debug, Clone, Default, Args)]
pub struct GuestFlags {
    /// Mount a host directory: HOST:GUEST[:ro] (GUEST is absolute)
    #[arg(short = 'v', long = "volume", value_name = "HOST:GUEST[:ro]")]
    pub volumes: Vec<String>,

    /// Set an environment variable: K=V, or K to pass the host's value. Over the image's
    /// defaults and --env-file; a later value for a name replaces it in place
    #[arg(short = 'e', long = "env", value_name = "K=V")]
    pub env: Vec<String>,

    /// Read environment variables from a file of K=V lines (# comments allowed)
    #[arg(long, value_name = "FILE")]
    pub env_file: Vec<String>,

    /// Allow TCP/UDP sockets to any address, and name lookup
    #[arg(long)]
    pub net: bool,

    /// Allow outbound HTTP (wasi:http) to scheme://host[:port] (wildcards: *.example.com, *,
    /// :*); none by default
    #[arg(long, value_name = "PATTERN")]
    pub allow_outbound: Vec<String>,

    /// Memory limit per instance: every linear memory plus every table (8 bytes per element),
    /// together (e.g. 64m, 1g) [default: 128m]
    #[arg(long, value_name = "SIZE")]
    pub memory: Vec<String>,

    /// Open files, sockets and other handles an instance may hold at once; past it the guest is
    /// stopped (exit 134; HTTP 500) [default: 1024]
    #[arg(long, value_name = "N")]
    pub max_open: Vec<String>,

    /// Wall-clock limit (e.g. 500ms, 5s, 2m): of a command's whole run (none by default), of
    /// each HTTP request, from arrival to the guest's end (504 beyond; 60s by default)
    #[arg(long, value_name = "DURATION")]
    pub timeout: Vec<String>,
}

/// Limits of HTTP handlers (`serve`, `deploy`).
#[derive(Debug, Clone, Default, Args)]
pub struct HttpFlags {
    /// Time a request may spend executing wasm; 504 beyond [default: 500ms]
    #[arg(long, value_name = "DURATION")]
    pub cpu_time: Vec<String>,

    /// Instances of an app alive at once; more requests wait, then get 503 [default: 100]
    #[arg(long, value_name = "N")]
    pub max_concurrent: Vec<String>,

    /// How long a request waits for a free instance before 503 [default: 1s]
    #[arg(long, value_name = "DURATION")]
    pub queue_timeout: Vec<String>,

    /// Largest request body; 413 beyond [default: 10m]
    #[arg(long, value_name = "SIZE")]
    pub max_body: Vec<String>,

    /// Outbound HTTP requests one request may have in flight; past it the guest gets
    /// connection-limit-reached [default: 16]
    #[arg(long, value_name = "N")]
    pub max_outbound: Vec<String>,

    /// Outbound HTTP requests all of an app's instances may have in flight together; past it
    /// the guest gets connection-limit-reached [default: 256]
    #[arg(long, value_name = "N")]
    pub max_app_outbound: Vec<String>,

    /// Let one instance serve up to N requests, one after another (never two at once); a
    /// trap or a limit ends it early. State then carries from request to request: an opt-in
    /// trade of isolation for speed [default: 1, a fresh instance per request]
    #[arg(long, value_name = "N")]
    pub reuse: Vec<String>,
}

/// Which app a value is for, among the apps of one command line.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    pub app: &'a str,
    /// Every app of the command line; empty: one app, and values are taken as given (`APP::`
    /// is not a scope there, so `-e A::B=1` sets `A::B`, as before `serve` shared the flags).
    pub names: &'a [&'a str],
}

impl Scope<'_> {
    /// The one app of `run`, `deploy` or a compose entry.
    pub const ONE: Scope<'static> = Scope {
        app: "",
        names: &[],
    };
}

impl GuestFlags {
    /// The operator's grants to `scope.app`, before the image's defaults (see
    /// `skiff_spec::resolve`): env files' variables, then `-e`'s, in the order given.
    pub fn grants(&self, scope: Scope) -> anyhow::Result<GuestSpec> {
        let mut spec = GuestSpec::default();
        for file in values_for(&self.env_file, scope, "--env-file")? {
            spec.env
                .extend(read_env_file(Path::new(file)).map_err(anyhow::Error::msg)?);
        }
        for e in values_for(&self.env, scope, "-e")? {
            match parse_env(e).map_err(anyhow::Error::msg)? {
                Some(var) => spec.env.push(var),
                None => tracing::debug!("-e {e}: the host has no {e}; not set"),
            }
        }
        spec.mounts = values_for(&self.volumes, scope, "-v")?
            .into_iter()
            .map(|v| Mount::parse(v).map_err(anyhow::Error::msg))
            .collect::<anyhow::Result<_>>()?;
        spec.network = self.net;
        spec.allow_outbound = values_for(&self.allow_outbound, scope, "--allow-outbound")?
            .into_iter()
            .map(str::to_string)
            .collect();
        let l = &mut spec.limits;
        l.memory_bytes = limit(&self.memory, scope, "--memory", parse_memory)?;
        l.max_open = limit(&self.max_open, scope, "--max-open", parse_max_open)?;
        l.timeout_ms = limit(&self.timeout, scope, "--timeout", parse_duration)?.map(millis);
        Ok(spec)
    }
}

impl HttpFlags {
    /// Add the HTTP limits for `scope.app` to `spec`.
    pub fn apply(&self, scope: Scope, spec: &mut GuestSpec) -> anyhow::Result<()> {
        let l = &mut spec.limits;
        l.cpu_time_ms = limit(&self.cpu_time, scope, "--cpu-time", parse_duration)?.map(millis);
        l.max_concurrent = limit(&self.max_concurrent, scope, "--max-concurrent", parse_count)?;
        l.queue_timeout_ms = limit(
            &self.queue_timeout,
            scope,
            "--queue-timeout",
            parse_duration,
        )?
        .map(millis);
        l.max_body_bytes = limit(&self.max_body, scope, "--max-body", parse_size)?;
        l.max_outbound = limit(&self.max_outbound, scope, "--max-outbound", parse_count)?;
        l.max_app_outbound = limit(
            &self.max_app_outbound,
            scope,
            "--max-app-outbound",
            parse_count,
        )?;
        l.reuse = limit(&self.reuse, scope, "--reuse", parse_count)?;
        Ok(())
    }
}

/// An app name: what `NAME=` and `APP::` may say.
pub fn valid_name(n: &str) -> bool {
    n.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// `APP::VALUE` → (Some(APP), VALUE); anything else applies to every app.
fn scoped<'a>(s: &'a str, scope: Scope, flag: &str) -> anyhow::Result<(Option<&'a str>, &'a str)> {
    if scope.names.is_empty() {
        return Ok((None, s));
    }
    if let Some((app, v)) = s.split_once("::") {
        if valid_name(app) {
            if !scope.names.contains(&app) {
                anyhow::bail!(
                    "{flag} {s}: there is no app named {app:?} (apps: {})",
                    scope.names.join(", ")
                );
            }
            return Ok((Some(app), v));
        }
    }
    Ok((None, s))
}

/// Values of a repeatable flag that apply to `scope.app`, in order.
fn values_for<'a>(vals: &'a [String], scope: Scope, flag: &str) -> anyhow::Result<Vec<&'a str>> {
    let mut out = Vec::new();
    for v in vals {
        let (app, v) = scoped(v, scope, flag)?;
        if app.is_none_or(|a| a == scope.app) {
            out.push(v);
        }
    }
    Ok(out)
}

/// A limit: the app's own value if given, else the last one for every app, else `None` (the
/// engine's default).
fn limit<T>(
    vals: &[String],
    scope: Scope,
    flag: &str,
    parse: impl Fn(&str) -> Result<T, String>,
) -> anyhow::Result<Option<T>> {
    let mut global = None;
    let mut own = None;
    for v in vals {
        let (app, raw) = scoped(v, scope, flag)?;
        let parsed = parse(raw).map_err(|e| anyhow::anyhow!("{flag} {v}: {e}"))?;
        match app {
            None => global = Some(parsed),
            Some(a) if a == scope.app => own = Some(parsed),
            Some(_) => {}
        }
    }
    Ok(own.or(global))
}

fn parse_count(s: &str) -> Result<u32, String> {
    match s.parse::<u32>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!(
            "invalid count {s:?}: expected a whole number above 0"
        )),
    }
}

/// The daemon does not share our working directory: mounts go to it with absolute host paths,
/// `base` being what a relative one is relative to.
pub fn absolute_mounts(spec: &mut GuestSpec, base: &Path) -> anyhow::Result<()> {
    for m in &mut spec.mounts {
        let host = std::fs::canonicalize(base.join(&m.host)).map_err(|e| {
            anyhow::anyhow!(
                "volume {}:{}: cannot use host path {}: {e}",
                m.host.display(),
                m.guest,
                m.host.display()
            )
        })?;
        m.host = host;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAMES: &[&str] = &["api", "shop"];

    fn scope(app: &'static str) -> Scope<'static> {
        Scope { app, names: NAMES }
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn scoped_values() {
        let vals = strings(&["64m", "shop::32m"]);
        assert_eq!(
            limit(&vals, scope("api"), "--memory", parse_size).unwrap(),
            Some(64 << 20)
        );
        assert_eq!(
            limit(&vals, scope("shop"), "--memory", parse_size).unwrap(),
            Some(32 << 20)
        );
        assert_eq!(
            limit(&[], scope("shop"), "--memory", parse_size).unwrap(),
            None
        );
        let bad = strings(&["nope::1m"]);
        assert!(limit(&bad, scope("api"), "--memory", parse_size)
            .unwrap_err()
            .to_string()
            .contains("no app named"));
        // An IPv6 outbound pattern is not mistaken for a scope.
        let v = strings(&["http://[::1]:80"]);
        assert_eq!(
            values_for(&v, scope("api"), "--allow-outbound").unwrap(),
            vec!["http://[::1]:80"]
        );
    }

    #[test]
    fn grants_keep_the_order_given_and_scope_per_app() {
        let flags = GuestFlags {
            env: strings(&["A=1", "shop::B=2", "api::C=3", "A=4"]),
            memory: strings(&["64m", "shop::32m"]),
            timeout: strings(&["1500ms"]),
            ..GuestFlags::default()
        };
        let api = flags.grants(scope("api")).unwrap();
        let names: Vec<_> = api
            .env
            .iter()
            .map(|e| (e.name.as_str(), e.value.as_str()))
            .collect();
        // Repeated names stay until `resolve` merges them, so the rule is applied once.
        assert_eq!(names, [("A", "1"), ("C", "3"), ("A", "4")]);
        assert_eq!(api.limits.memory_bytes, Some(64 << 20));
        assert_eq!(api.limits.timeout_ms, Some(1500));
        let shop = flags.grants(scope("shop")).unwrap();
        assert_eq!(shop.limits.memory_bytes, Some(32 << 20));
        assert_eq!(shop.env_value("B"), Some("2"));
        assert_eq!(shop.env_value("C"), None);
        // One app: `APP::` is part of the value.
        let one = GuestFlags {
            env: strings(&["shop::B=2"]),
            ..GuestFlags::default()
        };
        let one = one.grants(Scope::ONE).unwrap();
        assert_eq!(one.env_value("shop::B"), Some("2"));
    }
}
