//! containerd's shim v2 task service: create, start, kill, wait, delete, state, and the refusals
//! (exec, pause, checkpoint, update) that a Wasm guest has no meaning for.

use crate::process::{self, StdioPaths, Work};
use crate::spec::{self, NetNs, Spec};
use containerd_shim::api::{self, Status};
use containerd_shim::protos::events::task::{
    TaskCreate, TaskDelete, TaskExit, TaskIO, TaskOOM, TaskStart,
};
use containerd_shim::protos::protobuf::well_known_types::timestamp::Timestamp;
use containerd_shim::protos::protobuf::{EnumOrUnknown, MessageDyn, MessageField};
use containerd_shim::protos::topics;
use containerd_shim::protos::ttrpc::{self, context::Context, Code};
use containerd_shim::protos::types::task::ProcessInfo;
use containerd_shim::publisher::RemotePublisher;
use containerd_shim::{ExitSignal, TtrpcContext, TtrpcResult};
use log::{info, warn};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Created,
    Running,
    Stopped,
}

struct State {
    phase: Phase,
    pid: u32,
    exit_status: u32,
    exited_at: Option<Timestamp>,
}

struct Container {
    id: String,
    bundle: PathBuf,
    rootfs: PathBuf,
    /// The shim mounted the rootfs (and so unmounts it on delete).
    mounted: bool,
    work: Work,
    stdio: StdioPaths,
    stdin_granted: bool,
    netns: NetNs,
    state: Mutex<State>,
    exited: Condvar,
}

#[derive(Clone)]
pub struct TaskService {
    namespace: String,
    /// containerd's gRPC socket, where the trust check asks which image a container runs.
    address: String,
    containers: Arc<Mutex<HashMap<String, Arc<Container>>>>,
    publisher: Arc<RemotePublisher>,
    exit: Arc<ExitSignal>,
}

fn status(code: Code, message: impl Into<String>) -> ttrpc::Error {
    ttrpc::Error::RpcStatus(ttrpc::get_status(code, message.into()))
}

fn now() -> Timestamp {
    containerd_shim::util::timestamp().unwrap_or_default()
}

const NO_EXEC: &str = "exec is not supported for Wasm workloads: skiff runs one WebAssembly \
guest per container and cannot exec another process into it: there is no shell or process table inside a Wasm sandbox. Run a separate \
container instead";

impl TaskService {
    pub fn new(
        namespace: String,
        address: String,
        publisher: RemotePublisher,
        exit: Arc<ExitSignal>,
    ) -> Self {
        TaskService {
            namespace,
            address,
            containers: Arc::default(),
            publisher: Arc::new(publisher),
            exit,
        }
    }

    fn get(&self, id: &str) -> TtrpcResult<Arc<Container>> {
        self.containers
            .lock()
            .unwrap()
            .get(id)
            .cloned()
            .ok_or_else(|| status(Code::NOT_FOUND, format!("container {id} not found")))
    }

    fn publish(&self, topic: &str, event: Box<dyn MessageDyn>) {
        if let Err(e) = self
            .publisher
            .publish(Context::default(), topic, &self.namespace, event)
        {
            warn!("could not publish {topic}: {e}");
        }
    }

    /// Mount the rootfs, decide what runs, check it can run. Undoes the mount on error.
    fn prepare(&self, req: &api::CreateTaskRequest) -> Result<Container, String> {
        let bundle = PathBuf::from(&req.bundle);
        let spec = Spec::read(&bundle)?;
        if !spec.is_pod_sandbox() {
            self.trusted(&req.id, &spec)?;
        }
        let rootfs = spec.rootfs(&bundle);
        let mounted = !req.rootfs.is_empty();
        if mounted {
            std::fs::create_dir_all(&rootfs)
                .map_err(|e| format!("cannot create {}: {e}", rootfs.display()))?;
            for m in &req.rootfs {
                crate::mount::mount(&m.type_, &m.source, &m.options, &rootfs)
                    .map_err(|e| format!("cannot mount the container rootfs: {e}"))?;
            }
        }
        let result = self.decide(req, &spec, &bundle, &rootfs);
        if result.is_err() && mounted {
            unmount(&rootfs);
        }
        let (work, stdin_granted) = result?;
        Ok(Container {
            id: req.id.clone(),
            bundle,
            rootfs,
            mounted,
            work,
            stdio: StdioPaths {
                stdin: req.stdin.clone(),
                stdout: req.stdout.clone(),
                stderr: req.stderr.clone(),
            },
            stdin_granted,
            netns: spec.network_namespace(),
            state: Mutex::new(State {
                phase: Phase::Created,
                pid: 0,
                exit_status: 0,
                exited_at: None,
            }),
            exited: Condvar::new(),
        })
    }

    /// The node's trust policy (`crate::trust`): checked before anything is mounted or planned.
    fn trusted(&self, id: &str, spec: &Spec) -> Result<(), String> {
        let refused =
            |e: String| format!("skiff: the node's trust policy refuses this container: {e}");
        let Some(policy) = crate::trust::node_policy().map_err(refused)? else {
            return Ok(());
        };
        let socket = self
            .address
            .strip_prefix("unix://")
            .unwrap_or(&self.address);
        let containerd = crate::containerd::Containerd {
            socket: Path::new(socket),
            namespace: &self.namespace,
        };
        let ok = crate::trust::check(&policy, &containerd, id, spec).map_err(refused)?;
        info!("{id}: {ok}");
        Ok(())
    }

    fn decide(
        &self,
        req: &api::CreateTaskRequest,
        spec: &Spec,
        bundle: &Path,
        rootfs: &Path,
    ) -> Result<(Work, bool), String> {
        if spec.is_pod_sandbox() {
            return Ok((Work::Pause, false));
        }
        if req.terminal {
            return Err(
                "a WebAssembly guest has no terminal: run it without a TTY (no `-t`)".into(),
            );
        }
        let plan = spec::guest_plan(&req.id, spec, rootfs)?;
        let path = bundle.join("skiff-plan.json");
        let json = serde_json::to_vec(&plan).map_err(|e| e.to_string())?;
        std::fs::write(&path, json).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        Ok((Work::Guest(path), plan.guest.stdin))
    }

    /// Reap the process in the background and tell containerd when it ends.
    fn watch(&self, c: Arc<Container>, pid: u32) {
        let service = self.clone();
        std::thread::spawn(move || {
            process::wait_exit(pid, |reap: &dyn Fn() -> (u32, bool)| {
                let mut st = c.state.lock().unwrap();
                let (exit_status, by_itself) = reap();
                st.exit_status = exit_status;
                if by_itself && exit_status == u32::from(skiff_engine::exit::MEMORY_LIMIT) {
                    // The guest runner stopped the guest at its memory limit. containerd's CRI
                    // plugin turns this event into the reason `OOMKilled` (what a kubelet shows
                    // for a container past `resources.limits.memory`); it must come before the
                    // exit, which fixes the status.
                    let oom = TaskOOM {
                        container_id: c.id.clone(),
                        ..Default::default()
                    };
                    service.publish(topics::TASK_OOM_EVENT_TOPIC, Box::new(oom));
                }
                st.exited_at = Some(now());
                st.phase = Phase::Stopped;
                c.exited.notify_all();
                let event = TaskExit {
                    container_id: c.id.clone(),
                    id: c.id.clone(),
                    pid,
                    exit_status: st.exit_status,
                    exited_at: MessageField::from_option(st.exited_at.clone()),
                    ..Default::default()
                };
                drop(st);
                service.publish(topics::TASK_EXIT_EVENT_TOPIC, Box::new(event));
            });
        });
    }
}

fn unmount(rootfs: &Path) {
    if let Err(e) = crate::mount::unmount(rootfs) {
        warn!("could not unmount {}: {e}", rootfs.display());
    }
}

impl containerd_shim::Task for TaskService {
    fn create(
        &self,
        _ctx: &TtrpcContext,
        req: api::CreateTaskRequest,
    ) -> TtrpcResult<api::CreateTaskResponse> {
        if self.containers.lock().unwrap().contains_key(&req.id) {
            return Err(status(
                Code::ALREADY_EXISTS,
                format!("container {} already exists", req.id),
            ));
        }
        let c = self
            .prepare(&req)
            .map_err(|e| status(Code::FAILED_PRECONDITION, e))?;
        info!("{}: created ({:?})", c.id, c.work);
        self.containers
            .lock()
            .unwrap()
            .insert(req.id.clone(), Arc::new(c));
        self.publish(
            topics::TASK_CREATE_EVENT_TOPIC,
            Box::new(TaskCreate {
                container_id: req.id.clone(),
                bundle: req.bundle.clone(),
                rootfs: req.rootfs.clone(),
                io: MessageField::some(TaskIO {
                    stdin: req.stdin.clone(),
                    stdout: req.stdout.clone(),
                    stderr: req.stderr.clone(),
                    terminal: req.terminal,
                    ..Default::default()
                }),
                ..Default::default()
            }),
        );
        Ok(api::CreateTaskResponse::default())
    }

    fn start(
        &self,
        _ctx: &TtrpcContext,
        req: api::StartRequest,
    ) -> TtrpcResult<api::StartResponse> {
        if !req.exec_id.is_empty() {
            return Err(status(Code::UNIMPLEMENTED, NO_EXEC));
        }
        let c = self.get(&req.id)?;
        let mut st = c.state.lock().unwrap();
        if st.phase != Phase::Created {
            return Err(status(
                Code::FAILED_PRECONDITION,
                format!("container {} was already started", c.id),
            ));
        }
        let pid = process::spawn(process::Spawn {
            work: &c.work,
            stdio: &c.stdio,
            stdin: c.stdin_granted,
            netns: &c.netns,
        })
        .map_err(|e| status(Code::UNKNOWN, format!("cannot start {}: {e}", c.id)))?;
        st.pid = pid;
        st.phase = Phase::Running;
        drop(st);
        let _ = std::fs::write(process::pid_file(&c.bundle), pid.to_string());
        self.watch(c.clone(), pid);
        self.publish(
            topics::TASK_START_EVENT_TOPIC,
            Box::new(TaskStart {
                container_id: c.id.clone(),
                pid,
                ..Default::default()
            }),
        );
        Ok(api::StartResponse {
            pid,
            ..Default::default()
        })
    }

    fn kill(&self, _ctx: &TtrpcContext, req: api::KillRequest) -> TtrpcResult<api::Empty> {
        if !req.exec_id.is_empty() {
            return Err(status(Code::NOT_FOUND, format!("no exec {}", req.exec_id)));
        }
        let c = self.get(&req.id)?;
        let mut st = c.state.lock().unwrap();
        match st.phase {
            Phase::Running => {
                // The pid is unreaped while the state lock is held (see process::wait_exit).
                match process::signal(st.pid, req.signal) {
                    Ok(true) => Ok(api::Empty::default()),
                    Ok(false) => Err(status(Code::NOT_FOUND, "process already finished")),
                    Err(e) => Err(status(Code::UNKNOWN, format!("kill {}: {e}", st.pid))),
                }
            }
            Phase::Created => {
                // Never started: it ends as a process killed by this signal would.
                st.phase = Phase::Stopped;
                st.exit_status = 128 + req.signal;
                st.exited_at = Some(now());
                c.exited.notify_all();
                Ok(api::Empty::default())
            }
            Phase::Stopped => Err(status(Code::NOT_FOUND, "process already finished")),
        }
    }

    fn wait(&self, _ctx: &TtrpcContext, req: api::WaitRequest) -> TtrpcResult<api::WaitResponse> {
        if !req.exec_id.is_empty() {
            return Err(status(Code::NOT_FOUND, format!("no exec {}", req.exec_id)));
        }
        let c = self.get(&req.id)?;
        let mut st = c.state.lock().unwrap();
        while st.phase != Phase::Stopped {
            st = c.exited.wait(st).unwrap();
        }
        Ok(api::WaitResponse {
            exit_status: st.exit_status,
            exited_at: MessageField::from_option(st.exited_at.clone()),
            ..Default::default()
        })
    }

    fn delete(
        &self,
        _ctx: &TtrpcContext,
        req: api::DeleteRequest,
    ) -> TtrpcResult<api::DeleteResponse> {
        if !req.exec_id.is_empty() {
            return Err(status(Code::NOT_FOUND, format!("no exec {}", req.exec_id)));
        }
        let c = self.get(&req.id)?;
        let st = c.state.lock().unwrap();
        if st.phase == Phase::Running {
            return Err(status(
                Code::FAILED_PRECONDITION,
                format!("container {} is running: kill it first", c.id),
            ));
        }
        let (pid, exit_status) = (st.pid, st.exit_status);
        let exited_at = st.exited_at.clone().unwrap_or_else(now);
        drop(st);
        if c.mounted {
            unmount(&c.rootfs);
        }
        if let Work::Guest(plan) = &c.work {
            let _ = std::fs::remove_file(plan);
        }
        let _ = std::fs::remove_file(process::pid_file(&c.bundle));
        self.containers.lock().unwrap().remove(&c.id);
        self.publish(
            topics::TASK_DELETE_EVENT_TOPIC,
            Box::new(TaskDelete {
                container_id: c.id.clone(),
                pid,
                exit_status,
                exited_at: MessageField::some(exited_at.clone()),
                ..Default::default()
            }),
        );
        Ok(api::DeleteResponse {
            pid,
            exit_status,
            exited_at: MessageField::some(exited_at),
            ..Default::default()
        })
    }

    fn state(
        &self,
        _ctx: &TtrpcContext,
        req: api::StateRequest,
    ) -> TtrpcResult<api::StateResponse> {
        if !req.exec_id.is_empty() {
            return Err(status(Code::NOT_FOUND, format!("no exec {}", req.exec_id)));
        }
        let c = self.get(&req.id)?;
        let st = c.state.lock().unwrap();
        let phase = match st.phase {
            Phase::Created => Status::CREATED,
            Phase::Running => Status::RUNNING,
            Phase::Stopped => Status::STOPPED,
        };
        Ok(api::StateResponse {
            id: c.id.clone(),
            bundle: c.bundle.to_string_lossy().into_owned(),
            pid: st.pid,
            status: EnumOrUnknown::new(phase),
            stdin: c.stdio.stdin.clone(),
            stdout: c.stdio.stdout.clone(),
            stderr: c.stdio.stderr.clone(),
            exit_status: st.exit_status,
            exited_at: MessageField::from_option(st.exited_at.clone()),
            ..Default::default()
        })
    }

    fn pids(&self, _ctx: &TtrpcContext, req: api::PidsRequest) -> TtrpcResult<api::PidsResponse> {
        let c = self.get(&req.id)?;
        let pid = c.state.lock().unwrap().pid;
        let processes = (pid != 0)
            .then(|| ProcessInfo {
                pid,
                ..Default::default()
            })
            .into_iter()
            .collect();
        Ok(api::PidsResponse {
            processes,
            ..Default::default()
        })
    }

    fn connect(
        &self,
        _ctx: &TtrpcContext,
        req: api::ConnectRequest,
    ) -> TtrpcResult<api::ConnectResponse> {
        let task_pid = self.get(&req.id).map(|c| c.state.lock().unwrap().pid)?;
        Ok(api::ConnectResponse {
            shim_pid: std::process::id(),
            task_pid,
            version: env!("CARGO_PKG_VERSION").into(),
            ..Default::default()
        })
    }

    fn shutdown(&self, _ctx: &TtrpcContext, _req: api::ShutdownRequest) -> TtrpcResult<api::Empty> {
        // One shim may serve every container of a pod: it leaves with the last one.
        if self.containers.lock().unwrap().is_empty() {
            self.exit.signal();
        }
        Ok(api::Empty::default())
    }

    fn exec(&self, _ctx: &TtrpcContext, _req: api::ExecProcessRequest) -> TtrpcResult<api::Empty> {
        Err(status(Code::UNIMPLEMENTED, NO_EXEC))
    }

    fn close_io(&self, _ctx: &TtrpcContext, _req: api::CloseIORequest) -> TtrpcResult<api::Empty> {
        // The guest holds its own end of the stdin FIFO; closing is containerd's side.
        Ok(api::Empty::default())
    }

    fn pause(&self, _ctx: &TtrpcContext, _req: api::PauseRequest) -> TtrpcResult<api::Empty> {
        Err(status(Code::UNIMPLEMENTED, "skiff cannot pause a guest"))
    }

    fn resume(&self, _ctx: &TtrpcContext, _req: api::ResumeRequest) -> TtrpcResult<api::Empty> {
        Err(status(
            Code::UNIMPLEMENTED,
            "skiff cannot pause or resume a guest",
        ))
    }

    fn update(&self, _ctx: &TtrpcContext, _req: api::UpdateTaskRequest) -> TtrpcResult<api::Empty> {
        Err(status(
            Code::UNIMPLEMENTED,
            "skiff cannot change a running guest's limits: they are fixed when it starts",
        ))
    }
}

/// `containerd-shim-skiff-v1 delete`: containerd's cleanup after a shim died. Stops the guest
/// it left behind and unmounts the rootfs of the bundle (the working directory).
pub fn cleanup_bundle(bundle: &Path) {
    if let Ok(pid) = std::fs::read_to_string(process::pid_file(bundle)) {
        if let Ok(pid) = pid.trim().parse::<u32>() {
            let _ = process::signal(pid, libc::SIGKILL as u32);
        }
    }
    let rootfs = Spec::read(bundle)
        .map(|s| s.rootfs(bundle))
        .unwrap_or_else(|_| bundle.join("rootfs"));
    unmount(&rootfs);
}
