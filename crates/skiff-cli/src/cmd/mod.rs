//! One module per verb.

pub mod build;
pub mod completion;
pub mod daemon;
pub mod deploy;
pub mod detach;
pub mod disk;
pub mod events;
pub mod files;
pub mod flags;
pub mod image;
pub mod images;
pub mod inspect;
pub mod key;
pub mod lifecycle;
pub mod load;
pub mod login;
pub mod logs;
pub mod ps;
pub mod pull;
pub mod push;
pub mod rmi;
pub mod run;
pub mod save;
pub mod sbom;
pub mod scan;
pub mod serve;
pub mod sign;
pub mod source;
pub mod stats;
pub mod system;
pub mod tag;
pub mod up;
pub mod verify;
pub mod version;

use crate::cli::{Cli, Command};

/// Run the chosen verb; `Ok` carries the process exit status.
pub fn dispatch(cli: Cli) -> anyhow::Result<u8> {
    let home = crate::home::resolve(cli.home, cli.policy)?;
    let host = cli.host;
    let client = || crate::client::Client::new(&home, host.as_deref());
    match cli.command {
        Command::Run(args) if args.detach => detach::run_detached(&home, &client()?, &args)
            // `skiff run` failing is skiff's failure (125), daemon or not, as in Docker.
            .map_err(|e| {
                if e.is::<crate::client::ApiError>() || e.is::<crate::client::NoDaemon>() {
                    crate::exit::SkiffFailed(e).into()
                } else {
                    e
                }
            }),
        Command::Run(args) => run::run(&home, args),
        Command::Inspect(args) => inspect::inspect_any(&home, client, args),
        Command::Daemon(args) => daemon::daemon(&home, args),
        Command::Deploy(args) => deploy::deploy(&home, &client()?, args),
        Command::Ps(args) => ps::ps(&client()?, args),
        Command::Logs(args) => logs::logs(&client()?, args),
        Command::Stop(args) => lifecycle::stop(&client()?, args),
        Command::Start(args) => lifecycle::start(&client()?, args),
        Command::Restart(args) => lifecycle::restart(&client()?, args),
        Command::Kill(args) => lifecycle::kill(&client()?, args),
        Command::Rm(args) => lifecycle::rm(&client()?, args),
        Command::Wait(args) => lifecycle::wait(&client()?, args),
        Command::Events(args) => events::events(&client()?, args),
        Command::Stats(args) => stats::stats(&client()?, args),
        Command::Top(args) => stats::top(&client()?, args),
        Command::Up(args) => up::up(&home, &client()?, args),
        Command::Down(args) => up::down(&client()?, args),
        Command::Serve(args) => serve::serve(&home, *args),
        Command::Build(args) => build::build(&home, args),
        Command::Images(args) => images::images(&home, args),
        Command::Tag(args) => tag::tag(&home, args),
        Command::Rmi(args) => rmi::rmi(&home, args),
        Command::Save(args) => save::save(&home, args),
        Command::Load(args) => load::load(&home, args),
        Command::Image(cmd) => image::image(&home, cmd),
        Command::System(cmd) => system::system(&home, client, cmd),
        Command::Login(args) => login::login(args),
        Command::Logout(args) => login::logout(args),
        Command::Pull(args) => pull::pull(&home, args),
        Command::Push(args) => push::push(&home, args),
        Command::Key(cmd) => key::key(cmd),
        Command::Sign(args) => sign::sign(args),
        Command::Verify(args) => verify::verify(&home, args),
        Command::Sbom(args) => sbom::sbom(&home, args),
        Command::Scan(args) => scan::scan(&home, args),
        Command::Version(args) => version::version(client(), args),
        Command::Completion(args) => completion::completion(args),
        Command::Man(args) => completion::man(args),
    }
}
