//! Which scheme a registry is spoken to with, and the HTTP client.
//!
//! HTTPS through rustls, verified against the system's roots (rustls-platform-verifier reads the
//! OS store; on Linux the same bundle curl uses). Plain HTTP only for a loopback registry or one
//! the operator named as insecure: a typo never silently downgrades a remote registry.

use crate::error::{RegistryError, Result};
use std::net::IpAddr;
use std::time::Duration;

/// True for `localhost`, 127.0.0.0/8 and ::1, with or without a port.
pub fn is_loopback(registry: &str) -> bool {
    let host = host_of(registry);
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

/// `host` from `host[:port]`, `[v6]:port` included.
fn host_of(registry: &str) -> &str {
    if let Some(rest) = registry.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match registry.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !h.contains(':') => h,
        _ => registry,
    }
}

/// `http` for loopback and named insecure registries (matched as `host:port` or `host`),
/// `https` otherwise.
pub fn scheme_for(registry: &str, insecure: &[String]) -> &'static str {
    let named = insecure
        .iter()
        .any(|i| i == registry || i.as_str() == host_of(registry));
    if named || is_loopback(registry) {
        "http"
    } else {
        "https"
    }
}

/// The process's rustls provider: `ring` (already in the tree) rather than aws-lc.
pub fn install_crypto_provider() {
    // Err means one is installed already, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The HTTP client. `tls`: able to verify HTTPS servers. Without it no root certificate is
/// loaded (reading and parsing the system's bundle costs more than a loopback pull's manifest
/// round trip), and any HTTPS server fails verification: only for plain-HTTP registries.
pub fn http_client(tls: bool) -> Result<reqwest::Client> {
    install_crypto_provider();
    let mut b = reqwest::Client::builder()
        .user_agent(concat!("skiff/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(30))
        .read_timeout(Duration::from_secs(120));
    if !tls {
        b = b.tls_certs_only(std::iter::empty());
    }
    b.build().map_err(|e| RegistryError::Tls(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_and_named_registries_get_http() {
        let none: Vec<String> = vec![];
        for r in [
            "127.0.0.1:5000",
            "127.1.2.3",
            "localhost:80",
            "[::1]:5000",
            "::1",
        ] {
            assert_eq!(scheme_for(r, &none), "http", "{r}");
        }
        for r in [
            "registry.example.com",
            "10.0.0.1:5000",
            "localhost.evil.com",
            "128.0.0.1",
        ] {
            assert_eq!(scheme_for(r, &none), "https", "{r}");
        }
        let named = vec!["10.0.0.1:5000".to_string(), "lab".to_string()];
        assert_eq!(scheme_for("10.0.0.1:5000", &named), "http");
        assert_eq!(scheme_for("10.0.0.1:6000", &named), "https");
        assert_eq!(scheme_for("lab:5000", &named), "http");
    }
}
