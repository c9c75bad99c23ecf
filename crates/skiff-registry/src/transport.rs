//! Which scheme a registry is spoken to with, and the HTTP client.
//!
//! HTTPS through rustls, verified against the system's roots (rustls-platform-verifier reads the
//! OS store; on Linux the same bundle curl uses, and `SSL_CERT_FILE` / `SSL_CERT_DIR` as
//! OpenSSL reads them). Plain HTTP only for a loopback registry or one the operator named as
//! insecure: a typo never silently downgrades a remote registry.
//!
//! Per-registry certificates live where Docker keeps them, `certs.d/HOST[:PORT]/`: every
//! `*.crt` is a CA trusted for that registry beside the system's, and a `*.cert` with the
//! `*.key` of the same name is a client certificate presented to it. A registry with such a
//! directory is spoken to over HTTPS even on loopback: someone set it up for TLS.

use crate::error::{RegistryError, Result};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
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

/// The certificates of one registry's `certs.d` directory.
pub struct RegistryCerts {
    /// Where they were read from, for messages.
    pub dir: PathBuf,
    roots: Vec<reqwest::Certificate>,
    identity: Option<reqwest::Identity>,
}

impl RegistryCerts {
    /// Whether there is a client certificate to present.
    pub fn has_identity(&self) -> bool {
        self.identity.is_some()
    }
}

/// The first `DIR/REGISTRY/` of `certs_dirs` that exists, read. `None` if there is none.
/// A file that is there but unreadable or not PEM is an error, not a silent fallback to the
/// system's roots.
pub fn certs_for(registry: &str, certs_dirs: &[PathBuf]) -> Result<Option<RegistryCerts>> {
    // The name is a path component: a registry name from a reference cannot climb out.
    if registry.is_empty() || registry.contains('/') || registry.starts_with('.') {
        return Ok(None);
    }
    let Some(dir) = certs_dirs
        .iter()
        .map(|d| d.join(registry))
        .find(|d| d.is_dir())
    else {
        return Ok(None);
    };
    let bad = |path: &Path, why: String| RegistryError::Tls(format!("{}: {why}", path.display()));
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| bad(&dir, e.to_string()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort();
    let mut roots = Vec::new();
    let mut identity = None;
    for path in &files {
        match path.extension().and_then(|e| e.to_str()) {
            Some("crt") => {
                let pem = std::fs::read(path).map_err(|e| bad(path, e.to_string()))?;
                let certs = reqwest::Certificate::from_pem_bundle(&pem)
                    .ok()
                    .filter(|c| !c.is_empty())
                    .ok_or_else(|| bad(path, "not a PEM certificate (a CA, `*.crt`)".into()))?;
                roots.extend(certs);
            }
            Some("cert") => {
                let key = path.with_extension("key");
                let mut pem = std::fs::read(path).map_err(|e| bad(path, e.to_string()))?;
                let key_pem = std::fs::read(&key).map_err(|e| {
                    bad(
                        path,
                        format!(
                            "a client certificate needs its key beside it, {}: {e}",
                            key.display()
                        ),
                    )
                })?;
                pem.extend_from_slice(b"\n");
                pem.extend_from_slice(&key_pem);
                let id = reqwest::Identity::from_pem(&pem).map_err(|e| {
                    bad(
                        path,
                        format!(
                            "not a PEM client certificate and key: {}",
                            crate::session::error_chain(&e)
                        ),
                    )
                })?;
                identity = Some(id);
            }
            _ => {}
        }
    }
    Ok(Some(RegistryCerts {
        dir,
        roots,
        identity,
    }))
}

/// The process's rustls provider: `ring` (already in the tree) rather than aws-lc.
pub fn install_crypto_provider() {
    // Err means one is installed already, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The HTTP client. `tls`: able to verify HTTPS servers, against the system's roots and
/// `certs`' CAs, presenting `certs`' client certificate. Without it no root certificate is
/// loaded (reading and parsing the system's bundle costs more than a loopback pull's manifest
/// round trip), and any HTTPS server fails verification: only for plain-HTTP registries.
pub fn http_client(tls: bool, certs: Option<&RegistryCerts>) -> Result<reqwest::Client> {
    install_crypto_provider();
    let mut b = reqwest::Client::builder()
        .user_agent(concat!("skiff/", env!("CARGO_PKG_VERSION")))
        // No read timeout here: reqwest's runs from the request's start to the answer's head,
        // which cut every upload longer than it. How long a peer may stay silent is the stall
        // rule's (body.rs), applied to heads, bodies and uploads alike.
        .connect_timeout(Duration::from_secs(30));
    if !tls {
        b = b.tls_certs_only(std::iter::empty());
    } else if let Some(c) = certs {
        b = b.tls_certs_merge(c.roots.iter().cloned());
        if let Some(id) = &c.identity {
            b = b.identity(id.clone());
        }
    }
    b.build()
        .map_err(|e| RegistryError::Tls(crate::session::error_chain(&e)))
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

    #[test]
    fn certs_are_looked_up_by_registry_name_only_inside_the_certs_dirs() {
        let root = tempfile::tempdir().unwrap();
        let dirs = vec![root.path().to_path_buf()];
        assert!(certs_for("reg.example:5000", &dirs).unwrap().is_none());
        std::fs::create_dir_all(root.path().join("reg.example:5000")).unwrap();
        let found = certs_for("reg.example:5000", &dirs).unwrap().unwrap();
        assert_eq!(found.dir, root.path().join("reg.example:5000"));
        // A name that would climb out of the certs dir is not looked up.
        std::fs::create_dir_all(root.path().join("x")).unwrap();
        for name in ["..", ".", "../x", "x/..", ""] {
            assert!(certs_for(name, &dirs).unwrap().is_none(), "{name}");
        }
    }
}
