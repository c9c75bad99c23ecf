//! The daemon's errors. Each API error carries its HTTP status; the message says what to do.

/// An error answered to an API client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> u16 {
        match self {
            ApiError::BadRequest(_) => 400,
            ApiError::Unauthorized(_) => 401,
            ApiError::Forbidden(_) => 403,
            ApiError::NotFound(_) => 404,
            ApiError::MethodNotAllowed(_) => 405,
            ApiError::Conflict(_) => 409,
            ApiError::PayloadTooLarge(_) => 413,
            ApiError::Internal(_) => 500,
        }
    }
}

impl From<StateError> for ApiError {
    fn from(e: StateError) -> Self {
        ApiError::Internal(format!("daemon state: {e}"))
    }
}

/// The state database failed.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("{0}")]
    Db(String),
    #[error("corrupt record {key}: {reason}")]
    Corrupt { key: String, reason: String },
}

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("HTTP data plane: {0}")]
    Http(String),
    #[error("HTTP apps are deployed on this node ({0}) and need the HTTP data plane: start the daemon with --http-listen ADDR (as before), or stop or remove them first")]
    NoDataPlane(String),
    #[error("another skiff daemon is already running with home {0}; stop it first, or give this one another --home")]
    AlreadyRunning(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("state database: {0}")]
    State(#[from] StateError),
    #[error("wasm engine: {0}")]
    Engine(String),
    #[error("the daemon's binary store: {0}")]
    Store(#[from] skiff_store::StoreError),
}

pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> DaemonError {
    let what = what.into();
    move |source| DaemonError::Io { what, source }
}
