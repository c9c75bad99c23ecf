//! `skiff version`: this client, the engine it embeds, the WASI versions it runs, and the daemon.

use crate::client::Client;
use crate::cmd::inspect::Format;
use clap::Args;
use hyper::Method;
use serde::Serialize;
use skiff_api::SystemInfo;

/// Show skiff's version, the wasmtime and WASI versions it runs, and the daemon's
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
skiff version\n  \
skiff version --format json | jq -r .client.wasmtime\n\n\
A daemon that does not answer is reported as such; it is not an error (skiff run and serve need none).")]
pub struct VersionArgs {
    /// Output format
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

#[derive(Serialize)]
struct Versions {
    client: ClientVersion,
    /// Absent when no daemon answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    daemon: Option<DaemonVersion>,
}

#[derive(Serialize)]
struct ClientVersion {
    version: &'static str,
    wasmtime: &'static str,
    wasi: Vec<&'static str>,
    target: String,
}

#[derive(Serialize)]
struct DaemonVersion {
    version: String,
    wasmtime: String,
}

pub fn version(client: anyhow::Result<Client>, args: VersionArgs) -> anyhow::Result<u8> {
    let daemon = client.and_then(|c| {
        let (_, info) = c.call::<SystemInfo>(Method::GET, "/v1/info", None::<&()>)?;
        info.ok_or_else(|| anyhow::anyhow!("the daemon answered nothing"))
    });
    let v = Versions {
        client: ClientVersion {
            version: env!("CARGO_PKG_VERSION"),
            wasmtime: skiff_engine::WASMTIME_VERSION,
            wasi: skiff_engine::WASI_VERSIONS.to_vec(),
            target: format!("{}-{}", std::env::consts::ARCH, std::env::consts::OS),
        },
        daemon: daemon.as_ref().ok().map(|i| DaemonVersion {
            version: i.version.clone(),
            wasmtime: i.wasmtime_version.clone(),
        }),
    };
    if let Format::Json = args.format {
        println!("{}", crate::term::json(&v)?);
        return Ok(0);
    }
    let c = &v.client;
    println!("Client:");
    println!(" Version:     {}", c.version);
    println!(" Wasmtime:    {}", c.wasmtime);
    println!(" WASI:        {}", c.wasi.join(", "));
    println!(" OS/Arch:     {}", c.target);
    println!();
    match (&v.daemon, &daemon) {
        (Some(d), _) => {
            // A daemon on TCP may be another machine's: its words are escaped like an image's.
            let t = crate::term::for_terminal;
            println!("Daemon:");
            println!(" Version:     {}", t(&d.version));
            println!(" Wasmtime:    {}", t(&d.wasmtime));
        }
        (None, Err(e)) => println!(
            "Daemon:      not reachable ({})",
            crate::term::for_terminal(&crate::term::chain(e.as_ref()))
        ),
        (None, Ok(_)) => unreachable!("a daemon that answered is reported"),
    }
    Ok(0)
}
