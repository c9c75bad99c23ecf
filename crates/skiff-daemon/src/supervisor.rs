//! The supervisor: one async task per started workload. It runs the guest, records how each
//! run ended, and applies the restart policy with exponential backoff, until the workload ends
//! for good or the operator stops it.

use crate::daemon::Daemon;
use crate::logs::LogWriter;
use skiff_api::{Desired, RestartPolicy, Status, Stream, Workload, WorkloadKind};
use skiff_engine::http::HttpAppConfig;
use skiff_engine::{exit, Exit, Limits, Output, RunError, Sandbox};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// First wait before a restart; doubles per consecutive restart up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_millis(100);
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// A run this long counts as healthy: the next failure starts the backoff again from the first.
pub const HEALTHY_RUN: Duration = Duration::from_secs(10);

/// How one run ended, as the API reports it.
pub struct Ending {
    pub exit_code: Option<i32>,
    pub error: Option<String>,
    /// The failure cannot go away by trying again (not a command, a missing import, a binary
    /// that is gone): restarting would only spin.
    pub permanent: bool,
    /// It hit its memory limit (an `oom` event, as Docker's OOM kill).
    pub oom: bool,
}

impl Ending {
    fn failed(&self) -> bool {
        self.exit_code != Some(0) || self.error.is_some()
    }
}

/// Exit codes as `skiff run` would use them (`RunError::exit_code`), so that `ps` and
/// `inspect` read the same.
pub fn ending(result: Result<Exit, RunError>) -> Ending {
    let (code, permanent) = match &result {
        Ok(Exit::Code(c)) => (*c, false),
        Err(e) => (i32::from(e.exit_code()), e.is_permanent()),
    };
    Ending {
        exit_code: Some(code),
        oom: matches!(result, Err(RunError::MemoryLimit { .. })),
        error: result.err().map(|e| e.to_string()),
        permanent,
    }
}

pub fn should_restart(policy: RestartPolicy, ending: &Ending, restarts_done: u32) -> bool {
    if ending.permanent {
        return false;
    }
    match policy {
        RestartPolicy::No => false,
        RestartPolicy::Always => true,
        RestartPolicy::OnFailure { max_retries } => {
            ending.failed() && max_retries.is_none_or(|m| restarts_done < m)
        }
    }
}

pub fn backoff(consecutive: u32) -> Duration {
    let factor = 1u32.checked_shl(consecutive.min(20)).unwrap_or(u32::MAX);
    FIRST_BACKOFF.saturating_mul(factor).min(MAX_BACKOFF)
}

/// Runs workload `id` until it ends for good or `stop` turns true. Every state change is
/// committed to the database before the next step.
pub async fn supervise(d: Arc<Daemon>, id: String, mut stop: watch::Receiver<Option<Duration>>) {
    if d.get(&id).is_some_and(|w| w.kind == WorkloadKind::App) {
        return supervise_app(d, id, stop).await;
    }
    let mut consecutive = 0u32;
    loop {
        let Some(w) = d.get(&id) else { return };
        let program = match d.program(&w.spec.image).await {
            Ok(p) => p,
            Err(e) => {
                d.finish(
                    &id,
                    Status::Exited,
                    Some(exit::NOT_FOUND.into()),
                    Some(e),
                    true,
                )
                .await;
                return;
            }
        };
        // Again before every run, restarts included: a directory inside an allowed prefix when
        // the spec was accepted may since have become a symlink out of it (a guest with that
        // directory mounted read-write can make one). Only a refusal (outside, or the trust
        // policy's) ends it for good: a mount that is missing for now fails this run, which
        // the restart policy retries.
        if let Err(e @ crate::error::ApiError::Forbidden(_)) = d.check_allowed(&w.spec) {
            d.finish(
                &id,
                Status::Exited,
                Some(exit::SKIFF_FAILED.into()),
                Some(format!("not started: {e}")),
                true,
            )
            .await;
            return;
        }
        let log = d.log_of(&id);
        let sandbox = match sandbox_of(&w, log.as_ref()) {
            Ok(sandbox) => sandbox,
            Err(e) => {
                let why = Some(format!("not started: {e}"));
                d.finish(
                    &id,
                    Status::Exited,
                    Some(exit::SKIFF_FAILED.into()),
                    why,
                    true,
                )
                .await;
                return;
            }
        };
        let limits = Limits {
            max_open: max_open(&w),
            ..Limits::from(&w.spec.guest.limits)
        };
        d.mark_running(&id).await;
        let started = Instant::now();
        let result = tokio::select! {
            r = run_task(&d, &w, program, sandbox, limits) => Some(r),
            _ = stop.wait_for(|s| s.is_some()) => None,
        };
        if let Some(l) = &log {
            l.flush_partial();
        }
        let Some(result) = result else {
            d.finish(&id, Status::Stopped, None, None, true).await;
            return;
        };
        let end = ending(result);
        if end.oom {
            let detail = crate::events::Detail {
                reason: end.error.clone(),
                ..Default::default()
            };
            d.event(&id, skiff_api::EventAction::Oom, detail);
        }
        let restarts_done = d.get(&id).map_or(0, |w| w.state.restart_count);
        if stop.borrow().is_some() || !should_restart(w.spec.restart, &end, restarts_done) {
            let status = if stop.borrow().is_some() {
                Status::Stopped
            } else {
                Status::Exited
            };
            d.finish(&id, status, end.exit_code, end.error, true).await;
            return;
        }
        consecutive = if started.elapsed() >= HEALTHY_RUN {
            0
        } else {
            consecutive
        };
        let delay = backoff(consecutive);
        consecutive += 1;
        d.mark_restarting(&id, end.exit_code, end.error, delay)
            .await;
        let stopped = tokio::select! {
            _ = tokio::time::sleep(delay) => false,
            _ = stop.wait_for(|s| s.is_some()) => true,
        };
        if stopped {
            d.finish(&id, Status::Stopped, None, None, true).await;
            return;
        }
        if d.get(&id).is_none_or(|w| w.desired != Desired::Running) {
            // A stop that set desired = stopped while the backoff ended, before its signal
            // arrived: the workload is stopped, not left "restarting" (a `stop` raced to that).
            d.finish(&id, Status::Stopped, None, None, true).await;
            return;
        }
    }
}

/// The handle cap the guest really gets, which is also what a task is charged to the budget
/// (the engine raises a cap below its minimum; charging the raw number would let `max_open: 0`
/// hold 16 descriptors for free).
fn max_open(w: &Workload) -> usize {
    skiff_engine::effective_max_open(Limits::from(&w.spec.guest.limits).max_open)
}

/// One run of a task, on the daemon's task runtime (see `crate::host`: lower-priority threads,
/// so a busy task cannot starve the data plane or the API). A task that can open descriptors
/// holds its `--max-open` of the daemon's budget while it runs. Dropping the returned future
/// (the operator's stop) aborts the run.
async fn run_task(
    d: &Daemon,
    w: &Workload,
    program: Arc<skiff_engine::Program>,
    sandbox: Sandbox,
    limits: Limits,
) -> Result<Exit, RunError> {
    let reserved = if w.spec.guest.mounts.is_empty() && !w.spec.guest.network {
        None
    } else {
        let n = u32::try_from(limits.max_open).unwrap_or(u32::MAX);
        Some(d.host.reserve(n).map_err(RunError::Grant)?)
    };
    let engine = d.engine.clone();
    let usage = d.usage_of(&w.id).unwrap_or_default();
    let run = d.host.tasks.spawn(async move {
        let _reserved = reserved;
        engine
            .run_command_metered(&program, &sandbox, &limits, usage)
            .await
    });
    // Aborted when dropped: the guest ends at its next yield (within one epoch tick).
    struct AbortOnDrop(tokio::task::JoinHandle<Result<Exit, RunError>>);
    impl Drop for AbortOnDrop {
        fn drop(&mut self) {
            self.0.abort();
        }
    }
    let mut run = AbortOnDrop(run);
    match (&mut run.0).await {
        Ok(r) => r,
        Err(e) => Err(RunError::Trap {
            message: format!("the task's runner failed: {e}"),
            backtrace: Vec::new(),
        }),
    }
}

/// argv\[0\] of a workload's guest: the name the user gave its image.
fn argv0(w: &Workload) -> &str {
    w.spec.image_name.as_deref().unwrap_or(&w.spec.image)
}

/// What a workload's guest is granted, from its spec; its output goes to its log. Fails only
/// for an outbound pattern that does not parse, which the daemon refused when it was given.
fn sandbox_of(w: &Workload, log: Option<&Arc<LogWriter>>) -> Result<Sandbox, String> {
    Ok(to_log(Sandbox::from_spec(&w.spec.guest, argv0(w))?, log))
}

/// `sandbox` with its stdout and stderr sent to the workload's log, if it has one.
fn to_log(sandbox: Sandbox, log: Option<&Arc<LogWriter>>) -> Sandbox {
    Sandbox {
        stdout: log.map_or(Output::Inherit, |l| Output::Sink(l.sink(Stream::Stdout))),
        stderr: log.map_or(Output::Inherit, |l| Output::Sink(l.sink(Stream::Stderr))),
        ..sandbox
    }
}

/// An app's grants and limits for the data plane.
pub fn app_config(d: &Daemon, w: &Workload) -> Result<HttpAppConfig, String> {
    let mut config = HttpAppConfig::from_spec(
        &w.name,
        argv0(w),
        &w.spec.guest,
        Some(d.host.outbound.clone()),
    )?;
    config.limits.max_open = max_open(w);
    config.sandbox = to_log(config.sandbox, d.log_of(&w.id).as_ref());
    Ok(config)
}

/// How long a stopped app's in-flight requests may take to finish when no grace is given.
pub const APP_GRACE: Duration = Duration::from_secs(10);

/// An app does not run: it is a route in the data plane until stopped. Stopping takes the route
/// away (404 from then on) and waits, up to the grace the stop gave (`stop -t`), for requests in
/// flight to finish; those still running then are ended (503, or a cut-off body).
async fn supervise_app(d: Arc<Daemon>, id: String, mut stop: watch::Receiver<Option<Duration>>) {
    let (Some(w), Some(apps)) = (d.get(&id), d.apps.clone()) else {
        d.finish(
            &id,
            Status::Exited,
            Some(exit::SKIFF_FAILED.into()),
            Some("this daemon has no HTTP data plane (--http-listen)".into()),
            true,
        )
        .await;
        return;
    };
    // A record accepted by a daemon that did not refuse these grants yet, and `--allow-mount`
    // as before every run of a task (the mounts are opened at deploy).
    let route = crate::daemon::app_grants(&w.spec)
        .and_then(|()| skiff_http::Route::parse(w.spec.guest.route.as_deref().unwrap_or("/")))
        .and_then(|route| match d.check_mounts(&w.spec) {
            Ok(()) => Ok(route),
            Err(e) => Err(format!("not started: {e}")),
        });
    let deployed = match route {
        Ok(route) => match app_config(&d, &w) {
            Ok(config) => apps.deploy(&id, &w.spec.image, route, config, false).await,
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    if let Err(e) = deployed {
        d.finish(
            &id,
            Status::Exited,
            Some(exit::CANNOT_RUN.into()),
            Some(e),
            true,
        )
        .await;
        return;
    }
    d.mark_running(&id).await;
    let grace = match stop.wait_for(|s| s.is_some()).await {
        Ok(g) => g.unwrap_or(APP_GRACE),
        Err(_) => APP_GRACE,
    };
    let gone = apps.undeploy(&id);
    let busy = |gone: &Option<Arc<crate::apps::Deployed>>| {
        apps.in_flight(&id) > 0 || gone.as_ref().is_some_and(|g| g.live_instances() > 0)
    };
    let deadline = Instant::now() + grace;
    while busy(&gone) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    if let Some(g) = &gone {
        g.stop();
        // Ending takes a moment (each guest is dropped at its next yield); bounded all the same.
        let deadline = Instant::now() + Duration::from_secs(1);
        while busy(&gone) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    d.finish(&id, Status::Stopped, None, None, true).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn end(code: i32) -> Ending {
        Ending {
            exit_code: Some(code),
            error: None,
            permanent: false,
            oom: false,
        }
    }

    #[test]
    fn restart_policies() {
        let on_failure = |n| RestartPolicy::OnFailure { max_retries: n };
        assert!(!should_restart(RestartPolicy::No, &end(1), 0));
        assert!(should_restart(RestartPolicy::Always, &end(0), 99));
        assert!(!should_restart(on_failure(Some(3)), &end(0), 0));
        assert!(should_restart(on_failure(Some(3)), &end(1), 2));
        assert!(!should_restart(on_failure(Some(3)), &end(1), 3));
        assert!(should_restart(on_failure(None), &end(1), 1000));
        let mut permanent = end(126);
        permanent.permanent = true;
        assert!(!should_restart(RestartPolicy::Always, &permanent, 0));
    }

    #[test]
    fn backoff_doubles_up_to_a_minute() {
        assert_eq!(backoff(0), Duration::from_millis(100));
        assert_eq!(backoff(1), Duration::from_millis(200));
        assert_eq!(backoff(3), Duration::from_millis(800));
        assert_eq!(backoff(10), MAX_BACKOFF);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }
}
