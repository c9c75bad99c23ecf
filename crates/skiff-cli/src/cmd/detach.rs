//! `skiff run -d` and `skiff deploy`: hand a workload to the daemon.

use crate::client::Client;
use crate::cmd::flags::absolute_mounts;
use crate::cmd::run::RunArgs;
use crate::cmd::source::{
    insecure_from_env, pull_if_missing, resolve_to_run, PullPolicy, Workload as Source,
};
use crate::exit::CannotRun;
use crate::home::Home;
use anyhow::Context;
use base64::Engine as _;
use hyper::Method;
use skiff_api::{BlobInfo, CreateRequest, RestartPolicy, Workload, WorkloadSpec};
use std::path::Path;
use std::sync::Arc;

/// Docker's `--restart` values: `no`, `on-failure[:N]`, `always` (`unless-stopped` is `always`
/// here: a stopped workload stays stopped across daemon restarts anyway).
pub fn parse_restart(s: &str) -> Result<RestartPolicy, String> {
    match s.split_once(':') {
        None if s == "no" => Ok(RestartPolicy::No),
        None if s == "always" || s == "unless-stopped" => Ok(RestartPolicy::Always),
        None if s == "on-failure" => Ok(RestartPolicy::OnFailure { max_retries: None }),
        Some(("on-failure", n)) => n
            .parse::<u32>()
            .map(|n| RestartPolicy::OnFailure { max_retries: Some(n) })
            .map_err(|_| format!("invalid restart policy {s:?}: the retry count must be a whole number, e.g. on-failure:3")),
        _ => Err(format!("invalid restart policy {s:?}: expected no, on-failure[:N] or always")),
    }
}

/// Resolve a file or image reference (in this home's store) and upload its Wasm to the daemon;
/// answers what the daemon stores it as, and the workload (its bytes taken).
///
/// The daemon keeps its own digest-addressed copy of every binary a record names: `rmi` or
/// `image prune` may delete the store's layer at any time, and a restart after `kill -9` must
/// still find the bytes the record was created with.
///
/// An image named by a registry reference is pulled first if `pull` says so, through `pull` and
/// so its trust policy: the daemon never receives an image the policy denies. A daemon with a
/// policy of its own checks the binary again, under its policy, with what the registry says of
/// the image ([`evidence`]); its refusal (403) exits 126, as a denied pull does.
pub fn upload(
    client: &Client,
    home: &Home,
    target: &str,
    pull: PullPolicy,
) -> anyhow::Result<(BlobInfo, Source)> {
    pull_if_missing(home, target, pull)?;
    let mut w = resolve_to_run(home, target)?;
    let evidence = evidence(client, &w);
    let header: Vec<(&str, &str)> = match &evidence {
        Ok(Some(h)) => vec![(skiff_api::EVIDENCE_HEADER, h.as_str())],
        _ => Vec::new(),
    };
    let bytes = std::mem::take(&mut w.bytes);
    let size = bytes.len() as u64;
    // The daemon compiles the binary to learn its kind (and fills the compile cache): the
    // same notice as a foreground run's when that takes a while.
    let stderr = crate::progress::Stream::Stderr;
    let a = crate::progress::compiling(stderr, &w.label, size, || {
        client.raw(
            Method::POST,
            "/v1/blobs",
            "application/wasm",
            &header,
            bytes,
        )
    })?;
    if a.status != 201 {
        let msg = serde_json::from_slice::<skiff_api::ErrorBody>(&a.body)
            .map(|e| e.message)
            .unwrap_or_else(|_| String::from_utf8_lossy(&a.body).into_owned());
        // 403 is the daemon's trust policy: the image cannot be run there.
        if a.status == 403 {
            let why = match evidence {
                Err(e) => format!(
                    " (no evidence was sent: {})",
                    crate::term::chain(e.as_ref())
                ),
                Ok(_) => String::new(),
            };
            return Err(
                CannotRun(format!("{}: the daemon refused it: {msg}{why}", w.label)).into(),
            );
        }
        anyhow::bail!("{}: {msg}", w.label);
    }
    let info = serde_json::from_slice(&a.body).context("the daemon's answer to an upload")?;
    Ok((info, w))
}

/// The [`skiff_api::EVIDENCE_HEADER`] for `w`, when the daemon has a policy to check it with
/// and `w` is an image with a registry reference: the manifest and signatures read from the
/// registry now (the daemon reads none). `None`: nothing to send (a file, a daemon that checks
/// nothing); an error: why there is no evidence, said if the daemon then refuses.
fn evidence(client: &Client, w: &Source) -> anyhow::Result<Option<String>> {
    let Some(reference) = w.image.as_ref().and_then(|i| i.reference.as_ref()) else {
        return Ok(None);
    };
    let (_, info) = client.call::<skiff_api::SystemInfo>(Method::GET, "/v1/info", None::<&()>)?;
    if info.and_then(|i| i.policy).is_none() {
        return Ok(None);
    }
    let registry = crate::remote::registry(
        reference.registry(),
        insecure_from_env(),
        Arc::new(skiff_registry::Silent),
    )?;
    let rt = crate::cmd::login::runtime()?;
    let e = rt
        .block_on(registry.evidence(&reference.to_string()))
        .with_context(|| format!("reading {}'s signatures from its registry", reference))?;
    let b64 = base64::engine::general_purpose::STANDARD;
    let wire = skiff_api::UploadEvidence {
        reference: e.reference.to_string(),
        manifests: e.manifests.iter().map(|m| b64.encode(m)).collect(),
        signatures: e
            .signatures
            .iter()
            .map(|s| skiff_api::EvidenceSignature {
                payload: b64.encode(&s.payload),
                signature: s.signature.clone(),
            })
            .collect(),
    };
    let header = b64.encode(serde_json::to_vec(&wire)?);
    if header.len() > skiff_trust::evidence::MAX_EVIDENCE {
        anyhow::bail!(
            "{reference}'s manifest and signatures take {} KiB, more than the {} KiB a daemon reads",
            header.len() >> 10,
            skiff_trust::evidence::MAX_EVIDENCE >> 10
        );
    }
    Ok(Some(header))
}

/// What `ps` shows in IMAGE: the file name, or the image reference as typed.
pub fn image_name(w: &Source) -> String {
    match &w.image {
        Some(_) => w.label.clone(),
        None => w.argv0.clone(),
    }
}

/// The grants and limits of `skiff run`'s flags, as the API spells them.
pub fn spec_from_run(
    args: &RunArgs,
    image: &BlobInfo,
    workload: &Source,
) -> anyhow::Result<WorkloadSpec> {
    if args.interactive {
        anyhow::bail!(
            "-i cannot be used with -d: a detached workload has no terminal to read from"
        );
    }
    if args.no_cache {
        anyhow::bail!(
            "--no-cache cannot be used with -d: the daemon always uses its compile cache"
        );
    }
    if args.stack != skiff_engine::EngineConfig::DEFAULT_STACK as u64 {
        anyhow::bail!("--stack cannot be used with -d: the daemon's engine has one stack limit for every workload (512k)");
    }
    let mut guest = crate::cmd::run::guest_spec(args, workload)?;
    absolute_mounts(&mut guest, Path::new("."))?;
    Ok(WorkloadSpec {
        image: image.digest.clone(),
        image_name: Some(image_name(workload)),
        guest,
        restart: match &args.restart {
            Some(r) => parse_restart(r).map_err(anyhow::Error::msg)?,
            None => RestartPolicy::No,
        },
        auto_remove: args.rm,
    })
}

pub fn run_detached(home: &Home, client: &Client, args: &RunArgs) -> anyhow::Result<u8> {
    let (image, workload) = upload(client, home, &args.command[0], args.pull)?;
    let spec = spec_from_run(args, &image, &workload)?;
    let req = CreateRequest {
        name: args.name.clone(),
        spec,
        start: true,
        replace: false,
    };
    let (_, w) = client.call::<Workload>(Method::POST, "/v1/workloads", Some(&req))?;
    let w = w.context("the daemon did not answer the workload it created")?;
    println!("{}", w.id);
    Ok(0)
}
