//! `skiff deploy`: an HTTP app into the daemon's shared HTTP listener.

use crate::client::Client;
use crate::cmd::detach::upload;
use crate::cmd::flags::{absolute_mounts, GuestFlags, HttpFlags, Scope};
use crate::home::Home;
use anyhow::Context;
use clap::Args;
use hyper::Method;
use skiff_api::{CreateRequest, RestartPolicy, Workload, WorkloadSpec};
use std::path::Path;

/// Serve an HTTP handler on the node's shared HTTP listener, routed by host and path prefix
#[derive(Debug, Args)]
#[command(
    after_help = "The grant and limit flags are skiff serve's, for one app.\n\n\
Examples:\n  skiff deploy --name api --route api.example.com/ api.wasm\n  skiff deploy --name api --route /api api:2.0          redeploy: the new version takes over, nothing is dropped\n  skiff deploy --name shop --route /shop -e MODE=prod --env-file shop.env --cpu-time 1s shop.wasm"
)]
pub struct DeployArgs {
    /// The app's name (unique on the node)
    #[arg(long)]
    pub name: Option<String>,
    /// HOST/PATH-PREFIX to serve, e.g. api.example.com/ or /shop [default: the image's route]
    #[arg(long, value_name = "ROUTE")]
    pub route: Option<String>,
    #[command(flatten)]
    pub guest: GuestFlags,
    #[command(flatten)]
    pub http: HttpFlags,
    /// The HTTP handler component: a .wasm file or an image
    #[arg(value_name = "FILE|IMAGE")]
    pub target: String,
}

pub fn deploy(home: &Home, client: &Client, args: DeployArgs) -> anyhow::Result<u8> {
    let (image, source) = upload(
        client,
        home,
        &args.target,
        crate::cmd::source::PullPolicy::Missing,
    )?;
    let scope = Scope::ONE;
    let mut grants = args.guest.grants(scope)?;
    args.http.apply(scope, &mut grants)?;
    grants.route = args.route.clone();
    let mut guest = skiff_spec::resolve(&source.defaults(), grants);
    if guest.route.is_none() {
        anyhow::bail!(
            "{}: no route: give one with --route HOST/PATH-PREFIX (e.g. api.example.com/ or /api)",
            args.target
        );
    }
    absolute_mounts(&mut guest, Path::new("."))?;
    let req = CreateRequest {
        name: args.name,
        spec: WorkloadSpec {
            image: image.digest,
            image_name: Some(crate::cmd::detach::image_name(&source)),
            guest,
            restart: RestartPolicy::No,
            auto_remove: false,
        },
        start: true,
        // deploy means "make it so": a new version of an existing app replaces it in place.
        replace: true,
    };
    // The data plane's engine compiles it once more (its pooling settings make other code).
    let what = format!("{} for the data plane", source.label);
    let stderr = crate::progress::Stream::Stderr;
    let (_, w) = crate::progress::compiling(stderr, &what, image.size, || {
        client.call::<Workload>(Method::POST, "/v1/workloads", Some(&req))
    })?;
    let w = w.context("the daemon did not answer the app it created")?;
    // The ID on stdout, as `docker run -d` (scripts read it); where to reach the app on stderr.
    println!("{}", w.id);
    if let Some(url) = app_url(client, &w) {
        eprintln!("{} (version {}) serving at {url}", w.name, w.version);
    }
    Ok(0)
}

/// Where a client reaches app `w` on the daemon's data plane, if the daemon says.
fn app_url(client: &Client, w: &Workload) -> Option<String> {
    let (_, info) = client
        .call::<skiff_api::SystemInfo>(Method::GET, "/v1/info", None::<&()>)
        .ok()?;
    let listen: std::net::SocketAddr = info?.http?.listen.parse().ok()?;
    let route = skiff_http::Route::parse(w.spec.guest.route.as_deref()?).ok()?;
    let url = route.url("http", listen);
    // A route for a host name is reached through that name: say where the listener is too.
    Some(match route.to_string().starts_with('/') {
        true => url,
        false => format!("{url} (the data plane listens on {listen})"),
    })
}
