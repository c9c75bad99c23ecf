//! `-e K=V`, `-e K` and `--env-file FILE`, as Docker reads them.

use crate::EnvVar;
use std::path::Path;

/// `K=V`, or `K` alone to pass the host's value (`None` when the host has none: not set, as
/// Docker does).
pub fn parse_env(spec: &str) -> Result<Option<EnvVar>, String> {
    let (k, v) = match spec.split_once('=') {
        Some((k, v)) => (k.to_string(), v.to_string()),
        None => match std::env::var(spec) {
            Ok(v) => (spec.to_string(), v),
            Err(_) => return Ok(None),
        },
    };
    if k.is_empty() || k.contains('\0') {
        return Err(format!(
            "invalid environment variable {spec:?}: expected K=V with a non-empty K"
        ));
    }
    Ok(Some(EnvVar { name: k, value: v }))
}

/// A file of `K=V` (or `K`) lines; blank lines and `#` comments are skipped. In file order.
pub fn read_env_file(path: &Path) -> Result<Vec<EnvVar>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("--env-file {}: cannot read it: {e}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let var = parse_env(line)
            .map_err(|e| format!("--env-file {} line {}: {e}", path.display(), i + 1))?;
        out.extend(var);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_specs() {
        assert_eq!(parse_env("A=1=2").unwrap(), Some(EnvVar::new("A", "1=2")));
        assert_eq!(parse_env("A=").unwrap(), Some(EnvVar::new("A", "")));
        assert!(parse_env("=1").unwrap_err().contains("non-empty K"));
        assert_eq!(parse_env("SKIFF_SPEC_TEST_SURELY_UNSET").unwrap(), None);
        let path_value = std::env::var("PATH").unwrap();
        assert_eq!(
            parse_env("PATH").unwrap(),
            Some(EnvVar::new("PATH", path_value))
        );
    }

    #[test]
    fn env_files() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join(".env");
        std::fs::write(&f, "# comment\nA=1\n\n  B=2  \nA=3\n").unwrap();
        assert_eq!(
            read_env_file(&f).unwrap(),
            [
                EnvVar::new("A", "1"),
                EnvVar::new("B", "2"),
                EnvVar::new("A", "3")
            ]
        );
        std::fs::write(&f, "A=1\n=x\n").unwrap();
        assert!(read_env_file(&f).unwrap_err().contains("line 2"));
        assert!(read_env_file(&dir.path().join("none"))
            .unwrap_err()
            .contains("cannot read"));
    }
}
