//! `skiff daemon`: run the node agent in the foreground (put it in the background with `&`, or
//! under a service manager).

use crate::home::Home;
use crate::units::parse_size;
use clap::Args;
use std::net::SocketAddr;

/// Run the node agent: an API for detached workloads, with state that survives restarts
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
skiff daemon &                                  API on SKIFF_HOME/daemon/skiff.sock (mode 0600)\n  \
skiff --home /srv/skiff daemon                  another home, another daemon\n  \
skiff daemon --api-listen 127.0.0.1:7070        also on TCP; requests need the bearer token\n                                                  in SKIFF_HOME/daemon/token\n  \
skiff daemon --http-listen 0.0.0.0:8080         serve HTTP apps (skiff deploy) on one listener\n  \
skiff daemon --http-listen :8080 --access-log /var/log/skiff-access.log\n  \
skiff daemon --log-max-size 1m --log-max-files 5\n  \
skiff daemon --allow-mount /srv/data            API clients may mount only under /srv/data\n  \
skiff --policy /etc/skiff/policy.json daemon    run only what this trust policy accepts\n\n\
Trust: with a policy (--policy, SKIFF_POLICY, or SKIFF_HOME/policy.json) every uploaded binary\n\
is checked before it is stored: signed as the policy asks, or refused (docs/trust.md).\n\n\
Stop it with SIGTERM or Ctrl-C. Workloads that should run are started again by the next daemon,\n\
also after kill -9.")]
pub struct DaemonArgs {
    /// Also serve the API on TCP at ADDR (e.g. 127.0.0.1:7070); every request then needs
    /// `Authorization: Bearer <token>`
    #[arg(long, value_name = "ADDR", value_parser = crate::units::parse_listen)]
    pub api_listen: Option<SocketAddr>,

    /// Serve HTTP apps (skiff deploy, compose entries with a route) on ADDR, e.g. 0.0.0.0:8080
    #[arg(long, value_name = "ADDR", value_parser = crate::units::parse_listen)]
    pub http_listen: Option<SocketAddr>,

    /// Write one line per data-plane request to FILE (`-`: stderr): time, app, method, path,
    /// status, bytes, duration, request id. Rotated at 16 MiB, 4 files kept; lines a flood
    /// outruns are dropped and counted, never waited for
    #[arg(long, value_name = "FILE", requires = "http_listen")]
    pub access_log: Option<std::path::PathBuf>,

    /// Memory for apps' compiled code; beyond it the least recently used apps are unloaded
    /// (they load again, from the compile cache, on their next request)
    #[arg(long, value_name = "SIZE", default_value = "512m", value_parser = parse_size)]
    pub app_cache_size: u64,

    /// Rotate a workload's log file when it reaches SIZE
    #[arg(long, value_name = "SIZE", default_value = "10m", value_parser = parse_size)]
    pub log_max_size: u64,

    /// Let API clients mount host directories under PATH only (repeatable). Without it they
    /// may mount any directory this daemon's user can open, `/` included, as with Docker: API
    /// access then equals that user's file access. Paths are compared after resolving symlinks
    /// and `..`; a mount outside every PATH is refused (403)
    #[arg(long, value_name = "PATH")]
    pub allow_mount: Vec<std::path::PathBuf>,

    /// Log files kept per workload, the current one included
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub log_max_files: u32,
}

pub fn daemon(home: &Home, args: DaemonArgs) -> anyhow::Result<u8> {
    // A guest's exit (`proc_exit`) reaches the host as an error value, and with RUST_BACKTRACE
    // set every error value captures a native backtrace: measured, that cost more than running
    // the task. Panics keep their backtraces (RUST_BACKTRACE); error values capture none unless
    // RUST_LIB_BACKTRACE asks for them. Set before the runtime starts any thread.
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        std::env::set_var("RUST_LIB_BACKTRACE", "0");
    }
    let mounts = if args.allow_mount.is_empty() {
        skiff_daemon::MountPolicy::any()
    } else {
        skiff_daemon::MountPolicy::only(&args.allow_mount).map_err(anyhow::Error::msg)?
    };
    tracing::info!("skiff daemon: {}", mounts.describe());
    // The node's policy, as pull reads one: `--policy`/`SKIFF_POLICY`, else the home's
    // policy.json. A named file that is missing or malformed stops the daemon here.
    let policy = Some(home.policy()?).filter(|p| !p.is_default());
    match &policy {
        Some(p) => tracing::info!("skiff daemon: uploads are checked against {}", p.source()),
        None => tracing::info!("skiff daemon: no trust policy; every binary is accepted"),
    }
    skiff_daemon::run(skiff_daemon::DaemonConfig {
        mounts,
        home: home.root().to_path_buf(),
        api_listen: args.api_listen,
        http_listen: args.http_listen,
        app_cache_size: args.app_cache_size,
        access_log: args.access_log,
        policy,
        log: skiff_daemon::LogConfig {
            max_size: args.log_max_size,
            max_files: args.log_max_files,
        },
    })?;
    Ok(0)
}
