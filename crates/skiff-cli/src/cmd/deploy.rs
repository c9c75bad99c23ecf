//! `skiff deploy`: an HTTP app into the daemon's shared HTTP listener.

use crate::client::Client;
use crate::cmd::detach::upload;
use crate::units::parse_size;
use anyhow::Context;
use clap::Args;
use hyper::Method;
use skiff_api::{CreateRequest, EnvVar, Limits, RestartPolicy, Workload, WorkloadSpec};
use std::path::PathBuf;

/// Serve an HTTP handler on the node's shared HTTP listener, routed by host and path prefix
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  skiff deploy --name api --route api.example.com/ api.wasm\n  skiff deploy --name shop --route /shop -e MODE=prod shop.wasm"
)]
pub struct DeployArgs {
    /// The app's name (unique on the node)
    #[arg(long)]
    pub name: Option<String>,
    /// HOST/PATH-PREFIX to serve, e.g. api.example.com/ or /shop
    #[arg(long, value_name = "ROUTE")]
    pub route: String,
    /// Set an environment variable: K=V, or K to pass the host's value
    #[arg(short = 'e', long = "env", value_name = "K=V")]
    pub env: Vec<String>,
    /// Linear memory limit per request instance
    #[arg(long, value_name = "SIZE", default_value = "128m", value_parser = parse_size)]
    pub memory: u64,
    /// The HTTP handler component (.wasm)
    pub file: PathBuf,
}

pub fn deploy(client: &Client, args: DeployArgs) -> anyhow::Result<u8> {
    let image = upload(client, &args.file)?;
    let env = args
        .env
        .iter()
        .filter_map(|e| crate::cmd::run::parse_env(e).transpose())
        .collect::<anyhow::Result<Vec<_>>>()?;
    let req = CreateRequest {
        name: args.name,
        spec: WorkloadSpec {
            image: image.digest,
            image_name: args
                .file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned()),
            args: vec![],
            env: env
                .into_iter()
                .map(|(name, value)| EnvVar { name, value })
                .collect(),
            mounts: vec![],
            network: false,
            limits: Limits {
                memory_bytes: Some(args.memory),
                timeout_ms: None,
            },
            restart: RestartPolicy::No,
            route: Some(args.route),
        },
        start: true,
    };
    let (_, w) = client.call::<Workload>(Method::POST, "/v1/workloads", Some(&req))?;
    let w = w.context("the daemon did not answer the app it created")?;
    println!("{}", w.id);
    Ok(0)
}
