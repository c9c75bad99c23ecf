//! Files an image gives its guest read-only (a Spin component's `files`): after the wasm layer,
//! one `application/vnd.wasm.content.layer.v1+data` layer per file, titled with the file's path
//! under the guest's `/`. The rules on those paths and on how many and how large they may be
//! live here, for the pull that writes such an image and every reader of it.

use crate::annotations::OCI_TITLE;
use crate::model::Descriptor;

/// At most this many files per image. Spin itself pushes at most 500 layers (ECR's limit) and
/// switches to one archive layer beyond that.
pub const MAX_FILES: usize = 4096;
/// At most this many bytes of files per image, summed: they are written out whole before the
/// guest starts.
pub const MAX_FILES_BYTES: u64 = 1 << 30;

/// `path` as a relative path under the guest's `/`, or why it cannot be one: it must be
/// relative, name a file below the root (no `..`, no empty name), and have no NUL. `.`
/// components are dropped.
pub fn guest_path(path: &str) -> Result<String, String> {
    let bad = |why: &str| Err(format!("file path {path:?} {why}"));
    if path.starts_with('/') {
        return bad("is absolute; Spin writes paths relative to the guest's /");
    }
    if path.contains('\0') {
        return bad("contains a NUL byte");
    }
    if path.len() > 4096 {
        return bad("is longer than 4096 bytes");
    }
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" if parts.is_empty() && path.is_empty() => return bad("is empty"),
            "" => return bad("has an empty component"),
            "." => {}
            ".." => return bad("leaves the root with `..`"),
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        return bad("names the root, not a file");
    }
    Ok(parts.join("/"))
}

/// Check a set of files as a whole: within the limits, each path valid, and no path a file and a
/// directory at once (`a` and `a/b`), nor given twice. Returns the paths, normalised.
pub fn check<'a>(files: impl IntoIterator<Item = (&'a str, u64)>) -> Result<Vec<String>, String> {
    let mut paths = Vec::new();
    let mut total: u64 = 0;
    for (i, (path, size)) in files.into_iter().enumerate() {
        if i >= MAX_FILES {
            return Err(format!(
                "more than {MAX_FILES} files; skiff mounts at most {MAX_FILES}"
            ));
        }
        total = total.saturating_add(size);
        if total > MAX_FILES_BYTES {
            return Err(format!(
                "files larger than {MAX_FILES_BYTES} bytes in all; skiff mounts at most that"
            ));
        }
        paths.push(guest_path(path)?);
    }
    let mut seen = std::collections::BTreeSet::new();
    for p in &paths {
        if !seen.insert(p.as_str()) {
            return Err(format!("file path {p:?} is given twice"));
        }
    }
    for p in &paths {
        for (i, _) in p.match_indices('/') {
            if seen.contains(&p[..i]) {
                return Err(format!(
                    "{:?} is a file and also a directory holding {p:?}",
                    &p[..i]
                ));
            }
        }
    }
    Ok(paths)
}

/// The files of a manifest's layers after the first: (path, layer).
pub fn of_layers(layers: &[Descriptor]) -> Vec<(&str, &Descriptor)> {
    layers
        .iter()
        .skip(1)
        .map(|l| {
            let path = l.annotations.get(OCI_TITLE).map(String::as_str);
            (path.unwrap_or(""), l)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_under_the_root() {
        assert_eq!(guest_path("data/in.txt").unwrap(), "data/in.txt");
        assert_eq!(guest_path("./a/./b").unwrap(), "a/b");
        for bad in [
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a//b",
            "",
            ".",
            "a/",
            "a\0b",
        ] {
            assert!(guest_path(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn sets_are_bounded_and_consistent() {
        assert!(check([("a", 1), ("b/c", 2)]).is_ok());
        assert!(check([("a", 1), ("a", 1)])
            .unwrap_err()
            .contains("given twice"));
        assert!(check([("a", 1), ("a/b", 1)])
            .unwrap_err()
            .contains("also a directory"));
        assert!(check([("a", 1), ("a-x", 1), ("a/b", 1)])
            .unwrap_err()
            .contains("also a directory"));
        assert!(check([("ab", 1), ("a/b", 1)]).is_ok());
        let many: Vec<(String, u64)> = (0..=MAX_FILES).map(|i| (format!("f{i}"), 1)).collect();
        assert!(check(many.iter().map(|(p, s)| (p.as_str(), *s)))
            .unwrap_err()
            .contains("more than"));
        assert!(check([("a", MAX_FILES_BYTES), ("b", 1)])
            .unwrap_err()
            .contains("larger than"));
    }
}
