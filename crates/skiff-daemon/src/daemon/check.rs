//! What the daemon accepts: a workload spec checked against the binary it names, the mounts
//! `--allow-mount` allows, and what an app (as opposed to a task) may be granted.

use super::Daemon;
use crate::error::ApiError;
use skiff_api::{WorkloadKind, WorkloadSpec};
use skiff_engine::http::OutboundPolicy;

impl Daemon {
    /// What may run on this node, checked when a spec is accepted, when it is started, and
    /// before every run: its binary under the trust policy, and its mounts. A refusal is 403
    /// (callers that retry what may resolve later, a missing mount, end only on a 403): the
    /// trust check first, so a mount that does not resolve yet never skips it.
    pub(crate) fn check_allowed(&self, spec: &WorkloadSpec) -> Result<(), ApiError> {
        self.check_trust(spec)?;
        self.check_mounts(spec)
    }

    /// The binary under the daemon's trust policy, with the evidence kept from its upload: a
    /// binary stored before the policy was set, or under one since tightened, is refused (403).
    fn check_trust(&self, spec: &WorkloadSpec) -> Result<(), ApiError> {
        let Some(policy) = &self.info.policy else {
            return Ok(());
        };
        let refused = |e: String| ApiError::Forbidden(format!("{}: {e}", spec.image));
        let digest = spec
            .image
            .parse::<skiff_store::Digest>()
            .map_err(|e| refused(e.to_string()))?;
        let evidence = self
            .blobs
            .evidence(&digest)
            .map_err(|e| refused(format!("its evidence cannot be read: {e}")))?;
        crate::trust::check(policy, evidence.as_deref(), &digest).map_err(|e| match e {
            e @ ApiError::Forbidden(_) => e,
            e => refused(format!("its stored evidence: {e}")),
        })
    }

    /// Every mount absolute, and allowed by `--allow-mount` (403 when not). Made when a spec
    /// is accepted, when it is started, and before every run (see the supervisor).
    pub(crate) fn check_mounts(&self, spec: &WorkloadSpec) -> Result<(), ApiError> {
        for m in &spec.guest.mounts {
            let host = m.host.to_str().unwrap_or_default();
            if !host.starts_with('/') || !m.guest.starts_with('/') {
                return Err(ApiError::BadRequest(format!(
                    "mount {}:{}: both paths must be absolute",
                    m.host.display(),
                    m.guest
                )));
            }
            self.mounts.check(host).map_err(|e| match e {
                crate::mounts::MountRefused::Outside(m) => ApiError::Forbidden(m),
                crate::mounts::MountRefused::Invalid(m) => ApiError::BadRequest(m),
            })?;
        }
        Ok(())
    }

    /// Check a spec and learn its kind from the binary. Every refusal is a 400 saying why
    /// (403 for a mount outside `--allow-mount`).
    pub async fn check(&self, spec: &WorkloadSpec) -> Result<WorkloadKind, ApiError> {
        let Ok(digest) = spec.image.parse::<skiff_store::Digest>() else {
            return Err(ApiError::BadRequest(format!(
                "image {:?} is not a digest: upload the binary with POST /v1/blobs and use the sha256:… it answers",
                spec.image
            )));
        };
        if !self.blobs.has(&digest) {
            return Err(ApiError::BadRequest(format!(
                "unknown image {}: upload it first with POST /v1/blobs",
                spec.image
            )));
        }
        self.check_allowed(spec)?;
        if spec.guest.stdin {
            return Err(ApiError::BadRequest(
                "stdin: a workload of the daemon has no terminal to read from".into(),
            ));
        }
        if let Some(n) = spec.guest.limits.max_open {
            // The engine would raise it to its minimum, so refuse rather than charge one number
            // and enforce another (the CLI's --max-open says the same).
            if (n as usize) < skiff_engine::MIN_MAX_OPEN {
                return Err(ApiError::BadRequest(format!(
                    "limits.max_open: {}",
                    skiff_engine::invalid_max_open(&n.to_string())
                )));
            }
        }
        let kind = self
            .programs
            .kind(&spec.image)
            .await
            .map_err(ApiError::BadRequest)?;
        // A task's wasi:http requests go through the same allow-list as an app's.
        OutboundPolicy::parse(&spec.guest.allow_outbound, None)
            .map_err(|e| ApiError::BadRequest(format!("allow_outbound: {e}")))?;
        if kind.is_command() {
            if spec.guest.route.is_some() {
                return Err(ApiError::BadRequest(format!(
                    "this is a {kind}, which runs to completion: a route is only for HTTP apps"
                )));
            }
            let l = &spec.guest.limits;
            let http_only = [
                ("cpu_time_ms", l.cpu_time_ms.is_some()),
                ("max_concurrent", l.max_concurrent.is_some()),
                ("queue_timeout_ms", l.queue_timeout_ms.is_some()),
                ("max_body_bytes", l.max_body_bytes.is_some()),
                ("max_outbound", l.max_outbound.is_some()),
                ("max_app_outbound", l.max_app_outbound.is_some()),
                ("reuse", l.reuse.is_some()),
            ];
            if let Some((name, _)) = http_only.iter().find(|(_, set)| *set) {
                return Err(ApiError::BadRequest(format!(
                    "this is a {kind}: limits.{name} is for HTTP apps only (a task has memory_bytes, timeout_ms and max_open)"
                )));
            }
            if spec.auto_remove && spec.restart != skiff_api::RestartPolicy::No {
                return Err(ApiError::BadRequest(
                    "auto_remove (--rm) and a restart policy conflict: a workload removed when it \
                     ends cannot be restarted (as Docker's --rm and --restart)"
                        .into(),
                ));
            }
            Ok(WorkloadKind::Task)
        } else if kind == skiff_engine::Kind::HttpHandler {
            if self.apps.is_none() {
                return Err(ApiError::BadRequest(
                    "this is an HTTP handler: this daemon has no HTTP data plane; start it with \
                     `skiff daemon --http-listen ADDR` (or serve the app in the foreground with skiff serve)"
                        .into(),
                ));
            }
            let Some(route) = &spec.guest.route else {
                return Err(ApiError::BadRequest(
                    "this is an HTTP handler: give it a route (skiff deploy --route HOST/PATH-PREFIX)"
                        .into(),
                ));
            };
            skiff_http::Route::parse(route).map_err(ApiError::BadRequest)?;
            if let Some(apps) = &self.apps {
                apps.prepare(&spec.image)
                    .await
                    .map_err(ApiError::BadRequest)?;
            }
            app_grants(spec).map_err(ApiError::BadRequest)?;
            // Scale to zero: the check learnt the kind without keeping any code in memory.
            if spec.restart != skiff_api::RestartPolicy::No {
                return Err(ApiError::BadRequest(
                    "a restart policy is for tasks: an app serves until stopped, and a failed request does not stop it".into(),
                ));
            }
            if spec.auto_remove {
                return Err(ApiError::BadRequest(
                    "auto_remove (--rm) is for tasks: an app serves until stopped; remove it with skiff rm".into(),
                ));
            }
            Ok(WorkloadKind::App)
        } else {
            Err(ApiError::BadRequest(format!(
                "this is a {kind}: {}",
                kind.advice()
            )))
        }
    }
}

/// An HTTP app gets no directory and no network, only what `allow_outbound` grants. Every
/// request runs in a fresh instance, up to 100 at once, each holding up to `max_open` handles:
/// with a directory or sockets that is 100 × 1,024 host descriptors per app at the defaults,
/// more than the whole budget tasks share (7,952 on a 20,000 limit, see `crate::host`), so no
/// charge to that budget could admit it; and raw sockets would bypass the allow-list and the
/// outbound caps. `skiff deploy -v`/`--net` ask for them and get this answer.
pub fn app_grants(spec: &WorkloadSpec) -> Result<(), String> {
    let what = match (spec.guest.mounts.is_empty(), spec.guest.network) {
        (true, false) => return Ok(()),
        (false, false) => "a directory (mounts)",
        (true, true) => "the network (network: true)",
        (false, true) => "a directory (mounts) or the network (network: true)",
    };
    let limits = skiff_engine::http::HttpLimits::from(&spec.guest.limits);
    Err(format!(
        "an HTTP app cannot be granted {what}: each of its up to {} concurrent instances could \
         hold {} host descriptors, more than the daemon can give; reach other services with \
         allow_outbound, or run the work that needs files or sockets as a task (skiff run -d)",
        limits.max_concurrent,
        skiff_engine::effective_max_open(limits.max_open),
    ))
}
