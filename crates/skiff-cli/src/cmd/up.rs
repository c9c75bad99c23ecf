//! `skiff up -f FILE` / `skiff down`: several workloads from one TOML file, applied as a
//! project. See docs/daemon.md for the file format.

use crate::client::Client;
use crate::cmd::detach::{parse_restart, upload};
use crate::cmd::flags::{absolute_mounts, GuestFlags, HttpFlags, Scope};
use crate::compose::{ComposeFile, Entry};
use crate::home::Home;
use anyhow::Context;
use clap::Args;
use hyper::Method;
use skiff_api::{ProjectChanges, ProjectRequest, RestartPolicy, WorkloadSpec};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Create or update the workloads of a compose file; a second run changes nothing
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  skiff up                          ./skiff-compose.toml, project named after the directory\n  skiff up -f prod.toml -p shop\n  skiff down -p shop"
)]
pub struct UpArgs {
    /// The compose file
    #[arg(short, long, value_name = "FILE", default_value = "skiff-compose.toml")]
    pub file: PathBuf,
    /// Project name [default: the file's directory name]
    #[arg(short = 'p', long, value_name = "NAME")]
    pub project_name: Option<String>,
}

/// Stop and remove every workload of a project
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  skiff down                        the project of ./skiff-compose.toml\n  skiff down -p shop                a project by name"
)]
pub struct DownArgs {
    /// The compose file (only its directory is used, to name the project)
    #[arg(short, long, value_name = "FILE", default_value = "skiff-compose.toml")]
    pub file: PathBuf,
    /// Project name [default: the file's directory name]
    #[arg(short = 'p', long, value_name = "NAME")]
    pub project_name: Option<String>,
}

fn project(file: &Path, explicit: Option<String>) -> anyhow::Result<String> {
    if let Some(p) = explicit {
        return Ok(p);
    }
    let dir = std::fs::canonicalize(
        file.parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new(".")),
    )
    .context("cannot find the compose file's directory")?;
    let name: String = dir
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let name = name.trim_matches('-').to_string();
    if name.is_empty() {
        anyhow::bail!(
            "cannot name the project after {}: give one with -p NAME",
            dir.display()
        );
    }
    Ok(name)
}

pub fn up(home: &Home, client: &Client, args: UpArgs) -> anyhow::Result<u8> {
    // As skiff.toml: a regular file of at most 1 MiB (`-f /dev/zero` must not fill memory).
    let bytes = skiff_image::skiff_toml::read_regular_file(
        &args.file,
        skiff_image::skiff_toml::MAX_TOML_SIZE,
        "a compose file",
    )
    .with_context(|| {
        format!(
            "cannot read {} (give another file with -f)",
            args.file.display()
        )
    })?;
    let text = String::from_utf8(bytes)
        .with_context(|| format!("{}: not UTF-8 text", args.file.display()))?;
    let file = ComposeFile::parse(&text).map_err(|e| {
        // Docker users hand over their compose.yaml first: say what skiff reads instead of
        // showing TOML's complaint about YAML.
        let yaml = args
            .file
            .extension()
            .is_some_and(|x| x == "yaml" || x == "yml")
            || text.lines().any(|l| l.trim_end() == "services:");
        if yaml {
            anyhow::anyhow!(
                "{} looks like a Docker Compose (YAML) file; skiff up reads a TOML file of \
                 [workloads.NAME] tables (image, args, env, volumes, route, memory…), \
                 skiff-compose.toml by default: see docs/daemon.md (\"skiff up\")",
                args.file.display()
            )
        } else {
            anyhow::Error::new(e).context(args.file.display().to_string())
        }
    })?;
    let base = args.file.parent().unwrap_or(Path::new("."));
    let project = project(&args.file, args.project_name)?;
    let mut workloads = BTreeMap::new();
    for (name, e) in file.workloads {
        let spec = spec(home, client, base, &e)
            .with_context(|| format!("{}: workload {name}", args.file.display()))?;
        workloads.insert(name, spec);
    }
    let (_, changes) = client.call::<ProjectChanges>(
        Method::PUT,
        &format!("/v1/projects/{project}"),
        Some(&ProjectRequest { workloads }),
    )?;
    print_changes(&changes.unwrap_or_default());
    Ok(0)
}

pub fn down(client: &Client, args: DownArgs) -> anyhow::Result<u8> {
    let project = project(&args.file, args.project_name)?;
    let (_, changes) = client.call::<ProjectChanges>(
        Method::DELETE,
        &format!("/v1/projects/{project}"),
        None::<&()>,
    )?;
    print_changes(&changes.unwrap_or_default());
    Ok(0)
}

fn print_changes(c: &ProjectChanges) {
    for (what, names) in [
        ("created", &c.created),
        ("replaced", &c.replaced),
        ("updated", &c.updated),
        ("started", &c.started),
        ("removed", &c.removed),
        ("unchanged", &c.unchanged),
    ] {
        for n in names {
            println!("{what:<10} {}", crate::term::for_terminal(n));
        }
    }
}

fn spec(home: &Home, client: &Client, base: &Path, e: &Entry) -> anyhow::Result<WorkloadSpec> {
    // A path is relative to the compose file; what exists there is a file, anything else an
    // image reference.
    let file = base.join(&e.image);
    let target = if file.exists() {
        file.display().to_string()
    } else {
        e.image.clone()
    };
    let (image, source) = upload(
        client,
        home,
        &target,
        crate::cmd::source::PullPolicy::Missing,
    )?;
    // The entry's keys are the verbs' flags: one parser, one meaning.
    let one = |v: &Option<String>| v.iter().cloned().collect::<Vec<_>>();
    let flags = GuestFlags {
        volumes: e.volumes.clone(),
        env: e.env.iter().map(|(k, v)| format!("{k}={v}")).collect(),
        env_file: e
            .env_file
            .iter()
            .map(|f| base.join(f).display().to_string())
            .collect(),
        net: e.network,
        allow_outbound: e.allow_outbound.clone(),
        memory: one(&e.memory),
        max_open: one(&e.max_open),
        timeout: one(&e.timeout),
    };
    let http = HttpFlags {
        cpu_time: one(&e.cpu_time),
        max_concurrent: one(&e.max_concurrent),
        queue_timeout: one(&e.queue_timeout),
        max_body: one(&e.max_body),
        max_outbound: one(&e.max_outbound),
        max_app_outbound: one(&e.max_app_outbound),
        reuse: one(&e.reuse),
    };
    let scope = Scope::ONE;
    let mut grants = flags.grants(scope)?;
    http.apply(scope, &mut grants)?;
    grants.args = e.args.clone();
    grants.route = e.route.clone();
    let mut guest = skiff_spec::resolve(&source.defaults(), grants);
    absolute_mounts(&mut guest, base)?;
    Ok(WorkloadSpec {
        image: image.digest,
        image_name: Some(crate::cmd::detach::image_name(&source)),
        guest,
        restart: match &e.restart {
            Some(r) => parse_restart(r).map_err(anyhow::Error::msg)?,
            None => RestartPolicy::No,
        },
        auto_remove: false,
    })
}
