//! One module per verb.

pub mod inspect;
pub mod login;
pub mod run;
pub mod source;

use crate::cli::{Cli, Command};

/// Run the chosen verb; `Ok` carries the process exit status.
pub fn dispatch(cli: Cli) -> anyhow::Result<u8> {
    let home = crate::home::resolve(cli.home)?;
    match cli.command {
        Command::Run(args) => run::run(&home, args),
        Command::Inspect(args) => inspect::inspect(args),
        Command::Login(args) => login::login(args),
        Command::Logout(args) => login::logout(args),
    }
}
