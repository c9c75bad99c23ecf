//! Tags: one small file per tag, `tags/<repository path>/_tags/<tag>`, holding the manifest
//! digest. One file per tag means a tag is changed by one atomic rename, and two processes
//! tagging at once never corrupt each other's tags (there is no shared index file to rewrite).
//!
//! The repository is the fully qualified name (`docker.io/library/hello`). `_tags` cannot be a
//! repository path component (those start with a letter or digit), so the two never collide.

use crate::fsutil::write_atomically;
use crate::{io, Digest, Result, Store, StoreError};
use std::fs;
use std::path::{Path, PathBuf};

const TAGS_DIR: &str = "_tags";

/// A tag as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagEntry {
    pub repository: String,
    pub tag: String,
    pub digest: Digest,
}

impl Store {
    /// Point `repository:tag` at `digest` (a manifest that must already be stored).
    pub fn set_tag(&self, repository: &str, tag: &str, digest: &Digest) -> Result<()> {
        let path = self.tag_path(repository, tag)?;
        if !self.has_blob(digest) {
            return Err(StoreError::BlobNotFound(digest.clone()));
        }
        write_atomically(&self.tmp_dir(), &path, format!("{digest}\n").as_bytes())
    }

    /// The manifest `repository:tag` points at, if the tag exists.
    pub fn get_tag(&self, repository: &str, tag: &str) -> Result<Option<Digest>> {
        let path = self.tag_path(repository, tag)?;
        read_tag(&path)
    }

    /// Remove a tag; `false` if there was none.
    pub fn remove_tag(&self, repository: &str, tag: &str) -> Result<bool> {
        let path = self.tag_path(repository, tag)?;
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io(format!("cannot remove tag {repository}:{tag}"))(e)),
        }
    }

    /// The manifest digest a reference names: by tag, by digest, or both (then they must agree,
    /// as Docker requires for `name:tag@digest`). `None` when the store lacks it.
    pub fn resolve(
        &self,
        repository: &str,
        tag: Option<&str>,
        digest: Option<&Digest>,
    ) -> Result<Option<Digest>> {
        if let Some(digest) = digest {
            // A digest names content: present or not, the tag adds nothing to find it.
            return Ok(self.has_blob(digest).then(|| digest.clone()));
        }
        let tag = tag.unwrap_or("latest");
        match self.get_tag(repository, tag)? {
            Some(d) if self.has_blob(&d) => Ok(Some(d)),
            _ => Ok(None),
        }
    }

    /// Every tag, sorted by repository then tag. Unreadable tag files are skipped here (and
    /// reported by `check`).
    pub fn tags(&self) -> Result<Vec<TagEntry>> {
        Ok(self
            .tag_files()?
            .into_iter()
            .filter_map(|(repository, tag, path)| {
                let digest = read_tag(&path).ok().flatten()?;
                Some(TagEntry {
                    repository,
                    tag,
                    digest,
                })
            })
            .collect())
    }

    /// Every tag file: (repository, tag, path), whatever its contents.
    pub(crate) fn tag_files(&self) -> Result<Vec<(String, String, PathBuf)>> {
        let mut out = Vec::new();
        walk(&self.tags_dir(), &mut Vec::new(), &mut out)?;
        out.sort();
        Ok(out)
    }

    fn tag_path(&self, repository: &str, tag: &str) -> Result<PathBuf> {
        check_repository(repository)?;
        check_tag(tag)?;
        let mut p = self.tags_dir();
        p.extend(repository.split('/'));
        Ok(p.join(TAGS_DIR).join(tag))
    }
}

pub(crate) fn read_tag(path: &Path) -> Result<Option<Digest>> {
    match fs::read_to_string(path) {
        Ok(s) => Ok(Some(s.trim().parse()?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(format!("cannot read tag {}", path.display()))(e)),
    }
}

fn walk(
    dir: &Path,
    repo: &mut Vec<String>,
    out: &mut Vec<(String, String, PathBuf)>,
) -> Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io(format!("cannot list {}", dir.display()))(e)),
    };
    for entry in entries {
        let entry = entry.map_err(io(format!("cannot list {}", dir.display())))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
        if name.starts_with('.') {
            continue; // a temp file of a write in flight, or left by a crash
        }
        if name == TAGS_DIR && is_dir && !repo.is_empty() {
            for tag in fs::read_dir(entry.path()).map_err(io("cannot list tags"))? {
                let tag = tag.map_err(io("cannot list tags"))?;
                let tag_name = tag.file_name().to_string_lossy().into_owned();
                if !tag_name.starts_with('.') {
                    out.push((repo.join("/"), tag_name, tag.path()));
                }
            }
        } else if is_dir {
            repo.push(name);
            walk(&entry.path(), repo, out)?;
            repo.pop();
        }
    }
    Ok(())
}

/// Path safety, not the full reference grammar (`skiff-image` enforces that): every component is
/// a plain file name that cannot climb out of `tags/` or collide with `_tags`.
fn check_repository(repository: &str) -> Result<()> {
    let bad = |reason| StoreError::InvalidName {
        what: "repository",
        value: repository.to_string(),
        reason,
    };
    if repository.is_empty() || repository.len() > 255 {
        return Err(bad("must be 1 to 255 characters"));
    }
    for c in repository.split('/') {
        if c.is_empty() || c.starts_with(['.', '_', '-']) {
            return Err(bad("a path component is empty or starts with . _ or -"));
        }
        if !c
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-:".contains(&b))
        {
            return Err(bad("only letters, digits, . _ - : and / are allowed"));
        }
    }
    Ok(())
}

fn check_tag(tag: &str) -> Result<()> {
    let ok = !tag.is_empty()
        && tag.len() <= 128
        && !tag.starts_with(['.', '-'])
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(StoreError::InvalidName {
            what: "tag",
            value: tag.to_string(),
            reason: "a tag is 1 to 128 of letters, digits, _ . - and does not start with . or -",
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::blobs::tests::store;
    use crate::StoreError;

    #[test]
    fn tags_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let d = s.put_blob_bytes(b"m").unwrap();
        s.set_tag("docker.io/library/hello", "1.0", &d).unwrap();
        s.set_tag("localhost:5000/a/b", "latest", &d).unwrap();
        assert_eq!(
            s.get_tag("docker.io/library/hello", "1.0").unwrap(),
            Some(d.clone())
        );
        let all = s.tags().unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].repository, "docker.io/library/hello");
        assert_eq!(all[1].repository, "localhost:5000/a/b");
        assert_eq!(
            s.resolve("localhost:5000/a/b", None, None).unwrap(),
            Some(d.clone())
        );
        assert!(s.remove_tag("docker.io/library/hello", "1.0").unwrap());
        assert!(!s.remove_tag("docker.io/library/hello", "1.0").unwrap());
        assert_eq!(s.tags().unwrap().len(), 1);
    }

    #[test]
    fn names_cannot_escape() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let d = s.put_blob_bytes(b"m").unwrap();
        for (repo, tag) in [
            ("../etc", "x"),
            ("a/../../b", "x"),
            ("a//b", "x"),
            ("a/_tags", "x"),
            ("a", "../x"),
            ("a", "x/y"),
            ("/abs", "x"),
        ] {
            let err = s.set_tag(repo, tag, &d).unwrap_err();
            assert!(
                matches!(err, StoreError::InvalidName { .. }),
                "{repo}:{tag}"
            );
        }
    }
}
