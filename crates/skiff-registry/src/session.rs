//! One conversation with one repository of one registry: the scheme, the auth header, and every
//! request sent through one place that retries transient failures and turns HTTP answers into
//! errors a user can act on.

use crate::credentials::Credentials;
use crate::error::{RegistryError, Result};
use crate::RegistryConfig;
use base64::Engine as _;
use oci_client::secrets::RegistryAuth;
use oci_client::{Reference, RegistryOperation};
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use reqwest::{Method, Response, StatusCode};
use std::sync::Arc;

/// Push or pull: the scope of the token asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Pull,
    Push,
}

pub struct Session {
    pub(crate) http: reqwest::Client,
    pub(crate) base: String,
    pub(crate) registry: String,
    pub(crate) repository: String,
    auth: Option<HeaderValue>,
    pub(crate) config: Arc<RegistryConfig>,
}

/// A request to send: built again for each attempt.
pub(crate) struct Req<'a> {
    pub method: Method,
    pub url: String,
    pub headers: HeaderMap,
    pub body: Option<bytes::Bytes>,
    /// What this request is about, for messages ("manifest hello:1.0", "blob sha256:…").
    pub what: &'a str,
}

impl Session {
    /// Reach the registry (`GET /v2/`), learn how it wants to be authenticated, and get a
    /// token or a Basic header for `reference`'s repository.
    pub async fn open(
        config: Arc<RegistryConfig>,
        reference: &Reference,
        access: Access,
    ) -> Result<Session> {
        let registry = reference.resolve_registry().to_string();
        let scheme = crate::transport::scheme_for(&registry, &config.insecure_registries);
        let mut session = Session {
            http: crate::transport::http_client()?,
            base: format!("{scheme}://{registry}"),
            registry,
            repository: reference.repository().to_string(),
            auth: None,
            config: config.clone(),
        };
        let ping = session.ping().await?;
        if crate::session::is_html(ping.headers()) {
            return Err(RegistryError::Html {
                url: format!("{}/v2/", session.base),
                status: ping.status().as_u16(),
            });
        }
        if ping.status() == StatusCode::UNAUTHORIZED {
            let challenge = ping
                .headers()
                .get(WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            session.auth = Some(session.authenticate(&challenge, reference, access).await?);
            // A Basic challenge with wrong credentials fails here rather than mid-push.
            if challenge.to_ascii_lowercase().starts_with("basic") {
                let again = session.ping().await?;
                if again.status() == StatusCode::UNAUTHORIZED {
                    return Err(RegistryError::LoginFailed {
                        registry: session.registry.clone(),
                        reason: "the registry rejected the username or password".into(),
                    });
                }
            }
        }
        Ok(session)
    }

    /// True if the registry asked for credentials and got them.
    pub fn authenticated(&self) -> bool {
        self.auth.is_some()
    }

    async fn ping(&self) -> Result<Response> {
        let url = format!("{}/v2/", self.base);
        let resp = self
            .send(Req {
                method: Method::GET,
                url: url.clone(),
                headers: HeaderMap::new(),
                body: None,
                what: "the registry API (/v2/)",
            })
            .await;
        match resp {
            Ok(r) => Ok(r),
            // 401 is an answer here, not a failure: it says how to authenticate.
            Err(RegistryError::LoginRequired { .. }) | Err(RegistryError::LoginFailed { .. }) => {
                self.raw(Method::GET, &url, HeaderMap::new(), None).await
            }
            Err(e) => Err(e),
        }
    }

    async fn authenticate(
        &self,
        challenge: &str,
        reference: &Reference,
        access: Access,
    ) -> Result<HeaderValue> {
        let creds = self.config.credentials.as_ref();
        let login_required = || RegistryError::LoginRequired {
            registry: self.registry.clone(),
        };
        if challenge.to_ascii_lowercase().starts_with("basic") {
            let creds = creds.ok_or_else(login_required)?;
            return Ok(basic_header(creds));
        }
        if !challenge.to_ascii_lowercase().starts_with("bearer") {
            return Err(login_required());
        }
        // The token handshake (realm, service, scope, the token JSON) is oci-client's.
        let oci = oci_client::Client::new(oci_client::client::ClientConfig {
            protocol: if self.base.starts_with("http://") {
                oci_client::client::ClientProtocol::Http
            } else {
                oci_client::client::ClientProtocol::Https
            },
            ..Default::default()
        });
        let auth = match creds {
            Some(c) => RegistryAuth::Basic(c.username.clone(), c.secret.clone()),
            None => RegistryAuth::Anonymous,
        };
        let op = match access {
            Access::Pull => RegistryOperation::Pull,
            Access::Push => RegistryOperation::Push,
        };
        match oci.auth(reference, &auth, op).await {
            Ok(Some(token)) => HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
                RegistryError::LoginFailed {
                    registry: self.registry.clone(),
                    reason: "the token server sent a token that is not a valid header".into(),
                }
            }),
            Ok(None) => Err(login_required()),
            Err(e) if creds.is_some() => Err(RegistryError::LoginFailed {
                registry: self.registry.clone(),
                reason: format!("the token server refused the credentials ({})", redact(&e)),
            }),
            Err(_) => Err(login_required()),
        }
    }

    pub(crate) fn url(&self, tail: &str) -> String {
        format!("{}/v2/{}/{tail}", self.base, self.repository)
    }

    /// One attempt, no interpretation.
    pub(crate) async fn raw(
        &self,
        method: Method,
        url: &str,
        mut headers: HeaderMap,
        body: Option<reqwest::Body>,
    ) -> Result<Response> {
        if let Some(auth) = &self.auth {
            headers.insert(AUTHORIZATION, auth.clone());
        }
        let mut req = self.http.request(method, url).headers(headers);
        if let Some(b) = body {
            req = req.body(b);
        }
        req.send().await.map_err(|e| self.unreachable(&e))
    }

    fn unreachable(&self, e: &reqwest::Error) -> RegistryError {
        RegistryError::Unreachable {
            registry: self.registry.clone(),
            detail: error_chain(e),
        }
    }

    /// Send with retries: connection failures, 5xx and 429 are retried with exponential
    /// backoff; anything else is returned at once. Error statuses become [`RegistryError`]s,
    /// except 404 (the caller knows what a 404 means: a missing blob is not an error for HEAD).
    pub(crate) async fn send(&self, req: Req<'_>) -> Result<Response> {
        let attempts = self.config.retries.max(1);
        let mut last = String::new();
        for attempt in 1..=attempts {
            if attempt > 1 {
                let wait = self.config.backoff * 2u32.saturating_pow(attempt - 2);
                tracing::info!("{}: {last}; retrying in {wait:?}", req.what);
                tokio::time::sleep(wait).await;
            }
            let body = req.body.clone().map(reqwest::Body::from);
            let resp = match self
                .raw(req.method.clone(), &req.url, req.headers.clone(), body)
                .await
            {
                Ok(r) => r,
                Err(e) => {
                    last = e.to_string();
                    continue;
                }
            };
            let status = resp.status();
            if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
                last = format!("HTTP {status}");
                if attempt < attempts {
                    continue;
                }
                return Err(self.status_error(resp, req.what).await);
            }
            if status.is_success() || status.is_redirection() || status == StatusCode::NOT_FOUND {
                return Ok(resp);
            }
            return Err(self.status_error(resp, req.what).await);
        }
        Err(RegistryError::GaveUp {
            what: req.what.to_string(),
            attempts,
            detail: last,
        })
    }

    /// Turn an error answer into what the user should know.
    pub(crate) async fn status_error(&self, resp: Response, what: &str) -> RegistryError {
        let status = resp.status();
        let url = resp.url().to_string();
        let html = is_html(resp.headers());
        let body = resp.bytes().await.unwrap_or_default();
        let html = html || looks_like_html(&body);
        match status {
            StatusCode::UNAUTHORIZED if self.auth.is_none() => RegistryError::LoginRequired {
                registry: self.registry.clone(),
            },
            StatusCode::UNAUTHORIZED => RegistryError::LoginFailed {
                registry: self.registry.clone(),
                reason: format!("the registry rejected the credentials for {what}"),
            },
            StatusCode::FORBIDDEN => RegistryError::Denied {
                registry: self.registry.clone(),
                repository: self.repository.clone(),
                detail: registry_message(&body).unwrap_or_else(|| "HTTP 403".into()),
            },
            _ if html => RegistryError::Html {
                url,
                status: status.as_u16(),
            },
            _ => RegistryError::Status {
                url,
                status: status.as_u16(),
                detail: registry_message(&body)
                    .unwrap_or_else(|| format!("{what}: {}", snippet(&body))),
            },
        }
    }
}

pub(crate) fn basic_header(creds: &Credentials) -> HeaderValue {
    let raw = format!("{}:{}", creds.username, creds.secret);
    let mut v = HeaderValue::from_str(&format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    ))
    .expect("base64 is a valid header value");
    v.set_sensitive(true);
    v
}

pub(crate) fn is_html(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("text/html"))
}

pub(crate) fn looks_like_html(body: &[u8]) -> bool {
    let head = String::from_utf8_lossy(&body[..body.len().min(256)]).to_ascii_lowercase();
    let head = head.trim_start();
    head.starts_with("<!doctype html") || head.starts_with("<html")
}

/// The `errors[].code/message` of the distribution spec's error body.
fn registry_message(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let errors = v.get("errors")?.as_array()?;
    let parts: Vec<String> = errors
        .iter()
        .map(|e| {
            let code = e.get("code").and_then(|c| c.as_str()).unwrap_or("");
            let msg = e.get("message").and_then(|c| c.as_str()).unwrap_or("");
            format!("{code}: {msg}")
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join("; "))
}

fn snippet(body: &[u8]) -> String {
    let s = String::from_utf8_lossy(&body[..body.len().min(200)]);
    let s = s.trim();
    if s.is_empty() {
        "no details".into()
    } else {
        s.to_string()
    }
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let s = c.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cur = c.source();
    }
    out
}

/// oci-client's errors can carry a response body; keep only the kind of failure.
fn redact(e: &oci_client::errors::OciDistributionError) -> String {
    use oci_client::errors::OciDistributionError as E;
    match e {
        E::AuthenticationFailure(_) => "authentication failure".into(),
        E::RequestError(r) => error_chain(r),
        other => other.to_string().chars().take(200).collect(),
    }
}
