//! Where the bytes of a workload come from: a path that exists is a file; anything else is an
//! image reference (`hello:1.0`, `hello@sha256:…`, `sha256:…`, a short ID) looked up in the store.

use crate::exit::{CannotRun, NotFound};
use crate::home::Home;
use anyhow::Context;
use skiff_image::{Image, ImageError, Reference};
use std::io::Write;
use std::path::Path;

/// A workload's bytes and, for an image, what the image says about running it.
pub struct Workload {
    pub bytes: Vec<u8>,
    /// What to call it in messages: the path or the reference as typed.
    pub label: String,
    /// argv[0] for the guest: the file name, or the image's repository name.
    pub argv0: String,
    pub image: Option<ImageSource>,
    /// The image's files, written out (see [`crate::cmd::files`]): the guest's `/`, read-only.
    pub files: Option<std::path::PathBuf>,
}

impl Workload {
    /// What the image asks for by default (none for a bare .wasm), for `skiff_spec::resolve`.
    pub fn defaults(&self) -> skiff_spec::ImageDefaults {
        let Some(i) = &self.image else {
            return skiff_spec::ImageDefaults::default();
        };
        let d = &i.image.defaults;
        skiff_spec::ImageDefaults {
            args: d.args.clone(),
            env: d
                .env
                .iter()
                .map(|(k, v)| skiff_spec::EnvVar::new(k, v))
                .collect(),
            route: d.route.clone(),
        }
    }

    /// Grant the image's files, read-only at `/`, on top of what `spec` already grants.
    pub fn mount_files(&self, spec: &mut skiff_spec::GuestSpec) {
        if let Some(dir) = &self.files {
            spec.mounts.push(skiff_spec::Mount {
                host: dir.clone(),
                guest: "/".into(),
                read_only: true,
            });
        }
    }
}

pub struct ImageSource {
    pub reference: Option<Reference>,
    pub image: Image,
}

pub fn resolve(home: &Home, target: &str) -> anyhow::Result<Workload> {
    let path = Path::new(target);
    if path.exists() {
        return Ok(Workload {
            bytes: read_wasm_file(path)?,
            label: target.to_string(),
            argv0: path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| target.to_string()),
            image: None,
            files: None,
        });
    }
    let looks_like_path = target.ends_with(".wasm") || target.starts_with(['.', '/', '~']);
    if looks_like_path {
        return Err(NotFound(format!(
            "{target}: no such file; give the path to a .wasm file or the name of an image in \
             the local store (see skiff images)"
        ))
        .into());
    }
    if !target.starts_with("sha256:") {
        if let Err(e) = Reference::parse(target) {
            return Err(anyhow::Error::from(e).context(format!(
                "{target} is not a file, nor a valid image reference"
            )));
        }
    }
    // The store lock is held only while reading: a long-running guest must not block prune.
    let store = home.store()?;
    let (reference, digest) = skiff_image::find(&store, target)?;
    let image = Image::read(&store, &digest).map_err(|e| match e {
        e @ ImageError::Layout { .. } => anyhow::Error::from(CannotRun(format!("{target}: {e}"))),
        e => anyhow::Error::from(e).context(format!("image {target}")),
    })?;
    let bytes = store
        .read_blob(&image.layer().digest, store.max_blob_size())
        .with_context(|| format!("image {target}: cannot read its Wasm layer"))?;
    let argv0 = reference
        .as_ref()
        .map(|r| r.path().rsplit('/').next().unwrap_or(r.path()).to_string())
        .unwrap_or_else(|| {
            image
                .manifest
                .annotations
                .get("org.opencontainers.image.title")
                .cloned()
                .unwrap_or_else(|| "wasm".into())
        });
    Ok(Workload {
        bytes,
        label: target.to_string(),
        argv0,
        image: Some(ImageSource { reference, image }),
        files: None,
    })
}

/// [`resolve`], for running: the image's files written out (see [`crate::cmd::files`]), ready
/// for [`Workload::mount_files`].
pub fn resolve_to_run(home: &Home, target: &str) -> anyhow::Result<Workload> {
    let mut w = resolve(home, target)?;
    if let Some(src) = w.image.as_ref().filter(|s| !s.image.files().is_empty()) {
        let store = home.store()?;
        w.files = crate::cmd::files::materialise(home, &store, &src.image)
            .with_context(|| format!("image {target}"))?;
    }
    Ok(w)
}

pub fn read_wasm_file(path: &Path) -> anyhow::Result<Vec<u8>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(NotFound(format!(
            "{}: no such file; give the path to a .wasm file",
            path.display()
        ))
        .into()),
        Err(_) if path.is_dir() => Err(CannotRun(format!(
            "{} is a directory, not a .wasm file",
            path.display()
        ))
        .into()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Loopback registries need no flag; others over plain HTTP are named in the environment
/// (`SKIFF_INSECURE_REGISTRIES`), for verbs that reach a registry without `--insecure`.
pub fn insecure_from_env() -> Vec<String> {
    std::env::var("SKIFF_INSECURE_REGISTRIES")
        .map(|v| v.split(',').map(str::to_string).collect())
        .unwrap_or_default()
}

/// When `skiff run` pulls the image it is given (Docker's `--pull`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum PullPolicy {
    /// Pull only if the image is not in the local store
    #[default]
    Missing,
    /// Pull every time (blobs already present are not downloaded again)
    Always,
    /// Never pull: use the local store only
    Never,
}

/// Pull `target` first if it names an image the policy says to fetch, as `docker run` does.
/// Files are never pulled, nor anything that is not a valid reference (`resolve` then reports
/// what is wrong with it). The report goes to stderr: stdout belongs to the guest.
pub fn pull_if_missing(home: &Home, target: &str, policy: PullPolicy) -> anyhow::Result<()> {
    let looks_like_path = target.ends_with(".wasm") || target.starts_with(['.', '/', '~']);
    if policy == PullPolicy::Never
        || looks_like_path
        || target.starts_with("sha256:")
        || Path::new(target).exists()
    {
        return Ok(());
    }
    let Ok(reference) = Reference::parse(target) else {
        return Ok(());
    };
    // A policy file that cannot be read stops the verb before it starts, whether or not the
    // image must be pulled: a node with a broken policy runs nothing from a registry.
    home.policy()?;
    if policy == PullPolicy::Missing {
        let store = home.store()?;
        match skiff_image::find(&store, target) {
            Err(ImageError::NotFound(_)) => {}
            _ => return Ok(()),
        }
        let _ = writeln!(
            std::io::stderr(),
            "Unable to find image '{}' locally",
            reference.familiar()
        );
        // `skiff run hello` with only hello:1.0 here: say so before asking a registry, which
        // would otherwise answer with a "not found" about a host the user never named.
        if reference.tag().is_none() {
            let repository = reference.repository();
            let local: Vec<String> = store
                .tags()?
                .into_iter()
                .filter(|t| t.repository == repository)
                .map(|t| format!("{}:{}", reference.familiar_repository(), t.tag))
                .collect();
            if !local.is_empty() {
                let _ = writeln!(
                    std::io::stderr(),
                    "note: the local store has {}; name the tag to use it (no tag means :latest)",
                    local.join(", ")
                );
            }
        }
    }
    let insecure = insecure_from_env();
    crate::cmd::pull::pull_image(
        home,
        target,
        crate::cmd::pull::PullOptions {
            component: None,
            insecure,
            // `run` compiles next, with its own settings, and caches the result itself.
            compile: false,
            stream: crate::progress::Stream::Stderr,
            quiet: false,
        },
    )?;
    Ok(())
}
