//! One module per verb.

pub mod build;
pub mod image;
pub mod images;
pub mod inspect;
pub mod load;
pub mod login;
pub mod pull;
pub mod push;
pub mod rmi;
pub mod run;
pub mod save;
pub mod serve;
pub mod source;
pub mod system;
pub mod tag;

use crate::cli::{Cli, Command};

/// Run the chosen verb; `Ok` carries the process exit status.
pub fn dispatch(cli: Cli) -> anyhow::Result<u8> {
    let home = crate::home::resolve(cli.home)?;
    match cli.command {
        Command::Run(args) => run::run(&home, args),
        Command::Serve(args) => serve::serve(&home, *args),
        Command::Inspect(args) => inspect::inspect(&home, args),
        Command::Build(args) => build::build(&home, args),
        Command::Images(args) => images::images(&home, args),
        Command::Tag(args) => tag::tag(&home, args),
        Command::Rmi(args) => rmi::rmi(&home, args),
        Command::Save(args) => save::save(&home, args),
        Command::Load(args) => load::load(&home, args),
        Command::Image(cmd) => image::image(&home, cmd),
        Command::System(cmd) => system::system(&home, cmd),
        Command::Login(args) => login::login(args),
        Command::Logout(args) => login::logout(args),
        Command::Pull(args) => pull::pull(&home, args),
        Command::Push(args) => push::push(&home, args),
    }
}
