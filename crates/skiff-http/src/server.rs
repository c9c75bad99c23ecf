//! Listeners, connections, the request service, the admin endpoint and graceful shutdown.

use crate::conn::{ConnLimiter, ConnLimits, ConnSlot, Ended};
use crate::metrics::{AppSeries, ConnMetrics, ServerMetrics};
use crate::{
    AcceptBackoff, RequestBody, Routes, ServeError, ServedApp, ServerConfig, ServerLimits,
    WriteStall,
};
use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use skiff_engine::http::{BodyError, HandleError, RequestId, ResponseBody, Scheme};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{
    AtomicBool, AtomicU64,
    Ordering::{Acquire, Relaxed},
};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// State shared by every connection. Read-only after start-up but for atomics.
struct Shared {
    routes: Arc<Routes>,
    /// Listed on the admin endpoint.
    apps: Vec<Arc<ServedApp>>,
    metrics: Arc<ServerMetrics>,
    next_id: AtomicU64,
    draining: AtomicBool,
    limits: ServerLimits,
    access_log: Option<Arc<crate::AccessLog>>,
}

/// A bound server, ready to [`Server::run`].
pub struct Server {
    listener: TcpListener,
    admin: Option<TcpListener>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shared: Arc<Shared>,
    limits: ServerLimits,
}

/// How shutdown went.
#[derive(Debug, Clone, Copy)]
pub struct ShutdownReport {
    /// Connections still busy when the grace period ran out, and closed.
    pub cut: usize,
}

impl Server {
    /// Check the configuration and bind every socket. Must run inside a tokio runtime.
    pub async fn bind(config: ServerConfig) -> Result<Server, ServeError> {
        let tls = match &config.tls {
            Some(t) => Some(crate::tls::acceptor(&t.cert, &t.key).map_err(ServeError::Tls)?),
            None => None,
        };
        let bind = |addr: SocketAddr| async move {
            TcpListener::bind(addr)
                .await
                .map_err(|source| ServeError::Bind { addr, source })
        };
        let listener = bind(config.listen).await?;
        let admin = match config.admin_listen {
            Some(a) => Some(bind(a).await?),
            None => None,
        };
        // Ids unique across restarts too: the high bits come from the start time.
        let start = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        let next_id = (start.as_secs() & 0xffff_ffff) << 32;
        Ok(Server {
            listener,
            admin,
            tls,
            shared: Arc::new(Shared {
                routes: config.routes,
                apps: config.apps,
                metrics: Arc::default(),
                next_id: AtomicU64::new(next_id),
                draining: AtomicBool::new(false),
                limits: config.limits,
                access_log: config.access_log,
            }),
            limits: config.limits,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().and_then(|l| l.local_addr().ok())
    }

    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// The server's own counters (connections, requests no route matched), for an embedding
    /// that renders `/metrics` itself (the daemon).
    pub fn metrics(&self) -> Arc<ServerMetrics> {
        self.shared.metrics.clone()
    }

    /// Serve until `shutdown` resolves; then stop accepting, let in-flight requests finish for
    /// the grace period, and close what is left.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> ShutdownReport {
        let Server {
            listener,
            admin,
            tls,
            shared,
            limits,
        } = self;
        if let Some(admin) = admin {
            tokio::spawn(admin_loop(admin, shared.clone(), limits));
        }
        let builder = Arc::new(builder(&limits));
        let limiter = ConnLimiter::new(limits.conn_limits());
        // Each connection holds a receiver: `send` asks them to close, `closed` waits for all.
        let (drain, _) = watch::channel(false);
        let mut backoff = AcceptBackoff::new(format!("the HTTP listener {}", self_addr(&listener)));
        tokio::pin!(shutdown);
        loop {
            let (tcp, peer) = tokio::select! {
                r = listener.accept() => match r {
                    Ok(c) => c,
                    Err(e) => {
                        // Up to 1 s: shutdown must not wait for it.
                        tokio::select! {
                            () = backoff.failed(e) => continue,
                            () = &mut shutdown => break,
                        }
                    }
                },
                () = &mut shutdown => break,
            };
            backoff.succeeded();
            let slot = tokio::select! {
                s = limiter.admit() => s,
                () = &mut shutdown => break,
            };
            let _ = tcp.set_nodelay(true);
            shared.metrics.conns.accepted.fetch_add(1, Relaxed);
            let conn = Conn {
                shared: shared.clone(),
                builder: builder.clone(),
                drain: drain.subscribe(),
                slot,
            };
            let tls = tls.clone();
            tokio::spawn(conn.serve(tcp, peer, tls));
        }
        drop(listener);
        shared.draining.store(true, Relaxed);
        let open = drain.receiver_count();
        tracing::info!(
            "shutting down: no new connections; waiting up to {:?} for {open} open connection(s)",
            limits.grace
        );
        let _ = drain.send(true);
        let cut = match tokio::time::timeout(limits.grace, drain.closed()).await {
            Ok(()) => 0,
            Err(_) => shared.metrics.conns.open.load(Relaxed) as usize,
        };
        if cut > 0 {
            tracing::warn!("grace period over: closing {cut} connection(s) still busy");
        }
        ShutdownReport { cut }
    }
}

fn self_addr(l: &TcpListener) -> String {
    l.local_addr()
        .map_or_else(|_| "?".into(), |a| a.to_string())
}

fn builder(limits: &ServerLimits) -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    b.http1()
        .timer(TokioTimer::new())
        // A backstop only: the connection's slot closes it first (no head within the head
        // timeout of accept, or idle for the idle timeout, a partial later head included).
        .header_read_timeout(limits.idle_timeout + limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192))
        .keep_alive(true);
    b.http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
        .max_concurrent_streams(limits.max_h2_streams)
        .keep_alive_interval(Duration::from_secs(20))
        .keep_alive_timeout(Duration::from_secs(20));
    b
}

struct Conn {
    shared: Arc<Shared>,
    builder: Arc<auto::Builder<TokioExecutor>>,
    drain: watch::Receiver<bool>,
    slot: ConnSlot,
}

impl Conn {
    async fn serve(self, tcp: TcpStream, peer: SocketAddr, tls: Option<tokio_rustls::TlsAcceptor>) {
        let shared = self.shared.clone();
        let _open = Open::new(&shared.metrics.conns);
        let tcp = WriteStall::new(tcp, shared.limits.idle_timeout);
        let Some(acceptor) = tls else {
            return self.http(tcp, Scheme::Http).await;
        };
        // The handshake counts against the head timeout, and may be evicted like a silent
        // connection: it is one until its first request.
        let handshake = tokio::select! {
            r = acceptor.accept(tcp) => r,
            e = self.slot.expired() => {
                shared.metrics.conns.tls_failures.fetch_add(1, Relaxed);
                shared.metrics.conns.expired(e);
                tracing::debug!("TLS handshake with {peer} not done in time ({e:?})");
                return;
            }
        };
        match handshake {
            Ok(stream) => self.http(stream, Scheme::Https).await,
            Err(e) => {
                shared.metrics.conns.tls_failures.fetch_add(1, Relaxed);
                tracing::debug!("TLS handshake with {peer} failed: {e}");
            }
        }
    }

    async fn http<IO>(self, io: IO, scheme: Scheme)
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let Conn {
            shared,
            builder,
            mut drain,
            slot,
        } = self;
        let requests = slot.requests();
        let svc_shared = shared.clone();
        let service = hyper::service::service_fn(move |req: Request<Incoming>| {
            let shared = svc_shared.clone();
            requests.track_http(req.version(), async move {
                Ok::<_, Infallible>(serve_request(&shared, req, scheme).await)
            })
        });
        let conn = builder.serve_connection(TokioIo::new(io), service);
        // Borrowed, not moved: the receiver must live until the connection ends, since `run`
        // waits for every receiver to be dropped.
        let draining = async {
            let _ = drain.wait_for(|d| *d).await;
        };
        match slot.drive(conn, |c| c.graceful_shutdown(), draining).await {
            Ended::Closed(Ok(())) => {}
            Ended::Closed(Err(e)) => tracing::debug!("connection ended: {e}"),
            Ended::Expired(e) => shared.metrics.conns.expired(e),
        }
    }
}

/// Counts a connection as open from creation to drop.
struct Open<'a>(&'a ConnMetrics);

impl<'a> Open<'a> {
    fn new(m: &'a ConnMetrics) -> Self {
        m.open.fetch_add(1, Relaxed);
        Open(m)
    }
}

impl Drop for Open<'_> {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Relaxed);
    }
}

async fn serve_request(
    shared: &Shared,
    req: Request<Incoming>,
    scheme: Scheme,
) -> Response<ResponseBody> {
    let start = Instant::now();
    let id = RequestId(shared.next_id.fetch_add(1, Relaxed));
    let too_slow = Arc::new(AtomicBool::new(false));
    let h1 = req.version() < http::Version::HTTP_2;
    // Only when logging: the method and path outlive the request, which goes to the guest.
    let logged = shared
        .access_log
        .as_ref()
        .map(|_| (req.method().clone(), req.uri().path().to_string()));
    let req = req.map(|b| {
        RequestBody::new(
            b,
            shared.limits.body_grace,
            shared.limits.min_body_rate,
            too_slow.clone(),
        )
    });
    // HTTP/2 carries the host in the URI (:authority); HTTP/1.1 in the Host header.
    let host = req.uri().host().or_else(|| {
        req.headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
    });
    let app = shared.routes.pick(host, req.uri().path());
    let mut resp = match &app {
        None => {
            tracing::debug!("[- {id}] 404: no route for {:?} {}", host, req.uri().path());
            page(
                StatusCode::NOT_FOUND,
                "no app is routed for this host and path",
                id,
            )
        }
        Some(app) => match app.clone().handle(req, id, scheme).await {
            Ok(r) => r,
            Err(e) => error_response(&e, id),
        },
    };
    if too_slow.load(Acquire) {
        // Whatever the guest made of a cut body, the client is told why.
        tracing::warn!(
            "[{} {id}] 408: the request body arrived at less than {} bytes/s",
            app.as_deref().map_or("-", |a| a.name()),
            shared.limits.min_body_rate
        );
        resp = page(
            StatusCode::REQUEST_TIMEOUT,
            "the request body arrived too slowly",
            id,
        );
        if h1 {
            // The rest of the body is never read: the connection cannot carry another request.
            resp.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
    }
    if let Ok(v) = HeaderValue::from_str(&id.to_string()) {
        resp.headers_mut().insert("x-request-id", v);
    }
    // Counted here only, once per request, with the status the client got.
    let counters = app
        .as_deref()
        .map_or(&shared.metrics.unrouted, |a| a.requests());
    counters.record(resp.status().as_u16(), start.elapsed());
    match (&shared.access_log, logged) {
        (Some(log), Some((method, path))) => {
            let entry = crate::access::Entry {
                app: app.as_deref().map_or("-", |a| a.name()).to_string(),
                method,
                path,
                status: resp.status().as_u16(),
                id,
                start,
            };
            log.wrap(resp, entry)
        }
        _ => resp,
    }
}

/// What the client is told. Details (trap messages, backtraces) stay in the server's log,
/// findable by the request id.
fn error_response(e: &HandleError, id: RequestId) -> Response<ResponseBody> {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let what = match e {
        HandleError::Overloaded { .. } => {
            "the app is at its concurrency limit; retry shortly".to_string()
        }
        HandleError::PoolFull { .. } => "the server is at its instance limit; retry shortly".into(),
        HandleError::BodyTooLarge { .. } | HandleError::BadRequest(_) => e.to_string(),
        HandleError::CpuLimit(_) | HandleError::Timeout(_) => {
            "the app did not answer in time".into()
        }
        HandleError::NoResponse | HandleError::GuestError(_) => {
            "the app gave no valid response".into()
        }
        HandleError::Stopped => "the app was stopped".into(),
        HandleError::Trap { .. }
        | HandleError::MemoryLimit { .. }
        | HandleError::Instantiate(_) => "the app failed".into(),
    };
    let mut resp = page(status, &what, id);
    if let HandleError::Overloaded { .. } | HandleError::PoolFull { .. } = e {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    resp
}

fn page(status: StatusCode, what: &str, id: RequestId) -> Response<ResponseBody> {
    let text = format!(
        "{} {}: {what} (request id {id})\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    );
    text_response(status, text)
}

fn text_response(status: StatusCode, text: String) -> Response<ResponseBody> {
    let mut resp = Response::new(
        Full::new(Bytes::from(text))
            .map_err(|never: Infallible| -> BodyError { match never {} })
            .boxed_unsync(),
    );
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// Connections to the admin address at once: a few scrapers and health checkers.
const ADMIN_MAX_CONNECTIONS: usize = 64;

/// `/metrics` (Prometheus text) and `/healthz` on the admin address.
async fn admin_loop(listener: TcpListener, shared: Arc<Shared>, limits: ServerLimits) {
    let limiter = ConnLimiter::new(ConnLimits {
        max: ADMIN_MAX_CONNECTIONS,
        ..limits.conn_limits()
    });
    let mut backoff = AcceptBackoff::new(format!("the admin listener {}", self_addr(&listener)));
    loop {
        let tcp = match listener.accept().await {
            Ok((tcp, _)) => tcp,
            Err(e) => {
                backoff.failed(e).await;
                continue;
            }
        };
        backoff.succeeded();
        let slot = limiter.admit().await;
        let shared = shared.clone();
        tokio::spawn(async move {
            let requests = slot.requests();
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let resp = admin_request(&shared, req.uri().path());
                requests.track(async move { Ok::<_, Infallible>(resp) })
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.idle_timeout + limits.header_read_timeout)
                // A scraper that stops reading its answer is dropped, as on the main listener.
                .serve_connection(
                    TokioIo::new(WriteStall::new(tcp, limits.idle_timeout)),
                    service,
                );
            let _ = slot
                .drive(conn, |c| c.graceful_shutdown(), std::future::pending())
                .await;
        });
    }
}

fn admin_request(shared: &Shared, path: &str) -> Response<ResponseBody> {
    match path {
        "/metrics" => {
            let apps: Vec<AppSeries<'_>> = shared
                .apps
                .iter()
                .map(|a| AppSeries {
                    name: a.app().name(),
                    requests: crate::Backend::requests(a.as_ref()),
                    engine: Some(a.app().stats()),
                })
                .collect();
            let mut o = String::with_capacity(4096);
            shared.metrics.render(&mut o, &apps);
            let mut r = text_response(StatusCode::OK, o);
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            r
        }
        "/healthz" | "/readyz" if shared.draining.load(Relaxed) => {
            text_response(StatusCode::SERVICE_UNAVAILABLE, "draining\n".into())
        }
        "/healthz" | "/readyz" => text_response(StatusCode::OK, "ok\n".into()),
        _ => text_response(
            StatusCode::NOT_FOUND,
            "not found: try /metrics or /healthz\n".into(),
        ),
    }
}
