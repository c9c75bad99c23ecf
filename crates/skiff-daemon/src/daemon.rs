//! The daemon's in-memory view of its workloads, kept equal to the database: every change is
//! queued to the database (in order, under the table's lock) as it is made visible, and the
//! change's maker awaits its commit before answering or acting on it. Operations here are what
//! the API verbs do.

use crate::blobs::Blobs;
use crate::db::Db;
use crate::error::ApiError;
use crate::events::{Detail, Events};
use crate::logs::{LogConfig, LogWriter};
use crate::supervisor;
use skiff_api::{
    CreateRequest, Desired, EventAction, State, Status, Workload, WorkloadKind, WorkloadSpec,
};
use skiff_engine::{Engine, Program};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::watch;

mod check;
pub use check::app_grants;

pub struct Daemon {
    pub engine: Arc<Engine>,
    pub db: Db,
    pub blobs: Blobs,
    pub log_config: LogConfig,
    pub logs_dir: PathBuf,
    pub info: crate::InfoStatic,
    /// The HTTP data plane, with `--http-listen`.
    pub apps: Option<Arc<crate::apps::Apps>>,
    pub programs: Arc<crate::programs::Programs>,
    /// Which host directories specs may mount.
    pub mounts: crate::mounts::MountPolicy,
    /// Where tasks run, and the descriptor budget they share.
    pub host: crate::host::Host,
    /// `GET /v1/events`.
    pub events: Events,
    table: Mutex<Table>,
}

/// Workloads by id, with an index of their names (names never change): a node of thousands
/// of workloads finds a name without walking them all.
#[derive(Default)]
struct Table {
    entries: BTreeMap<String, Entry>,
    names: std::collections::HashMap<String, String>,
}

impl Table {
    fn insert(&mut self, id: String, e: Entry) {
        self.names.insert(e.w.name.clone(), id.clone());
        self.entries.insert(id, e);
    }

    fn remove(&mut self, id: &str) -> Option<Entry> {
        let e = self.entries.remove(id)?;
        self.names.remove(&e.w.name);
        Some(e)
    }

    fn by_name(&self, name: &str) -> Option<&Entry> {
        self.entries.get(self.names.get(name)?)
    }

    fn get_mut(&mut self, id: &str) -> Option<&mut Entry> {
        self.entries.get_mut(id)
    }
}

impl std::ops::Deref for Table {
    type Target = BTreeMap<String, Entry>;
    fn deref(&self) -> &Self::Target {
        &self.entries
    }
}

struct Entry {
    w: Workload,
    log: Arc<LogWriter>,
    run: Option<Run>,
    /// A task's memory, CPU time and instance, counted by the engine (an app's are the data
    /// plane's).
    usage: Arc<skiff_engine::Usage>,
}

/// A started supervisor: how to stop it, and how to learn that it ended.
struct Run {
    /// `Some(grace)` once stopped: how long an app's requests in flight may take to finish.
    stop: watch::Sender<Option<Duration>>,
    done: watch::Receiver<bool>,
}

/// Answer of `start`: whether it was already running (Docker answers 304 then).
pub enum Started {
    Now,
    Already,
}

pub fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"_.-".contains(c))
}

impl Daemon {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        engine: Arc<Engine>,
        programs: Arc<crate::programs::Programs>,
        db: Db,
        blobs: Blobs,
        log_config: LogConfig,
        logs_dir: PathBuf,
        info: crate::InfoStatic,
        apps: Option<Arc<crate::apps::Apps>>,
        mounts: crate::mounts::MountPolicy,
        host: crate::host::Host,
        events: Events,
    ) -> Daemon {
        Daemon {
            mounts,
            host,
            events,
            engine,
            db,
            blobs,
            log_config,
            logs_dir,
            info,
            apps,
            programs,
            table: Mutex::new(Table::default()),
        }
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn new_entry(&self, w: Workload) -> Entry {
        let log = LogWriter::new(self.logs_dir.join(&w.id), self.log_config, w.name.clone());
        Entry {
            w,
            log,
            run: None,
            usage: Arc::default(),
        }
    }

    /// After a restart (clean or `kill -9`): load every record, settle what the last daemon
    /// left mid-way, and start every workload whose desired state is running.
    pub async fn recover(self: &Arc<Self>) -> Result<usize, crate::error::StateError> {
        let mut started = 0;
        for mut w in self.db.load_all()? {
            let was_live = matches!(w.state.status, Status::Running | Status::Restarting);
            let restart_no =
                w.kind == WorkloadKind::Task && w.spec.restart == skiff_api::RestartPolicy::No;
            if w.desired == Desired::Running && was_live && restart_no {
                // As Docker does for restart policy "no": the run the daemon's death ended is
                // over; it is not started a second time behind the operator's back.
                w.desired = Desired::Stopped;
                w.state.status = Status::Exited;
                w.state.error = Some(
                    "the daemon stopped while this ran (restart policy \"no\": not restarted)"
                        .into(),
                );
                w.state.finished_at = Some(crate::util::now());
                self.db.put(&w).await?;
            } else if w.desired == Desired::Stopped && was_live {
                w.state.status = Status::Stopped;
                self.db.put(&w).await?;
            }
            if w.desired == Desired::Running {
                // This daemon's --allow-mount (or trust policy) may be narrower than the one
                // that accepted it.
                // A mount that does not resolve (yet: a filesystem mounted later in the boot)
                // is not refused here; its run fails and the restart policy retries it.
                if let Err(e @ ApiError::Forbidden(_)) = self.check_allowed(&w.spec) {
                    tracing::warn!("{}: not started: {e}", w.name);
                    w.desired = Desired::Stopped;
                    w.state.status = Status::Exited;
                    w.state.error = Some(format!("not started: {e}"));
                    w.state.finished_at = Some(crate::util::now());
                    self.db.put(&w).await?;
                }
            }
            if w.spec.auto_remove && w.desired == Desired::Stopped {
                // `--rm`, ended while no daemon was there to remove it.
                self.db.delete(&w.id).await?;
                crate::logs::remove(&self.logs_dir.join(&w.id), self.log_config.max_files);
                continue;
            }
            let id = w.id.clone();
            let run = w.desired == Desired::Running;
            self.table().insert(id.clone(), self.new_entry(w));
            if run {
                self.spawn(&id);
                started += 1;
            }
        }
        Ok(started)
    }

    pub fn get(&self, id: &str) -> Option<Workload> {
        let t = self.table();
        let e = t.get(id)?;
        let mut w = e.w.clone();
        w.state.log_error = e.log.error();
        drop(t);
        if w.kind == WorkloadKind::App {
            w.app = self.apps.as_ref().and_then(|a| a.runtime(&w.id));
            if let Some(app) = &mut w.app {
                // The data plane counts deploys since this daemon started; the record, all.
                app.version = w.version;
            }
        }
        Some(w)
    }

    pub fn list(&self) -> Vec<Workload> {
        let ids: Vec<String> = self.table().keys().cloned().collect();
        let mut out: Vec<Workload> = ids.iter().filter_map(|id| self.get(id)).collect();
        out.sort_by(|a, b| b.created_at.cmp(&a.created_at));
        out
    }

    pub fn log_of(&self, id: &str) -> Option<Arc<LogWriter>> {
        self.table().get(id).map(|e| e.log.clone())
    }

    /// A task's resource counters (see [`skiff_engine::Usage`]).
    pub fn usage_of(&self, id: &str) -> Option<Arc<skiff_engine::Usage>> {
        self.table().get(id).map(|e| e.usage.clone())
    }

    /// Tell `GET /v1/events` clients that `action` happened to workload `id`.
    pub fn event(&self, id: &str, action: EventAction, detail: Detail) {
        let who = self.table().get(id).map(|e| (e.w.name.clone(), e.w.kind));
        if let Some((name, kind)) = who {
            self.events.send(action, id, &name, kind, detail);
        }
    }

    pub fn is_running(&self, id: &str) -> bool {
        self.table()
            .get(id)
            .and_then(|e| e.run.as_ref())
            .is_some_and(|r| !*r.done.borrow())
    }

    /// Docker's rules: a full id, else an exact name, else a unique id prefix.
    pub fn resolve(&self, r: &str) -> Result<String, ApiError> {
        let t = self.table();
        if t.contains_key(r) {
            return Ok(r.to_string());
        }
        if let Some(e) = t.by_name(r) {
            return Ok(e.w.id.clone());
        }
        let matches: Vec<&String> = if r.is_empty() {
            vec![]
        } else {
            t.keys().filter(|id| id.starts_with(r)).collect()
        };
        match matches[..] {
            [id] => Ok(id.clone()),
            [] => Err(ApiError::NotFound(format!(
                "no such workload: {r} (see skiff ps -a)"
            ))),
            _ => Err(ApiError::Conflict(format!(
                "{r} is ambiguous: it is the start of {} workload ids; give more of the id or the name",
                matches.len()
            ))),
        }
    }

    /// Compiled code for a blob, shared with every workload of the same digest.
    pub async fn program(&self, digest: &str) -> Result<Arc<Program>, String> {
        self.programs.get(digest).await
    }

    /// Programs in memory, on both engines (tasks' and apps').
    pub fn loaded_programs(&self) -> usize {
        self.programs.count() + self.apps.as_ref().map_or(0, |a| a.loaded_programs())
    }

    /// Create a workload (and start it, if asked). Names are unique: of two concurrent creates
    /// with one name, exactly one wins; the other gets 409.
    pub async fn create(
        self: &Arc<Self>,
        req: CreateRequest,
        project: Option<String>,
    ) -> Result<Workload, ApiError> {
        if let Some(n) = &req.name {
            if !valid_name(n) {
                return Err(ApiError::BadRequest(format!(
                    "invalid name {n:?}: use letters, digits, `_`, `.` and `-`, starting with a letter or digit, at most 64"
                )));
            }
        }
        let kind = self.check(&req.spec).await?;
        if kind == WorkloadKind::App {
            let existing = req
                .name
                .as_ref()
                .and_then(|n| self.table().by_name(n).map(|e| (e.w.id.clone(), e.w.kind)));
            if let (true, Some((id, WorkloadKind::App))) = (req.replace, &existing) {
                return self.redeploy(id, req.spec).await;
            }
            let route = req.spec.guest.route.as_deref().unwrap_or("/");
            let route = skiff_http::Route::parse(route).map_err(ApiError::BadRequest)?;
            if let Some(apps) = &self.apps {
                apps.check_route(None, &route).map_err(ApiError::Conflict)?;
            }
        }
        let id = crate::util::random_hex(32)
            .map_err(|e| ApiError::Internal(format!("cannot read /dev/urandom: {e}")))?;
        let (w, commit) = {
            let mut t = self.table();
            let name = match req.name {
                Some(n) => {
                    if let Some(other) = t.by_name(&n) {
                        return Err(ApiError::Conflict(format!(
                            "the name {n} is already in use by workload {}: remove it (skiff rm -f {n}) or choose another name",
                            &other.w.id[..12]
                        )));
                    }
                    n
                }
                None => {
                    // Generated names are unique too: take more of the id until one is free.
                    let taken = |n: &str| t.by_name(n).is_some();
                    (4..=id.len())
                        .step_by(4)
                        .map(|len| generated_name(&req.spec, &id[..len]))
                        .find(|n| !taken(n))
                        .unwrap_or_else(|| id.clone())
                }
            };
            let w = Workload {
                id: id.clone(),
                name,
                kind,
                created_at: crate::util::now(),
                spec: req.spec,
                desired: if req.start {
                    Desired::Running
                } else {
                    Desired::Stopped
                },
                state: State {
                    status: Status::Created,
                    exit_code: None,
                    error: None,
                    started_at: None,
                    finished_at: None,
                    restart_count: 0,
                    restart_delay_ms: None,
                    log_error: None,
                },
                project,
                version: 1,
                app: None,
            };
            let commit = self.db.put(&w);
            t.insert(id.clone(), self.new_entry(w.clone()));
            (w, commit)
        };
        if let Err(e) = commit.await {
            self.table().remove(&id);
            return Err(e.into());
        }
        self.events.emit(EventAction::Create, &w, Detail::default());
        if req.start {
            self.spawn(&id);
        }
        Ok(self.get(&id).unwrap_or(w))
    }

    /// A new version of app `id`: committed, then swapped in if the app is serving (its code
    /// loaded first, so the first request to the new version does not wait for it).
    pub async fn redeploy(
        self: &Arc<Self>,
        id: &str,
        spec: WorkloadSpec,
    ) -> Result<Workload, ApiError> {
        let route = skiff_http::Route::parse(spec.guest.route.as_deref().unwrap_or("/"))
            .map_err(ApiError::BadRequest)?;
        let apps = self
            .apps
            .clone()
            .ok_or_else(|| ApiError::Internal("no data plane".into()))?;
        apps.check_route(Some(id), &route)
            .map_err(ApiError::Conflict)?;
        let serving = self.is_running(id);
        self.update(id, |w| {
            w.spec = spec.clone();
            w.desired = Desired::Running;
            w.version += 1;
        })
        .await?;
        let version = self.get(id).map(|w| w.version);
        if serving {
            let w = self
                .get(id)
                .ok_or_else(|| ApiError::NotFound(format!("no such workload: {id}")))?;
            let config = crate::supervisor::app_config(self, &w).map_err(ApiError::BadRequest)?;
            let preload = apps.is_loaded(id);
            apps.deploy(id, &spec.image, route, config, preload)
                .await
                .map_err(ApiError::BadRequest)?;
            let detail = Detail {
                version,
                ..Detail::default()
            };
            self.event(id, EventAction::Redeploy, detail);
        } else {
            self.spawn(id);
        }
        self.get(id)
            .ok_or_else(|| ApiError::NotFound(format!("no such workload: {id}")))
    }

    /// Start a supervisor for `id` (the caller has set desired = running).
    fn spawn(self: &Arc<Self>, id: &str) {
        let (stop_tx, stop_rx) = watch::channel(None);
        let (done_tx, done_rx) = watch::channel(false);
        {
            let mut t = self.table();
            let Some(e) = t.get_mut(id) else { return };
            e.run = Some(Run {
                stop: stop_tx,
                done: done_rx,
            });
        }
        let d = self.clone();
        let id = id.to_string();
        tokio::spawn(async move {
            supervisor::supervise(d.clone(), id.clone(), stop_rx).await;
            let _ = done_tx.send(true);
            // `--rm`: gone once ended or stopped (but not while a start races this end).
            let ended = d
                .get(&id)
                .is_some_and(|w| w.spec.auto_remove && w.desired == Desired::Stopped);
            if ended && !d.is_running(&id) {
                if let Err(e) = d.remove(&id, false).await {
                    tracing::warn!("workload {id}: --rm: cannot remove it: {e}");
                }
            }
        });
    }

    pub async fn start(self: &Arc<Self>, id: &str) -> Result<Started, ApiError> {
        if self.is_running(id) {
            return Ok(Started::Already);
        }
        // The spec was checked when it was accepted, perhaps by an earlier daemon with a wider
        // --allow-mount or trust policy (or none): check it against this daemon's, as
        // `recover` does.
        let w = self
            .get(id)
            .ok_or_else(|| ApiError::NotFound(format!("no such workload: {id}")))?;
        self.check_allowed(&w.spec)?;
        self.update(id, |w| {
            w.desired = Desired::Running;
            w.state.restart_count = 0;
        })
        .await?;
        self.spawn(id);
        Ok(Started::Now)
    }

    /// Stop `id` and wait until its supervisor has ended. Tasks are cancelled at once (WASI has
    /// no signals a guest could handle); `grace` is for apps to finish in-flight requests.
    pub async fn stop(&self, id: &str, grace: Duration) -> Result<(), ApiError> {
        // Desired state first: should the daemon die right now, the next one will not start it.
        self.update(id, |w| w.desired = Desired::Stopped).await?;
        let run = {
            let t = self.table();
            t.get(id)
                .and_then(|e| e.run.as_ref())
                .map(|r| (r.stop.clone(), r.done.clone()))
        };
        if let Some((stop, mut done)) = run {
            let _ = stop.send(Some(grace));
            let _ = done.wait_for(|d| *d).await;
        }
        Ok(())
    }

    /// Wait until `id`'s supervisor has ended (at once if none runs), then say how it ended.
    pub async fn wait(&self, id: &str) -> Result<skiff_api::WaitResponse, ApiError> {
        let done = self
            .table()
            .get(id)
            .ok_or_else(|| ApiError::NotFound(format!("no such workload: {id}")))?
            .run
            .as_ref()
            .map(|r| r.done.clone());
        if let Some(mut done) = done {
            let _ = done.wait_for(|d| *d).await;
        }
        let w = self
            .get(id)
            .ok_or_else(|| ApiError::NotFound(format!("no such workload: {id}")))?;
        Ok(skiff_api::WaitResponse {
            status: w.state.status,
            exit_code: w.state.exit_code,
            error: w.state.error,
        })
    }

    pub async fn remove(&self, id: &str, force: bool) -> Result<(), ApiError> {
        if self.is_running(id) {
            if !force {
                let name = self.get(id).map(|w| w.name).unwrap_or_default();
                return Err(ApiError::Conflict(format!(
                    "workload {name} is running: stop it first (skiff stop {name}) or remove it with -f"
                )));
            }
            self.stop(id, Duration::ZERO).await?;
        }
        self.db.delete(id).await?;
        self.event(id, EventAction::Destroy, Detail::default());
        if let Some(apps) = &self.apps {
            apps.forget(id);
        }
        if let Some(e) = self.table().remove(id) {
            crate::logs::remove(e.log.base(), self.log_config.max_files);
        }
        Ok(())
    }

    /// Change a record: queued to the database and visible at once (so the next change builds
    /// on it), committed when this returns.
    pub async fn update(&self, id: &str, f: impl FnOnce(&mut Workload)) -> Result<(), ApiError> {
        let commit = {
            let mut t = self.table();
            let e = t
                .get_mut(id)
                .ok_or_else(|| ApiError::NotFound(format!("no such workload: {id}")))?;
            let mut w = e.w.clone();
            f(&mut w);
            let commit = self.db.put(&w);
            e.w = w;
            commit
        };
        Ok(commit.await?)
    }

    /// The supervisor's records. A failure to write state is logged: the supervisor cannot do
    /// better than carry on, and the next change will try again.
    async fn record(&self, id: &str, f: impl FnOnce(&mut Workload)) {
        if let Err(e) = self.update(id, f).await {
            if !matches!(e, ApiError::NotFound(_)) {
                tracing::error!("workload {id}: cannot record its state: {e}");
            }
        }
    }

    /// A task's run started, or an app's route went live.
    pub async fn mark_running(&self, id: &str) {
        self.record(id, |w| {
            w.state.status = Status::Running;
            w.state.started_at = Some(crate::util::now());
            w.state.finished_at = None;
            w.state.restart_delay_ms = None;
        })
        .await;
        if let Some(w) = self.get(id) {
            let (action, version) = match w.kind {
                WorkloadKind::Task => (EventAction::Start, None),
                WorkloadKind::App => (EventAction::Deploy, Some(w.version)),
            };
            let detail = Detail {
                version,
                ..Detail::default()
            };
            self.events.emit(action, &w, detail);
        }
    }

    pub async fn mark_restarting(
        &self,
        id: &str,
        code: Option<i32>,
        error: Option<String>,
        delay: Duration,
    ) {
        self.record(id, |w| {
            w.state.status = Status::Restarting;
            w.state.exit_code = code;
            w.state.error = error.clone();
            w.state.finished_at = Some(crate::util::now());
            w.state.restart_count += 1;
            w.state.restart_delay_ms = Some(delay.as_millis() as u64);
        })
        .await;
        self.event(id, EventAction::Die, died(code, error));
    }

    /// The workload ended for good (or was stopped): desired becomes stopped.
    pub async fn finish(
        &self,
        id: &str,
        status: Status,
        code: Option<i32>,
        error: Option<String>,
        _final: bool,
    ) {
        self.record(id, |w| {
            w.desired = Desired::Stopped;
            w.state.status = status;
            if status != Status::Stopped {
                w.state.exit_code = code;
                w.state.error = error.clone();
            }
            w.state.finished_at = Some(crate::util::now());
            w.state.restart_delay_ms = None;
        })
        .await;
        match status {
            Status::Stopped => self.event(id, EventAction::Stop, Detail::default()),
            _ => self.event(id, EventAction::Die, died(code, error)),
        }
    }
}

/// A `die` event's detail.
fn died(exit_code: Option<i32>, reason: Option<String>) -> Detail {
    Detail {
        exit_code,
        reason,
        ..Detail::default()
    }
}

/// `<file stem>-<start of the id>`: readable; the caller lengthens the id part on a clash.
fn generated_name(spec: &WorkloadSpec, id_part: &str) -> String {
    let base = spec
        .image_name
        .as_deref()
        .and_then(|n| n.rsplit('/').next())
        .map(|n| n.trim_end_matches(".wasm"))
        .filter(|n| !n.is_empty())
        .unwrap_or("workload");
    let base: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_.-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    let base = base.trim_start_matches(|c: char| !c.is_ascii_alphanumeric());
    let base = if base.is_empty() { "workload" } else { base };
    format!("{}-{id_part}", &base[..base.len().min(50)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(valid_name("job"));
        assert!(valid_name("a.b-c_1"));
        assert!(!valid_name(""));
        assert!(!valid_name("-x"));
        assert!(!valid_name("a/b"));
        assert!(!valid_name(&"a".repeat(65)));
    }
}
