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

    /// How much skiff itself logs to stderr [default: warn; info for serve and daemon]
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

    /// The trust policy pulls are checked against (containers-policy.json's format)
    /// [default: SKIFF_HOME/policy.json if it exists, else accept any image]
    #[arg(long, global = true, env = "SKIFF_POLICY", value_name = "FILE", help_heading = GLOBAL)]
    pub policy: Option<PathBuf>,

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
    Events(crate::cmd::events::EventsArgs),
    Stats(crate::cmd::stats::StatsArgs),
    Top(crate::cmd::stats::TopArgs),
    Up(crate::cmd::up::UpArgs),
    Down(crate::cmd::up::DownArgs),
    /// The node: check the local store; the daemon's info
    #[command(subcommand)]
    System(crate::cmd::system::SystemCommand),
    Pull(crate::cmd::pull::PullArgs),
    Push(crate::cmd::push::PushArgs),
    /// Signing keys (cosign's format)
    #[command(subcommand)]
    Key(crate::cmd::key::KeyCommand),
    Sign(crate::cmd::sign::SignArgs),
    Verify(crate::cmd::verify::VerifyArgs),
    Sbom(crate::cmd::sbom::SbomArgs),
    Scan(crate::cmd::scan::ScanArgs),
    Version(crate::cmd::version::VersionArgs),
    Completion(crate::cmd::completion::CompletionArgs),
    Man(crate::cmd::completion::ManArgs),
}

#[cfg(test)]
mod tests {
    //! The help is part of the interface: every verb shows examples, every argument says what it
    //! is, and every example parses with the very parser it documents.
    use super::Cli;
    use clap::{CommandFactory, Parser};

    /// Every verb, nested ones (`image prune`, `system info`) included, with its path.
    fn verbs() -> Vec<(String, clap::Command)> {
        fn walk(prefix: &str, cmd: &clap::Command, out: &mut Vec<(String, clap::Command)>) {
            for sub in cmd.get_subcommands() {
                let path = format!("{prefix} {}", sub.get_name()).trim().to_string();
                if sub.has_subcommands() {
                    walk(&path, sub, out);
                } else {
                    out.push((path, sub.clone()));
                }
            }
        }
        let mut out = Vec::new();
        walk("", &Cli::command(), &mut out);
        out
    }

    /// The `skiff …` commands of a help text: each line's commands (split at `;`, `|`, `&&`),
    /// without the description that follows after a run of spaces, nor a trailing `&`.
    fn examples(text: &str) -> Vec<String> {
        text.lines()
            .flat_map(|l| l.split(['|', ';']).flat_map(|p| p.split("&&")))
            .map(|p| p.trim())
            .filter(|p| p.starts_with("skiff "))
            .map(|p| {
                let cmd = p.split("  ").next().unwrap_or(p);
                // A redirection ends the command: `skiff completion bash > FILE`, `2>/dev/null`.
                let cmd: Vec<&str> = cmd
                    .split_whitespace()
                    .take_while(|w| !w.contains(['>', '<']) && *w != "&")
                    .collect();
                cmd.join(" ")
            })
            .filter(|c| !c.contains("$("))
            .collect()
    }

    /// Shell words: whitespace-separated, single and double quotes kept together.
    fn words(cmd: &str) -> Vec<String> {
        let (mut out, mut cur, mut quote, mut any) = (Vec::new(), String::new(), None, false);
        for c in cmd.chars() {
            match (quote, c) {
                (None, '\'' | '"') => (quote, any) = (Some(c), true),
                (Some(q), c) if c == q => quote = None,
                (None, c) if c.is_whitespace() => {
                    if any {
                        out.push(std::mem::take(&mut cur));
                        any = false;
                    }
                }
                (_, c) => {
                    cur.push(c);
                    any = true;
                }
            }
        }
        if any {
            out.push(cur);
        }
        out
    }

    #[test]
    fn every_verb_has_examples_that_parse() {
        let (mut checked, mut problems) = (0, Vec::new());
        for (path, cmd) in verbs() {
            let help = cmd
                .get_after_help()
                .or(cmd.get_after_long_help())
                .map(|h| h.to_string())
                .unwrap_or_default();
            let found = examples(&help);
            if found.is_empty() {
                problems.push(format!("skiff {path}: no examples in its help"));
            }
            for example in found {
                if let Err(e) = Cli::try_parse_from(words(&example)) {
                    if !matches!(e.kind(), clap::error::ErrorKind::DisplayHelp) {
                        problems.push(format!("skiff {path}: `{example}` does not parse: {e}"));
                    }
                }
                // An example for another verb is fine (`skiff run -d … ; skiff wait job`).
                checked += 1;
            }
        }
        assert!(problems.is_empty(), "{}", problems.join("\n"));
        assert!(checked > 40, "only {checked} examples found");
    }

    #[test]
    fn every_argument_says_what_it_is() {
        let mut problems = Vec::new();
        for (path, cmd) in verbs() {
            for arg in cmd.get_arguments() {
                if arg.is_hide_set() || arg.get_id() == "help" || arg.get_id() == "version" {
                    continue;
                }
                let help = arg
                    .get_help()
                    .or(arg.get_long_help())
                    .map(|h| h.to_string());
                if help.is_none_or(|h| h.trim().is_empty()) {
                    problems.push(format!("skiff {path}: {} has no description", arg.get_id()));
                }
            }
        }
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }
}
