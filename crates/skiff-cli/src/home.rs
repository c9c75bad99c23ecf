//! `SKIFF_HOME`: where the store and the compile cache live.

use anyhow::{bail, Context};
use std::path::{Path, PathBuf};

/// The resolved layout under `SKIFF_HOME`.
#[derive(Debug, Clone)]
pub struct Home {
    root: PathBuf,
}

impl Home {
    pub fn compile_cache(&self) -> PathBuf {
        self.root.join("cache").join("compiled")
    }

    #[allow(dead_code)] // used by the store once images land
    pub fn root(&self) -> &Path {
        &self.root
    }
}

/// `--home`/`SKIFF_HOME` if given, else `$XDG_DATA_HOME/skiff`, else `~/.local/share/skiff`.
/// Nothing is created here: a verb that writes creates what it needs.
pub fn resolve(explicit: Option<PathBuf>) -> anyhow::Result<Home> {
    let root = match explicit {
        Some(p) if p.as_os_str().is_empty() => bail!("SKIFF_HOME is set but empty"),
        Some(p) => p,
        None => match std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
            Some(xdg) => PathBuf::from(xdg).join("skiff"),
            None => {
                let home = std::env::var_os("HOME")
                    .filter(|v| !v.is_empty())
                    .context("cannot find a home directory: set SKIFF_HOME or HOME")?;
                PathBuf::from(home).join(".local/share/skiff")
            }
        },
    };
    Ok(Home { root })
}
