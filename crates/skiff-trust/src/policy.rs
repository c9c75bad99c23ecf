//! The policy: which images may be pulled, in containers-policy.json's format (what podman,
//! skopeo and CRI-O read from `/etc/containers/policy.json`), so one file serves a node's
//! container tools and skiff alike.
//!
//! ```json
//! {"default": [{"type": "insecureAcceptAnything"}],
//!  "transports": {"docker": {
//!     "registry.example.com/team": [{"type": "sigstoreSigned", "keyPath": "/etc/skiff/cosign.pub"}],
//!     "registry.example.com": [{"type": "reject"}]}}}
//! ```
//!
//! The rule for an image is found as containers/image finds it: the `docker` transport's scope
//! for the exact reference (`host/repo:tag`), then the repository, each parent namespace, the
//! host, wildcard domains (`*.example.com`), then the transport's `""`, then `default`. Every
//! requirement of the rule must hold. Keys are read when the policy is loaded, so a missing key
//! fails at start, not at the first pull. What skiff cannot check (`signedBy` GPG signatures,
//! keyless `fulcio`, Rekor) denies the images it applies to: never accepted unchecked.

use crate::error::PolicyError;
use crate::key::PublicKey;
use base64::Engine as _;
use serde_json::{Map, Value};
use skiff_image::Reference;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A policy file is a few KiB; past this it is not one.
const MAX_POLICY_FILE: u64 = 1 << 20;

/// A loaded, checked policy.
#[derive(Debug, Clone)]
pub struct Policy {
    source: String,
    is_default: bool,
    default: Vec<Requirement>,
    /// The `docker` transport's scopes (`""` is its own default).
    docker: BTreeMap<String, Vec<Requirement>>,
}

/// One requirement of a rule.
#[derive(Debug, Clone)]
pub enum Requirement {
    AcceptAnything,
    Reject,
    Sigstore {
        keys: Vec<NamedKey>,
        identity: SignedIdentity,
    },
    /// A requirement skiff cannot check: denies.
    Unsupported(String),
}

/// A public key and where it came from (for messages).
#[derive(Debug, Clone)]
pub struct NamedKey {
    pub label: String,
    pub key: PublicKey,
}

/// How a signature's `docker-reference` must match the image (containers/image's
/// `signedIdentity`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignedIdentity {
    /// The default: by tag, the same repository and tag; by digest, the same repository.
    MatchRepoDigestOrExact,
    MatchRepository,
    MatchExact,
    ExactReference(String),
    ExactRepository(String),
}

/// The rule that applies to one image.
#[derive(Debug, Clone, Copy)]
pub struct Rule<'a> {
    /// The policy file, or "the default policy".
    pub source: &'a str,
    /// The `docker` transport's scope as written in the file (`host/repo`, `""`), or `None` for
    /// the top-level `default`.
    pub scope: Option<&'a str>,
    pub requirements: &'a [Requirement],
}

impl Default for Policy {
    /// No policy file: accept anything, as Docker does.
    fn default() -> Self {
        Policy {
            source: "the default policy (no policy file: accept anything)".into(),
            is_default: true,
            default: vec![Requirement::AcceptAnything],
            docker: BTreeMap::new(),
        }
    }
}

impl Policy {
    /// Read and check a policy file. Any problem is an error: never a silent fallback.
    pub fn load(path: &Path) -> Result<Policy, PolicyError> {
        let err = |reason: String| PolicyError {
            path: path.display().to_string(),
            reason,
        };
        let meta = std::fs::metadata(path).map_err(|e| err(format!("cannot read it: {e}")))?;
        not_writable_by_others(&meta).map_err(err)?;
        if meta.len() > MAX_POLICY_FILE {
            return Err(err(format!("larger than {MAX_POLICY_FILE} bytes")));
        }
        let text = std::fs::read(path).map_err(|e| err(format!("cannot read it: {e}")))?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, &path.display().to_string(), base).map_err(err)
    }

    /// Parse policy JSON; relative `keyPath`s are read from `base`.
    pub fn parse(text: &[u8], source: &str, base: &Path) -> Result<Policy, String> {
        let v: Value = serde_json::from_slice(text).map_err(|e| format!("not JSON: {e}"))?;
        let top = v.as_object().ok_or("the top level must be an object")?;
        only_keys(top, &["default", "transports"], "the top level")?;
        let default = requirements(
            top.get("default")
                .ok_or("no \"default\" rule (containers-policy.json requires one)")?,
            "default",
            base,
        )?;
        let mut docker = BTreeMap::new();
        if let Some(t) = top.get("transports") {
            let t = t.as_object().ok_or("\"transports\" must be an object")?;
            for (transport, scopes) in t {
                let scopes = scopes.as_object().ok_or(format!(
                    "transports.{transport} must be an object of scopes"
                ))?;
                for (scope, reqs) in scopes {
                    let at = format!("transports.{transport}[{scope:?}]");
                    // Every transport's rules are checked, so a typo anywhere is found now;
                    // only `docker` (registries) applies to what skiff pulls.
                    let reqs = requirements(reqs, &at, base)?;
                    if transport == "docker" {
                        check_scope(scope).map_err(|e| format!("{at}: {e}"))?;
                        docker.insert(scope.clone(), reqs);
                    }
                }
            }
        }
        Ok(Policy {
            source: source.to_string(),
            is_default: false,
            default,
            docker,
        })
    }

    /// True when no policy file was given: the built-in accept-anything policy.
    pub fn is_default(&self) -> bool {
        self.is_default
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// The rule for `image`, found as containers/image finds it (see the module doc).
    pub fn rule_for(&self, image: &Reference) -> Rule<'_> {
        for scope in scopes_of(image) {
            if let Some((key, reqs)) = self.docker.get_key_value(&scope) {
                return self.rule(key, reqs);
            }
        }
        if let Some((key, reqs)) = self.docker.get_key_value("") {
            return self.rule(key, reqs);
        }
        self.default_rule()
    }

    /// The top-level `default` rule: what applies to a binary that names no image.
    pub fn default_rule(&self) -> Rule<'_> {
        Rule {
            source: &self.source,
            scope: None,
            requirements: &self.default,
        }
    }

    fn rule<'a>(&'a self, key: &'a str, reqs: &'a [Requirement]) -> Rule<'a> {
        Rule {
            source: &self.source,
            scope: Some(key),
            requirements: reqs,
        }
    }
}

impl Rule<'_> {
    /// The scope for messages: `transports.docker["host/repo"]`, or `default`.
    /// Shown as written in the file, which the user can search for.
    pub fn scope_name(&self) -> String {
        match self.scope {
            None => "default".into(),
            Some(s) => format!("transports.docker[{s:?}]"),
        }
    }

    /// True when the rule accepts any image without looking at signatures.
    pub fn accepts_anything(&self) -> bool {
        self.requirements
            .iter()
            .all(|r| matches!(r, Requirement::AcceptAnything))
    }

    /// True when checking the rule needs the image's signatures.
    pub fn needs_signatures(&self) -> bool {
        self.requirements
            .iter()
            .any(|r| matches!(r, Requirement::Sigstore { .. }))
    }
}

impl Requirement {
    /// As a user would write it: `sigstoreSigned (keyPath /etc/skiff/cosign.pub)`.
    pub fn describe(&self) -> String {
        match self {
            Requirement::AcceptAnything => "insecureAcceptAnything".into(),
            Requirement::Reject => "reject".into(),
            Requirement::Sigstore { keys, .. } => {
                let keys: Vec<&str> = keys.iter().map(|k| k.label.as_str()).collect();
                format!("sigstoreSigned (key {})", keys.join(" or "))
            }
            Requirement::Unsupported(what) => what.clone(),
        }
    }
}

/// The scopes to look up for `image`, most specific first (containers/image's
/// `PolicyConfigurationIdentity` then `PolicyConfigurationNamespaces`).
fn scopes_of(image: &Reference) -> Vec<String> {
    let mut out = vec![image.to_string()];
    let mut name = image.repository();
    loop {
        out.push(name.clone());
        match name.rfind('/') {
            Some(i) => name.truncate(i),
            None => break,
        }
    }
    let mut host = name.split(':').next().unwrap_or("").to_string();
    while let Some(i) = host.find('.') {
        host = host[i + 1..].to_string();
        out.push(format!("*.{host}"));
    }
    out
}

/// A `docker` scope must be `""`, a host (`registry.example.com[:5000]`), a wildcard domain
/// (`*.example.com`) or a fully qualified repository or reference: `busybox` is refused with
/// its full form suggested, since it would never match (references are compared in full).
fn check_scope(scope: &str) -> Result<(), String> {
    if scope.is_empty() {
        return Ok(());
    }
    let host_ok = |h: &str| {
        !h.is_empty()
            && h.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || ".-:".contains(c))
    };
    if let Some(domain) = scope.strip_prefix("*.") {
        return if host_ok(domain) && !domain.contains(':') {
            Ok(())
        } else {
            Err("a wildcard scope is *.DOMAIN (no port, no path)".into())
        };
    }
    if !scope.contains('/') {
        // A registry host has a `.` or a `:` or is `localhost` (Docker's rule, by which every
        // reference is normalised): `busybox` would never match anything.
        let registry_like = scope.contains(['.', ':']) || scope == "localhost";
        return if host_ok(scope) && registry_like {
            Ok(())
        } else {
            Err(format!(
                "not a registry host, a repository or a reference (a host has a '.' or ':'; for \
                 an image write its full name, e.g. docker.io/library/{scope})"
            ))
        };
    }
    let r = Reference::parse(scope).map_err(|e| e.to_string())?;
    if r.to_string() != scope {
        return Err(format!(
            "scopes are compared in full: write {:?}",
            r.to_string()
        ));
    }
    Ok(())
}

fn only_keys(obj: &Map<String, Value>, allowed: &[&str], at: &str) -> Result<(), String> {
    match obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(format!(
            "{at}: unknown key {k:?} (expected {})",
            allowed.join(", ")
        )),
        None => Ok(()),
    }
}

fn requirements(v: &Value, at: &str, base: &Path) -> Result<Vec<Requirement>, String> {
    let list = v
        .as_array()
        .ok_or(format!("{at} must be an array of requirements"))?;
    if list.is_empty() {
        // containers/image refuses an empty list too: it would mean "no requirement".
        return Err(format!(
            "{at} is empty; write [{{\"type\": \"insecureAcceptAnything\"}}] to accept anything"
        ));
    }
    list.iter()
        .enumerate()
        .map(|(i, r)| requirement(r, &format!("{at}[{i}]"), base))
        .collect()
}

fn requirement(v: &Value, at: &str, base: &Path) -> Result<Requirement, String> {
    let obj = v.as_object().ok_or(format!("{at} must be an object"))?;
    let kind = obj
        .get("type")
        .and_then(Value::as_str)
        .ok_or(format!("{at} has no \"type\""))?;
    match kind {
        "insecureAcceptAnything" => {
            only_keys(obj, &["type"], at)?;
            Ok(Requirement::AcceptAnything)
        }
        "reject" => {
            only_keys(obj, &["type"], at)?;
            Ok(Requirement::Reject)
        }
        "signedBy" => Ok(Requirement::Unsupported(
            "signedBy (GPG signatures, which skiff cannot check)".into(),
        )),
        "sigstoreSigned" => sigstore(obj, at, base),
        other => Err(format!(
            "{at}: unknown requirement type {other:?} (expected insecureAcceptAnything, reject, \
             sigstoreSigned or signedBy)"
        )),
    }
}

fn sigstore(obj: &Map<String, Value>, at: &str, base: &Path) -> Result<Requirement, String> {
    only_keys(
        obj,
        &[
            "type",
            "keyPath",
            "keyPaths",
            "keyData",
            "fulcio",
            "rekorPublicKeyPath",
            "rekorPublicKeyData",
            "signedIdentity",
        ],
        at,
    )?;
    let sources = ["keyPath", "keyPaths", "keyData", "fulcio"]
        .iter()
        .filter(|k| obj.contains_key(**k))
        .count();
    if sources != 1 {
        return Err(format!(
            "{at}: sigstoreSigned needs exactly one of keyPath, keyPaths, keyData (or fulcio)"
        ));
    }
    let identity = signed_identity(obj.get("signedIdentity"), at)?;
    if obj.contains_key("fulcio") {
        return Ok(Requirement::Unsupported(
            "sigstoreSigned with fulcio (keyless signatures, which skiff cannot check)".into(),
        ));
    }
    if obj.contains_key("rekorPublicKeyPath") || obj.contains_key("rekorPublicKeyData") {
        return Ok(Requirement::Unsupported(
            "sigstoreSigned with a Rekor key (transparency-log proofs, which skiff cannot check)"
                .into(),
        ));
    }
    let mut keys = Vec::new();
    if let Some(p) = obj.get("keyPath") {
        keys.push(key_file(p, at, base)?);
    }
    if let Some(ps) = obj.get("keyPaths") {
        let ps = ps
            .as_array()
            .filter(|a| !a.is_empty())
            .ok_or(format!("{at}: keyPaths must be a non-empty array of paths"))?;
        for p in ps {
            keys.push(key_file(p, at, base)?);
        }
    }
    if let Some(d) = obj.get("keyData") {
        let pem = d
            .as_str()
            .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or(format!(
                "{at}: keyData must be a base64-encoded PEM public key"
            ))?;
        let key = PublicKey::from_pem(&pem).map_err(|e| format!("{at}: keyData: {e}"))?;
        keys.push(NamedKey {
            label: format!("keyData {}", key.fingerprint()),
            key,
        });
    }
    Ok(Requirement::Sigstore { keys, identity })
}

fn key_file(v: &Value, at: &str, base: &Path) -> Result<NamedKey, String> {
    let p = v
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or(format!("{at}: a key path must be a non-empty string"))?;
    let path: PathBuf = base.join(p);
    let label = path.display().to_string();
    let meta = std::fs::metadata(&path).map_err(|e| format!("{at}: key {label}: {e}"))?;
    not_writable_by_others(&meta).map_err(|e| format!("{at}: key {label}: {e}"))?;
    if meta.len() > crate::key::MAX_KEY_FILE {
        return Err(format!("{at}: key {label} is too large to be a public key"));
    }
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{at}: key {label}: {e}"))?;
    let key = PublicKey::from_pem(&text).map_err(|e| format!("{at}: key {label}: {e}"))?;
    Ok(NamedKey { label, key })
}

/// Whoever may write the policy or one of its keys decides what runs: a file that group or
/// others may write is refused (as ssh refuses such an `authorized_keys`).
fn not_writable_by_others(meta: &std::fs::Metadata) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o022 != 0 {
        return Err(format!(
            "it is writable by group or others (mode {mode:03o}), who could then decide what \
             runs; chmod go-w it"
        ));
    }
    Ok(())
}

fn signed_identity(v: Option<&Value>, at: &str) -> Result<SignedIdentity, String> {
    let Some(v) = v else {
        return Ok(SignedIdentity::MatchRepoDigestOrExact);
    };
    let at = format!("{at}.signedIdentity");
    let obj = v.as_object().ok_or(format!("{at} must be an object"))?;
    let field = |name: &str| -> Result<String, String> {
        only_keys(obj, &["type", name], &at)?;
        obj.get(name)
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or(format!("{at} needs {name:?}"))
    };
    match obj.get("type").and_then(Value::as_str) {
        Some("matchRepoDigestOrExact") => {
            only_keys(obj, &["type"], &at)?;
            Ok(SignedIdentity::MatchRepoDigestOrExact)
        }
        Some("matchRepository") => {
            only_keys(obj, &["type"], &at)?;
            Ok(SignedIdentity::MatchRepository)
        }
        Some("matchExact") => {
            only_keys(obj, &["type"], &at)?;
            Ok(SignedIdentity::MatchExact)
        }
        Some("exactReference") => Ok(SignedIdentity::ExactReference(field("dockerReference")?)),
        Some("exactRepository") => Ok(SignedIdentity::ExactRepository(field("dockerRepository")?)),
        Some(other) => Err(format!(
            "{at}: type {other:?} is not supported (matchRepoDigestOrExact, matchRepository, \
             matchExact, exactReference, exactRepository)"
        )),
        None => Err(format!("{at} has no \"type\"")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(json: &str) -> Result<Policy, String> {
        Policy::parse(json.as_bytes(), "test.json", Path::new("/nonexistent"))
    }

    fn scope_for(p: &Policy, image: &str) -> String {
        p.rule_for(&Reference::parse(image).unwrap()).scope_name()
    }

    #[test]
    fn longest_scope_wins_as_in_containers_image() {
        let p = policy(
            r#"{"default":[{"type":"reject"}],"transports":{"docker":{
                "localhost:5000":[{"type":"insecureAcceptAnything"}],
                "localhost:5000/team":[{"type":"reject"}],
                "localhost:5000/team/app:1":[{"type":"insecureAcceptAnything"}],
                "*.example.com":[{"type":"insecureAcceptAnything"}]}}}"#,
        )
        .unwrap();
        assert_eq!(
            scope_for(&p, "localhost:5000/team/app:1"),
            r#"transports.docker["localhost:5000/team/app:1"]"#
        );
        assert_eq!(
            scope_for(&p, "localhost:5000/team/app:2"),
            r#"transports.docker["localhost:5000/team"]"#
        );
        assert_eq!(
            scope_for(&p, "localhost:5000/other:2"),
            r#"transports.docker["localhost:5000"]"#
        );
        assert_eq!(
            scope_for(&p, "r.example.com/x:1"),
            r#"transports.docker["*.example.com"]"#
        );
        assert_eq!(scope_for(&p, "hello:1"), "default");
        assert!(p
            .rule_for(&Reference::parse("hello").unwrap())
            .requirements
            .iter()
            .all(|r| matches!(r, Requirement::Reject)));
    }

    #[test]
    fn malformed_policies_are_refused_with_the_place() {
        for (json, want) in [
            ("{", "not JSON"),
            ("{}", "no \"default\""),
            (r#"{"default":[]}"#, "default is empty"),
            (
                r#"{"default":[{"type":"acceptAnything"}]}"#,
                "unknown requirement type",
            ),
            (
                r#"{"default":[{"type":"reject","x":1}]}"#,
                "unknown key \"x\"",
            ),
            (
                r#"{"default":[{"type":"sigstoreSigned"}]}"#,
                "exactly one of keyPath",
            ),
            (
                r#"{"default":[{"type":"sigstoreSigned","keyPath":"missing.pub"}]}"#,
                "missing.pub",
            ),
            (
                r#"{"default":[{"type":"reject"}],"transports":{"docker":{"busybox":[{"type":"reject"}]}}}"#,
                "not a registry host",
            ),
            (
                r#"{"default":[{"type":"reject"}],"transports":{"docker":{"me/app":[{"type":"reject"}]}}}"#,
                "docker.io/me/app",
            ),
            (
                r#"{"default":[{"type":"reject"}],"defaults":[]}"#,
                "unknown key \"defaults\"",
            ),
        ] {
            let e = policy(json).unwrap_err();
            assert!(e.contains(want), "{json}: {e}");
        }
    }

    #[test]
    fn a_policy_or_key_others_may_write_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let pair = crate::key::generate(b"").unwrap();
        let key = dir.path().join("cosign.pub");
        std::fs::write(&key, &pair.public_pem).unwrap();
        let file = dir.path().join("policy.json");
        std::fs::write(
            &file,
            r#"{"default":[{"type":"sigstoreSigned","keyPath":"cosign.pub"}]}"#,
        )
        .unwrap();
        let chmod = |p: &Path, m: u32| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap()
        };
        chmod(&file, 0o644);
        chmod(&key, 0o644);
        assert!(Policy::load(&file).is_ok());
        chmod(&file, 0o666);
        let e = Policy::load(&file).unwrap_err().to_string();
        assert!(
            e.contains("writable by group or others") && e.contains("policy.json"),
            "{e}"
        );
        chmod(&file, 0o644);
        chmod(&key, 0o664);
        let e = Policy::load(&file).unwrap_err().to_string();
        assert!(e.contains("cosign.pub") && e.contains("chmod go-w"), "{e}");
    }

    #[test]
    fn what_skiff_cannot_check_denies_rather_than_accepts() {
        let p =
            policy(r#"{"default":[{"type":"signedBy","keyType":"GPGKeys","keyPath":"/k.gpg"}]}"#)
                .unwrap();
        let rule = p.rule_for(&Reference::parse("a:1").unwrap());
        assert!(!rule.accepts_anything());
        assert!(matches!(rule.requirements[0], Requirement::Unsupported(_)));
    }
}
