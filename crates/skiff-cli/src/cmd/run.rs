//! `skiff run`: run a WASI command to completion, sandboxed and limited.

use crate::cmd::source::{pull_if_missing, resolve, PullPolicy, Workload};
use crate::exit;
use crate::home::Home;
use crate::units::{parse_duration, parse_max_open, parse_size};
use anyhow::Context;
use clap::Args;
use skiff_engine::{AllocatorChoice, Engine, EngineConfig, Exit, Limits, Mount, Sandbox};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Run a WASI command (a p1 module or a p2 component); nothing is granted unless asked
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
skiff run hello.wasm arg1 arg2\n  \
skiff run hello:1.0 world                        an image: its default args and env apply\n  \
skiff run -v ./data:/data:ro -e NAME=x app.wasm\n  \
skiff run -e HOME --env-file .env app.wasm       pass HOME from the host, more from a file\n  \
skiff run --memory 64m --timeout 5s app.wasm\n  \
skiff run -d --name job --restart on-failure:3 batch.wasm   in the daemon\n  \
echo hi | skiff run -i cat.wasm                    stdin is closed unless -i\n\n\
Exit status: the guest's own; 124 timeout, 125 skiff failed, 126 cannot run this binary,\n\
127 not found, 134 the guest trapped, 137 memory limit.")]
pub struct RunArgs {
    /// Mount a host directory: HOST:GUEST[:ro] (GUEST is absolute)
    #[arg(short = 'v', long = "volume", value_name = "HOST:GUEST[:ro]")]
    pub volumes: Vec<String>,

    /// Set an environment variable: K=V, or K to pass the host's value
    #[arg(short = 'e', long = "env", value_name = "K=V")]
    pub env: Vec<String>,

    /// Read environment variables from a file of K=V lines (# comments allowed)
    #[arg(long, value_name = "FILE")]
    pub env_file: Vec<PathBuf>,

    /// Give the guest the host's stdin
    #[arg(short = 'i', long)]
    pub interactive: bool,

    /// Allow TCP/UDP sockets to any address, and name lookup
    #[arg(long)]
    pub net: bool,

    /// Memory limit: every linear memory plus every table (8 bytes per element) of the guest,
    /// together (e.g. 64m, 1g)
    #[arg(long, value_name = "SIZE", default_value = "128m", value_parser = parse_size)]
    pub memory: u64,

    /// Open files, sockets and other handles the guest may hold at once; past it the guest is
    /// stopped (exit 134)
    #[arg(long, value_name = "N", default_value = "1024", value_parser = parse_max_open)]
    pub max_open: u32,

    /// Wall-clock limit (e.g. 500ms, 5s, 2m); none by default
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Option<Duration>,

    /// Wasm stack limit (e.g. 512k, 1m)
    #[arg(long, value_name = "SIZE", default_value = "512k", value_parser = parse_size)]
    pub stack: u64,

    /// Compile every time; do not read or write the compile cache
    #[arg(long)]
    pub no_cache: bool,

    /// Run in the daemon, detached; print the workload's ID
    #[arg(short = 'd', long)]
    pub detach: bool,

    /// The workload's name (with -d; unique on the node)
    #[arg(long, requires = "detach")]
    pub name: Option<String>,

    /// Restart policy (with -d): no, on-failure[:N], always
    #[arg(long, value_name = "POLICY", requires = "detach")]
    pub restart: Option<String>,
    /// Pull the image before running: missing (if not in the store), always, never
    #[arg(long, value_enum, default_value = "missing", value_name = "WHEN")]
    pub pull: PullPolicy,

    /// A .wasm file or an image, then the arguments for the guest. Everything after it goes to
    /// the guest, flags included; given any, they replace the image's default args.
    #[arg(
        value_name = "FILE|IMAGE [ARGS]",
        required = true,
        num_args = 1..,
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub command: Vec<String>,
}

impl RunArgs {
    pub(crate) fn target(&self) -> &Path {
        Path::new(&self.command[0])
    }

    pub(crate) fn guest_args(&self) -> &[String] {
        &self.command[1..]
    }
}

pub fn run(home: &Home, args: RunArgs) -> anyhow::Result<u8> {
    // The file comes first after the flags; a leading `-` there is a flag clap did not know.
    let first = &args.command[0];
    if first.starts_with('-') && !args.target().exists() {
        anyhow::bail!(crate::hints::unknown_run_flag(first));
    }
    pull_if_missing(home, &args.command[0], args.pull)?;
    let workload = resolve(home, &args.command[0])?;
    let sandbox = sandbox(&args, &workload)?;
    let limits = Limits {
        memory: args.memory,
        timeout: args.timeout,
        max_open: args.max_open as usize,
    };
    let bytes = workload.bytes;
    let engine = Engine::new(&EngineConfig {
        cache_dir: (!args.no_cache).then(|| home.compile_cache()),
        allocator: AllocatorChoice::OnDemand,
        max_wasm_stack: usize::try_from(args.stack).context("--stack is too large")?,
    })?;
    let program = engine
        .load(&bytes)
        .with_context(|| workload.label.clone())?;
    tracing::debug!("{}: {}", workload.label, program.info.kind);
    if let Some(timeout) = limits.timeout {
        watchdog(timeout);
    }
    match engine.run_command(&program, &sandbox, &limits)? {
        // Exit statuses are 0-255 on Unix; a guest's exit(256) wraps as it would natively.
        Exit::Code(code) => Ok((code & 0xff) as u8),
    }
}

/// The engine interrupts wasm code at the deadline. A guest blocked in a host call (reading
/// stdin, sleeping) cannot be interrupted that way, so the process ends itself shortly after.
fn watchdog(timeout: Duration) {
    std::thread::spawn(move || {
        std::thread::sleep(timeout + Duration::from_millis(250));
        eprintln!("skiff: {}", skiff_engine::RunError::Timeout(timeout));
        std::process::exit(exit::TIMEOUT as i32);
    });
}

pub(crate) fn sandbox(args: &RunArgs, workload: &Workload) -> anyhow::Result<Sandbox> {
    let defaults = workload.image.as_ref().map(|i| &i.image.defaults);
    // The image's env defaults first (Docker's ENV), then --env-file, then -e: a later value
    // for the same name replaces an earlier one.
    let mut env: Vec<(String, String)> = defaults
        .map(|d| d.env.clone().into_iter().collect())
        .unwrap_or_default();
    let mut set = |k: String, v: String| match env.iter_mut().find(|(n, _)| *n == k) {
        Some(slot) => slot.1 = v,
        None => env.push((k, v)),
    };
    for file in &args.env_file {
        for (k, v) in read_env_file(file)? {
            set(k, v);
        }
    }
    for spec in &args.env {
        if let Some((k, v)) = parse_env(spec)? {
            set(k, v);
        }
    }
    // Args given on the command line replace the image's default args (Docker's CMD).
    let guest_args: Vec<String> = match (args.guest_args(), defaults.and_then(|d| d.args.as_ref()))
    {
        ([], Some(default)) => default.clone(),
        (given, _) => given.to_vec(),
    };
    let mounts = args
        .volumes
        .iter()
        .map(|v| Mount::parse(v).map_err(anyhow::Error::msg))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Sandbox {
        args: std::iter::once(workload.argv0.clone())
            .chain(guest_args)
            .collect(),
        env,
        mounts,
        stdin: args.interactive,
        network: args.net,
        ..Sandbox::default()
    })
}

/// `K=V`, or `K` alone to pass the host's value (skipped when the host has none, as Docker does).
pub(crate) fn parse_env(spec: &str) -> anyhow::Result<Option<(String, String)>> {
    let (k, v) = match spec.split_once('=') {
        Some((k, v)) => (k.to_string(), v.to_string()),
        None => match std::env::var(spec) {
            Ok(v) => (spec.to_string(), v),
            Err(_) => {
                tracing::debug!("-e {spec}: the host has no {spec}; not set");
                return Ok(None);
            }
        },
    };
    if k.is_empty() || k.contains('\0') {
        anyhow::bail!("invalid environment variable {spec:?}: expected K=V with a non-empty K");
    }
    Ok(Some((k, v)))
}

pub(crate) fn read_env_file(path: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("--env-file {}: cannot read it", path.display()))?;
    text.lines()
        .enumerate()
        .map(|(i, l)| (i, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|(i, l)| {
            parse_env(l)
                .with_context(|| format!("--env-file {} line {}", path.display(), i + 1))
                .transpose()
        })
        .collect()
}
