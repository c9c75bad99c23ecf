//! Check (fsck): re-hash every blob, follow every tag to a complete image; with repair, remove
//! what is wrong so that what remains is right.

use crate::tags::read_tag;
use crate::{io, Digest, Result, Store};
use sha2::{Digest as _, Sha256};
use std::collections::BTreeSet;
use std::fmt;
use std::fs::{self, File};
use std::path::PathBuf;

/// One thing found wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// A blob whose bytes do not hash to its name.
    CorruptBlob { digest: Digest, actual: Digest },
    /// A file in `blobs/sha256/` whose name is not a digest.
    ForeignFile { path: PathBuf },
    /// A tag file that does not hold a digest.
    BadTag {
        repository: String,
        tag: String,
        reason: String,
    },
    /// A tag whose image is missing, incomplete or corrupt.
    DanglingTag {
        repository: String,
        tag: String,
        digest: Digest,
        reason: String,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::CorruptBlob { digest, actual } => {
                write!(f, "blob {digest}: corrupt, its bytes hash to {actual}")
            }
            Problem::ForeignFile { path } => {
                write!(
                    f,
                    "{}: not a blob (its name is not a digest)",
                    path.display()
                )
            }
            Problem::BadTag {
                repository,
                tag,
                reason,
            } => write!(f, "tag {repository}:{tag}: unreadable: {reason}"),
            Problem::DanglingTag {
                repository,
                tag,
                digest,
                reason,
            } => write!(f, "tag {repository}:{tag} -> {digest}: {reason}"),
        }
    }
}

/// What a check looked at and found.
#[derive(Debug, Clone, Default)]
pub struct CheckReport {
    pub blobs: usize,
    pub tags: usize,
    pub problems: Vec<Problem>,
    /// Temp files and staging dirs of interrupted writes (in `tmp/` and the compile cache's
    /// temp directory): harmless (never read), swept by the next skiff command that opens the
    /// store, removed by prune and by repair.
    pub leftovers: Vec<crate::leftovers::Leftover>,
    /// Writes in flight in other processes (their temp files are locked): never touched.
    pub in_flight: usize,
    /// True when the problems were removed.
    pub repaired: bool,
}

impl Store {
    /// Verify every blob's digest and every tag's image. With `repair`, remove corrupt blobs,
    /// foreign files, unreadable and dangling tags, and leftovers; this takes the store lock
    /// exclusively.
    pub fn check(&self, repair: bool) -> Result<CheckReport> {
        if repair {
            self.exclusively(|| self.check_inner(true))
        } else {
            self.check_inner(false)
        }
    }

    fn check_inner(&self, repair: bool) -> Result<CheckReport> {
        let mut report = CheckReport::default();
        let mut corrupt = BTreeSet::new();
        for (name, path) in self.blob_names()? {
            report.blobs += 1;
            let Ok(digest) = Digest::from_hex(&name) else {
                report
                    .problems
                    .push(Problem::ForeignFile { path: path.clone() });
                if repair {
                    remove_any(&path)?;
                }
                continue;
            };
            let actual = hash_file(&path)?;
            if actual != digest {
                report.problems.push(Problem::CorruptBlob {
                    digest: digest.clone(),
                    actual,
                });
                if repair {
                    self.delete_blob(&digest)?;
                }
                corrupt.insert(digest);
            }
        }
        for (repository, tag, path) in self.tag_files()? {
            report.tags += 1;
            let digest = match read_tag(&path) {
                Ok(Some(d)) => d,
                Ok(None) => continue, // removed meanwhile
                Err(e) => {
                    report.problems.push(Problem::BadTag {
                        repository,
                        tag,
                        reason: e.to_string(),
                    });
                    if repair {
                        remove_any(&path)?;
                    }
                    continue;
                }
            };
            let reason = if self.has_blob(&digest) {
                let reach = self.reach([digest.clone()]);
                match reach.broken.first() {
                    Some((m, why)) => Some(format!("manifest {m} {why}")),
                    None => reach
                        .live
                        .iter()
                        .find(|d| corrupt.contains(*d))
                        .map(|d| format!("its image includes corrupt blob {d}")),
                }
            } else {
                Some("the manifest is missing".to_string())
            };
            if let Some(reason) = reason {
                report.problems.push(Problem::DanglingTag {
                    repository,
                    tag,
                    digest,
                    reason,
                });
                if repair {
                    remove_any(&path)?;
                }
            }
        }
        let scan = self.leftovers(repair)?;
        report.leftovers = scan.leftovers;
        report.in_flight = scan.in_flight;
        report.repaired = repair;
        Ok(report)
    }
}

fn hash_file(path: &std::path::Path) -> Result<Digest> {
    let mut file = File::open(path).map_err(io(format!("cannot open {}", path.display())))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(io(format!("cannot read {}", path.display())))?;
    Ok(Digest::from_sha256(hasher))
}

fn remove_any(path: &std::path::Path) -> Result<()> {
    let r = if path.is_dir() {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    };
    r.map_err(io(format!("cannot remove {}", path.display())))
}

#[cfg(test)]
mod tests {
    use crate::blobs::tests::store;
    use crate::Problem;

    #[test]
    fn check_finds_and_repairs() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let config = s.put_blob_bytes(b"{}").unwrap();
        let layer = s.put_blob_bytes(b"layer").unwrap();
        let manifest = format!(
            r#"{{"schemaVersion":2,"config":{{"digest":"{config}"}},"layers":[{{"digest":"{layer}"}}]}}"#
        );
        let m = s.put_manifest(manifest.as_bytes()).unwrap();
        s.set_tag("docker.io/library/a", "1", &m).unwrap();
        let clean = s.check(false).unwrap();
        assert!(clean.problems.is_empty(), "{:?}", clean.problems);
        assert_eq!((clean.blobs, clean.tags), (3, 1));

        // Flip the layer's bytes and drop a stray file.
        std::fs::write(s.blob_path(&layer), b"LAYER").unwrap();
        std::fs::write(s.blobs_dir().join("junk"), b"x").unwrap();
        let found = s.check(false).unwrap();
        assert_eq!(found.problems.len(), 3, "{:?}", found.problems);
        assert!(matches!(found.problems[0], Problem::CorruptBlob { .. }));
        assert!(matches!(found.problems[2], Problem::DanglingTag { .. }));

        let repaired = s.check(true).unwrap();
        assert!(repaired.repaired);
        let after = s.check(false).unwrap();
        assert!(after.problems.is_empty(), "{:?}", after.problems);
        assert!(s.tags().unwrap().is_empty());
        assert!(!s.has_blob(&layer));
    }
}
