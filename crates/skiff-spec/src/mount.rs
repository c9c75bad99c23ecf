//! `-v HOST:GUEST[:ro]`: a host directory preopened in the guest.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// A host directory visible to the guest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Mount {
    /// A path on the host (absolute once it reaches the daemon).
    pub host: PathBuf,
    /// An absolute path inside the guest, such as `/data`.
    pub guest: String,
    #[serde(default)]
    pub read_only: bool,
}

impl Mount {
    /// Parse Docker's `HOST:GUEST[:ro|:rw]`.
    pub fn parse(spec: &str) -> Result<Mount, String> {
        let mut parts: Vec<&str> = spec.split(':').collect();
        let read_only = match parts.last() {
            Some(&"ro") if parts.len() == 3 => {
                parts.pop();
                true
            }
            Some(&"rw") if parts.len() == 3 => {
                parts.pop();
                false
            }
            _ => false,
        };
        let [host, guest] = parts[..] else {
            return Err(format!(
                "invalid volume {spec:?}: expected HOST:GUEST or HOST:GUEST:ro, e.g. -v ./data:/data:ro"
            ));
        };
        if host.is_empty() {
            return Err(format!("invalid volume {spec:?}: the host path is empty"));
        }
        if !guest.starts_with('/') {
            return Err(format!(
                "invalid volume {spec:?}: the guest path {guest:?} must be absolute, e.g. /data"
            ));
        }
        if guest.split('/').any(|c| c == "..") {
            return Err(format!(
                "invalid volume {spec:?}: the guest path may not contain `..`"
            ));
        }
        Ok(Mount {
            host: PathBuf::from(host),
            guest: guest.to_string(),
            read_only,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_specs() {
        let m = Mount::parse("./data:/data:ro").unwrap();
        assert_eq!(m.host, PathBuf::from("./data"));
        assert_eq!(m.guest, "/data");
        assert!(m.read_only);
        assert!(!Mount::parse("/a:/b").unwrap().read_only);
        assert!(!Mount::parse("/a:/b:rw").unwrap().read_only);
        assert!(Mount::parse("/a").unwrap_err().contains("HOST:GUEST"));
        assert!(Mount::parse("/a:b").unwrap_err().contains("absolute"));
        assert!(Mount::parse("/a:/b/../c").unwrap_err().contains(".."));
        assert!(Mount::parse("/a:/b:xx").is_err());
    }
}
