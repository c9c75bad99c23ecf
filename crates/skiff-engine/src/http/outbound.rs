//! The outbound HTTP allow-list (`--allow-outbound`), and the `wasi:http` hooks that enforce it.
//!
//! Pattern syntax follows Spin's `allowed_outbound_hosts`: `scheme://host[:port]`, where
//! - scheme is `http`, `https` or `*`;
//! - host is a name or IP, `*` (any host), or `*.example.com` (any subdomain, at any depth, of
//!   example.com, not example.com itself);
//! - port is a number, `*` (any port), or absent (the scheme's default: 80 or 443).
//!
//! No path, query or user info: the allow-list decides where a guest may connect, not what it
//! may ask for there.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// One allowed destination pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundRule {
    scheme: Option<String>,
    host: HostPattern,
    port: Option<u16>,
    text: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Any,
    Exact(String),
    /// `*.suffix`: stored as `.suffix`.
    Subdomain(String),
}

impl fmt::Display for OutboundRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl OutboundRule {
    /// Parse `scheme://host[:port]`; the error says what is wrong and shows a valid example.
    pub fn parse(text: &str) -> Result<OutboundRule, String> {
        let example =
            "e.g. https://api.example.com, https://*.example.com, http://127.0.0.1:8080, *://*:*";
        let Some((scheme, rest)) = text.split_once("://") else {
            return Err(format!(
                "invalid outbound pattern {text:?}: expected scheme://host[:port] ({example})"
            ));
        };
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "*" => None,
            s @ ("http" | "https") => Some(s.to_string()),
            other => {
                return Err(format!(
                    "invalid outbound pattern {text:?}: scheme {other:?} is not http, https or *"
                ))
            }
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#', '@']) {
            return Err(format!(
                "invalid outbound pattern {text:?}: only scheme://host[:port] is allowed, no path, query or user ({example})"
            ));
        }
        let (host, port) = split_host_port(rest);
        let port = match port {
            None => match scheme.as_deref() {
                Some("http") => Some(80),
                Some("https") => Some(443),
                _ => {
                    return Err(format!(
                        "invalid outbound pattern {text:?}: with scheme * give a port (or :*)"
                    ))
                }
            },
            Some("*") => None,
            Some(p) => Some(p.parse::<u16>().map_err(|_| {
                format!("invalid outbound pattern {text:?}: port {p:?} is not a number or *")
            })?),
        };
        let host = host.to_ascii_lowercase();
        let host = if host == "*" {
            HostPattern::Any
        } else if let Some(suffix) = host.strip_prefix("*.") {
            if suffix.is_empty() || suffix.contains('*') {
                return Err(format!(
                    "invalid outbound pattern {text:?}: bad wildcard host"
                ));
            }
            HostPattern::Subdomain(format!(".{suffix}"))
        } else if host.is_empty() || host.contains('*') {
            return Err(format!(
                "invalid outbound pattern {text:?}: a wildcard host is * or *.domain"
            ));
        } else {
            HostPattern::Exact(host)
        };
        Ok(OutboundRule {
            scheme,
            host,
            port,
            text: text.to_string(),
        })
    }

    /// Does this rule allow connecting to `host:port` with `scheme` (`http`/`https`)?
    pub fn allows(&self, scheme: &str, host: &str, port: u16) -> bool {
        if let Some(s) = &self.scheme {
            if !s.eq_ignore_ascii_case(scheme) {
                return false;
            }
        }
        if let Some(p) = self.port {
            if p != port {
                return false;
            }
        }
        let host = host.trim_start_matches('[').trim_end_matches(']');
        match &self.host {
            HostPattern::Any => true,
            HostPattern::Exact(h) => {
                h.trim_start_matches('[').trim_end_matches(']') == host.to_ascii_lowercase()
            }
            HostPattern::Subdomain(suffix) => {
                let host = host.to_ascii_lowercase();
                host.len() > suffix.len() && host.ends_with(suffix.as_str())
            }
        }
    }
}

/// `host:port`, `[v6]:port`, `host`.
fn split_host_port(s: &str) -> (&str, Option<&str>) {
    if s.starts_with('[') {
        if let Some(end) = s.find(']') {
            let host = &s[..=end];
            return match s[end + 1..].strip_prefix(':') {
                Some(p) => (host, Some(p)),
                None => (host, None),
            };
        }
    }
    match s.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h, Some(p)),
        _ => (s, None),
    }
}

/// What an app may connect to. Empty: nothing (the default).
#[derive(Debug, Clone, Default)]
pub struct OutboundPolicy {
    pub rules: Vec<OutboundRule>,
    /// A cap on outbound requests in flight shared with other apps (the daemon's node-wide
    /// total: each request holds a host descriptor, and per-app caps do not bound the sum over
    /// apps). `None`: only the per-request and per-app caps apply.
    pub shared: Option<Arc<Semaphore>>,
}

impl OutboundPolicy {
    /// The policy of these patterns (`--allow-outbound`, a spec's `allow_outbound`): the one
    /// parser for `run`, `serve`, the daemon and the shim. The error names the pattern.
    pub fn parse(
        patterns: &[String],
        shared: Option<Arc<Semaphore>>,
    ) -> Result<OutboundPolicy, String> {
        let rules = patterns
            .iter()
            .map(|p| OutboundRule::parse(p))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(OutboundPolicy { rules, shared })
    }

    pub fn allows(&self, scheme: &str, host: &str, port: u16) -> bool {
        self.rules.iter().any(|r| r.allows(scheme, host, port))
    }
}

/// The `wasi:http` hooks of one request (or of one command's run): enforce the allow-list and
/// the caps on requests in flight, log what is refused.
pub(crate) struct OutboundHooks {
    pub(crate) policy: Arc<OutboundPolicy>,
    pub(crate) app: Arc<str>,
    /// The request's; `None` for a command, which has no request.
    pub(crate) request_id: Option<super::RequestId>,
    pub(crate) stats: Arc<super::AppStats>,
    /// `max_outbound` permits of this request, and `max_app_outbound` of its app.
    pub(crate) request_permits: Arc<Semaphore>,
    pub(crate) app_permits: Arc<Semaphore>,
    pub(crate) limits: super::HttpLimits,
}

impl OutboundHooks {
    /// The hooks of a command's run (`skiff run`, a daemon task, the shim's guest): its
    /// allow-list, the default per-request cap on requests in flight (a command is one
    /// "request"), its own stats.
    pub(crate) fn for_command(policy: OutboundPolicy, name: &str) -> OutboundHooks {
        let limits = super::HttpLimits::default();
        OutboundHooks {
            policy: Arc::new(policy),
            app: name.into(),
            request_id: None,
            stats: Default::default(),
            request_permits: Arc::new(Semaphore::new(limits.max_outbound as usize)),
            app_permits: Arc::new(Semaphore::new(limits.max_app_outbound as usize)),
            limits,
        }
    }

    /// `[app request-id]`, or `[app]` for a command: how log lines name the guest.
    fn who(&self) -> String {
        match self.request_id {
            Some(id) => format!("[{} {id}]", self.app),
            None => format!("[{}]", self.app),
        }
    }

    /// A slot for one more request in flight, or why not. Never waits: a guest past its cap
    /// gets an error at once, as it would from a full connection pool, instead of holding its
    /// instance while it queues.
    fn slot(&self) -> Result<Vec<OwnedSemaphorePermit>, String> {
        let request = self
            .request_permits
            .clone()
            .try_acquire_owned()
            .map_err(|_| {
                format!(
                    "{} outbound requests of this request already in flight (its per-request cap)",
                    self.limits.max_outbound
                )
            })?;
        let app = self.app_permits.clone().try_acquire_owned().map_err(|_| {
            format!(
                "{} outbound requests of this app already in flight (its per-app cap)",
                self.limits.max_app_outbound
            )
        })?;
        let mut slot = vec![request, app];
        if let Some(shared) = &self.policy.shared {
            slot.push(shared.clone().try_acquire_owned().map_err(|_| {
                "the node's cap on outbound requests in flight across all apps is reached \
                 (the daemon sizes it from its open-file limit: raise ulimit -n)"
                    .to_string()
            })?);
        }
        Ok(slot)
    }
}

impl wasmtime_wasi_http::WasiHttpHooks for OutboundHooks {
    fn send_request(
        &mut self,
        request: http::Request<wasmtime_wasi_http::WasiBody>,
        options: Option<wasmtime_wasi_http::RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> Box<
        dyn Future<
                Output = Result<
                    (
                        http::Response<wasmtime_wasi_http::WasiBody>,
                        Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
                    ),
                    wasmtime_wasi_http::Error,
                >,
            > + Send,
    > {
        let uri = request.uri();
        let scheme = uri.scheme_str().unwrap_or("https").to_ascii_lowercase();
        let host = uri.host().unwrap_or("").to_string();
        let port = uri
            .port_u16()
            .unwrap_or(if scheme == "http" { 80 } else { 443 });
        use wasmtime_wasi_http::Error;
        let slot = if !self.policy.allows(&scheme, &host, port) {
            Err((
                &self.stats.outbound_denied,
                format!(
                    "denied: not in the guest's outbound allow-list (grant it with \
                     --allow-outbound {scheme}://{host}:{port})"
                ),
                Error::HttpRequestDenied,
            ))
        } else {
            self.slot().map_err(|why| {
                (
                    &self.stats.outbound_limited,
                    format!("refused: {why}"),
                    Error::ConnectionLimitReached,
                )
            })
        };
        let slot = match slot {
            Ok(slot) => slot,
            Err((counter, why, error)) => {
                counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::warn!(
                    "{} outbound request to {scheme}://{host}:{port} {why}",
                    self.who()
                );
                return Box::new(async { Err(error) });
            }
        };
        tracing::debug!(
            "{} outbound request to {scheme}://{host}:{port}",
            self.who()
        );
        _ = fut;
        Box::new(async move {
            use http_body_util::BodyExt;
            let (res, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            // In flight until the connection's driver ends: the whole response received from
            // the upstream (or the guest dropped it), or the request's store dropped, which
            // aborts the driver. Then the descriptor is closed and the slot is free.
            let io = async move {
                let _slot = slot;
                io.await
            };
            Ok((
                res.map(BodyExt::boxed_unsync),
                Box::new(io) as Box<dyn Future<Output = _> + Send>,
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> OutboundRule {
        OutboundRule::parse(s).unwrap()
    }

    #[test]
    fn patterns_match_as_in_spin() {
        assert!(r("https://example.com").allows("https", "example.com", 443));
        assert!(!r("https://example.com").allows("http", "example.com", 80));
        assert!(!r("https://example.com").allows("https", "example.com", 8443));
        assert!(r("https://*.example.com").allows("https", "api.example.com", 443));
        assert!(r("https://*.example.com").allows("https", "a.b.example.com", 443));
        assert!(!r("https://*.example.com").allows("https", "example.com", 443));
        assert!(!r("https://*.example.com").allows("https", "badexample.com", 443));
        assert!(r("http://127.0.0.1:*").allows("http", "127.0.0.1", 9999));
        assert!(r("*://localhost:8080").allows("https", "localhost", 8080));
        assert!(r("*://*:*").allows("http", "anything", 1));
        assert!(r("http://[::1]:8080").allows("http", "[::1]", 8080));
        assert!(r("HTTPS://Example.COM").allows("https", "example.com", 443));
    }

    #[test]
    fn bad_patterns_say_why() {
        assert!(OutboundRule::parse("example.com")
            .unwrap_err()
            .contains("scheme://"));
        assert!(OutboundRule::parse("ftp://x").unwrap_err().contains("ftp"));
        assert!(OutboundRule::parse("https://x.com/path")
            .unwrap_err()
            .contains("no path"));
        assert!(OutboundRule::parse("https://x.com:http")
            .unwrap_err()
            .contains("port"));
        assert!(OutboundRule::parse("*://x.com")
            .unwrap_err()
            .contains("port"));
        assert!(OutboundRule::parse("https://a*b.com").is_err());
    }

    #[test]
    fn empty_policy_denies_everything() {
        assert!(!OutboundPolicy::default().allows("https", "example.com", 443));
    }
}
