//! A registry client for one verb: credentials as Docker finds them, plain HTTP only where
//! allowed (loopback, `--insecure-registry`), progress reported through the CLI's reporter.

use anyhow::Context;
use skiff_registry::{DockerConfig, Progress, Registry, RegistryConfig, StallRule};
use std::path::PathBuf;
use std::sync::Arc;

pub fn registry(
    host: &str,
    insecure_registries: Vec<String>,
    progress: Arc<dyn Progress>,
) -> anyhow::Result<Registry> {
    // Without DOCKER_CONFIG or HOME there is no Docker config to read: go anonymous, as
    // Docker does; a registry that wants a login then says so.
    let credentials = match DockerConfig::from_env() {
        Ok(config) => config
            .get(host)
            .with_context(|| format!("reading the credentials for {host}"))?
            .map(|(c, _)| c),
        Err(e) => {
            tracing::debug!("no credentials: {e}");
            None
        }
    };
    Ok(Registry::new(RegistryConfig {
        insecure_registries,
        certs_dirs: certs_dirs(),
        credentials,
        progress,
        stall: stall_rule()?,
        ..Default::default()
    }))
}

/// When a registry transfer counts as stalled: the library's default (no data for 30 s, or
/// under 64 KiB in a minute), or `SKIFF_REGISTRY_STALL_TIMEOUT=DURATION`: no data for that
/// long, or under the same rate judged over it (for slow links, or tests that cannot wait a minute).
pub fn stall_rule() -> anyhow::Result<StallRule> {
    const VAR: &str = "SKIFF_REGISTRY_STALL_TIMEOUT";
    let Some(v) = std::env::var_os(VAR) else {
        return Ok(StallRule::default());
    };
    let limit = v
        .to_str()
        .and_then(|s| crate::units::parse_duration(s).ok())
        .filter(|d| d.as_secs() <= 86400)
        .with_context(|| {
            format!("{VAR}={v:?}: expected a duration (30s, 500ms, 2m; a bare number is seconds), at most a day")
        })?;
    Ok(StallRule::over(limit))
}

/// Where per-registry certificates are looked for (`DIR/HOST[:PORT]/ca.crt`, `client.cert`,
/// `client.key`): `SKIFF_CERTS_DIR` (colon-separated) if set, else Docker's own places,
/// `/etc/docker/certs.d` and, for rootless Docker, `~/.config/docker/certs.d`.
pub fn certs_dirs() -> Vec<PathBuf> {
    if let Some(dirs) = std::env::var_os("SKIFF_CERTS_DIR") {
        return std::env::split_paths(&dirs).collect();
    }
    let mut dirs = vec![PathBuf::from("/etc/docker/certs.d")];
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")));
    if let Some(config) = config {
        dirs.push(config.join("docker/certs.d"));
    }
    dirs
}

/// `--insecure-registry`, shared by every verb that talks to a registry.
#[derive(Debug, Clone, clap::Args)]
pub struct InsecureRegistries {
    /// Also allow plain HTTP to this registry (loopback registries always may)
    #[arg(
        long = "insecure-registry",
        value_name = "HOST[:PORT]",
        env = "SKIFF_INSECURE_REGISTRIES",
        value_delimiter = ','
    )]
    pub insecure: Vec<String>,
}
