//! One conversation with one repository of one registry: the scheme, the auth header, and every
//! request sent through one place that retries transient failures and turns HTTP answers into
//! errors a user can act on.

use crate::credentials::Credentials;
use crate::error::{RegistryError, Result};
use crate::token::{self, Challenge};
use crate::Reference;
use crate::RegistryConfig;
use base64::Engine as _;
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use reqwest::{Method, Response, StatusCode};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Push or pull: the scope of the token asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Pull,
    Push,
}

/// What a session is opened for, which decides the scopes of its token.
pub(crate) struct Purpose<'a> {
    pub access: Access,
    /// Ask the token server for a refresh token too (login), see [`Session::identity_token`].
    pub offline: bool,
    /// Other repositories of the same registry that blobs may be mounted from: the token must
    /// let skiff pull from them too, or the registry refuses the mount (Docker asks the same).
    pub mount_from: &'a [String],
}

/// At most this many other repositories are named in one token request: each adds a scope,
/// and a long list only helps the rare blob that lives in many places.
const MAX_MOUNT_SCOPES: usize = 8;

pub struct Session {
    pub(crate) http: reqwest::Client,
    pub(crate) base: String,
    pub(crate) registry: String,
    pub(crate) repository: String,
    /// The `certs.d` directory this registry's certificates came from, if any (for messages).
    certs_dir: Option<std::path::PathBuf>,
    /// Whether a client certificate from that directory is presented.
    presents_client_cert: bool,
    auth: Auth,
    pub(crate) config: Arc<RegistryConfig>,
}

/// How requests are authenticated, as the registry asked at `GET /v2/`.
enum Auth {
    /// It did not ask.
    None,
    Basic(HeaderValue),
    /// Tokens from its token server, renewed as they expire. Behind an async lock so that of
    /// many parallel blob transfers one renews and the others wait for its token.
    Bearer(Box<tokio::sync::Mutex<Bearer>>),
}

struct Bearer {
    challenge: Challenge,
    scopes: Vec<String>,
    header: HeaderValue,
    /// When to ask for a new token: a little before it expires.
    renew_at: Instant,
    /// Counts renewals, so that a 401 for an old token does not throw away a newer one.
    generation: u64,
    /// The refresh token to exchange: the identity token, or the one the server rotated to.
    refresh_token: Option<String>,
}

/// Renew a token this long before it expires: a quarter of its life, at most 30 s (a request
/// sent just before expiry must still arrive in time).
fn renew_margin(lifetime: Duration) -> Duration {
    (lifetime / 4).min(Duration::from_secs(30))
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
        let purpose = Purpose {
            access,
            offline: false,
            mount_from: &[],
        };
        Self::open_with(config, reference, purpose).await
    }

    pub(crate) async fn open_with(
        config: Arc<RegistryConfig>,
        reference: &Reference,
        purpose: Purpose<'_>,
    ) -> Result<Session> {
        let registry = api_host(reference.registry()).to_string();
        let certs = crate::transport::certs_for(&registry, &config.certs_dirs)?;
        let scheme = match certs {
            // Someone set this registry up for TLS: HTTPS even on loopback.
            Some(_) => "https",
            None => crate::transport::scheme_for(&registry, &config.insecure_registries),
        };
        let mut session = Session {
            http: crate::transport::http_client(scheme == "https", certs.as_ref())?,
            presents_client_cert: certs.as_ref().is_some_and(|c| c.has_identity()),
            certs_dir: certs.map(|c| c.dir),
            base: format!("{scheme}://{registry}"),
            registry,
            repository: reference.path().to_string(),
            auth: Auth::None,
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
            session.auth = session.authenticate(&challenge, &purpose).await?;
            // A Basic challenge with wrong credentials fails here rather than mid-push.
            if matches!(session.auth, Auth::Basic(_)) {
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
        !matches!(self.auth, Auth::None)
    }

    /// The refresh token the token server handed out (asked for with `offline`): Docker's
    /// identity token, to store instead of the password.
    pub async fn identity_token(&self) -> Option<String> {
        match &self.auth {
            Auth::Bearer(b) => b.lock().await.refresh_token.clone(),
            _ => None,
        }
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

    async fn authenticate(&self, challenge: &str, purpose: &Purpose<'_>) -> Result<Auth> {
        let creds = self.config.credentials.as_ref();
        let login_required = || RegistryError::LoginRequired {
            registry: self.registry.clone(),
        };
        if challenge.to_ascii_lowercase().starts_with("basic") {
            let creds = creds.ok_or_else(login_required)?;
            if creds.identity_token.is_some() && creds.secret.is_empty() {
                return Err(RegistryError::LoginFailed {
                    registry: self.registry.clone(),
                    reason: "the stored login is an identity token, but the registry now asks                              for a password (Basic); run `skiff login` again"
                        .into(),
                });
            }
            return Ok(Auth::Basic(basic_header(creds)));
        }
        let Some(challenge) = token::parse_challenge(challenge) else {
            return Err(login_required());
        };
        let scope = match purpose.access {
            Access::Pull => format!("repository:{}:pull", self.repository),
            Access::Push => format!("repository:{}:pull,push", self.repository),
        };
        let mut others: Vec<&String> = purpose
            .mount_from
            .iter()
            .filter(|r| **r != self.repository)
            .collect();
        others.sort();
        others.dedup();
        let scopes: Vec<String> = std::iter::once(scope)
            .chain(
                others
                    .into_iter()
                    .take(MAX_MOUNT_SCOPES)
                    .map(|r| format!("repository:{r}:pull")),
            )
            .collect();
        let refresh = creds.and_then(|c| c.identity_token.clone());
        let grant = self
            .fetch_token(&challenge, &scopes, refresh.as_deref(), purpose.offline)
            .await?;
        Ok(Auth::Bearer(Box::new(tokio::sync::Mutex::new(Bearer {
            header: bearer_header(&grant.token, &self.registry)?,
            renew_at: Instant::now() + grant.lifetime - renew_margin(grant.lifetime),
            generation: 0,
            refresh_token: grant.refresh_token.or(refresh),
            challenge,
            scopes,
        }))))
    }

    async fn fetch_token(
        &self,
        challenge: &Challenge,
        scopes: &[String],
        refresh_token: Option<&str>,
        offline: bool,
    ) -> Result<token::Grant> {
        // A plain-HTTP registry's client verifies no certificates; an HTTPS token server needs
        // one that does (rare: made for the occasion).
        let tls_client;
        let realm_is_https =
            reqwest::Url::parse(&challenge.realm).is_ok_and(|u| u.scheme() == "https");
        let http = if realm_is_https && self.base.starts_with("http://") {
            let realm_host = reqwest::Url::parse(&challenge.realm)
                .ok()
                .and_then(|u| {
                    let host = u.host_str()?.to_string();
                    Some(u.port().map_or(host.clone(), |p| format!("{host}:{p}")))
                })
                .unwrap_or_default();
            let certs = crate::transport::certs_for(&realm_host, &self.config.certs_dirs)?;
            tls_client = crate::transport::http_client(true, certs.as_ref())?;
            &tls_client
        } else {
            &self.http
        };
        token::fetch(
            http,
            token::Ask {
                challenge,
                scopes,
                credentials: self.config.credentials.as_ref(),
                refresh_token,
                offline,
                registry: &self.registry,
                insecure: &self.config.insecure_registries,
                max_answer: self.config.max_token_answer,
                stall: self.config.stall,
            },
        )
        .await
    }

    /// The Authorization header to send now (renewing an expiring token first), and the
    /// generation of the token it holds.
    async fn auth_header(&self) -> Result<Option<(HeaderValue, u64)>> {
        match &self.auth {
            Auth::None => Ok(None),
            Auth::Basic(h) => Ok(Some((h.clone(), 0))),
            Auth::Bearer(lock) => {
                let mut b = lock.lock().await;
                if Instant::now() >= b.renew_at {
                    let grant = self
                        .fetch_token(&b.challenge, &b.scopes, b.refresh_token.as_deref(), false)
                        .await?;
                    tracing::debug!(
                        "renewed the token for {} ({:?} to live)",
                        self.registry,
                        grant.lifetime
                    );
                    b.header = bearer_header(&grant.token, &self.registry)?;
                    b.renew_at = Instant::now() + grant.lifetime - renew_margin(grant.lifetime);
                    b.generation += 1;
                    if grant.refresh_token.is_some() {
                        b.refresh_token = grant.refresh_token;
                    }
                }
                Ok(Some((b.header.clone(), b.generation)))
            }
        }
    }

    /// The registry refused token `generation` as invalid (expired early, revoked, the clocks
    /// disagree): renew it before the next request, unless that happened already.
    async fn token_rejected(&self, generation: u64) {
        if let Auth::Bearer(lock) = &self.auth {
            let mut b = lock.lock().await;
            if b.generation == generation {
                b.renew_at = Instant::now();
            }
        }
    }

    /// `registry HOST`, for messages about what it sent.
    pub(crate) fn peer_name(&self) -> String {
        format!("registry {}", self.registry)
    }

    pub(crate) fn url(&self, tail: &str) -> String {
        format!("{}/v2/{}/{tail}", self.base, self.repository)
    }

    /// One attempt, no interpretation beyond noting a rejected token (the next request then
    /// carries a fresh one).
    pub(crate) async fn raw(
        &self,
        method: Method,
        url: &str,
        mut headers: HeaderMap,
        body: Option<reqwest::Body>,
    ) -> Result<Response> {
        let auth = self.auth_header().await?;
        if let Some((value, _)) = &auth {
            headers.insert(AUTHORIZATION, value.clone());
        }
        // A streamed upload's answer comes only once its body is through, however long that
        // takes; any other answer's head must come within the stall rule's `no_data`.
        let streamed = body.as_ref().is_some_and(|b| b.as_bytes().is_none());
        let request = format!(
            "{method} {}",
            reqwest::Url::parse(url).map_or(url.into(), |u| u.path().to_string())
        );
        let mut req = self.http.request(method, url).headers(headers);
        if let Some(b) = body {
            req = req.body(b);
        }
        let sent = if streamed {
            req.send().await
        } else {
            let name = self.peer_name();
            let peer = crate::body::Peer {
                name: &name,
                what: &request,
            };
            crate::body::head(req.send(), self.config.stall, &peer).await?
        };
        let resp = sent.map_err(|e| self.unreachable(&e))?;
        if let Some((_, generation)) = auth {
            if challenge_error(&resp).as_deref() == Some("invalid_token") {
                self.token_rejected(generation).await;
            }
        }
        Ok(resp)
    }

    fn unreachable(&self, e: &reqwest::Error) -> RegistryError {
        let detail = error_chain(e);
        // rustls: "invalid peer certificate: UnknownIssuer" and the like. Retrying cannot help.
        if detail.contains("invalid peer certificate") {
            let ca = match &self.certs_dir {
                Some(dir) => format!(
                    "the CAs in {} do not vouch for it either; replace its ca.crt with the CA \
                     that signed the registry's certificate",
                    dir.display()
                ),
                None => format!(
                    "if it is signed by your own CA, save that CA as \
                     /etc/docker/certs.d/{}/ca.crt (or under SKIFF_CERTS_DIR)",
                    self.registry
                ),
            };
            return RegistryError::UntrustedCertificate {
                registry: self.registry.clone(),
                detail: format!("{detail}; {ca}"),
            };
        }
        // A registry that wants a client certificate skiff did not present ends the TLS
        // session. With TLS 1.2 the client sees the server's alert during the handshake; with
        // TLS 1.3 the handshake completes on the client's side first, so the same refusal may
        // arrive as whatever the connection's end looks like under the first request (closed,
        // reset, a broken pipe, hyper's channel closed). The alert is certain (and not worth a
        // retry); a connection that was made and then cut is only likely that, so it is
        // retried, with the hint.
        let client_cert_hint = || {
            let dir = match &self.certs_dir {
                Some(dir) => dir.display().to_string(),
                None => format!("/etc/docker/certs.d/{}", self.registry),
            };
            format!(
                "if it asks for a client certificate, put it in {dir} as client.cert with its \
                 key as client.key"
            )
        };
        if detail.contains("received fatal alert") {
            return RegistryError::HandshakeRefused {
                registry: self.registry.clone(),
                detail: format!("{detail}; {}", client_cert_hint()),
            };
        }
        if self.base.starts_with("https://")
            && !self.presents_client_cert
            && !e.is_connect()
            && !e.is_timeout()
        {
            return RegistryError::Unreachable {
                registry: self.registry.clone(),
                detail: format!("{detail}; {}", client_cert_hint()),
            };
        }
        RegistryError::Unreachable {
            registry: self.registry.clone(),
            detail,
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
                // A warning, so that the CLI says it: a registry that never answers used to
                // leave `skiff pull` silent for minutes of retries.
                tracing::warn!(
                    "{}: {last}; retrying in {wait:?} (attempt {attempt} of {attempts})",
                    req.what
                );
                tokio::time::sleep(wait).await;
            }
            let once = || {
                let body = req.body.clone().map(reqwest::Body::from);
                self.raw(req.method.clone(), &req.url, req.headers.clone(), body)
            };
            let mut resp = once().await;
            // An expired token is not a failure worth a backoff: send again at once, with the
            // fresh token `raw` will fetch.
            if resp
                .as_ref()
                .is_ok_and(|r| challenge_error(r).as_deref() == Some("invalid_token"))
            {
                resp = once().await;
            }
            let resp = match resp {
                Ok(r) => r,
                Err(
                    e @ (RegistryError::LoginFailed { .. }
                    | RegistryError::LoginRequired { .. }
                    | RegistryError::UntrustedCertificate { .. }
                    | RegistryError::HandshakeRefused { .. }),
                ) => return Err(e),
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
        let challenge = resp
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .and_then(token::parse_challenge);
        let name = self.peer_name();
        let reading = format!("the error answer to {what}");
        let peer = crate::body::Peer {
            name: &name,
            what: &reading,
        };
        let body = crate::body::error_body(resp, self.config.stall, &peer).await;
        let html = html || looks_like_html(&body);
        let anonymous = self.config.credentials.is_none();
        let error = challenge.as_ref().and_then(|c| c.error.as_deref());
        match status {
            StatusCode::UNAUTHORIZED if !self.authenticated() => RegistryError::LoginRequired {
                registry: self.registry.clone(),
            },
            StatusCode::UNAUTHORIZED if anonymous && error == Some("insufficient_scope") => {
                RegistryError::LoginRequired {
                    registry: self.registry.clone(),
                }
            }
            StatusCode::UNAUTHORIZED if error == Some("insufficient_scope") => {
                let wanted = challenge
                    .and_then(|c| c.scope)
                    .unwrap_or_else(|| format!("access to {}", self.repository));
                RegistryError::Denied {
                    registry: self.registry.clone(),
                    repository: self.repository.clone(),
                    detail: format!(
                        "{what} needs {wanted}, which the token server did not grant; log in \
                         as a user with that access"
                    ),
                }
            }
            StatusCode::UNAUTHORIZED if error == Some("invalid_token") => {
                RegistryError::TokenRejected {
                    registry: self.registry.clone(),
                }
            }
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
            // Go's HTTP server, spoken to in plain HTTP on its TLS port. A loopback registry
            // gets plain HTTP unless skiff has certificates for it.
            StatusCode::BAD_REQUEST
                if self.base.starts_with("http://")
                    && String::from_utf8_lossy(&body)
                        .contains("HTTP request to an HTTPS server") =>
            {
                RegistryError::Status {
                    url,
                    status: status.as_u16(),
                    detail: format!(
                        "{what}: the registry speaks HTTPS, and skiff uses plain HTTP for a \
                         loopback or --insecure-registry registry unless it has certificates \
                         for it: save the CA that signed its certificate as \
                         /etc/docker/certs.d/{}/ca.crt (or under SKIFF_CERTS_DIR)",
                        self.registry
                    ),
                }
            }
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

/// Where a registry's API answers: Docker Hub's is not `docker.io` itself.
pub(crate) fn api_host(registry: &str) -> &str {
    match registry {
        "docker.io" | "index.docker.io" => "index.docker.io",
        other => other,
    }
}

fn bearer_header(token: &str, registry: &str) -> Result<HeaderValue> {
    let mut v = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
        RegistryError::LoginFailed {
            registry: registry.to_string(),
            reason: "the token server sent a token that is not a valid header".into(),
        }
    })?;
    v.set_sensitive(true);
    Ok(v)
}

/// The `error` of a 401's Bearer challenge (`invalid_token`, `insufficient_scope`).
fn challenge_error(resp: &Response) -> Option<String> {
    if resp.status() != StatusCode::UNAUTHORIZED {
        return None;
    }
    let h = resp.headers().get(WWW_AUTHENTICATE)?.to_str().ok()?;
    token::parse_challenge(h)?.error
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

pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
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
