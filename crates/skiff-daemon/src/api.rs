//! The HTTP/JSON API: routing, authentication, request parsing, error bodies.
//! What each route does lives in `daemon.rs`, `project.rs` and `follow.rs`.

use crate::daemon::{Daemon, Started};
use crate::error::ApiError;
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use skiff_api::{BlobInfo, CreateRequest, ErrorBody, ProjectRequest};
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

pub type Body = BoxBody<Bytes, Infallible>;

/// JSON requests are small; a binary upload may be large.
const MAX_JSON: usize = 4 << 20;
const MAX_BLOB: usize = 512 << 20;
/// Docker's default for `stop -t`.
const DEFAULT_GRACE: Duration = Duration::from_secs(10);

/// Who is asking: over the Unix socket the file mode is the authentication; over TCP the
/// bearer token is.
#[derive(Clone)]
pub enum Access {
    Socket,
    Token(Arc<String>),
}

pub async fn handle(
    d: Arc<Daemon>,
    access: Access,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let result = match check_access(&access, &req) {
        Ok(()) => route(d, req).await,
        Err(e) => Err(e),
    };
    Ok(result.unwrap_or_else(|e| {
        let mut r = json(
            StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            &ErrorBody {
                message: e.to_string(),
            },
        );
        if e.status() == 401 {
            r.headers_mut().insert(
                "www-authenticate",
                hyper::header::HeaderValue::from_static("Bearer"),
            );
            // A stranger gets one answer per connection, and its body is never read.
            r.headers_mut().insert(
                hyper::header::CONNECTION,
                hyper::header::HeaderValue::from_static("close"),
            );
        }
        r
    }))
}

fn check_access(access: &Access, req: &Request<Incoming>) -> Result<(), ApiError> {
    let Access::Token(token) = access else {
        return Ok(());
    };
    let given = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        Some(g) if crate::util::same_secret(g.trim().as_bytes(), token.as_bytes()) => Ok(()),
        Some(_) => Err(ApiError::Unauthorized(
            "the bearer token is wrong: use the one in SKIFF_HOME/daemon/token on the daemon's host".into(),
        )),
        None => Err(ApiError::Unauthorized(
            "the TCP API needs `Authorization: Bearer <token>`; the token is in SKIFF_HOME/daemon/token on the daemon's host (set SKIFF_TOKEN)".into(),
        )),
    }
}

async fn route(d: Arc<Daemon>, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let path = req.uri().path().to_string();
    let query = Query::parse(req.uri().query().unwrap_or(""));
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let method = req.method().clone();
    match (&method, segs.as_slice()) {
        (&Method::GET, ["_ping"]) => Ok(text(StatusCode::OK, "OK")),
        (&Method::GET, ["openapi.json"]) => Ok(Response::builder()
            .header("content-type", "application/json")
            .body(full(crate::openapi::document()))
            .expect("static response")),
        (&Method::GET, ["metrics"]) => Ok(Response::builder()
            .header("content-type", "text/plain; version=0.0.4")
            .body(full(crate::metrics::render(&d)))
            .expect("static response")),
        (&Method::GET, ["v1", "info"]) => Ok(json(StatusCode::OK, &crate::info::info(&d))),
        (&Method::GET, ["v1", "stats"]) => Ok(json(StatusCode::OK, &crate::stats::stats(&d))),
        (&Method::GET, ["v1", "events"]) => Ok(Response::builder()
            .header("content-type", "application/x-ndjson")
            .body(ChannelBody(d.events.subscribe(query.window()?)).boxed())
            .expect("static response")),
        (&Method::POST, ["v1", "blobs"]) => {
            let evidence = req.headers().get(skiff_api::EVIDENCE_HEADER).cloned();
            let bytes = read_body(req, MAX_BLOB).await?;
            let evidence = evidence.as_ref().map(|h| h.as_bytes());
            // Before a byte is stored: a refused binary leaves nothing in the daemon's store.
            if let Some(policy) = &d.info.policy {
                crate::trust::check(policy, evidence, &skiff_store::Digest::of(&bytes))
                    .inspect_err(|e| tracing::warn!("upload refused: {e}"))?;
            }
            let digest = d
                .blobs
                .put(&bytes)
                .map_err(|e| ApiError::Internal(format!("cannot store the binary: {e}")))?;
            // Kept for the checks at every start (a policy set or changed later applies).
            if let Some(e) = evidence {
                d.blobs.put_evidence(&digest, e).map_err(|e| {
                    ApiError::Internal(format!("cannot store the binary's evidence: {e}"))
                })?;
            }
            let digest = digest.to_string();
            let kind = match d.program(&digest).await {
                Ok(p) if p.info.kind == skiff_engine::Kind::HttpHandler => {
                    skiff_api::WorkloadKind::App
                }
                Ok(p) if p.info.kind.is_command() => skiff_api::WorkloadKind::Task,
                Ok(p) => {
                    return Err(ApiError::BadRequest(format!(
                        "this is a {}: {}",
                        p.info.kind,
                        p.info.kind.advice()
                    )))
                }
                Err(e) => return Err(ApiError::BadRequest(e)),
            };
            Ok(json(
                StatusCode::CREATED,
                &BlobInfo {
                    digest,
                    size: bytes.len() as u64,
                    kind,
                },
            ))
        }
        (&Method::GET, ["v1", "workloads"]) => {
            let all = query.flag("all");
            let list: Vec<_> = d
                .list()
                .into_iter()
                .filter(|w| {
                    all || matches!(
                        w.state.status,
                        skiff_api::Status::Running | skiff_api::Status::Restarting
                    )
                })
                .collect();
            Ok(json(StatusCode::OK, &list))
        }
        (&Method::POST, ["v1", "workloads"]) => {
            let body: CreateRequest = parse_json(req).await?;
            let w = d.create(body, None).await?;
            Ok(json(StatusCode::CREATED, &w))
        }
        (&Method::GET, ["v1", "workloads", r]) => {
            let id = d.resolve(r)?;
            let w = d.get(&id).ok_or_else(|| gone(r))?;
            Ok(json(StatusCode::OK, &w))
        }
        (&Method::DELETE, ["v1", "workloads", r]) => {
            let id = d.resolve(r)?;
            d.remove(&id, query.flag("force")).await?;
            Ok(empty(StatusCode::NO_CONTENT))
        }
        (&Method::POST, ["v1", "workloads", r, "start"]) => {
            let id = d.resolve(r)?;
            Ok(match d.start(&id).await? {
                Started::Now => empty(StatusCode::NO_CONTENT),
                Started::Already => empty(StatusCode::NOT_MODIFIED),
            })
        }
        (&Method::POST, ["v1", "workloads", r, "stop"]) => {
            let id = d.resolve(r)?;
            d.stop(&id, query.grace()?).await?;
            Ok(empty(StatusCode::NO_CONTENT))
        }
        (&Method::POST, ["v1", "workloads", r, "restart"]) => {
            let id = d.resolve(r)?;
            d.stop(&id, query.grace()?).await?;
            d.start(&id).await?;
            Ok(empty(StatusCode::NO_CONTENT))
        }
        (&Method::POST, ["v1", "workloads", r, "wait"]) => {
            let id = d.resolve(r)?;
            let w = d.wait(&id).await?;
            Ok(json(StatusCode::OK, &w))
        }
        (&Method::GET, ["v1", "workloads", r, "logs"]) => {
            let id = d.resolve(r)?;
            let tail = match query.get("tail") {
                None | Some("all") => None,
                Some(n) => Some(n.parse::<usize>().map_err(|_| {
                    ApiError::BadRequest(format!("tail={n}: expected a number of lines or `all`"))
                })?),
            };
            let (tx, rx) = tokio::sync::mpsc::channel(64);
            tokio::spawn(crate::follow::send_logs(
                d.clone(),
                id,
                tail,
                query.flag("follow"),
                tx,
            ));
            Ok(Response::builder()
                .header("content-type", "application/x-ndjson")
                .body(ChannelBody(rx).boxed())
                .expect("static response"))
        }
        (&Method::PUT, ["v1", "projects", p]) => {
            let body: ProjectRequest = parse_json(req).await?;
            let changes = crate::project::apply(&d, p, body).await?;
            Ok(json(StatusCode::OK, &changes))
        }
        (&Method::DELETE, ["v1", "projects", p]) => {
            let changes = crate::project::remove(&d, p).await?;
            Ok(json(StatusCode::OK, &changes))
        }
        (
            _,
            ["_ping" | "openapi.json" | "metrics"]
            | ["v1", "info" | "blobs" | "workloads" | "stats" | "events"]
            | ["v1", "workloads", _]
            | ["v1", "workloads", _, "start" | "stop" | "restart" | "wait" | "logs"]
            | ["v1", "projects", _],
        ) => Err(ApiError::MethodNotAllowed(format!(
            "{method} is not allowed on {path}"
        ))),
        _ => Err(ApiError::NotFound(format!(
            "no such endpoint: {method} {path} (the API is described at GET /openapi.json)"
        ))),
    }
}

fn gone(r: &str) -> ApiError {
    ApiError::NotFound(format!("no such workload: {r}"))
}

async fn read_body(req: Request<Incoming>, limit: usize) -> Result<Bytes, ApiError> {
    match Limited::new(req.into_body(), limit).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(ApiError::PayloadTooLarge(
            format!("the request body is larger than {} MiB", limit >> 20),
        )),
        Err(e) => Err(ApiError::BadRequest(format!(
            "cannot read the request body: {e}"
        ))),
    }
}

async fn parse_json<T: DeserializeOwned>(req: Request<Incoming>) -> Result<T, ApiError> {
    let bytes = read_body(req, MAX_JSON).await?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))
}

fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).boxed()
}

fn json<T: Serialize>(status: StatusCode, v: &T) -> Response<Body> {
    let mut body = serde_json::to_vec(v).expect("API types serialize");
    body.push(b'\n');
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(full(body))
        .expect("static response")
}

fn text(status: StatusCode, s: &'static str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain")
        .body(full(s))
        .expect("static response")
}

fn empty(status: StatusCode) -> Response<Body> {
    Response::builder()
        .status(status)
        .body(full(Bytes::new()))
        .expect("static response")
}

/// `a=1&b=true` — the API's query parameters are flags and numbers, never escaped text.
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(q: &str) -> Query {
        Query(
            q.split('&')
                .filter(|p| !p.is_empty())
                .map(|p| match p.split_once('=') {
                    Some((k, v)) => (k.to_string(), v.to_string()),
                    None => (p.to_string(), String::new()),
                })
                .collect(),
        )
    }
    fn get(&self, k: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    }
    fn flag(&self, k: &str) -> bool {
        matches!(self.get(k), Some("" | "1" | "true"))
    }
    /// `since` and `until` of `GET /v1/events`, in Unix seconds.
    fn window(&self) -> Result<crate::events::Window, ApiError> {
        let secs = |k: &str| {
            self.get(k)
                .map(|v| {
                    v.parse::<i64>().map_err(|_| {
                        ApiError::BadRequest(format!("{k}={v}: expected Unix seconds"))
                    })
                })
                .transpose()
        };
        Ok(crate::events::Window {
            since: secs("since")?,
            until: secs("until")?,
        })
    }
    fn grace(&self) -> Result<Duration, ApiError> {
        match self.get("t") {
            None => Ok(DEFAULT_GRACE),
            Some(t) => t
                .parse::<u64>()
                .map(Duration::from_secs)
                .map_err(|_| ApiError::BadRequest(format!("t={t}: expected whole seconds"))),
        }
    }
}

/// A streamed response body fed by a channel (`logs -f`).
struct ChannelBody(tokio::sync::mpsc::Receiver<Bytes>);

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|b| b.map(|b| Ok(Frame::data(b))))
    }
}
