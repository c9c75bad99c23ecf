//! `skiff stop | kill | start | restart | wait | rm` of daemon workloads.

use crate::client::Client;
use crate::term::for_terminal;
use clap::Args;
use hyper::Method;

/// Stop running workloads (they stay stopped across daemon restarts)
#[derive(Debug, Args)]
#[command(
    after_help = "Tasks stop at once (WASI has no signals a guest could catch); apps get -t\nseconds to finish the requests they are serving.\n\nExamples:\n  skiff stop job\n  skiff stop -t 30 api"
)]
pub struct StopArgs {
    #[command(flatten)]
    pub graceful: Graceful,
}

/// What `stop` and `restart` both take.
#[derive(Debug, Args)]
pub struct Graceful {
    /// Seconds to wait for in-flight requests (apps)
    #[arg(short = 't', long = "time", value_name = "SECS", default_value_t = 10)]
    pub time: u64,
    /// Workloads, by name or ID (a unique prefix of it)
    #[arg(required = true, value_name = "WORKLOAD")]
    pub workloads: Vec<String>,
}

/// Stop, then start workloads again
#[derive(Debug, Args)]
#[command(
    after_help = "A task starts a new run; an app keeps its route and serves again once started.\n\nExamples:\n  skiff restart job\n  skiff restart -t 30 api     give in-flight requests 30 s first"
)]
pub struct RestartArgs {
    #[command(flatten)]
    pub graceful: Graceful,
}

/// Kill workloads at once: no grace for in-flight requests
#[derive(Debug, Args)]
#[command(
    after_help = "WASI guests have no signal handlers, so there is no signal to choose (Docker's -s): kill is\nstop with no grace. A task ends now; an app's route goes and its in-flight requests are\ncut (503, or a body cut short). Like stop, it stays stopped across daemon restarts.\n\nExamples:\n  skiff kill job\n  skiff kill api worker"
)]
pub struct KillArgs {
    /// Workloads, by name or ID (a unique prefix of it)
    #[arg(required = true, value_name = "WORKLOAD")]
    pub workloads: Vec<String>,
}

/// Start stopped workloads again
#[derive(Debug, Args)]
#[command(
    after_help = "A task starts a new run; an app's route is served again.\n\nExamples:\n  skiff start job\n  skiff start api worker"
)]
pub struct StartArgs {
    /// Workloads, by name or ID (a unique prefix of it)
    #[arg(required = true, value_name = "WORKLOAD")]
    pub workloads: Vec<String>,
}

/// Wait until workloads end, then print each one's exit code
///
/// A workload stopped before it ended prints its status (`stopped`) instead.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  skiff run -d --name job batch.wasm\n  skiff wait job            prints 0 once job has exited successfully"
)]
pub struct WaitArgs {
    /// Workloads, by name or ID (a unique prefix of it)
    #[arg(required = true, value_name = "WORKLOAD")]
    pub workloads: Vec<String>,
}

/// Remove workloads and their logs
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  skiff rm job\n  skiff rm -f api            stop it first")]
pub struct RmArgs {
    /// Stop a running workload before removing it
    #[arg(short, long)]
    pub force: bool,
    /// Workloads, by name or ID (a unique prefix of it)
    #[arg(required = true, value_name = "WORKLOAD")]
    pub workloads: Vec<String>,
}

/// Each workload in turn; like Docker, print each name done, report each failure, go on.
fn each(names: &[String], mut f: impl FnMut(&str) -> anyhow::Result<()>) -> anyhow::Result<u8> {
    let mut failed = None;
    for n in names {
        match f(n) {
            Ok(()) => println!("{}", for_terminal(n)),
            Err(e) => {
                if e.is::<crate::client::NoDaemon>() {
                    return Err(e);
                }
                eprintln!(
                    "skiff: {}: {}",
                    for_terminal(n),
                    for_terminal(&crate::term::chain(e.as_ref()))
                );
                failed = Some(1);
            }
        }
    }
    Ok(failed.unwrap_or(0))
}

/// `POST /v1/workloads/NAME/ACTION` for each name, as [`each`] reports.
fn post_each(client: &Client, names: &[String], action: &str) -> anyhow::Result<u8> {
    each(names, |n| {
        client.call::<()>(
            Method::POST,
            &format!("/v1/workloads/{n}/{action}"),
            None::<&()>,
        )?;
        Ok(())
    })
}

pub fn stop(client: &Client, args: StopArgs) -> anyhow::Result<u8> {
    let g = args.graceful;
    post_each(client, &g.workloads, &format!("stop?t={}", g.time))
}

pub fn start(client: &Client, args: StartArgs) -> anyhow::Result<u8> {
    post_each(client, &args.workloads, "start")
}

/// Stop with no grace: WASI has no signal a guest could catch, so this is Docker's SIGKILL.
pub fn kill(client: &Client, args: KillArgs) -> anyhow::Result<u8> {
    post_each(client, &args.workloads, "stop?t=0")
}

pub fn restart(client: &Client, args: RestartArgs) -> anyhow::Result<u8> {
    let g = args.graceful;
    post_each(client, &g.workloads, &format!("restart?t={}", g.time))
}

pub fn wait(client: &Client, args: WaitArgs) -> anyhow::Result<u8> {
    let mut failed = 0;
    for n in &args.workloads {
        match client.call::<skiff_api::WaitResponse>(
            Method::POST,
            &format!("/v1/workloads/{n}/wait"),
            None::<&()>,
        ) {
            Ok((_, Some(w))) => match w.exit_code {
                Some(code) => println!("{code}"),
                None => println!(
                    "{}",
                    serde_json::to_value(w.status)?.as_str().unwrap_or("-")
                ),
            },
            Ok((_, None)) => anyhow::bail!("the daemon did not say how {n} ended"),
            Err(e) if e.is::<crate::client::NoDaemon>() => return Err(e),
            Err(e) => {
                eprintln!(
                    "skiff: {}: {}",
                    for_terminal(n),
                    for_terminal(&crate::term::chain(e.as_ref()))
                );
                failed = 1;
            }
        }
    }
    Ok(failed)
}

pub fn rm(client: &Client, args: RmArgs) -> anyhow::Result<u8> {
    each(&args.workloads, |n| {
        client.call::<()>(
            Method::DELETE,
            &format!("/v1/workloads/{n}?force={}", args.force),
            None::<&()>,
        )?;
        Ok(())
    })
}
