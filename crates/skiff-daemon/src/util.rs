//! Small helpers with no better home: times, random ids, private files.

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;
use std::time::SystemTime;

/// Now, as the daemon records times: RFC 3339 in UTC with nanoseconds.
pub fn now() -> String {
    skiff_store::time::format_rfc3339_nanos(SystemTime::now())
}

/// `n` random bytes as hex, from the kernel.
pub fn random_hex(n: usize) -> std::io::Result<String> {
    use std::io::Read;
    let mut buf = vec![0u8; n];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut buf)?;
    Ok(hex::encode(buf))
}

/// A directory only its owner may enter.
pub fn private_dir(path: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
}

/// Write a secret: created 0600 from the first byte, then renamed into place.
pub fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    skiff_store::atomic::write_atomic(path, skiff_store::atomic::Atomic::PRIVATE, contents)
}

/// Constant-time comparison, so that a token cannot be guessed byte by byte from timings.
pub fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare() {
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abc", b"abd"));
        assert!(!same_secret(b"abc", b"ab"));
    }
}
