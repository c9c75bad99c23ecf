//! An image's files (a Spin component's `files`), given to the guest read-only at `/`. They are
//! written out once per image under `SKIFF_HOME/files/<manifest hex>/`, nothing else in that
//! directory, so the mount shows the guest those files and no more of the host.

use crate::home::Home;
use anyhow::Context;
use skiff_image::Image;
use std::io::Write;
use std::path::PathBuf;

/// The directory holding `image`'s files, made if missing; `None` when it has none. A directory
/// that exists is complete: it is renamed into place only once every file is written.
pub fn materialise(
    home: &Home,
    store: &skiff_store::Store,
    image: &Image,
) -> anyhow::Result<Option<PathBuf>> {
    let files = image.files();
    if files.is_empty() {
        return Ok(None);
    }
    let root = home.root().join("files");
    let dir = root.join(image.digest.hex());
    if dir.is_dir() {
        return Ok(Some(dir));
    }
    let tmp = root.join(format!(
        ".tmp-{}-{}",
        image.digest.hex(),
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&tmp);
    let made = (|| -> anyhow::Result<()> {
        for (path, layer) in &files {
            // Checked when the image was read (skiff_image::files::check): relative, no `..`.
            let target = tmp.join(path);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent)?;
            }
            let mut from = store.open_blob(&layer.digest)?;
            let mut to = std::fs::File::create(&target)?;
            std::io::copy(&mut from, &mut to)?;
            to.flush()?;
            set_read_only(&target)?;
        }
        Ok(())
    })();
    if let Err(e) = made {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e)
            .with_context(|| format!("cannot write the image's files under {}", root.display()));
    }
    if let Err(e) = std::fs::rename(&tmp, &dir) {
        let _ = std::fs::remove_dir_all(&tmp);
        // Another skiff wrote the same files first.
        if !dir.is_dir() {
            return Err(e).with_context(|| format!("cannot create {}", dir.display()));
        }
    }
    Ok(Some(dir))
}

#[cfg(unix)]
fn set_read_only(path: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o444))
}

#[cfg(not(unix))]
fn set_read_only(path: &std::path::Path) -> std::io::Result<()> {
    let mut p = std::fs::metadata(path)?.permissions();
    p.set_readonly(true);
    std::fs::set_permissions(path, p)
}

/// Remove the files of images no longer in the store (after `rmi` or a prune) and leftovers of
/// interrupted writes (best effort: what cannot be removed now is tried again next time). A
/// guest still running from one keeps the files it has open.
pub fn prune(home: &Home, store: &skiff_store::Store) {
    let Ok(entries) = std::fs::read_dir(home.root().join("files")) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let live = skiff_store::Digest::from_hex(&name).is_ok_and(|d| store.has_blob(&d));
        if !live {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}
