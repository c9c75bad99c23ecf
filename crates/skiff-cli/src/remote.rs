//! A registry client for one verb: credentials as Docker finds them, plain HTTP only where
//! allowed (loopback, `--insecure-registry`), progress reported through the CLI's reporter.

use anyhow::Context;
use skiff_registry::{DockerConfig, Progress, Registry, RegistryConfig};
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
        credentials,
        progress,
        ..Default::default()
    }))
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
