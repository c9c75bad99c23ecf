//! `SKIFF_HOME`: where the store and the compile cache live.

use anyhow::{bail, Context};
use std::path::{Path, PathBuf};

/// The resolved layout under `SKIFF_HOME`.
#[derive(Debug, Clone)]
pub struct Home {
    root: PathBuf,
    /// `--policy`/`SKIFF_POLICY`, if given.
    policy: Option<PathBuf>,
}

impl Home {
    pub fn compile_cache(&self) -> PathBuf {
        self.root.join("cache").join("compiled")
    }

    #[allow(dead_code)] // for verbs that need the raw path
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Open the image store (creating it on first use), sweeping what interrupted writes of
    /// earlier skiff processes left (never a write in flight: those are locked). Holding it
    /// holds the store lock shared, so drop it before a long run.
    pub fn store(&self) -> anyhow::Result<skiff_store::Store> {
        let store = self.store_as_is()?;
        match store.sweep_leftovers() {
            Ok(s) if !s.leftovers.is_empty() => tracing::info!(
                "removed {} leftover(s) of interrupted writes ({} bytes)",
                s.leftovers.len(),
                s.leftovers.iter().map(|l| l.bytes).sum::<u64>()
            ),
            Ok(_) => {}
            // Leftovers are never read: failing to remove them is no reason to stop the verb.
            Err(e) => tracing::warn!("{e}"),
        }
        Ok(store)
    }

    /// The trust policy pulls are checked against: `--policy FILE` (or `SKIFF_POLICY`), else
    /// `SKIFF_HOME/policy.json` if it exists, else the default (accept anything, as Docker does).
    /// A file that is named but missing or malformed is an error: never a fallback to accept.
    pub fn policy(&self) -> anyhow::Result<skiff_trust::Policy> {
        let path = match &self.policy {
            Some(p) => p.clone(),
            None => {
                let p = self.root.join("policy.json");
                if !p.exists() {
                    return Ok(skiff_trust::Policy::default());
                }
                p
            }
        };
        Ok(skiff_trust::Policy::load(&path)?)
    }

    /// The store without the sweep: for `system check`, which reports leftovers.
    pub fn store_as_is(&self) -> anyhow::Result<skiff_store::Store> {
        skiff_store::Store::open(skiff_store::StoreConfig {
            root: self.root.clone(),
            max_blob_size: skiff_store::StoreConfig::DEFAULT_MAX_BLOB_SIZE,
        })
        .with_context(|| format!("cannot open the store at {}", self.root.display()))
    }
}

/// `--home`/`SKIFF_HOME` if given, else `$XDG_DATA_HOME/skiff`, else `~/.local/share/skiff`.
/// Nothing is created here: a verb that writes creates what it needs.
pub fn resolve(explicit: Option<PathBuf>, policy: Option<PathBuf>) -> anyhow::Result<Home> {
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
    if policy.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
        bail!("SKIFF_POLICY is set but empty: name a policy file, or unset it");
    }
    Ok(Home { root, policy })
}
