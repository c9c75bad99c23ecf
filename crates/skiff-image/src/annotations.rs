//! skiff's own defaults, carried as manifest annotations under one prefix, `dev.skiff.`.
//!
//! Values are strings (annotations are a string map); lists and maps are JSON-encoded. Other
//! tools ignore them; skiff reads them back to set default args and env, to show what an image
//! requests, and to route HTTP.

use crate::model::Annotations;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const PREFIX: &str = "dev.skiff.";
pub const ARGS: &str = "dev.skiff.args";
pub const ENV: &str = "dev.skiff.env";
pub const REQUEST_DIRS: &str = "dev.skiff.request.dirs";
pub const REQUEST_ENV: &str = "dev.skiff.request.env";
pub const REQUEST_OUTBOUND: &str = "dev.skiff.request.outbound";
pub const REQUEST_NETWORK: &str = "dev.skiff.request.network";
pub const HTTP_ROUTE: &str = "dev.skiff.http.route";
/// What a pull normalised from another layout: the layout, its manifest, its component.
pub const SOURCE_LAYOUT: &str = "dev.skiff.source.layout";
pub const SOURCE_MANIFEST: &str = "dev.skiff.source.manifest";
pub const SOURCE_COMPONENT: &str = "dev.skiff.source.component";

// The standard ones skiff writes.
pub const OCI_CREATED: &str = "org.opencontainers.image.created";
pub const OCI_TITLE: &str = "org.opencontainers.image.title";
pub const OCI_VERSION: &str = "org.opencontainers.image.version";
pub const OCI_DESCRIPTION: &str = "org.opencontainers.image.description";
pub const OCI_AUTHORS: &str = "org.opencontainers.image.authors";
pub const OCI_LICENSES: &str = "org.opencontainers.image.licenses";
pub const OCI_SOURCE: &str = "org.opencontainers.image.source";
pub const OCI_REF_NAME: &str = "org.opencontainers.image.ref.name";
pub const CONTAINERD_IMAGE_NAME: &str = "io.containerd.image.name";

/// What an image asks the operator to grant. Nothing here is granted automatically.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requests {
    /// Guest directories it expects to be mounted (`-v HOST:/data`).
    pub dirs: Vec<String>,
    /// Environment variable names it needs (`-e NAME`).
    pub env: Vec<String>,
    /// Outbound HTTP destinations, `scheme://host[:port]`.
    pub outbound: Vec<String>,
    /// Sockets and name lookup (`--net`).
    pub network: bool,
}

impl Requests {
    pub fn is_empty(&self) -> bool {
        self == &Requests::default()
    }
}

/// The image's defaults for running it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Defaults {
    /// Default guest args (Docker's CMD): replaced entirely by args given on the command line.
    pub args: Option<Vec<String>>,
    /// Default env values (Docker's ENV): `-e` overrides them one by one.
    pub env: BTreeMap<String, String>,
    pub requests: Requests,
    /// The path prefix an HTTP handler serves under.
    pub route: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("annotation {key}: {reason}")]
pub struct AnnotationError {
    pub key: String,
    pub reason: String,
}

impl Defaults {
    pub fn to_annotations(&self, out: &mut Annotations) {
        let json = |v: &dyn erased::Json| v.json();
        if let Some(args) = &self.args {
            out.insert(ARGS.into(), json(args));
        }
        if !self.env.is_empty() {
            out.insert(ENV.into(), json(&self.env));
        }
        let r = &self.requests;
        if !r.dirs.is_empty() {
            out.insert(REQUEST_DIRS.into(), json(&r.dirs));
        }
        if !r.env.is_empty() {
            out.insert(REQUEST_ENV.into(), json(&r.env));
        }
        if !r.outbound.is_empty() {
            out.insert(REQUEST_OUTBOUND.into(), json(&r.outbound));
        }
        if r.network {
            out.insert(REQUEST_NETWORK.into(), "true".into());
        }
        if let Some(route) = &self.route {
            out.insert(HTTP_ROUTE.into(), route.clone());
        }
    }

    /// Read the defaults back. Unknown `dev.skiff.*` keys are ignored (a newer skiff may write
    /// more); a known key with a malformed value is an error, since the image would not run as
    /// its author meant.
    pub fn from_annotations(a: &Annotations) -> Result<Defaults, AnnotationError> {
        fn parse<T: for<'de> Deserialize<'de>>(
            a: &Annotations,
            key: &str,
        ) -> Result<Option<T>, AnnotationError> {
            a.get(key)
                .map(|v| {
                    serde_json::from_str(v).map_err(|e| AnnotationError {
                        key: key.into(),
                        reason: format!("{e} in {v:?}"),
                    })
                })
                .transpose()
        }
        let network = match a.get(REQUEST_NETWORK).map(String::as_str) {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => {
                return Err(AnnotationError {
                    key: REQUEST_NETWORK.into(),
                    reason: format!("expected true or false, got {other:?}"),
                })
            }
        };
        Ok(Defaults {
            args: parse(a, ARGS)?,
            env: parse(a, ENV)?.unwrap_or_default(),
            requests: Requests {
                dirs: parse(a, REQUEST_DIRS)?.unwrap_or_default(),
                env: parse(a, REQUEST_ENV)?.unwrap_or_default(),
                outbound: parse(a, REQUEST_OUTBOUND)?.unwrap_or_default(),
                network,
            },
            route: a.get(HTTP_ROUTE).cloned(),
        })
    }
}

mod erased {
    pub trait Json {
        fn json(&self) -> String;
    }
    impl<T: serde::Serialize> Json for T {
        fn json(&self) -> String {
            serde_json::to_string(self).expect("plain data serialises")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let d = Defaults {
            args: Some(vec!["world".into()]),
            env: [("GREETING".to_string(), "hi".to_string())].into(),
            requests: Requests {
                dirs: vec!["/data".into()],
                env: vec!["TOKEN".into()],
                outbound: vec!["https://api.example.com".into()],
                network: true,
            },
            route: Some("/hello".into()),
        };
        let mut a = Annotations::new();
        d.to_annotations(&mut a);
        assert!(a.keys().all(|k| k.starts_with(PREFIX)));
        assert_eq!(Defaults::from_annotations(&a).unwrap(), d);
        a.insert(ARGS.into(), "not json".into());
        assert!(Defaults::from_annotations(&a).is_err());
    }
}
