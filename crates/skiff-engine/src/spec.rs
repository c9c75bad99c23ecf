//! From a [`GuestSpec`] to what the engine runs: the one place where a spec's absent limits
//! take the engine's defaults, used by `skiff run`, `serve`, the daemon and the shim alike.

use crate::http::{HttpAppConfig, HttpLimits, OutboundPolicy};
use crate::{Limits, Output, Sandbox};
use skiff_spec::GuestSpec;
use std::sync::Arc;
use std::time::Duration;

impl Sandbox {
    /// The grants of `spec`, with `argv0` before its args. Output goes to the host's stdout and
    /// stderr; set [`Sandbox::stdout`]/[`Sandbox::stderr`] to send it elsewhere. Fails only for
    /// an outbound pattern that does not parse, and names it.
    pub fn from_spec(spec: &GuestSpec, argv0: impl Into<String>) -> Result<Sandbox, String> {
        Ok(Sandbox {
            args: std::iter::once(argv0.into())
                .chain(spec.args.iter().cloned())
                .collect(),
            env: spec
                .env
                .iter()
                .map(|e| (e.name.clone(), e.value.clone()))
                .collect(),
            mounts: spec.mounts.clone(),
            stdin: spec.stdin,
            network: spec.network,
            allow_outbound: OutboundPolicy::parse(&spec.allow_outbound, None)?,
            stdout: Output::Inherit,
            stderr: Output::Inherit,
        })
    }
}

impl From<&skiff_spec::Limits> for Limits {
    /// A command's limits; absent ones are the defaults (no timeout).
    fn from(l: &skiff_spec::Limits) -> Limits {
        Limits {
            memory: l.memory_bytes.unwrap_or(Limits::DEFAULT_MEMORY),
            timeout: l.timeout_ms.map(Duration::from_millis),
            max_open: l.max_open.map_or(Limits::DEFAULT_MAX_OPEN, |n| n as usize),
        }
    }
}

impl From<&skiff_spec::Limits> for HttpLimits {
    /// An HTTP app's limits; absent ones are [`HttpLimits::default`]'s.
    fn from(l: &skiff_spec::Limits) -> HttpLimits {
        let d = HttpLimits::default();
        let ms = |v: Option<u64>, default: Duration| v.map_or(default, Duration::from_millis);
        HttpLimits {
            memory: l.memory_bytes.unwrap_or(d.memory),
            cpu_time: ms(l.cpu_time_ms, d.cpu_time),
            timeout: ms(l.timeout_ms, d.timeout),
            max_concurrent: l.max_concurrent.unwrap_or(d.max_concurrent),
            queue_timeout: ms(l.queue_timeout_ms, d.queue_timeout),
            max_body: l.max_body_bytes.unwrap_or(d.max_body),
            max_open: l.max_open.map_or(d.max_open, |n| n as usize),
            max_outbound: l.max_outbound.unwrap_or(d.max_outbound),
            max_app_outbound: l.max_app_outbound.unwrap_or(d.max_app_outbound),
            reuse: l.reuse.unwrap_or(d.reuse),
        }
    }
}

impl HttpAppConfig {
    /// An HTTP app named `name` as `spec` describes it: its grants (argv\[0\] is `argv0`; the
    /// outbound allow-list among them, a pattern that does not parse being an error that names
    /// it), its limits. `shared` caps outbound requests across apps (the daemon's node-wide
    /// total).
    pub fn from_spec(
        name: impl Into<String>,
        argv0: impl Into<String>,
        spec: &GuestSpec,
        shared: Option<Arc<tokio::sync::Semaphore>>,
    ) -> Result<HttpAppConfig, String> {
        let mut sandbox = Sandbox::from_spec(spec, argv0)?;
        sandbox.allow_outbound.shared = shared;
        Ok(HttpAppConfig {
            name: name.into(),
            sandbox,
            limits: HttpLimits::from(&spec.limits),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use skiff_spec::{EnvVar, Mount};

    #[test]
    fn absent_limits_are_the_engine_defaults() {
        let none = skiff_spec::Limits::default();
        assert_eq!(Limits::from(&none), Limits::default());
        assert_eq!(HttpLimits::from(&none), HttpLimits::default());
        let some = skiff_spec::Limits {
            memory_bytes: Some(1 << 20),
            timeout_ms: Some(1500),
            max_open: Some(64),
            cpu_time_ms: Some(20),
            max_concurrent: Some(3),
            queue_timeout_ms: Some(7),
            max_body_bytes: Some(9),
            max_outbound: Some(2),
            max_app_outbound: Some(5),
            reuse: Some(4),
        };
        let l = Limits::from(&some);
        assert_eq!(
            (l.memory, l.timeout, l.max_open),
            (1 << 20, Some(Duration::from_millis(1500)), 64)
        );
        let h = HttpLimits::from(&some);
        assert_eq!(
            h,
            HttpLimits {
                memory: 1 << 20,
                cpu_time: Duration::from_millis(20),
                timeout: Duration::from_millis(1500),
                max_concurrent: 3,
                queue_timeout: Duration::from_millis(7),
                max_body: 9,
                max_open: 64,
                max_outbound: 2,
                max_app_outbound: 5,
                reuse: 4,
            }
        );
    }

    #[test]
    fn a_sandbox_holds_exactly_the_specs_grants() {
        let spec = GuestSpec {
            args: vec!["a".into()],
            env: vec![EnvVar::new("B", "1"), EnvVar::new("A", "2")],
            mounts: vec![Mount::parse("/srv:/data:ro").unwrap()],
            network: true,
            allow_outbound: vec!["https://example.com".into()],
            ..GuestSpec::default()
        };
        let s = Sandbox::from_spec(&spec, "app").unwrap();
        assert_eq!(s.args, ["app", "a"]);
        assert_eq!(s.env, [("B".into(), "1".into()), ("A".into(), "2".into())]);
        assert_eq!(s.mounts, spec.mounts);
        assert!(s.network && !s.stdin);
        assert!(s.allow_outbound.allows("https", "example.com", 443));
        let c = HttpAppConfig::from_spec("x", "app", &spec, None).unwrap();
        assert_eq!(c.sandbox.allow_outbound.rules.len(), 1);
        let bad = GuestSpec {
            allow_outbound: vec!["nope".into()],
            ..GuestSpec::default()
        };
        let e = HttpAppConfig::from_spec("x", "app", &bad, None).unwrap_err();
        assert!(e.contains("nope"), "{e}");
        let e = Sandbox::from_spec(&bad, "app").unwrap_err();
        assert!(e.contains("nope"), "{e}");
    }
}
