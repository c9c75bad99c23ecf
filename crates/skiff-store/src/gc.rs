//! Prune: remove every blob no tag reaches, the compiled code of layers that are gone, and the
//! leftovers of interrupted writes.

use crate::refs::parse_refs;
use crate::{io, Digest, Result, Store, MANIFEST_MAX};
use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

/// What a prune removed.
#[derive(Debug, Default, Clone)]
pub struct PruneReport {
    pub blobs: Vec<Digest>,
    pub blob_bytes: u64,
    pub cache_entries: usize,
    pub cache_bytes: u64,
    pub temp_entries: usize,
}

/// What the tags reach, and what went wrong on the way (a tag naming a missing or unreadable
/// manifest, a manifest naming a missing blob).
pub(crate) struct Reach {
    pub live: BTreeSet<Digest>,
    pub broken: Vec<(Digest, String)>,
}

impl Store {
    /// Blobs reachable from tag `roots`: each manifest, what it names, recursively.
    pub(crate) fn reach(&self, roots: impl IntoIterator<Item = Digest>) -> Reach {
        let mut live = BTreeSet::new();
        let mut broken = Vec::new();
        let mut manifests: Vec<Digest> = roots.into_iter().collect();
        while let Some(m) = manifests.pop() {
            if !live.insert(m.clone()) {
                continue;
            }
            let refs = match self
                .read_blob(&m, MANIFEST_MAX)
                .map_err(|e| e.to_string())
                .and_then(|b| parse_refs(&b))
            {
                Ok(r) => r,
                Err(e) => {
                    broken.push((m, e));
                    continue;
                }
            };
            for b in refs.blobs {
                if !self.has_blob(&b) {
                    broken.push((m.clone(), format!("names blob {b}, which is missing")));
                }
                live.insert(b);
            }
            manifests.extend(refs.manifests);
        }
        Reach { live, broken }
    }

    /// Remove what no tag reaches. Takes the store lock exclusively: every other skiff process
    /// is between operations, so nothing half-written is mistaken for garbage.
    pub fn prune(&self) -> Result<PruneReport> {
        self.exclusively(|| {
            let roots = self.tags()?.into_iter().map(|t| t.digest);
            let live = self.reach(roots).live;
            let mut report = PruneReport::default();
            for (name, path) in self.blob_names()? {
                let keep = Digest::from_hex(&name).is_ok_and(|d| live.contains(&d));
                if keep {
                    continue;
                }
                let size = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                if let Ok(d) = Digest::from_hex(&name) {
                    // Foreign files (not a digest name) are check's business, not prune's.
                    self.delete_blob(&d)?;
                    report.blob_bytes += size;
                    report.blobs.push(d);
                }
            }
            report.temp_entries = self.leftovers(true)?.leftovers.len();
            let (n, bytes) = self.prune_compile_cache(&live)?;
            report.cache_entries = n;
            report.cache_bytes = bytes;
            Ok(report)
        })
    }

    /// After `rmi`: delete `manifest` and the blobs only it reached, if no tag reaches them any
    /// more. Needs the lock exclusively but does not wait for it: when another skiff process is
    /// using the store, nothing is deleted (`None`) and prune reclaims the space later.
    pub fn remove_if_unreferenced(&self, manifest: &Digest) -> Result<Option<PruneReport>> {
        match self.lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Ok(None),
            Err(std::fs::TryLockError::Error(e)) => return Err(io("cannot lock the store")(e)),
        }
        let result = (|| {
            let roots = self.tags()?.into_iter().map(|t| t.digest);
            let live = self.reach(roots).live;
            let mut report = PruneReport::default();
            for d in self.reach([manifest.clone()]).live {
                if live.contains(&d) || !self.has_blob(&d) {
                    continue;
                }
                report.blob_bytes += self.blob_size(&d).unwrap_or(0);
                self.delete_blob(&d)?;
                report.blobs.push(d);
            }
            let (n, bytes) = self.prune_compile_cache_of(&report.blobs)?;
            report.cache_entries = n;
            report.cache_bytes = bytes;
            Ok(report)
        })();
        self.lock
            .lock_shared()
            .map_err(io("cannot return the store lock to shared"))?;
        result.map(Some)
    }

    /// Compiled code of these (deleted) blobs.
    fn prune_compile_cache_of(&self, gone: &[Digest]) -> Result<(usize, u64)> {
        let (mut n, mut bytes) = (0, 0);
        for d in gone {
            let shard = self.compile_cache_dir().join(&d.hex()[..2]);
            let Ok(entries) = fs::read_dir(&shard) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with(d.hex()) && name.ends_with(".cwasm") {
                    let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
                    if fs::remove_file(entry.path()).is_ok() {
                        n += 1;
                        bytes += size;
                    }
                }
            }
        }
        Ok((n, bytes))
    }

    /// Compiled code whose wasm is no longer a live blob. Entries are
    /// `<aa>/<wasm-hex>-<settings>.cwasm` (see skiff-engine's cache). This also drops code
    /// compiled for `skiff run FILE` of files outside the store: it is recompiled on next use.
    fn prune_compile_cache(&self, live: &BTreeSet<Digest>) -> Result<(usize, u64)> {
        let walk = self.walk_compile_cache(live, true);
        Ok((walk.dead, walk.dead_bytes))
    }

    /// Every compile cache entry: those `live` keeps, and those a prune removes (removed now
    /// with `remove`).
    fn walk_compile_cache(&self, live: &BTreeSet<Digest>, remove: bool) -> CacheWalk {
        let mut walk = CacheWalk::default();
        let Ok(shards) = fs::read_dir(self.compile_cache_dir()) else {
            return walk;
        };
        for shard in shards.flatten() {
            if shard.file_name() == crate::COMPILE_CACHE_TMP {
                continue; // writes in flight, or leftovers: `leftovers` handles them
            }
            let Ok(entries) = fs::read_dir(shard.path()) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
                if !should_remove_cache_entry(&name, &entry.path(), live) {
                    walk.kept += 1;
                    walk.kept_bytes += size;
                } else if !remove || fs::remove_file(entry.path()).is_ok() {
                    walk.dead += 1;
                    walk.dead_bytes += size;
                }
            }
        }
        walk
    }

    /// What the store holds and what a prune would free (`skiff system df`). Reads only.
    pub fn usage(&self) -> Result<Usage> {
        let tags = self.tags()?;
        let images = tags.len();
        let live = self.reach(tags.into_iter().map(|t| t.digest)).live;
        let mut u = Usage {
            images,
            ..Usage::default()
        };
        for (name, path) in self.blob_names()? {
            let size = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            u.blobs += 1;
            u.blob_bytes += size;
            if !Digest::from_hex(&name).is_ok_and(|d| live.contains(&d)) {
                u.reclaimable_blob_bytes += size;
            }
        }
        let walk = self.walk_compile_cache(&live, false);
        u.cache_entries = walk.kept + walk.dead;
        u.cache_bytes = walk.kept_bytes + walk.dead_bytes;
        u.reclaimable_cache_bytes = walk.dead_bytes;
        Ok(u)
    }
}

#[derive(Default)]
struct CacheWalk {
    kept: usize,
    kept_bytes: u64,
    dead: usize,
    dead_bytes: u64,
}

/// The store's disk use, and how much of it no tag needs.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Usage {
    /// Tags.
    pub images: usize,
    pub blobs: usize,
    pub blob_bytes: u64,
    pub reclaimable_blob_bytes: u64,
    pub cache_entries: usize,
    pub cache_bytes: u64,
    pub reclaimable_cache_bytes: u64,
}

fn should_remove_cache_entry(name: &str, path: &Path, live: &BTreeSet<Digest>) -> bool {
    if name.starts_with(".tmp-") {
        // Written beside the entries by skiff before its temp files were locked (they now go to
        // `tmp/`, see `leftovers`): a compile in flight writes one for a moment, so only an old
        // one is a crash's leftover.
        return fs::metadata(path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age.as_secs() > 3600);
    }
    let Some(stem) = name.strip_suffix(".cwasm") else {
        return false;
    };
    let hex = stem.split('-').next().unwrap_or("");
    match Digest::from_hex(hex) {
        Ok(d) => !live.contains(&d),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use crate::blobs::tests::store;

    #[test]
    fn prune_keeps_what_tags_reach() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let config = s.put_blob_bytes(b"{}").unwrap();
        let layer = s.put_blob_bytes(b"\0asm-layer").unwrap();
        let orphan = s.put_blob_bytes(b"orphan").unwrap();
        let manifest = format!(
            r#"{{"schemaVersion":2,"config":{{"digest":"{config}"}},"layers":[{{"digest":"{layer}"}}]}}"#
        );
        let m = s.put_manifest(manifest.as_bytes()).unwrap();
        s.set_tag("docker.io/library/a", "1", &m).unwrap();
        // Compiled code: one for the live layer, one for the orphan.
        let cache = s.compile_cache_dir();
        for d in [&layer, &orphan] {
            let p = cache
                .join(&d.hex()[..2])
                .join(format!("{}-0123456789abcdef.cwasm", d.hex()));
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, b"code").unwrap();
        }
        std::fs::write(s.tmp_dir().join(".blob-leftover"), b"x").unwrap();

        let u = s.usage().unwrap();
        assert_eq!((u.images, u.blobs, u.cache_entries), (1, 4, 2));
        assert_eq!(u.reclaimable_blob_bytes, b"orphan".len() as u64);
        assert_eq!(u.reclaimable_cache_bytes, b"code".len() as u64);
        let report = s.prune().unwrap();
        assert_eq!(report.blobs, vec![orphan.clone()]);
        assert_eq!(report.cache_entries, 1);
        assert_eq!(report.temp_entries, 1);
        for d in [&config, &layer, &m] {
            assert!(s.has_blob(d));
        }
        assert!(!s.has_blob(&orphan));

        s.remove_tag("docker.io/library/a", "1").unwrap();
        let report = s.prune().unwrap();
        assert_eq!(report.blobs.len(), 3);
        assert_eq!(report.cache_entries, 1);
    }
}
