//! Image references in Docker's grammar: `[registry[:port]/]path[:tag][@sha256:hex]`.
//!
//! A name without a registry part is normalised as Docker does: `hello` is
//! `docker.io/library/hello`, `me/app` is `docker.io/me/app`. The first component is a registry
//! when it contains `.` or `:` or is `localhost`. The store keeps the full name; tables show the
//! short ("familiar") form, as `docker images` does.

use skiff_store::Digest;
use std::fmt;

pub const DEFAULT_REGISTRY: &str = "docker.io";
const LEGACY_REGISTRY: &str = "index.docker.io";
const OFFICIAL_PREFIX: &str = "library/";
const NAME_MAX: usize = 255;

/// A parsed, normalised reference.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Reference {
    registry: String,
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid reference {input:?}: {reason}")]
pub struct ReferenceError {
    pub input: String,
    pub reason: String,
}

impl Reference {
    /// Parse `s`. Errors say which part is wrong.
    pub fn parse(s: &str) -> Result<Reference, ReferenceError> {
        let err = |reason: String| ReferenceError {
            input: s.to_string(),
            reason,
        };
        if s.is_empty() {
            return Err(err("empty".into()));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((rest, d)) => (
                rest,
                Some(d.parse::<Digest>().map_err(|e| err(e.to_string()))?),
            ),
            None => (s, None),
        };
        // A ':' after the last '/' starts the tag; one before it is a registry port.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(tag) = tag {
            check_tag(tag).map_err(err)?;
        }
        if name.is_empty() {
            return Err(err("no repository name".into()));
        }
        if name.len() > NAME_MAX {
            return Err(err(format!(
                "the name is longer than {NAME_MAX} characters"
            )));
        }
        let (registry, path) = split_registry(name);
        check_registry(registry).map_err(err)?;
        for component in path.split('/') {
            check_path_component(component).map_err(err)?;
        }
        let registry = if registry == LEGACY_REGISTRY {
            DEFAULT_REGISTRY
        } else {
            registry
        };
        let path = if registry == DEFAULT_REGISTRY && !path.contains('/') {
            format!("{OFFICIAL_PREFIX}{path}")
        } else {
            path.to_string()
        };
        // The limit is on the full name, as Docker's: a short name under it could otherwise
        // grow past it (`docker.io/library/` is 18 more), and its full form, which the store
        // keeps and tables print, would no longer parse (found by fuzzing).
        let full_len = registry.len() + 1 + path.len();
        if full_len > NAME_MAX {
            return Err(err(format!(
                "the full name {registry}/{}... is {full_len} characters, more than {NAME_MAX}",
                &path[..path.len().min(24)]
            )));
        }
        Ok(Reference {
            registry: registry.to_string(),
            path,
            tag: tag.map(str::to_string),
            digest,
        })
    }

    /// The same repository with another tag and no digest.
    pub fn with_tag(&self, tag: &str) -> Result<Reference, ReferenceError> {
        check_tag(tag).map_err(|reason| ReferenceError {
            input: tag.to_string(),
            reason,
        })?;
        Ok(Reference {
            tag: Some(tag.to_string()),
            digest: None,
            ..self.clone()
        })
    }

    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The path within the registry: `library/hello`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// `registry/path`: what the store files tags under.
    pub fn repository(&self) -> String {
        format!("{}/{}", self.registry, self.path)
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The tag, `latest` when none was written and there is no digest either.
    pub fn tag_or_latest(&self) -> Option<&str> {
        match (&self.tag, &self.digest) {
            (Some(t), _) => Some(t),
            (None, None) => Some("latest"),
            (None, Some(_)) => None,
        }
    }

    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// The repository as `docker images` shows it: `hello`, `me/app`, `localhost:5000/app`.
    pub fn familiar_repository(&self) -> String {
        familiar(&self.repository())
    }
}

/// The short form of a full repository name: one that parses back to the same name (found by
/// fuzzing: `docker.io/library/a/b` was shown as `a/b`, which is `docker.io/a/b`).
pub fn familiar(repository: &str) -> String {
    let Some(path) = repository.strip_prefix("docker.io/") else {
        return repository.to_string();
    };
    // `library/x` is `x`, but `library/a/b` stays whole, as in Docker.
    if let Some(name) = path
        .strip_prefix(OFFICIAL_PREFIX)
        .filter(|n| !n.contains('/'))
    {
        return name.to_string();
    }
    // A first component that reads as a registry (`localhost/x`, `a.b/x`) keeps `docker.io/`.
    match path.split_once('/') {
        Some((first, _)) if first.contains(['.', ':']) || first == "localhost" => {
            repository.to_string()
        }
        _ => path.to_string(),
    }
}

impl fmt::Display for Reference {
    /// The full form: `docker.io/library/hello:1.0`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.path)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl Reference {
    /// The short form a user typed: `hello:1.0`.
    pub fn familiar(&self) -> String {
        let mut s = self.familiar_repository();
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(&d.to_string());
        }
        s
    }
}

fn split_registry(name: &str) -> (&str, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first != first.to_lowercase() =>
        {
            (first, rest)
        }
        _ => (DEFAULT_REGISTRY, name),
    }
}

fn check_registry(registry: &str) -> Result<(), String> {
    let (host, port) = match registry.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (registry, None),
    };
    if let Some(port) = port {
        if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("registry port {port:?} is not a number"));
        }
    }
    let ok = !host.is_empty()
        && host.split('.').all(|c| {
            !c.is_empty()
                && !c.starts_with('-')
                && !c.ends_with('-')
                && c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "registry {registry:?} is not a host name (letters, digits, - and . between them)"
        ))
    }
}

/// `[a-z0-9]+` joined by `.`, `_`, `__` or runs of `-`.
fn check_path_component(c: &str) -> Result<(), String> {
    if c.is_empty() {
        return Err("a path component is empty (`//` or a trailing `/`)".into());
    }
    if c.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err("repository names must be lowercase".into());
    }
    let bytes = c.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let mut i = 0;
    let mut need_alnum = true;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            need_alnum = false;
            i += 1;
            continue;
        }
        if need_alnum {
            return Err(format!(
                "path component {c:?} must start with a lowercase letter or digit, and \
                 separators (. _ __ -) must sit between letters or digits"
            ));
        }
        let sep_len = match bytes[i] {
            b'.' => 1,
            b'_' if bytes.get(i + 1) == Some(&b'_') => 2,
            b'_' => 1,
            b'-' => bytes[i..].iter().take_while(|&&b| b == b'-').count(),
            other => {
                return Err(format!(
                    "character {:?} is not allowed in a repository name",
                    other as char
                ))
            }
        };
        i += sep_len;
        need_alnum = true;
    }
    if need_alnum {
        return Err(format!(
            "path component {c:?} must end with a lowercase letter or digit"
        ));
    }
    Ok(())
}

fn check_tag(tag: &str) -> Result<(), String> {
    let first_ok = tag
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_');
    let ok = first_ok
        && tag.len() <= 128
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "tag {tag:?} must be 1 to 128 letters, digits, _ . - and start with a letter, digit or _"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(s: &str) -> String {
        Reference::parse(s).unwrap().to_string()
    }

    #[test]
    fn docker_normalisation() {
        assert_eq!(full("hello"), "docker.io/library/hello");
        assert_eq!(full("hello:1.0"), "docker.io/library/hello:1.0");
        assert_eq!(full("me/app:v2"), "docker.io/me/app:v2");
        assert_eq!(full("localhost:5000/app"), "localhost:5000/app");
        assert_eq!(full("localhost/app:1"), "localhost/app:1");
        assert_eq!(full("ghcr.io/a/b/c:x"), "ghcr.io/a/b/c:x");
        assert_eq!(full("index.docker.io/x"), "docker.io/library/x");
        let d = "sha256:".to_string() + &"a".repeat(64);
        let r = Reference::parse(&format!("127.0.0.1:5000/x:1@{d}")).unwrap();
        assert_eq!(r.registry(), "127.0.0.1:5000");
        assert_eq!(r.tag(), Some("1"));
        assert_eq!(r.digest().unwrap().to_string(), d);
        assert_eq!(r.tag_or_latest(), Some("1"));
        assert_eq!(
            Reference::parse("hello").unwrap().tag_or_latest(),
            Some("latest")
        );
        assert_eq!(
            Reference::parse("hello:1.0").unwrap().familiar(),
            "hello:1.0"
        );
        assert_eq!(Reference::parse("me/app").unwrap().familiar(), "me/app");
        assert_eq!(
            Reference::parse("x/a__b.c-d---e/f_g").unwrap().path(),
            "x/a__b.c-d---e/f_g"
        );
    }

    #[test]
    fn bad_references_say_why() {
        let long = "a".repeat(240);
        for (input, why) in [
            ("Hello", "lowercase"),
            ("me/App:1", "lowercase"),
            ("a/../b", "must start"),
            ("..", "must start"),
            ("a/", "empty"),
            ("a//b", "empty"),
            ("hello:", "tag"),
            ("hello:-x", "tag"),
            ("hello@sha256:abc", "invalid digest"),
            ("hello@md5:abc", "unsupported digest algorithm"),
            ("a b", "not allowed"),
            ("a-", "must end"),
            ("localhost:abc/x", "port"),
            ("", "empty"),
            (long.as_str(), "more than 255"),
        ] {
            let e = Reference::parse(input).unwrap_err().to_string();
            assert!(e.contains(why), "{input}: {e}");
        }
    }

    /// Fuzz regression (target `reference`): a short name under 255 characters whose full form
    /// (`docker.io/library/…`) is over it was accepted, and that full form then did not parse.
    #[test]
    fn the_length_limit_is_on_the_full_name() {
        let input = include_bytes!("../tests/fuzz-regressions/reference-long-short-name");
        let input = std::str::from_utf8(input).unwrap();
        let e = Reference::parse(input).unwrap_err().to_string();
        assert!(e.contains("full name docker.io/library/aaa"), "{e}");
        assert!(e.contains("more than 255"), "{e}");
        // 255 in full is still a name.
        let fits = "a".repeat(255 - "docker.io/library/".len());
        let r = Reference::parse(&fits).unwrap();
        assert_eq!(Reference::parse(&r.to_string()).unwrap(), r);
    }

    #[test]
    fn the_short_form_parses_back_to_the_same_name() {
        for (input, short) in [
            ("hello", "hello"),
            ("library/a/b", "library/a/b"),
            ("docker.io/a.b/c", "docker.io/a.b/c"),
            ("docker.io/localhost/c:1", "docker.io/localhost/c:1"),
            ("me/app", "me/app"),
            ("localhost/app", "localhost/app"),
        ] {
            let r = Reference::parse(input).unwrap();
            assert_eq!(r.familiar(), short);
            assert_eq!(Reference::parse(short).unwrap(), r, "{input}");
        }
    }
}
