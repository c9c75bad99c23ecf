//! Which host directories API clients may mount into workloads (`skiff daemon --allow-mount`).
//!
//! The default is Docker's model: whoever may use the API may mount any directory the daemon's
//! user can open, `/` included, so API access equals that user's file access. That is what the
//! Unix socket (mode 0600, the daemon's user only) already implies, and what `skiff run -d -v`
//! users expect; the daemon says so when it starts. With `--allow-mount PREFIX` (repeatable) a
//! mount must resolve inside one of the prefixes: both sides are canonicalized (symlinks
//! followed, `..` removed) before comparing whole path components, so `/srv/data/../..`, a
//! symlink inside `/srv/data` pointing at `/`, and `/srv/data2` are all outside `/srv/data`.
//!
//! The check is made when a spec is accepted and again each time the daemon starts the workload
//! after a restart (the allow-list may have changed). What it cannot see: someone with write
//! access inside an allowed prefix swapping a checked directory for a symlink between the check
//! and the guest's start (docs/security.md).

use std::path::{Component, Path, PathBuf};

/// The daemon's mount rule.
#[derive(Debug, Clone, Default)]
pub struct MountPolicy {
    /// Canonical prefixes; `None` allows any path.
    allowed: Option<Vec<PathBuf>>,
}

/// Why a mount was refused: outside every prefix (403) or not usable at all (400).
#[derive(Debug, PartialEq, Eq)]
pub enum MountRefused {
    Outside(String),
    Invalid(String),
}

impl MountPolicy {
    /// Any host path (the default).
    pub fn any() -> MountPolicy {
        MountPolicy { allowed: None }
    }

    /// Only paths under these prefixes, each of which must exist (it is canonicalized now, so
    /// a symlinked prefix means its target).
    pub fn only(prefixes: &[PathBuf]) -> Result<MountPolicy, String> {
        let allowed = prefixes
            .iter()
            .map(|p| {
                std::fs::canonicalize(p).map_err(|e| format!("--allow-mount {}: {e}", p.display()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(MountPolicy {
            allowed: Some(allowed),
        })
    }

    /// What the daemon prints at start.
    pub fn describe(&self) -> String {
        match &self.allowed {
            None => "API clients may mount any host directory this daemon's user can open \
                     (API access equals the daemon user's file access); restrict with \
                     --allow-mount PATH"
                .into(),
            Some(p) => format!(
                "API clients may mount host directories under {} only (--allow-mount)",
                p.iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    /// Whether `host` may be mounted.
    pub fn check(&self, host: &str) -> Result<(), MountRefused> {
        let Some(allowed) = &self.allowed else {
            return Ok(());
        };
        let outside = |shown: &Path| {
            MountRefused::Outside(format!(
                "mount {host}: {} is outside every directory this daemon allows mounts from \
                 (its --allow-mount flags: {}); ask its operator, or mount a directory under one",
                shown.display(),
                allowed
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        };
        let inside = |p: &Path| allowed.iter().any(|a| p.starts_with(a));
        match std::fs::canonicalize(host) {
            Ok(real) if inside(&real) => Ok(()),
            Ok(real) => Err(outside(&real)),
            // Not resolvable: answered as "outside" unless even its spelling is inside, so a
            // client cannot learn which paths exist elsewhere on the host.
            Err(e) => {
                let spelled = lexical(Path::new(host));
                if inside(&spelled) {
                    Err(MountRefused::Invalid(format!("mount {host}: {e}")))
                } else {
                    Err(outside(&spelled))
                }
            }
        }
    }
}

/// `path` with `.` and `..` resolved by their spelling alone.
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_hold_after_canonicalization() {
        let root = tempfile::tempdir().unwrap();
        let data = root.path().join("data");
        std::fs::create_dir_all(data.join("inner")).unwrap();
        std::fs::create_dir_all(root.path().join("data2")).unwrap();
        std::os::unix::fs::symlink("/", data.join("escape")).unwrap();
        let p = MountPolicy::only(std::slice::from_ref(&data)).unwrap();
        let s = |p: PathBuf| p.to_str().unwrap().to_string();
        assert_eq!(p.check(&s(data.join("inner"))), Ok(()));
        assert_eq!(p.check(&s(data.clone())), Ok(()));
        for bad in [
            data.join("inner/../.."),
            data.join("escape"),
            root.path().join("data2"),
            PathBuf::from("/"),
            data.join("../nonexistent"),
        ] {
            assert!(
                matches!(p.check(&s(bad.clone())), Err(MountRefused::Outside(_))),
                "{}",
                bad.display()
            );
        }
        assert!(matches!(
            p.check(&s(data.join("missing"))),
            Err(MountRefused::Invalid(_))
        ));
        assert_eq!(MountPolicy::any().check("/"), Ok(()));
        assert!(MountPolicy::only(&[root.path().join("nope")]).is_err());
    }
}
