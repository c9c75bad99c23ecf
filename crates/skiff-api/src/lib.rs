//! The daemon's API: plain serde types, shared by `skiff` (the client) and `skiff daemon`.
//!
//! No logic lives here. Every type derives `JsonSchema` so that the OpenAPI document
//! (`docs/api/openapi.json`, served at `GET /openapi.json`) is generated from these very types
//! and cannot drift from them.
//!
//! Conventions: field names are `snake_case`; times are RFC 3339 strings in UTC; sizes are bytes;
//! durations are milliseconds with the unit in the field name. Unknown fields in a request are an
//! error (400), so a typo is never silently ignored.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The path prefix of every versioned endpoint.
pub const PREFIX: &str = "/v1";

/// What kind of workload this is. Read from the binary by the daemon, never chosen by a flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WorkloadKind {
    /// A command (WASI p1 `_start` or p2 `wasi:cli/run`) that runs to completion.
    Task,
    /// An HTTP handler (`wasi:http/incoming-handler`) served on the node's shared listener.
    App,
}

/// When the supervisor starts a task again after it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "name", rename_all = "kebab-case", deny_unknown_fields)]
pub enum RestartPolicy {
    /// Never.
    #[default]
    No,
    /// After a non-zero exit, a trap or a limit, up to `max_retries` times (unbounded if absent).
    OnFailure {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_retries: Option<u32>,
    },
    /// After every end, success included, until stopped.
    Always,
}

pub use skiff_spec::{EnvVar, GuestSpec, Limits, Mount};

/// Everything needed to run a workload: what, with which grants, under which limits.
/// Two specs that compare equal describe the same deployment (`skiff up` relies on it).
/// The guest's fields (args to allow_outbound) are those `skiff run`, `serve` and the shim use.
//
// The guest's part is `skiff_spec::GuestSpec`, flattened: its fields sit at this level in JSON,
// as before it was shared, so records stored by earlier daemons load unchanged. Unknown fields
// are still an error: see the `Deserialize` below.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct WorkloadSpec {
    /// What to run: `sha256:<64 hex>` of a blob uploaded with `POST /v1/blobs`.
    pub image: String,
    /// How the user named the image (a file name), shown by `ps`. Defaults to `image`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_name: Option<String>,
    /// Args (tasks only), env, mounts, network, limits; allow_outbound; route (apps only).
    /// `stdin` is refused: a workload of the daemon has no terminal.
    #[serde(flatten)]
    pub guest: GuestSpec,
    /// Tasks only; apps are always kept running.
    #[serde(default)]
    pub restart: RestartPolicy,
    /// Tasks only (Docker's `--rm`): the workload and its logs are removed once it has ended
    /// (or been stopped). Not with a restart policy.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub auto_remove: bool,
}

/// `WorkloadSpec` as read, with whatever else the JSON held.
#[derive(Deserialize)]
struct WorkloadSpecWire {
    image: String,
    #[serde(default)]
    image_name: Option<String>,
    #[serde(default)]
    restart: RestartPolicy,
    #[serde(default)]
    auto_remove: bool,
    #[serde(flatten)]
    guest: GuestSpec,
    /// Serde's `deny_unknown_fields` does not work beside `flatten`: the guest's fields are
    /// taken first, so what is left here is unknown.
    #[serde(flatten)]
    unknown: std::collections::BTreeMap<String, serde::de::IgnoredAny>,
}

impl<'de> Deserialize<'de> for WorkloadSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        const OWN: &[&str] = &["image", "image_name", "restart", "auto_remove"];
        let w = WorkloadSpecWire::deserialize(d)?;
        if let Some(name) = w.unknown.keys().next() {
            let expected: Vec<&str> = OWN.iter().chain(GuestSpec::FIELDS).copied().collect();
            return Err(serde::de::Error::custom(format!(
                "unknown field `{name}`, expected one of {}",
                expected.join(", ")
            )));
        }
        Ok(WorkloadSpec {
            image: w.image,
            image_name: w.image_name,
            guest: w.guest,
            restart: w.restart,
            auto_remove: w.auto_remove,
        })
    }
}

/// `POST /v1/workloads`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRequest {
    /// Unique on the node; generated when absent. `[a-zA-Z0-9][a-zA-Z0-9_.-]*`, at most 64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub spec: WorkloadSpec,
    /// Start it right away (default true).
    #[serde(default = "yes")]
    pub start: bool,
    /// Apps only: if an app of this name exists, deploy this spec as its new version (same id;
    /// the new version takes new requests, in-flight ones finish on the old). `skiff deploy`
    /// sets it.
    #[serde(default)]
    pub replace: bool,
}

fn yes() -> bool {
    true
}

fn first_version() -> u64 {
    1
}

/// What the operator wants; the supervisor makes it so, also after a daemon restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Desired {
    Running,
    Stopped,
}

/// Where a workload is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Created and never started.
    Created,
    Running,
    /// Ended; waiting out the backoff before its restart policy starts it again.
    Restarting,
    /// Ended on its own (see `exit_code` and `error`), and will not be restarted.
    Exited,
    /// Stopped by the operator (`stop`, `rm -f`, `down`).
    Stopped,
}

/// The observed state of a workload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct State {
    pub status: Status,
    /// Of the last run that ended: the guest's own status, or the code the CLI would use for a
    /// limit or trap (124 timeout, 134 trap, 137 memory limit).
    pub exit_code: Option<i32>,
    /// Why the last run ended, when it was not a plain exit.
    pub error: Option<String>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// Restarts done by the restart policy since the operator last started it.
    pub restart_count: u32,
    /// While `restarting`: how long the supervisor waits before the next start. Doubles with
    /// each consecutive failure (100 ms, 200 ms, … at most 60 s); a run of 10 s resets it.
    pub restart_delay_ms: Option<u64>,
    /// The last failure to write this workload's log (a full disk, say). The workload keeps
    /// running; lines are lost until writing works again.
    pub log_error: Option<String>,
}

/// A workload as `inspect` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Workload {
    /// 64 hex digits; any unique prefix names it too.
    pub id: String,
    pub name: String,
    pub kind: WorkloadKind,
    pub created_at: String,
    pub spec: WorkloadSpec,
    pub desired: Desired,
    pub state: State,
    /// The `skiff up` project that owns it, if any.
    pub project: Option<String>,
    /// Specs given to it under this name: 1 at creation, one more at each redeploy. Stored, so
    /// it survives daemon restarts (records of daemons before it read as 1).
    #[serde(default = "first_version")]
    pub version: u64,
    /// Apps only: the data plane's view of it now (not stored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<AppRuntime>,
}

/// `POST /v1/workloads/{ref}/wait` answers this once the workload no longer runs (Docker's
/// `wait`): how its last run ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct WaitResponse {
    pub status: Status,
    pub exit_code: Option<i32>,
    pub error: Option<String>,
}

/// An app as the data plane sees it now.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AppRuntime {
    /// Whether its compiled code is in memory (scale to zero: not until the first request, and
    /// not after the memory budget evicted it).
    pub loaded: bool,
    /// Bytes of compiled code it holds while loaded.
    pub code_bytes: u64,
    /// Times its code was loaded (from the compile cache) into memory.
    pub loads: u64,
    /// Times the memory budget evicted it.
    pub evictions: u64,
    /// Requests routed to it (every version).
    pub requests: u64,
    /// Requests in progress now.
    pub in_flight: u64,
    /// Versions deployed under this name by `skiff deploy` (1 for the first); the workload's
    /// stored `version`, which survives daemon restarts.
    pub version: u64,
}

/// The node's HTTP data plane, when the daemon runs one (`--http-listen`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct HttpInfo {
    /// The address the data plane listens on.
    pub listen: String,
    /// Routes served now.
    pub routes: u64,
    /// Apps whose compiled code is in memory now, and its total size.
    pub loaded_apps: u64,
    pub loaded_bytes: u64,
    /// The memory budget for compiled code of apps (`--app-cache-size`); least recently used
    /// apps are evicted beyond it.
    pub budget_bytes: u64,
    /// Loads and evictions since the daemon started.
    pub loads: u64,
    pub evictions: u64,
}

/// Which stream a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    Stdout,
    Stderr,
}

/// One line of a workload's output: one JSON object per line of `GET …/logs` (and of the log
/// files on disk; the field names are Docker's `json-file` ones).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LogLine {
    /// The text, with its trailing newline if the guest wrote one.
    pub log: String,
    pub stream: Stream,
    pub time: String,
}

/// `POST /v1/blobs` answers this.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BlobInfo {
    /// `sha256:<64 hex>`, to use as a spec's `image`.
    pub digest: String,
    pub size: u64,
    pub kind: WorkloadKind,
}

/// The header of `POST /v1/blobs` carrying [`UploadEvidence`]: base64 (standard, padded) of its
/// JSON, at most 48 KiB. A daemon with a trust policy checks the binary with it; one without
/// ignores it.
pub const EVIDENCE_HEADER: &str = "x-skiff-evidence";

/// What the client read from the registry about the image a binary comes from: a daemon with a
/// trust policy accepts the binary only if it is a layer of this manifest, signed as its policy
/// asks for this reference (docs/trust.md, "The daemon's policy").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UploadEvidence {
    /// The image as pulled: `registry.example.com/team/app:1.0` or `…@sha256:…`.
    pub reference: String,
    /// base64 of the manifest the reference names, byte for byte as the registry served it;
    /// for an index, the index and then the platform manifest the binary is a layer of.
    pub manifests: Vec<String>,
    /// The signatures under the manifest's `sha256-<hex>.sig` tag (at most 64).
    pub signatures: Vec<EvidenceSignature>,
}

/// One cosign signature: its simple-signing payload and the signature over it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EvidenceSignature {
    /// base64 of the payload's bytes (the `.sig` tag's layer).
    pub payload: String,
    /// The signature as in the layer's `dev.cosignproject.cosign/signature` annotation
    /// (base64 of an ECDSA DER signature).
    pub signature: String,
}

/// `PUT /v1/projects/{project}`: the whole desired set of a `skiff up` file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectRequest {
    /// Entry name (the workload's name) to spec.
    pub workloads: std::collections::BTreeMap<String, WorkloadSpec>,
}

/// What `PUT`/`DELETE /v1/projects/{project}` changed. Names, sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ProjectChanges {
    pub created: Vec<String>,
    /// Same spec, but it had been stopped: started again.
    pub started: Vec<String>,
    /// A changed task: stopped, removed and created again under its name.
    pub replaced: Vec<String>,
    /// A changed app: deployed as its next version in place (same id, as `skiff deploy` does:
    /// requests in flight finish on the old version, nothing is refused meanwhile).
    #[serde(default)]
    pub updated: Vec<String>,
    pub removed: Vec<String>,
    pub unchanged: Vec<String>,
}

/// `GET /v1/info`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SystemInfo {
    pub version: String,
    pub wasmtime_version: String,
    pub home: String,
    pub api: ApiInfo,
    pub engine: EngineInfo,
    pub pools: PoolInfo,
    pub workloads: WorkloadCounts,
    pub memory: MemoryInfo,
    pub logs: LogSettings,
    /// The HTTP data plane; absent without `--http-listen`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpInfo>,
    /// The trust policy uploads are checked against (its file); absent: every binary is
    /// accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ApiInfo {
    pub socket: String,
    /// The TCP address, when `--api-listen` was given (bearer token required there).
    pub tcp: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct EngineInfo {
    /// Pooling allocator in use (else on-demand mmap per instance).
    pub pooling: bool,
    /// Names the engine settings in the compile cache's keys.
    pub settings_id: Option<String>,
    pub max_wasm_stack_bytes: u64,
    pub epoch_tick_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PoolInfo {
    /// tokio worker threads running guests and the API.
    pub worker_threads: u64,
    /// Programs compiled and held in memory.
    pub loaded_programs: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct WorkloadCounts {
    pub total: u64,
    pub running: u64,
    pub restarting: u64,
    pub exited: u64,
    pub stopped: u64,
    pub created: u64,
    pub tasks: u64,
    pub apps: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct MemoryInfo {
    /// The daemon's resident set size.
    pub rss_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LogSettings {
    /// A log file is rotated when it reaches this size.
    pub max_size_bytes: u64,
    /// Files kept per workload, the current one included.
    pub max_files: u32,
}

/// Every error answer: a 4xx or 5xx status with this body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ErrorBody {
    /// What went wrong and what to do about it.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record as the daemon stored it before the guest's part was shared: it must still load.
    #[test]
    fn a_spec_stored_by_an_earlier_daemon_loads() {
        let old = r#"{"image":"sha256:ab","image_name":"job.wasm","args":["x"],
            "env":[{"name":"B","value":"1"},{"name":"A","value":"2"}],
            "mounts":[{"host":"/srv","guest":"/data","read_only":true}],"network":false,
            "limits":{"memory_bytes":1048576,"timeout_ms":5000},"restart":{"name":"always"},
            "route":"/api","allow_outbound":["https://example.com"]}"#;
        let s: WorkloadSpec = serde_json::from_str(old).unwrap();
        assert_eq!(s.guest.args, ["x"]);
        assert_eq!(s.guest.env, [EnvVar::new("B", "1"), EnvVar::new("A", "2")]);
        assert_eq!(s.guest.mounts[0].guest, "/data");
        assert_eq!(s.guest.limits.timeout_ms, Some(5000));
        assert_eq!(s.guest.route.as_deref(), Some("/api"));
        assert_eq!(s.restart, RestartPolicy::Always);
        // And it is written back in the same shape.
        let again: serde_json::Value = serde_json::to_value(&s).unwrap();
        let old: serde_json::Value = serde_json::from_str(old).unwrap();
        assert_eq!(again, old);
    }

    #[test]
    fn unknown_fields_are_refused() {
        for json in [
            r#"{"image":"sha256:ab","nmae":"x"}"#,
            r#"{"image":"sha256:ab","limits":{"memroy_bytes":1}}"#,
            r#"{"image":"sha256:ab","env":[{"name":"A","value":"1","x":1}]}"#,
        ] {
            let e = serde_json::from_str::<WorkloadSpec>(json).unwrap_err();
            assert!(e.to_string().contains("unknown field"), "{json}: {e}");
        }
        let e = serde_json::from_str::<CreateRequest>(r#"{"spec":{"image":"i","bogus":1}}"#)
            .unwrap_err();
        assert!(e.to_string().contains("unknown field `bogus`"), "{e}");
    }
}

/// What happened to a workload (`GET /v1/events`, `skiff events`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventAction {
    /// The workload was created (`run -d`, `deploy` of a new name, `up`).
    Create,
    /// A task's run started (again, after a restart).
    Start,
    /// A task's run ended: `exit_code`, and `reason` when it failed for a reason of its own
    /// (a trap, a limit); its restart policy may start it again.
    Die,
    /// The operator stopped it (a task's run ended, an app's route was taken away).
    Stop,
    /// An app's route went live.
    Deploy,
    /// An app's new version took over its route (`version`).
    Redeploy,
    /// The guest hit its memory limit: a task (then `die` with 137 follows) or one request of an
    /// app (`request_id`; the app serves on).
    Oom,
    /// The workload and its logs were removed.
    Destroy,
}

/// One event: one JSON object per line of `GET /v1/events`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Event {
    /// RFC 3339, UTC.
    pub time: String,
    pub action: EventAction,
    pub id: String,
    pub name: String,
    pub kind: WorkloadKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Why it died or ran out of memory, in the words `inspect` shows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// An app's version after `deploy` or `redeploy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// The request an app's `oom` happened in (its `x-request-id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// One workload's use of the node now (`GET /v1/stats`, `skiff stats`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct WorkloadStats {
    pub id: String,
    pub name: String,
    pub kind: WorkloadKind,
    pub status: Status,
    /// Bytes of linear memory and tables its live instances hold now (a task's one instance; an
    /// app's instances serving requests), as its memory limit counts them.
    pub memory_bytes: u64,
    /// The memory limit of one instance.
    pub memory_limit_bytes: u64,
    /// Time spent running wasm since the daemon started, in milliseconds (counted in 10 ms
    /// epoch ticks). CPU % is the change of this between two samples over the time between.
    pub cpu_ms: u64,
    /// Instances alive now: 1 for a running task, an app's requests in progress.
    pub instances: u64,
    /// An app's requests since the daemon started (0 for a task).
    pub requests: u64,
}

/// `GET /v1/stats`: every running workload's use, and when it was measured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct StatsResponse {
    /// RFC 3339, UTC.
    pub time: String,
    pub workloads: Vec<WorkloadStats>,
}
