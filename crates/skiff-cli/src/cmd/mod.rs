//! One module per verb.

pub mod daemon;
pub mod deploy;
pub mod detach;
pub mod inspect;
pub mod lifecycle;
pub mod logs;
pub mod ps;
pub mod run;
pub mod source;
pub mod system;
pub mod up;

use crate::cli::{Cli, Command};

/// Run the chosen verb; `Ok` carries the process exit status.
pub fn dispatch(cli: Cli) -> anyhow::Result<u8> {
    let home = crate::home::resolve(cli.home)?;
    let host = cli.host;
    let client = || crate::client::Client::new(&home, host.as_deref());
    match cli.command {
        Command::Run(args) if args.detach => detach::run_detached(&client()?, &args)
            // `skiff run` failing is skiff's failure (125), daemon or not, as in Docker.
            .map_err(|e| {
                if e.is::<crate::client::ApiError>() || e.is::<crate::client::NoDaemon>() {
                    anyhow::anyhow!("{e}")
                } else {
                    e
                }
            }),
        Command::Run(args) => run::run(&home, args),
        Command::Inspect(args) if inspect::is_workload_name(&args.target) => {
            lifecycle::inspect_workload(&client()?, &args.target.to_string_lossy())
        }
        Command::Inspect(args) => inspect::inspect(args),
        Command::Daemon(args) => daemon::daemon(&home, args),
        Command::Deploy(args) => deploy::deploy(&client()?, args),
        Command::Ps(args) => ps::ps(&client()?, args),
        Command::Logs(args) => logs::logs(&client()?, args),
        Command::Stop(args) => lifecycle::stop(&client()?, args),
        Command::Start(args) => lifecycle::start(&client()?, args),
        Command::Restart(args) => lifecycle::restart(&client()?, args),
        Command::Rm(args) => lifecycle::rm(&client()?, args),
        Command::Up(args) => up::up(&client()?, args),
        Command::Down(args) => up::down(&client()?, args),
        Command::System(args) => system::system(&client()?, args),
    }
}
