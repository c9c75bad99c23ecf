//! `skiff.toml`: what `skiff build` reads. skiff owns this format, so unknown keys are errors
//! (a typo must not be silently ignored). Documented in docs/skiff-toml.md.

use crate::annotations::{Defaults, Requests};
use crate::reference::Reference;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SkiffToml {
    /// The image name (`hello`, `me/hello`, `registry.example.com/team/hello`).
    pub name: String,
    /// The default tag; `latest` when absent.
    pub version: Option<String>,
    /// The Wasm binary, relative to the directory holding skiff.toml.
    pub wasm: PathBuf,
    /// A shell command run (with `sh -c`, in that directory) before the binary is read.
    pub build: Option<String>,
    pub author: Option<String>,
    pub description: Option<String>,
    /// SPDX expression.
    pub license: Option<String>,
    /// Source repository URL.
    pub source: Option<String>,
    /// Default arguments (replaced by arguments given to `skiff run`).
    pub args: Option<Vec<String>>,
    /// Default environment values (each overridden by `skiff run -e`).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub capabilities: CapabilitiesToml,
    pub http: Option<HttpToml>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapabilitiesToml {
    #[serde(default)]
    pub dirs: Vec<String>,
    #[serde(default)]
    pub env: Vec<String>,
    #[serde(default)]
    pub outbound: Vec<String>,
    #[serde(default)]
    pub network: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpToml {
    pub route: String,
}

#[derive(Debug, thiserror::Error)]
pub enum TomlError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("{path}: {field}: {reason}")]
    Field {
        path: PathBuf,
        field: String,
        reason: String,
    },
}

impl SkiffToml {
    pub fn read(path: &Path) -> Result<SkiffToml, TomlError> {
        let text = std::fs::read_to_string(path).map_err(|source| TomlError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<SkiffToml, TomlError> {
        let t: SkiffToml = toml::from_str(text).map_err(|e| TomlError::Syntax {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().to_string(),
        })?;
        t.validate(path)?;
        Ok(t)
    }

    /// What `skiff build app.wasm` builds from: the binary alone, named after its file (lower
    /// case, characters a repository name cannot hold made `-`), tagged `latest`, with no
    /// defaults and no grants. For anything more, a skiff.toml.
    pub fn for_wasm_file(path: &Path) -> Result<SkiffToml, TomlError> {
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().to_lowercase())
            .unwrap_or_default();
        let name: String = stem
            .chars()
            .map(|c| match c {
                'a'..='z' | '0'..='9' | '.' | '_' | '-' => c,
                _ => '-',
            })
            .collect::<String>()
            .trim_matches(|c: char| !c.is_ascii_alphanumeric())
            .to_string();
        let t = SkiffToml {
            name,
            version: None,
            wasm: PathBuf::from(path.file_name().unwrap_or_default()),
            build: None,
            author: None,
            description: None,
            license: None,
            source: None,
            args: None,
            env: BTreeMap::new(),
            capabilities: CapabilitiesToml::default(),
            http: None,
        };
        t.validate(path).map_err(|e| match e {
            TomlError::Field { path, reason, .. } => TomlError::Field {
                path,
                field: "the file name".into(),
                reason: format!("{reason}; name the image with -t NAME[:TAG]"),
            },
            other => other,
        })?;
        Ok(t)
    }

    /// `name:version` as a reference.
    pub fn reference(&self) -> Reference {
        let r = Reference::parse(&self.name).expect("validated");
        r.with_tag(self.version.as_deref().unwrap_or("latest"))
            .expect("validated")
    }

    pub fn defaults(&self) -> Defaults {
        Defaults {
            args: self.args.clone(),
            env: self.env.clone(),
            requests: Requests {
                dirs: self.capabilities.dirs.clone(),
                env: self.capabilities.env.clone(),
                outbound: self.capabilities.outbound.clone(),
                network: self.capabilities.network,
            },
            route: self.http.as_ref().map(|h| h.route.clone()),
        }
    }

    fn validate(&self, path: &Path) -> Result<(), TomlError> {
        let bad = |field: &str, reason: String| TomlError::Field {
            path: path.to_path_buf(),
            field: field.to_string(),
            reason,
        };
        let r = Reference::parse(&self.name).map_err(|e| bad("name", e.reason))?;
        if r.tag().is_some() || r.digest().is_some() {
            return Err(bad(
                "name",
                "a name without a tag; put the tag in `version`".into(),
            ));
        }
        if let Some(v) = &self.version {
            r.with_tag(v).map_err(|e| bad("version", e.reason))?;
        }
        if self.wasm.as_os_str().is_empty() {
            return Err(bad("wasm", "empty path".into()));
        }
        for k in self.env.keys() {
            check_env_name(k).map_err(|reason| bad(&format!("env.{k}"), reason))?;
        }
        for k in &self.capabilities.env {
            check_env_name(k).map_err(|reason| bad("capabilities.env", reason))?;
        }
        for d in &self.capabilities.dirs {
            if !d.starts_with('/') || d.split('/').any(|c| c == "..") {
                return Err(bad(
                    "capabilities.dirs",
                    format!("{d:?} must be an absolute guest path without `..`"),
                ));
            }
        }
        for o in &self.capabilities.outbound {
            check_outbound(o).map_err(|reason| bad("capabilities.outbound", reason))?;
        }
        if let Some(h) = &self.http {
            if !h.route.starts_with('/') {
                return Err(bad(
                    "http.route",
                    format!("{:?} must start with /", h.route),
                ));
            }
        }
        Ok(())
    }
}

fn check_env_name(k: &str) -> Result<(), String> {
    if k.is_empty() || k.contains(['=', '\0']) {
        Err(format!(
            "{k:?} is not a variable name (empty, or has = or NUL)"
        ))
    } else {
        Ok(())
    }
}

/// `scheme://host[:port]`, host may be `*` or start with `*.` (as Spin's allow-lists).
fn check_outbound(o: &str) -> Result<(), String> {
    let bad = || format!("{o:?} must be scheme://host[:port], e.g. https://api.example.com");
    let (scheme, rest) = o.split_once("://").ok_or_else(bad)?;
    if scheme.is_empty()
        || !scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'*')
    {
        return Err(bad());
    }
    if rest.is_empty() || rest.contains(['/', '?', '#', '@', ' ']) {
        return Err(bad());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<SkiffToml, TomlError> {
        SkiffToml::parse(s, Path::new("skiff.toml"))
    }

    #[test]
    fn full_example() {
        let t = parse(
            r#"
name = "hello"
version = "1.0"
wasm = "hello.wasm"
build = "true"
author = "A. Dev <a@example.com>"
description = "says hello"
license = "Apache-2.0"
source = "https://example.com/hello"
args = ["world"]
[env]
GREETING = "hi"
[capabilities]
dirs = ["/data"]
env = ["TOKEN"]
outbound = ["https://api.example.com", "https://*.example.org:8443"]
network = true
[http]
route = "/hello"
"#,
        )
        .unwrap();
        assert_eq!(t.reference().to_string(), "docker.io/library/hello:1.0");
        assert_eq!(t.defaults().requests.dirs, ["/data"]);
    }

    #[test]
    fn mistakes_are_named() {
        let e = parse("name = \"a\"\nwasm = \"a.wasm\"\nwsam = 1\n").unwrap_err();
        assert!(e.to_string().contains("wsam"), "{e}");
        let e = parse("name = \"A\"\nwasm = \"a.wasm\"\n").unwrap_err();
        assert!(e.to_string().contains("lowercase"), "{e}");
        let e = parse("name = \"a\"\nwasm = \"a.wasm\"\n[capabilities]\ndirs = [\"data\"]\n")
            .unwrap_err();
        assert!(e.to_string().contains("absolute"), "{e}");
        let e = parse(
            "name = \"a\"\nwasm = \"a.wasm\"\n[capabilities]\noutbound = [\"example.com\"]\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("scheme://"), "{e}");
        let e = parse("name = \"a:1\"\nwasm = \"a.wasm\"\n").unwrap_err();
        assert!(e.to_string().contains("version"), "{e}");
        let e = parse("name = \"a\"\n").unwrap_err();
        assert!(e.to_string().contains("wasm"), "{e}");
    }
}
