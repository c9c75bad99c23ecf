//! A build context for `skiff build`: a temp dir with a skiff.toml and a copy of a guest.

use std::path::{Path, PathBuf};

pub struct Project {
    pub dir: tempfile::TempDir,
}

impl Project {
    /// `wasm` is a guest from guests/wasm, copied in as app.wasm; `extra` is appended to a
    /// skiff.toml that names it.
    pub fn new(name: &str, wasm: &str, extra: &str) -> Project {
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(super::guest(wasm), dir.path().join("app.wasm")).unwrap();
        let toml = format!("name = \"{name}\"\nwasm = \"app.wasm\"\n{extra}");
        std::fs::write(dir.path().join("skiff.toml"), toml).unwrap();
        Project { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn arg(&self) -> &str {
        self.dir.path().to_str().unwrap()
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// The digest `skiff build -q` printed.
pub fn digest_of(stdout: &str) -> String {
    let d = stdout.trim().to_string();
    assert!(
        d.starts_with("sha256:") && d.len() == 71,
        "not a digest: {d:?}"
    );
    d
}
