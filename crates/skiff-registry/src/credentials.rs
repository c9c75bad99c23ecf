//! Credentials as Docker keeps them: `config.json` (`$DOCKER_CONFIG/config.json`, default
//! `~/.docker/config.json`) with `auths`, `credsStore` and `credHelpers`; helpers are the
//! `docker-credential-NAME` programs (`get`/`store`/`erase`, JSON on stdin/stdout).
//!
//! Secrets never appear in `Debug`, logs or error messages; the file is written 0600.

use crate::error::{RegistryError, Result};
use base64::Engine as _;
use serde_json::{json, Map, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A username and its secret (a password or a token), or an identity token.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Credentials {
    pub username: String,
    pub secret: String,
    /// Docker's `identitytoken`: a refresh token from the registry's token server, exchanged
    /// for access tokens (OAuth2 `grant_type=refresh_token`) instead of sending a password.
    pub identity_token: Option<String>,
}

impl Credentials {
    /// A username and password (or access token used as one).
    pub fn password(username: impl Into<String>, secret: impl Into<String>) -> Credentials {
        Credentials {
            username: username.into(),
            secret: secret.into(),
            identity_token: None,
        }
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = if self.identity_token.is_some() {
            "identity token"
        } else {
            "password"
        };
        write!(f, "Credentials({}, {kind} <redacted>)", self.username)
    }
}

/// The username credential helpers store an identity token under (Docker's convention).
const TOKEN_USERNAME: &str = "<token>";

/// Where the credentials for a registry were found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialSource {
    File,
    Helper(String),
}

/// One Docker config directory.
#[derive(Debug, Clone)]
pub struct DockerConfig {
    dir: PathBuf,
}

/// Docker Hub's key in `auths` is historical: `https://index.docker.io/v1/`.
const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// The key Docker uses for `registry` (a host[:port]).
pub fn config_key(registry: &str) -> String {
    match registry {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB_KEY.to_string(),
        r => r.to_string(),
    }
}

/// Docker's `ConvertToHostname`: `https://host:port/v1/` → `host:port`.
fn hostname(key: &str) -> &str {
    let k = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    k.split('/').next().unwrap_or(k)
}

impl DockerConfig {
    /// `dir` is the directory holding `config.json`.
    pub fn new(dir: impl Into<PathBuf>) -> DockerConfig {
        DockerConfig { dir: dir.into() }
    }

    /// `$DOCKER_CONFIG`, else `$HOME/.docker`, as Docker resolves it. Read here, at the edge,
    /// by the caller's choice: nothing else in this crate reads the environment.
    pub fn from_env() -> Result<DockerConfig> {
        if let Some(d) = std::env::var_os("DOCKER_CONFIG").filter(|v| !v.is_empty()) {
            return Ok(DockerConfig::new(d));
        }
        let home = std::env::var_os("HOME")
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                RegistryError::Credentials(
                    "cannot find the Docker config: set DOCKER_CONFIG or HOME".into(),
                )
            })?;
        Ok(DockerConfig::new(Path::new(&home).join(".docker")))
    }

    pub fn file(&self) -> PathBuf {
        self.dir.join("config.json")
    }

    fn read(&self) -> Result<Map<String, Value>> {
        let file = self.file();
        match std::fs::read(&file) {
            Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => Ok(Map::new()),
            Ok(bytes) => match serde_json::from_slice::<Value>(&bytes) {
                Ok(Value::Object(m)) => Ok(m),
                _ => Err(RegistryError::Credentials(format!(
                    "{} is not a JSON object; fix or remove it",
                    file.display()
                ))),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Map::new()),
            Err(e) => Err(RegistryError::Credentials(format!(
                "cannot read {}: {e}",
                file.display()
            ))),
        }
    }

    fn write(&self, config: &Map<String, Value>) -> Result<()> {
        let text = serde_json::to_vec_pretty(config).expect("a JSON map serialises");
        skiff_store::atomic::write_atomic(&self.file(), skiff_store::atomic::Atomic::PRIVATE, &text)
            .map_err(|e| {
                RegistryError::Credentials(format!("cannot write {}: {e}", self.file().display()))
            })
    }

    /// The helper Docker would use for `registry`: `credHelpers[registry]`, else `credsStore`.
    fn helper_for(config: &Map<String, Value>, registry: &str) -> Option<String> {
        let key = config_key(registry);
        if let Some(Value::Object(helpers)) = config.get("credHelpers") {
            for (k, v) in helpers {
                if (k == &key || hostname(k) == registry) && v.is_string() {
                    return v.as_str().map(str::to_string);
                }
            }
        }
        config
            .get("credsStore")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    }

    /// The credentials Docker would send to `registry`, if any.
    pub fn get(&self, registry: &str) -> Result<Option<(Credentials, CredentialSource)>> {
        let config = self.read()?;
        let key = config_key(registry);
        if let Some(helper) = Self::helper_for(&config, registry) {
            return Ok(helper_get(&helper, &key)?.map(|c| (c, CredentialSource::Helper(helper))));
        }
        let Some(Value::Object(auths)) = config.get("auths") else {
            return Ok(None);
        };
        let entry = auths
            .get(&key)
            .or_else(|| {
                auths
                    .iter()
                    .find(|(k, _)| hostname(k) == hostname(&key))
                    .map(|(_, v)| v)
            })
            .and_then(Value::as_object);
        let Some(entry) = entry else { return Ok(None) };
        // Docker writes `auth` as base64 of `user:` (no password) beside an `identitytoken`.
        let identity_token = entry
            .get("identitytoken")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        if let Some(auth) = entry
            .get("auth")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        {
            let bad = || {
                RegistryError::Credentials(format!(
                    "the entry for {registry} in {} is not base64 of user:password; run \
                     `skiff login {registry}` again",
                    self.file().display()
                ))
            };
            let raw = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .map_err(|_| bad())?;
            let text = String::from_utf8(raw).map_err(|_| bad())?;
            let (user, pass) = text.split_once(':').ok_or_else(bad)?;
            return Ok(Some((
                Credentials {
                    username: user.to_string(),
                    secret: pass.to_string(),
                    identity_token,
                },
                CredentialSource::File,
            )));
        }
        let user = entry.get("username").and_then(Value::as_str);
        let pass = entry.get("password").and_then(Value::as_str);
        Ok(match (user, pass, identity_token) {
            (Some(u), Some(p), identity_token) => Some((
                Credentials {
                    username: u.to_string(),
                    secret: p.to_string(),
                    identity_token,
                },
                CredentialSource::File,
            )),
            (u, _, Some(t)) => Some((
                Credentials {
                    username: u.unwrap_or_default().to_string(),
                    secret: String::new(),
                    identity_token: Some(t),
                },
                CredentialSource::File,
            )),
            _ => None,
        })
    }

    /// Save credentials where Docker would: in the helper if one is configured, else in
    /// `auths` (base64 `user:secret`, file mode 0600). Other fields of the file are kept.
    /// An identity token is kept as Docker keeps it: `identitytoken` beside `auth` = `user:`
    /// (no password), or in a helper under the username `<token>`.
    pub fn store(&self, registry: &str, creds: &Credentials) -> Result<CredentialSource> {
        let mut config = self.read()?;
        let key = config_key(registry);
        if let Some(helper) = Self::helper_for(&config, registry) {
            let input = match &creds.identity_token {
                Some(t) => json!({"ServerURL": key, "Username": TOKEN_USERNAME, "Secret": t}),
                None => {
                    json!({"ServerURL": key, "Username": creds.username, "Secret": creds.secret})
                }
            };
            helper_call(&helper, "store", &input.to_string())?;
            return Ok(CredentialSource::Helper(helper));
        }
        let auths = config
            .entry("auths")
            .or_insert_with(|| Value::Object(Map::new()));
        if !auths.is_object() {
            *auths = Value::Object(Map::new());
        }
        let entry = match &creds.identity_token {
            Some(t) => json!({
                "auth": base64::engine::general_purpose::STANDARD
                    .encode(format!("{}:", creds.username)),
                "identitytoken": t,
            }),
            None => json!({
                "auth": base64::engine::general_purpose::STANDARD
                    .encode(format!("{}:{}", creds.username, creds.secret)),
            }),
        };
        auths
            .as_object_mut()
            .expect("made an object above")
            .insert(key, entry);
        self.write(&config)?;
        Ok(CredentialSource::File)
    }

    /// Forget the credentials for `registry`. `Ok(false)` if there were none.
    pub fn erase(&self, registry: &str) -> Result<bool> {
        let mut config = self.read()?;
        let key = config_key(registry);
        if let Some(helper) = Self::helper_for(&config, registry) {
            return match helper_call(&helper, "erase", &key) {
                Ok(_) => Ok(true),
                Err(RegistryError::Credentials(m)) if m.contains("not found") => Ok(false),
                Err(e) => Err(e),
            };
        }
        let removed = match config.get_mut("auths").and_then(Value::as_object_mut) {
            Some(auths) => {
                let keys: Vec<String> = auths
                    .keys()
                    .filter(|k| **k == key || hostname(k) == hostname(&key))
                    .cloned()
                    .collect();
                keys.iter().filter(|k| auths.remove(*k).is_some()).count() > 0
            }
            None => false,
        };
        if removed {
            self.write(&config)?;
        }
        Ok(removed)
    }
}

/// `docker-credential-NAME get`: `Ok(None)` when the helper has nothing for this server.
fn helper_get(helper: &str, server: &str) -> Result<Option<Credentials>> {
    let out = match helper_call(helper, "get", server) {
        Ok(out) => out,
        // The protocol's "no credentials" answer.
        Err(RegistryError::Credentials(m)) if m.contains("credentials not found") => {
            return Ok(None)
        }
        Err(e) => return Err(e),
    };
    let v: Value = serde_json::from_str(&out).map_err(|_| {
        RegistryError::Credentials(format!(
            "docker-credential-{helper} get answered something that is not JSON"
        ))
    })?;
    let user = v.get("Username").and_then(Value::as_str).unwrap_or("");
    let secret = v.get("Secret").and_then(Value::as_str).unwrap_or("");
    if secret.is_empty() {
        return Ok(None);
    }
    if user == TOKEN_USERNAME {
        return Ok(Some(Credentials {
            identity_token: Some(secret.to_string()),
            ..Default::default()
        }));
    }
    Ok(Some(Credentials::password(user, secret)))
}

fn helper_call(helper: &str, verb: &str, input: &str) -> Result<String> {
    let program = format!("docker-credential-{helper}");
    let mut child = Command::new(&program)
        .arg(verb)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            RegistryError::Credentials(format!(
                "the Docker config names the credential helper {helper:?}, but {program} cannot \
                 be run ({e}); install it or remove it from the config"
            ))
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| RegistryError::Credentials(format!("{program} {verb}: {e}")))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        // Helpers report errors on stdout. Their message is about the lookup, never the secret
        // (which was sent on stdin only for `store`, and is not echoed back).
        let msg = if stdout.trim().is_empty() {
            String::from_utf8_lossy(&out.stderr).trim().to_string()
        } else {
            stdout.trim().to_string()
        };
        return Err(RegistryError::Credentials(format!(
            "{program} {verb}: {msg}"
        )));
    }
    Ok(stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_other_fields_and_mode_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let cfg = DockerConfig::new(dir.path());
        std::fs::write(cfg.file(), r#"{"auths":{},"psFormat":"table {{.ID}}"}"#).unwrap();
        let creds = Credentials::password("me", "p:ss");
        assert_eq!(
            cfg.store("r.example:5000", &creds).unwrap(),
            CredentialSource::File
        );
        let (got, _) = cfg.get("r.example:5000").unwrap().unwrap();
        assert_eq!(got, creds);
        let text = std::fs::read_to_string(cfg.file()).unwrap();
        assert!(text.contains("psFormat") && !text.contains("p:ss"));
        let mode = std::fs::metadata(cfg.file()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(cfg.erase("r.example:5000").unwrap());
        assert!(cfg.get("r.example:5000").unwrap().is_none());
        assert!(!cfg.erase("r.example:5000").unwrap());
    }

    #[test]
    fn reads_docker_written_keys_and_hub() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = DockerConfig::new(dir.path());
        let b = base64::engine::general_purpose::STANDARD;
        std::fs::write(
            cfg.file(),
            json!({"auths": {
                "https://index.docker.io/v1/": {"auth": b.encode("hub:h")},
                "https://r.example/v2/": {"auth": b.encode("u:p")},
            }})
            .to_string(),
        )
        .unwrap();
        assert_eq!(cfg.get("docker.io").unwrap().unwrap().0.username, "hub");
        assert_eq!(cfg.get("r.example").unwrap().unwrap().0.secret, "p");
        assert!(cfg.get("other.example").unwrap().is_none());
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let c = Credentials::password("u", "hunter2");
        assert!(!format!("{c:?}").contains("hunter2"));
        let t = Credentials {
            identity_token: Some("hunter3".into()),
            ..c
        };
        assert!(!format!("{t:?}").contains("hunter3"));
    }

    #[test]
    fn identity_tokens_are_kept_as_docker_keeps_them() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = DockerConfig::new(dir.path());
        let creds = Credentials {
            username: "me".into(),
            secret: String::new(),
            identity_token: Some("refresh-abc".into()),
        };
        cfg.store("r.example", &creds).unwrap();
        let v: Value = serde_json::from_slice(&std::fs::read(cfg.file()).unwrap()).unwrap();
        // base64("me:"): the user, no password.
        assert_eq!(v["auths"]["r.example"]["auth"], "bWU6");
        assert_eq!(v["auths"]["r.example"]["identitytoken"], "refresh-abc");
        assert_eq!(cfg.get("r.example").unwrap().unwrap().0, creds);
    }
}
