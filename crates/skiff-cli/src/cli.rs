//! The command line's shape. clap types live here and in `cmd/`, nowhere else.

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Every verb's help lists these apart from its own flags.
const GLOBAL: &str = "Global options";

#[derive(Debug, Parser)]
#[command(
    name = "skiff",
    version,
    about = "Run WebAssembly workloads the way Docker runs containers",
    long_about = "Run WebAssembly workloads the way Docker runs containers.\n\n\
A guest is granted nothing unless asked: no file, no environment variable, no socket, no stdin.",
    after_help = "Examples:\n  \
skiff run hello.wasm world                      run a WASI command with arguments\n  \
skiff run -v ./data:/data:ro -e NAME=x app.wasm   grant a read-only directory and a variable\n  \
skiff run --memory 64m --timeout 5s app.wasm     tighten the limits\n  \
skiff inspect app.wasm                          what is this binary, what could it do?\n  \
skiff serve --listen 0.0.0.0:8080 app.wasm       serve a wasi:http component\n  \
skiff build -t hello:1.0 .                       build an image from ./skiff.toml\n  \
skiff images                                    list local images\n  \
skiff run hello:1.0 world                       run an image\n  \
skiff daemon --http-listen 127.0.0.1:8080 &     start the node agent, then:\n  \
skiff run -d --name job --restart on-failure:3 batch.wasm\n  \
skiff deploy --name api --route api.example.com/ api.wasm\n  \
skiff ps; skiff logs -f job; skiff stop job; skiff rm job\n  \
skiff up -f skiff-compose.toml; skiff down\n  \
skiff push localhost:5000/hello:1.0             push it to a registry\n  \
skiff run localhost:5000/hello:1.0              pulled first if missing"
)]
pub struct Cli {
    /// Where skiff keeps its store and compile cache [default: $XDG_DATA_HOME/skiff or
    /// ~/.local/share/skiff]
    #[arg(long, global = true, env = "SKIFF_HOME", value_name = "DIR", help_heading = GLOBAL)]
    pub home: Option<PathBuf>,

    /// How much skiff itself logs to stderr [default: warn; info for serve]
    #[arg(long, global = true, value_enum, env = "SKIFF_LOG", help_heading = GLOBAL)]
    pub log_level: Option<LogLevel>,

    /// The daemon to talk to: unix:///path/to/skiff.sock or tcp://HOST:PORT (the TCP token is
    /// read from SKIFF_TOKEN) [default: the socket under SKIFF_HOME]
    #[arg(
        short = 'H',
        long,
        global = true,
        env = "SKIFF_HOST",
        value_name = "URL",
        help_heading = GLOBAL
    )]
    pub host: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Run(crate::cmd::run::RunArgs),
    Inspect(crate::cmd::inspect::InspectArgs),
    Serve(Box<crate::cmd::serve::ServeArgs>),
    Build(crate::cmd::build::BuildArgs),
    Images(crate::cmd::images::ImagesArgs),
    Tag(crate::cmd::tag::TagArgs),
    Rmi(crate::cmd::rmi::RmiArgs),
    Save(crate::cmd::save::SaveArgs),
    Load(crate::cmd::load::LoadArgs),
    /// Manage images (prune)
    #[command(subcommand)]
    Image(crate::cmd::image::ImageCommand),
    Login(crate::cmd::login::LoginArgs),
    Logout(crate::cmd::login::LogoutArgs),
    Daemon(crate::cmd::daemon::DaemonArgs),
    Deploy(crate::cmd::deploy::DeployArgs),
    Ps(crate::cmd::ps::PsArgs),
    Logs(crate::cmd::logs::LogsArgs),
    Stop(crate::cmd::lifecycle::StopArgs),
    Start(crate::cmd::lifecycle::StartArgs),
    Restart(crate::cmd::lifecycle::RestartArgs),
    Kill(crate::cmd::lifecycle::KillArgs),
    Wait(crate::cmd::lifecycle::WaitArgs),
    Rm(crate::cmd::lifecycle::RmArgs),
    Up(crate::cmd::up::UpArgs),
    Down(crate::cmd::up::DownArgs),
    /// The node: check the local store; the daemon's info
    #[command(subcommand)]
    System(crate::cmd::system::SystemCommand),
    Pull(crate::cmd::pull::PullArgs),
    Push(crate::cmd::push::PushArgs),
    Version(crate::cmd::version::VersionArgs),
    Completion(crate::cmd::completion::CompletionArgs),
    Man(crate::cmd::completion::ManArgs),
}
