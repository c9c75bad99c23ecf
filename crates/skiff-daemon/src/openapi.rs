//! The OpenAPI 3.0 document of the API, generated from the `skiff-api` types (schemas) and the
//! table of routes below. Served at `GET /openapi.json`; committed as `docs/api/openapi.json`
//! (a test fails when the two differ: `SKIFF_BLESS=1 cargo test --workspace openapi`
//! rewrites the committed one).

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, SchemaGenerator};
use serde_json::{json, Map, Value};
use skiff_api::*;
use std::sync::OnceLock;

pub fn document() -> String {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut s = serde_json::to_string_pretty(&build()).expect("a JSON value serializes");
        s.push('\n');
        s
    })
    .clone()
}

struct Op {
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    params: Vec<Value>,
    body: Option<Value>,
    responses: Vec<(&'static str, &'static str, Option<Value>)>,
}

fn schema<T: JsonSchema>(g: &mut SchemaGenerator) -> Value {
    g.subschema_for::<T>().to_value()
}

fn path_ref() -> Value {
    json!({"name": "ref", "in": "path", "required": true, "schema": {"type": "string"},
           "description": "A workload's id, name, or a unique prefix of its id"})
}

fn query(name: &str, ty: &str, description: &str) -> Value {
    json!({"name": name, "in": "query", "required": false, "schema": {"type": ty}, "description": description})
}

fn build() -> Value {
    let mut g = SchemaSettings::openapi3().into_generator();
    let err = schema::<ErrorBody>(&mut g);
    let grace = query("t", "integer", "Seconds an app may take to finish in-flight requests (default 10). Tasks stop at once: WASI has no signals.");
    let ops = vec![
        Op { method: "get", path: "/_ping", summary: "Is the daemon up? Answers `OK`.", params: vec![], body: None,
             responses: vec![("200", "OK", Some(json!({"type": "string"})))] },
        Op { method: "get", path: "/openapi.json", summary: "This document.", params: vec![], body: None,
             responses: vec![("200", "The OpenAPI document", Some(json!({"type": "object"})))] },
        Op { method: "get", path: "/metrics", summary: "Prometheus text: workloads by kind and status, and every HTTP app's own series (requests by status class, latency histogram, in flight, loaded, loads, evictions, version, live instances, traps, limit hits, outbound denials), labelled `app=\"NAME\"`.", params: vec![], body: None,
             responses: vec![("200", "Metrics (text/plain; version=0.0.4)", Some(json!({"type": "string"})))] },
        Op { method: "get", path: "/v1/info", summary: "Versions, engine settings, pools, workload counts, memory (`skiff system info`).",
             params: vec![], body: None, responses: vec![("200", "Information", Some(schema::<SystemInfo>(&mut g)))] },
        Op { method: "get", path: "/v1/stats", summary: "What each running workload uses now: memory its live instances hold, wasm CPU time, instances, an app's requests (`skiff stats`, `skiff top`). CPU % is the change of `cpu_ms` between two samples.",
             params: vec![], body: None, responses: vec![("200", "Usage", Some(schema::<StatsResponse>(&mut g)))] },
        Op { method: "get", path: "/v1/events", summary: "What happens to workloads from now on, one `Event` JSON object per line (NDJSON): create, start, die (exit code, reason), stop, deploy, redeploy (version), oom, destroy (`skiff events`). A client more than 16 events behind is cut off (its stream ends); reconnect.",
             params: vec![query("since", "integer", "Unix seconds: first replay the kept events (the last 256) from then on"), query("until", "integer", "Unix seconds: end the stream then (at once after the replay for a past time)")], body: None, responses: vec![("200", "NDJSON of Event", Some(json!({"x-ndjson-item": schema::<Event>(&mut g)})))] },
        Op { method: "post", path: "/v1/blobs", summary: "Upload a Wasm binary (the raw bytes as the body); answers its digest, to use as a spec's `image`. A daemon with a trust policy (`SystemInfo.policy`) first checks the binary under it, with the evidence header: a binary that does not pass is refused and not stored.",
             params: vec![json!({"name": "X-Skiff-Evidence", "in": "header", "required": false, "schema": {"type": "string", "format": "byte"},
                                 "description": "base64 of an `UploadEvidence` JSON object (at most 48 KiB): the image reference, manifest(s) and signatures the binary comes with. Without it, the policy's `default` rule applies.",
                                 "x-decoded": schema::<UploadEvidence>(&mut g)})],
             body: Some(json!({"application/wasm": {"schema": {"type": "string", "format": "binary"}}})),
             responses: vec![("201", "Stored", Some(schema::<BlobInfo>(&mut g))), ("400", "Not a binary skiff can run, or a malformed evidence header", None), ("403", "The daemon's trust policy refuses it: the message names the policy file, the rule's scope, its requirement and why", None), ("413", "Larger than 512 MiB", None)] },
        Op { method: "get", path: "/v1/workloads", summary: "List workloads, newest first (`skiff ps`).",
             params: vec![query("all", "boolean", "Include workloads that are not running (`ps -a`)")], body: None,
             responses: vec![("200", "Workloads", Some(json!({"type": "array", "items": schema::<Workload>(&mut g)})))] },
        Op { method: "post", path: "/v1/workloads", summary: "Create a workload and (by default) start it (`skiff run -d`).",
             params: vec![], body: Some(json!({"application/json": {"schema": schema::<CreateRequest>(&mut g)}})),
             responses: vec![("201", "Created", Some(schema::<Workload>(&mut g))), ("400", "Malformed JSON, an unknown field, an unknown image, a binary of the wrong kind", None), ("403", "A mount outside `--allow-mount`, or a binary the daemon's trust policy refuses (checked again with the evidence kept from its upload)", None), ("409", "The name is in use", None)] },
        Op { method: "get", path: "/v1/workloads/{ref}", summary: "One workload (`skiff inspect`).", params: vec![path_ref()], body: None,
             responses: vec![("200", "The workload", Some(schema::<Workload>(&mut g))), ("404", "No such workload", None), ("409", "The prefix is ambiguous", None)] },
        Op { method: "delete", path: "/v1/workloads/{ref}", summary: "Remove a workload and its logs (`skiff rm`).",
             params: vec![path_ref(), query("force", "boolean", "Stop it first if it runs (`rm -f`)")], body: None,
             responses: vec![("204", "Removed", None), ("404", "No such workload", None), ("409", "It is running and force was not given", None)] },
        Op { method: "post", path: "/v1/workloads/{ref}/start", summary: "Start a stopped or exited workload (restart count reset).", params: vec![path_ref()], body: None,
             responses: vec![("204", "Started", None), ("304", "It was already running", None), ("403", "A mount outside `--allow-mount`, or a binary the daemon's trust policy refuses", None), ("404", "No such workload", None)] },
        Op { method: "post", path: "/v1/workloads/{ref}/stop", summary: "Stop a workload and wait until it has stopped; it stays stopped across daemon restarts.",
             params: vec![path_ref(), grace.clone()], body: None, responses: vec![("204", "Stopped", None), ("404", "No such workload", None)] },
        Op { method: "post", path: "/v1/workloads/{ref}/restart", summary: "Stop, then start.", params: vec![path_ref(), grace], body: None,
             responses: vec![("204", "Restarted", None), ("404", "No such workload", None)] },
        Op { method: "post", path: "/v1/workloads/{ref}/wait", summary: "Wait until the workload no longer runs (a task ended and its restart policy will not start it again, or it was stopped), then answer how its last run ended (`exit_code` 0: success). At once if it does not run.",
             params: vec![path_ref()], body: None,
             responses: vec![("200", "It ended", Some(schema::<WaitResponse>(&mut g))), ("404", "No such workload", None)] },
        Op { method: "get", path: "/v1/workloads/{ref}/logs", summary: "The workload's output: one `LogLine` JSON object per line (NDJSON). With `follow`, the stream stays open until the workload ends.",
             params: vec![path_ref(), query("follow", "boolean", "Keep streaming new lines (`logs -f`)"), query("tail", "string", "Only the last N lines (a number, or `all`)")], body: None,
             responses: vec![("200", "NDJSON of LogLine", Some(json!({"x-ndjson-item": schema::<LogLine>(&mut g)})))] },
        Op { method: "put", path: "/v1/projects/{project}", summary: "Make the project's workloads exactly these (`skiff up`): new entries are created, changed ones replaced, missing ones removed; applying the same set again changes nothing.",
             params: vec![json!({"name": "project", "in": "path", "required": true, "schema": {"type": "string"}})],
             body: Some(json!({"application/json": {"schema": schema::<ProjectRequest>(&mut g)}})),
             responses: vec![("200", "What changed", Some(schema::<ProjectChanges>(&mut g))), ("400", "An entry is invalid; nothing was changed", None), ("409", "An entry's name belongs to a workload outside the project", None)] },
        Op { method: "delete", path: "/v1/projects/{project}", summary: "Stop and remove every workload of the project (`skiff down`).",
             params: vec![json!({"name": "project", "in": "path", "required": true, "schema": {"type": "string"}})], body: None,
             responses: vec![("200", "What was removed", Some(schema::<ProjectChanges>(&mut g)))] },
    ];
    let mut paths = Map::new();
    for op in ops {
        let mut responses = Map::new();
        for (code, description, body) in op.responses {
            let mut r = json!({"description": description});
            let content_type = match op.path {
                "/v1/workloads/{ref}/logs" | "/v1/events" => "application/x-ndjson",
                "/_ping" => "text/plain",
                _ => "application/json",
            };
            if let Some(s) = body {
                r["content"] = json!({content_type: {"schema": s}});
            }
            responses.insert(code.to_string(), r);
        }
        responses.insert(
            "401".into(),
            json!({"description": "Over TCP: the bearer token is missing or wrong",
            "content": {"application/json": {"schema": err.clone()}}}),
        );
        responses.insert(
            "default".into(),
            json!({"description": "An error; `message` says what went wrong and what to do",
            "content": {"application/json": {"schema": err.clone()}}}),
        );
        let mut o = json!({"summary": op.summary, "responses": responses});
        if !op.params.is_empty() {
            o["parameters"] = Value::Array(op.params);
        }
        if let Some(b) = op.body {
            o["requestBody"] = json!({"required": true, "content": b});
        }
        paths
            .entry(op.path.to_string())
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .expect("an object")
            .insert(op.method.to_string(), o);
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "skiff daemon API",
            "version": "1",
            "description": "The API of `skiff daemon`. Over the Unix socket SKIFF_HOME/daemon/skiff.sock (mode 0600) no token is needed; over TCP (`--api-listen`) every request needs `Authorization: Bearer <token>` (SKIFF_HOME/daemon/token). Errors answer a 4xx/5xx status with an ErrorBody."
        },
        "servers": [{"url": "/"}],
        "components": {
            "schemas": g.take_definitions(true),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}
        },
        "paths": paths,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn openapi_document_is_committed() {
        let committed =
            std::path::Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"))
                .join("../../docs/api/openapi.json");
        let doc = super::document();
        if std::env::var_os("SKIFF_BLESS").is_some() {
            std::fs::create_dir_all(committed.parent().unwrap()).unwrap();
            std::fs::write(&committed, &doc).unwrap();
        }
        let on_disk = std::fs::read_to_string(&committed).unwrap_or_default();
        assert!(
            on_disk == doc,
            "docs/api/openapi.json is stale: run SKIFF_BLESS=1 cargo test --workspace openapi"
        );
        let v: serde_json::Value = serde_json::from_str(&doc).unwrap();
        assert!(v["components"]["schemas"]["Workload"].is_object());
    }
}
