//! A client of the daemon's API: over its Unix socket, or TCP with a bearer token
//! (`--host tcp://ADDR`, token from SKIFF_TOKEN or the daemon's token file in SKIFF_HOME).

use crate::home::Home;
use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::path::PathBuf;

/// An error answer of the daemon: its message is meant for the user as is.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub status: u16,
    pub message: String,
}

/// The daemon is not there. (What to do is [`NoDaemon::HINT`], printed on a line of its own: error messages are printed
/// on one line, escaped.)
#[derive(Debug, thiserror::Error)]
#[error("cannot reach the skiff daemon at {endpoint}: {reason}")]
pub struct NoDaemon {
    pub endpoint: String,
    pub reason: String,
}

impl NoDaemon {
    pub const HINT: &str = "Start one with `skiff daemon &` (same --home / SKIFF_HOME), or point --host at a running one.";
}

enum Endpoint {
    Unix(PathBuf),
    Tcp(String),
}

pub struct Client {
    endpoint: Endpoint,
    token: Option<String>,
    rt: tokio::runtime::Runtime,
}

pub struct Answer {
    pub status: u16,
    pub body: Bytes,
}

impl Client {
    /// `host`: `unix:///path`, `tcp://host:port`, or none for this home's socket.
    pub fn new(home: &Home, host: Option<&str>) -> anyhow::Result<Client> {
        let endpoint = match host {
            None => Endpoint::Unix(skiff_daemon::socket_path(home.root())),
            Some(h) => match (h.strip_prefix("unix://"), h.strip_prefix("tcp://")) {
                (Some(p), _) => Endpoint::Unix(p.into()),
                (_, Some(a)) => Endpoint::Tcp(a.to_string()),
                _ => anyhow::bail!(
                    "--host {h}: expected unix:///path/to/skiff.sock or tcp://HOST:PORT"
                ),
            },
        };
        let token = match &endpoint {
            Endpoint::Unix(_) => None,
            Endpoint::Tcp(_) => std::env::var("SKIFF_TOKEN").ok().or_else(|| {
                std::fs::read_to_string(skiff_daemon::token_path(home.root()))
                    .ok()
                    .map(|t| t.trim().to_string())
            }),
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")?;
        Ok(Client {
            endpoint,
            token,
            rt,
        })
    }

    fn describe(&self) -> String {
        match &self.endpoint {
            Endpoint::Unix(p) => format!("unix://{}", p.display()),
            Endpoint::Tcp(a) => format!("tcp://{a}"),
        }
    }

    /// One request; the body of any answer, errors included (see [`Client::call`]).
    /// `headers`: more request headers (name, value).
    pub fn raw(
        &self,
        method: Method,
        path: &str,
        content_type: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> anyhow::Result<Answer> {
        self.rt.block_on(async {
            let mut sender = self.connect().await?;
            let mut req = self.request(method, path, content_type, body)?;
            for (k, v) in headers {
                req.headers_mut().insert(
                    hyper::header::HeaderName::from_bytes(k.as_bytes())?,
                    hyper::header::HeaderValue::from_str(v)?,
                );
            }
            let resp = sender
                .send_request(req)
                .await
                .map_err(|e| self.no_daemon(e))?;
            let status = resp.status().as_u16();
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| self.no_daemon(e))?
                .to_bytes();
            Ok(Answer { status, body })
        })
    }

    /// A JSON call: 2xx/304 answers decode into `T` (or `()` when empty); errors become
    /// [`ApiError`] with the daemon's message.
    pub fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> anyhow::Result<(u16, Option<T>)> {
        let bytes = body
            .map(|b| serde_json::to_vec(b).expect("API types serialize"))
            .unwrap_or_default();
        let a = self.raw(method, path, "application/json", &[], bytes)?;
        check(&a)?;
        if a.body.is_empty() {
            return Ok((a.status, None));
        }
        let v = serde_json::from_slice(&a.body).with_context(|| {
            format!(
                "the daemon answered something this skiff cannot read (versions differ?): {}",
                String::from_utf8_lossy(&a.body)
            )
        })?;
        Ok((a.status, Some(v)))
    }

    /// A streamed answer, handed over one line at a time.
    pub fn stream_lines(
        &self,
        path: &str,
        mut each: impl FnMut(&[u8]) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        self.rt.block_on(async {
            let mut sender = self.connect().await?;
            let resp = sender
                .send_request(self.request(Method::GET, path, "application/json", vec![])?)
                .await
                .map_err(|e| self.no_daemon(e))?;
            let status = resp.status().as_u16();
            let mut body = resp.into_body();
            if status >= 300 {
                let b = body
                    .collect()
                    .await
                    .map_err(|e| self.no_daemon(e))?
                    .to_bytes();
                check(&Answer { status, body: b })?;
                return Ok(());
            }
            let mut buf = Vec::new();
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| self.no_daemon(e))?;
                if let Some(data) = frame.data_ref() {
                    buf.extend_from_slice(data);
                    while let Some(nl) = buf.iter().position(|&b| b == b'\n') {
                        let line: Vec<u8> = buf.drain(..=nl).collect();
                        each(&line[..line.len() - 1])?;
                    }
                }
            }
            Ok(())
        })
    }

    fn request(
        &self,
        method: Method,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> anyhow::Result<Request<Full<Bytes>>> {
        let mut b = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "skiff")
            .header("content-type", content_type);
        if let Some(t) = &self.token {
            b = b.header("authorization", format!("Bearer {t}"));
        }
        Ok(b.body(Full::new(Bytes::from(body)))?)
    }

    async fn connect(
        &self,
    ) -> anyhow::Result<hyper::client::conn::http1::SendRequest<Full<Bytes>>> {
        macro_rules! handshake {
            ($stream:expr) => {{
                let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new($stream))
                    .await
                    .map_err(|e| self.no_daemon(e))?;
                tokio::spawn(conn);
                sender
            }};
        }
        Ok(match &self.endpoint {
            Endpoint::Unix(p) => handshake!(tokio::net::UnixStream::connect(p)
                .await
                .map_err(|e| self.no_daemon(e))?),
            Endpoint::Tcp(a) => handshake!(tokio::net::TcpStream::connect(a)
                .await
                .map_err(|e| self.no_daemon(e))?),
        })
    }

    fn no_daemon(&self, e: impl std::fmt::Display) -> anyhow::Error {
        NoDaemon {
            endpoint: self.describe(),
            reason: e.to_string(),
        }
        .into()
    }
}

fn check(a: &Answer) -> anyhow::Result<()> {
    if a.status < 300 || a.status == StatusCode::NOT_MODIFIED.as_u16() {
        return Ok(());
    }
    let message = serde_json::from_slice::<skiff_api::ErrorBody>(&a.body)
        .map(|e| e.message)
        .unwrap_or_else(|_| {
            format!(
                "HTTP {}: {}",
                a.status,
                String::from_utf8_lossy(&a.body).trim()
            )
        });
    Err(ApiError {
        status: a.status,
        message,
    }
    .into())
}
