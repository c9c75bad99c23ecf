//! `skiff run`: run a WASI command to completion, sandboxed and limited.

use crate::cmd::flags::{GuestFlags, Scope};
use crate::cmd::source::{pull_if_missing, resolve, resolve_to_run, PullPolicy, Workload};
use crate::home::Home;
use crate::units::parse_size;
use anyhow::Context;
use clap::Args;
use skiff_engine::{AllocatorChoice, Engine, EngineConfig, Exit, Limits, Sandbox};
use skiff_spec::GuestSpec;
use std::path::Path;

/// Run a WASI command (a p1 module or a p2 component); nothing is granted unless asked
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
skiff run hello.wasm arg1 arg2\n  \
skiff run hello:1.0 world                        an image: its default args and env apply\n  \
skiff run -v ./data:/data:ro -e NAME=x app.wasm\n  \
skiff run -e HOME --env-file .env app.wasm       pass HOME from the host, more from a file\n  \
skiff run --memory 64m --timeout 5s app.wasm\n  \
skiff run --invoke add lib.wasm 1 2               call an exported function, print its result\n  \
skiff run --invoke 'add(1, 2)' calc.wasm          the same for a component (WAVE, as wasmtime)\n  \
skiff run -d --name job --restart on-failure:3 batch.wasm   in the daemon\n  \
echo hi | skiff run -i cat.wasm                    stdin is closed unless -i\n  \
skiff run -p 8080:8080 http-hello.wasm             serve an HTTP component, as skiff serve\n\n\
Exit status: the guest's own; 124 timeout, 125 skiff failed, 126 cannot run this binary,\n\
127 not found, 134 the guest trapped, 137 memory limit.")]
pub struct RunArgs {
    #[command(flatten)]
    pub guest: GuestFlags,

    /// Give the guest the host's stdin
    #[arg(short = 'i', long)]
    pub interactive: bool,

    /// Serve an HTTP component on this host address until interrupted, as `skiff serve
    /// --listen` does: [IP:]HOST_PORT:PORT as Docker takes it (HOST_PORT:PORT binds every
    /// interface), or an address (localhost:8080, :8080, 8080)
    #[arg(short = 'p', long = "publish", value_name = "[IP:]HOST_PORT:PORT", value_parser = crate::units::parse_publish, conflicts_with_all = ["detach", "invoke", "interactive"])]
    pub publish: Option<std::net::SocketAddr>,

    /// Wasm stack limit (e.g. 512k, 1m)
    #[arg(long, value_name = "SIZE", default_value = "512k", value_parser = parse_size)]
    pub stack: u64,

    /// Call this exported function instead of the entry point, results printed one a line, as
    /// `wasmtime run --invoke` does: of a core module (after `_initialize`, if any), NAME with
    /// its parameters parsed from ARGS by their types; of a component, 'NAME(ARG, ...)' in
    /// WAVE, e.g. --invoke 'add(1, 2)'. `skiff inspect` lists the functions
    #[arg(long, value_name = "NAME", conflicts_with = "detach")]
    pub invoke: Option<String>,

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

    /// Remove the workload and its logs once it ends (with -d; a foreground run keeps nothing
    /// anyway, so there it changes nothing)
    #[arg(long, conflicts_with = "restart")]
    pub rm: bool,
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
    if let Some(listen) = args.publish {
        return publish(home, args, listen);
    }
    let workload = resolve_to_run(home, &args.command[0])?;
    let spec = guest_spec(&args, &workload)?;
    tracing::debug!("guest: {}", serde_json::to_string(&spec)?);
    let sandbox = Sandbox::from_spec(&spec, workload.argv0.clone()).map_err(anyhow::Error::msg)?;
    let limits = Limits::from(&spec.limits);
    let bytes = workload.bytes;
    let config = EngineConfig {
        cache_dir: (!args.no_cache).then(|| home.compile_cache()),
        allocator: AllocatorChoice::OnDemand,
        max_wasm_stack: usize::try_from(args.stack).context("--stack is too large")?,
    };
    // Without a deadline nothing needs to interrupt the guest, and epoch checks cost CPU-bound
    // code (see `Engine::without_interruption`).
    let engine = match limits.timeout {
        Some(_) => Engine::new(&config)?,
        None => Engine::without_interruption(&config)?,
    };
    // On stderr: stdout is the guest's.
    let stderr = crate::progress::Stream::Stderr;
    let program = crate::progress::compiling(stderr, &workload.label, bytes.len() as u64, || {
        let purpose = match args.invoke {
            Some(_) => skiff_engine::Purpose::Invoke,
            None => skiff_engine::Purpose::Run,
        };
        engine.load_for(&bytes, purpose)
    })
    .with_context(|| workload.label.clone())?;
    tracing::debug!("{}: {}", workload.label, program.info.kind);
    // The one run path (a future), driven on this thread; `--timeout` ends it wherever the
    // guest is, a host call (reading stdin, sleeping) included.
    let run = skiff_engine::block_on(async {
        match &args.invoke {
            Some(name) => engine.invoke(&program, &sandbox, &limits, name).await,
            None => Ok((
                engine.run_command(&program, &sandbox, &limits).await?,
                vec![],
            )),
        }
    })
    .context("could not start the runtime that drives the guest")?;
    let (exit, results) = run?;
    for line in results {
        println!("{line}");
    }
    match exit {
        // Exit statuses are 0-255 on Unix; a guest's exit(256) wraps as it would natively.
        Exit::Code(code) => Ok((code & 0xff) as u8),
    }
}

/// The guest `skiff run` describes: the image's defaults under the flags' grants, and the
/// arguments after the file (given any, they replace the image's default args).
pub(crate) fn guest_spec(args: &RunArgs, workload: &Workload) -> anyhow::Result<GuestSpec> {
    let mut grants = args.guest.grants(Scope::ONE)?;
    grants.args = args.guest_args().to_vec();
    grants.stdin = args.interactive;
    let mut spec = skiff_spec::resolve(&workload.defaults(), grants);
    workload.mount_files(&mut spec);
    Ok(spec)
}

/// `run -p`: an HTTP component served by `skiff serve`'s own path (one app, every route), with
/// `run`'s grants and limits. A command is refused before anything is compiled: it listens on
/// no port.
fn publish(home: &Home, args: RunArgs, listen: std::net::SocketAddr) -> anyhow::Result<u8> {
    let target = args.command[0].clone();
    let workload = resolve(home, &target)?;
    let kind = skiff_wasm::inspect(&workload.bytes)
        .map(|i| i.kind)
        .with_context(|| workload.label.clone())?;
    if kind != skiff_engine::Kind::HttpHandler {
        anyhow::bail!(
            "{}: -p publishes an HTTP component, and this is a {kind}: it listens on no port \
             (run it without -p; sockets need --net)",
            workload.label
        );
    }
    if !args.guest_args().is_empty() {
        anyhow::bail!(
            "{}: an HTTP component takes no arguments (it is called once per request)",
            workload.label
        );
    }
    drop(workload);
    let matches = <crate::cmd::serve::ServeArgs as clap::Args>::augment_args(
        clap::Command::new("serve").no_binary_name(true),
    )
    .try_get_matches_from([
        "--listen",
        listen.to_string().as_str(),
        "--pull",
        "never",
        target.as_str(),
    ])?;
    let mut serve =
        <crate::cmd::serve::ServeArgs as clap::FromArgMatches>::from_arg_matches(&matches)?;
    serve.guest = args.guest;
    serve.stack = args.stack;
    serve.no_cache = args.no_cache;
    crate::cmd::serve::serve(home, serve)
}
