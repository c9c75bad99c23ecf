//! `skiff deploy`: an HTTP app into the daemon's shared HTTP listener.

use crate::client::Client;
use crate::cmd::detach::upload;
use crate::home::Home;
use crate::units::parse_size;
use anyhow::Context;
use clap::Args;
use hyper::Method;
use skiff_api::{CreateRequest, EnvVar, Limits, RestartPolicy, Workload, WorkloadSpec};

/// Serve an HTTP handler on the node's shared HTTP listener, routed by host and path prefix
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  skiff deploy --name api --route api.example.com/ api.wasm\n  skiff deploy --name api --route /api api:2.0          redeploy: the new version takes over, nothing is dropped\n  skiff deploy --name shop --route /shop -e MODE=prod shop.wasm"
)]
pub struct DeployArgs {
    /// The app's name (unique on the node)
    #[arg(long)]
    pub name: Option<String>,
    /// HOST/PATH-PREFIX to serve, e.g. api.example.com/ or /shop [default: the image's route]
    #[arg(long, value_name = "ROUTE")]
    pub route: Option<String>,
    /// Set an environment variable: K=V, or K to pass the host's value
    #[arg(short = 'e', long = "env", value_name = "K=V")]
    pub env: Vec<String>,
    /// Let the app send HTTP requests to scheme://host[:port] (`*` wildcards, e.g.
    /// https://*.example.com); repeatable. Without it the app can reach nothing
    #[arg(long = "allow-outbound", value_name = "PATTERN")]
    pub allow_outbound: Vec<String>,
    /// Memory limit per request instance: every linear memory plus every table (8 bytes per
    /// element), together
    #[arg(long, value_name = "SIZE", default_value = "128m", value_parser = parse_size)]
    pub memory: u64,
    /// The HTTP handler component: a .wasm file or an image
    #[arg(value_name = "FILE|IMAGE")]
    pub target: String,
}

pub fn deploy(home: &Home, client: &Client, args: DeployArgs) -> anyhow::Result<u8> {
    let (image, source) = upload(client, home, &args.target)?;
    // The image's env defaults first, then -e (a later value for a name replaces it).
    let mut env: Vec<(String, String)> = source
        .image
        .as_ref()
        .map(|i| i.image.defaults.env.clone().into_iter().collect())
        .unwrap_or_default();
    for spec in &args.env {
        if let Some((k, v)) = crate::cmd::run::parse_env(spec)? {
            env.retain(|(n, _)| *n != k);
            env.push((k, v));
        }
    }
    let route = match (
        &args.route,
        source
            .image
            .as_ref()
            .and_then(|i| i.image.defaults.route.clone()),
    ) {
        (Some(r), _) => r.clone(),
        (None, Some(r)) => r,
        (None, None) => anyhow::bail!(
            "{}: no route: give one with --route HOST/PATH-PREFIX (e.g. api.example.com/ or /api)",
            args.target
        ),
    };
    let req = CreateRequest {
        name: args.name,
        spec: WorkloadSpec {
            image: image.digest,
            image_name: Some(crate::cmd::detach::image_name(&source)),
            args: vec![],
            env: env
                .into_iter()
                .map(|(name, value)| EnvVar { name, value })
                .collect(),
            mounts: vec![],
            network: false,
            limits: Limits {
                memory_bytes: Some(args.memory),
                ..Limits::default()
            },
            restart: RestartPolicy::No,
            route: Some(route),
            allow_outbound: args.allow_outbound,
        },
        start: true,
        // deploy means "make it so": a new version of an existing app replaces it in place.
        replace: true,
    };
    let (_, w) = client.call::<Workload>(Method::POST, "/v1/workloads", Some(&req))?;
    let w = w.context("the daemon did not answer the app it created")?;
    println!("{}", w.id);
    Ok(0)
}
