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
    #[error("{path}: {reason}")]
    NotAFile { path: PathBuf, reason: String },
    #[error("{path}: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("{path}: {field}: {reason}")]
    Field {
        path: PathBuf,
        field: String,
        reason: String,
    },
}

/// The largest skiff.toml read: a real one is a few hundred bytes; `-f /dev/zero` must not
/// fill memory.
pub const MAX_TOML_SIZE: u64 = 1 << 20;

/// The largest value of one free-text key (`description`, one `args` entry…): generous for
/// prose, far below the 4 MiB a manifest may have, so the error names the key rather than the
/// manifest.
pub const MAX_VALUE_SIZE: usize = 64 << 10;

impl SkiffToml {
    pub fn read(path: &Path) -> Result<SkiffToml, TomlError> {
        let bytes = read_regular_file(path, MAX_TOML_SIZE, "skiff.toml")?;
        let text = String::from_utf8(bytes).map_err(|_| TomlError::NotAFile {
            path: path.to_path_buf(),
            reason: "not UTF-8 text; a skiff.toml is TOML".into(),
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
        check_wasm_path(&self.wasm).map_err(|reason| bad("wasm", reason))?;
        if let Some(b) = &self.build {
            check_text(b, Lines::Many).map_err(|reason| bad("build", reason))?;
        }
        let text_keys = [
            ("author", &self.author, Lines::One),
            ("description", &self.description, Lines::Many),
            ("license", &self.license, Lines::One),
            ("source", &self.source, Lines::One),
        ];
        for (key, value, lines) in text_keys {
            if let Some(v) = value {
                check_text(v, lines).map_err(|reason| bad(key, reason))?;
            }
        }
        for (i, a) in self.args.iter().flatten().enumerate() {
            check_text(a, Lines::Many).map_err(|reason| bad(&format!("args[{i}]"), reason))?;
        }
        for (k, v) in &self.env {
            check_env_name(k).map_err(|reason| bad(&format!("env.{k}"), reason))?;
            check_text(v, Lines::Many).map_err(|reason| bad(&format!("env.{k}"), reason))?;
        }
        for k in &self.capabilities.env {
            check_env_name(k).map_err(|reason| bad("capabilities.env", reason))?;
        }
        for d in &self.capabilities.dirs {
            check_guest_dir(d).map_err(|reason| bad("capabilities.dirs", reason))?;
        }
        for o in &self.capabilities.outbound {
            check_outbound(o).map_err(|reason| bad("capabilities.outbound", reason))?;
        }
        if let Some(h) = &self.http {
            check_route(&h.route).map_err(|reason| bad("http.route", reason))?;
        }
        Ok(())
    }
}

/// Read a file that must be a regular file of at most `max` bytes; `what` names it in errors.
/// The type is checked on the opened file (so a FIFO or a device such as /dev/zero is refused,
/// not read), and the read stops one byte past `max` whatever the file claims.
pub fn read_regular_file(path: &Path, max: u64, what: &str) -> Result<Vec<u8>, TomlError> {
    use std::io::Read;
    let read_err = |source| TomlError::Read {
        path: path.to_path_buf(),
        source,
    };
    let not_a_file = |reason: String| TomlError::NotAFile {
        path: path.to_path_buf(),
        reason,
    };
    // Checked before opening: opening a FIFO would wait for a writer.
    let meta = std::fs::metadata(path).map_err(read_err)?;
    if !meta.is_file() {
        return Err(not_a_file(format!(
            "{what} must be a regular file, and this is {}",
            file_kind(&meta.file_type())
        )));
    }
    let file = std::fs::File::open(path).map_err(read_err)?;
    let meta = file.metadata().map_err(read_err)?;
    if !meta.is_file() {
        return Err(not_a_file(format!("{what} must be a regular file")));
    }
    let too_big = |size: u64| {
        not_a_file(format!(
            "{what} is {size} bytes, over the limit of {max} bytes"
        ))
    };
    if meta.len() > max {
        return Err(too_big(meta.len()));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    if bytes.len() as u64 > max {
        return Err(too_big(bytes.len() as u64));
    }
    Ok(bytes)
}

fn file_kind(t: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() || t.is_block_device() {
        "a device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// Relative to the build context, inside it: `skiff build` also resolves symlinks and checks
/// the file (see build.rs); here, what the text alone can tell.
fn check_wasm_path(p: &Path) -> Result<(), String> {
    if p.as_os_str().is_empty() {
        return Err("empty path".into());
    }
    if p.is_absolute() {
        return Err(format!(
            "{} is absolute: give a path relative to the build context (the directory skiff build is given)",
            p.display()
        ));
    }
    if p.components().any(|c| c == std::path::Component::ParentDir) {
        return Err(format!(
            "{} has `..`: the binary must be inside the build context",
            p.display()
        ));
    }
    check_text(&p.to_string_lossy(), Lines::One)
}

#[derive(Clone, Copy)]
enum Lines {
    /// A name, a URL, an SPDX expression: no control character at all.
    One,
    /// Prose or data (a description, an argument): tabs and line breaks allowed.
    Many,
}

/// Bounded, and free of control characters (NUL cannot even reach a guest's argv or env).
fn check_text(v: &str, lines: Lines) -> Result<(), String> {
    if v.len() > MAX_VALUE_SIZE {
        return Err(format!(
            "{} bytes, over the limit of {MAX_VALUE_SIZE}",
            v.len()
        ));
    }
    let allowed = |c: char| matches!(lines, Lines::Many) && matches!(c, '\t' | '\n' | '\r');
    if let Some(c) = v.chars().find(|&c| c.is_control() && !allowed(c)) {
        return Err(format!(
            "{v:?} holds the control character {:?}; write it out, or leave it out",
            c
        ));
    }
    Ok(())
}

fn check_env_name(k: &str) -> Result<(), String> {
    if k.is_empty() || k.contains('=') || k.chars().any(|c| c.is_control() || c.is_whitespace()) {
        Err(format!(
            "{k:?} is not a variable name (empty, or has =, a space or a control character)"
        ))
    } else if k.len() > 256 {
        Err(format!("{k:?} is longer than 256 bytes"))
    } else {
        Ok(())
    }
}

/// An absolute guest path without `..` or `:` (`-v HOST:GUEST` could not name it).
fn check_guest_dir(d: &str) -> Result<(), String> {
    if !d.starts_with('/') || d.split('/').any(|c| c == "..") {
        return Err(format!("{d:?} must be an absolute guest path without `..`"));
    }
    if d.contains(':') {
        return Err(format!(
            "{d:?} has `:`, which `skiff run -v HOST:GUEST` could not grant"
        ));
    }
    check_text(d, Lines::One)
}

/// A URL path prefix: starts with `/`, only the characters a path may hold unescaped (RFC 3986
/// `pchar`, and `%` for escapes), no `?` or `#`.
fn check_route(r: &str) -> Result<(), String> {
    if !r.starts_with('/') {
        return Err(format!("{r:?} must start with /"));
    }
    if r.len() > 1024 {
        return Err(format!("{} bytes, over the limit of 1024", r.len()));
    }
    // `*` is a pchar, but the data plane's routes refuse it (and `//`) as a prefix: refused
    // here too, so an image that builds also deploys.
    let ok = |c: char| c.is_ascii_alphanumeric() || "/-._~!$&'()+,;=:@%".contains(c);
    if let Some(c) = r.chars().find(|&c| !ok(c)) {
        return Err(format!(
            "{r:?} holds {c:?}: a route is a URL path prefix such as /api (no query, fragment, `*`, space or control)"
        ));
    }
    if r.contains("//") {
        return Err(format!("{r:?} has an empty segment (`//`)"));
    }
    Ok(())
}

/// `scheme://host[:port]`, host may be `*` or start with `*.` (as Spin's allow-lists), port a
/// number up to 65535 or `*`.
fn check_outbound(o: &str) -> Result<(), String> {
    let bad = || format!("{o:?} must be scheme://host[:port], e.g. https://api.example.com");
    let (scheme, rest) = o.split_once("://").ok_or_else(bad)?;
    if !matches!(scheme, "http" | "https" | "*") {
        return Err(format!("{o:?}: the scheme must be http, https or *"));
    }
    // `[v6]:port` splits at its last `:`; a bare `[v6]` or `v6` does not split.
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if (h.starts_with('[') && h.ends_with(']')) || !h.contains(':') => {
            (h, Some(p))
        }
        _ => (rest, None),
    };
    let label_ok = |l: &str| {
        !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    let host_ok = host == "*"
        || host
            .strip_prefix("*.")
            .unwrap_or(host)
            .split('.')
            .all(label_ok)
        || (host.starts_with('[')
            && host.ends_with(']')
            && host.len() > 2
            && host[1..host.len() - 1]
                .parse::<std::net::Ipv6Addr>()
                .is_ok());
    if host.is_empty() || host.len() > 253 || !host_ok {
        return Err(bad());
    }
    match port {
        Some(p) if p != "*" && !matches!(p.parse::<u16>(), Ok(n) if n > 0) => {
            Err(format!("{o:?}: the port must be 1-65535 or *"))
        }
        // No default port to take (the engine refuses it when the image runs).
        None if scheme == "*" => Err(format!(
            "{o:?}: with scheme * give a port, e.g. *://{host}:443 or *://{host}:*"
        )),
        _ => Ok(()),
    }
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

    /// Every pattern the engine enforces is accepted at build time (before the fix, an IPv6
    /// address with a port was refused).
    #[test]
    fn outbound_patterns_the_engine_takes_are_accepted() {
        for pattern in [
            "http://[::1]:8080",
            "https://[2001:db8::1]",
            "http://127.0.0.1:8080",
            "https://*.example.org:*",
            "*://*:*",
        ] {
            parse(&format!(
                "name = \"a\"\nwasm = \"a.wasm\"\n[capabilities]\noutbound = [\"{pattern}\"]\n"
            ))
            .unwrap_or_else(|e| panic!("{pattern}: {e}"));
        }
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
        for (route, says) in [("/a*", "`*`"), ("//x", "`//`")] {
            let e = parse(&format!(
                "name = \"a\"\nwasm = \"a.wasm\"\n[http]\nroute = \"{route}\"\n"
            ))
            .unwrap_err();
            assert!(e.to_string().contains(says), "{route}: {e}");
        }
        for (pattern, says) in [
            ("*://example.com", "give a port"),
            ("http://[::1", "scheme://"),
            ("http://[::1]:0", "port"),
        ] {
            let e = parse(&format!(
                "name = \"a\"\nwasm = \"a.wasm\"\n[capabilities]\noutbound = [\"{pattern}\"]\n"
            ))
            .unwrap_err();
            assert!(e.to_string().contains(says), "{pattern}: {e}");
        }
        let e = parse("name = \"a:1\"\nwasm = \"a.wasm\"\n").unwrap_err();
        assert!(e.to_string().contains("version"), "{e}");
        let e = parse("name = \"a\"\n").unwrap_err();
        assert!(e.to_string().contains("wasm"), "{e}");
    }
}
