//! `skiff login`, `push` and `pull` against a registry that authenticates with tokens: Debian's
//! docker-registry in `auth: token` mode, verifying the JWTs of a token server fixture.

mod common;
#[path = "../../skiff-registry/tests/common/server.rs"]
mod registry;
#[path = "../../skiff-registry/tests/common/token.rs"]
mod token;

use common::Skiff;
use registry::TestRegistry;
use std::path::Path;
use token::{TokenConfig, TokenServer};

fn start(config: TokenConfig) -> (TokenServer, TestRegistry) {
    let tokens = TokenServer::start(config);
    let registry = TestRegistry::with_auth_yaml(&tokens.auth_yaml());
    (tokens, registry)
}

fn docker_entry(docker: &Path, addr: &str) -> serde_json::Value {
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(docker.join("config.json")).unwrap()).unwrap();
    v["auths"][addr].clone()
}

#[test]
fn login_push_and_pull_through_the_token_server() {
    let (_tokens, registry) = start(TokenConfig::default());
    let (s, reference) = common::hello_tagged_for(&registry.addr, "team/hello");
    let docker = tempfile::tempdir().unwrap();

    s.run_env("DOCKER_CONFIG", docker.path(), &["push", &reference])
        .code(125)
        .stderr_has(&format!("login required for {}", registry.addr));
    s.login(docker.path(), &registry.addr, "me", "wrong")
        .code(125)
        .stderr_has("rejected the username or password")
        .stderr_lacks("wrong");
    s.login(docker.path(), &registry.addr, "me", "s3cret")
        .code(0)
        .stdout_has("Login Succeeded");
    // No refresh token from this server: the password is stored, as Docker stores it.
    assert_eq!(
        docker_entry(docker.path(), &registry.addr)["auth"],
        "bWU6czNjcmV0"
    );

    s.run_env("DOCKER_CONFIG", docker.path(), &["push", &reference])
        .code(0)
        .stdout_has(": Pushed");
    let fresh = Skiff::new();
    fresh
        .run_env("DOCKER_CONFIG", docker.path(), &["pull", &reference])
        .code(0)
        .stdout_has("Pull complete");
    fresh
        .run(&["run", &reference])
        .code(0)
        .stdout_has("hello from skiff");
}

#[test]
fn login_keeps_the_identity_token_not_the_password_and_later_commands_exchange_it() {
    let (tokens, registry) = start(TokenConfig {
        refresh_tokens: true,
        ..Default::default()
    });
    let (s, reference) = common::hello_tagged_for(&registry.addr, "team/hello");
    let docker = tempfile::tempdir().unwrap();

    let out = s.login(docker.path(), &registry.addr, "me", "s3cret");
    out.code(0).stdout_has("Login Succeeded");
    let entry = docker_entry(docker.path(), &registry.addr);
    let identity = entry["identitytoken"]
        .as_str()
        .expect("an identitytoken")
        .to_string();
    // Docker's shape: `auth` is base64("me:"), the user without a password.
    assert_eq!(entry["auth"], "bWU6");
    let file = std::fs::read_to_string(docker.path().join("config.json")).unwrap();
    assert!(!file.contains("s3cret"));
    out.stdout_lacks(&identity).stderr_lacks(&identity);

    let push = s.run_env("DOCKER_CONFIG", docker.path(), &["push", &reference]);
    push.code(0).stdout_has(": Pushed");
    let fresh = Skiff::new();
    let pull = fresh.run_env("DOCKER_CONFIG", docker.path(), &["pull", &reference]);
    pull.code(0).stdout_has("Pull complete");
    for done in [&push, &pull] {
        done.stdout_lacks(&identity).stderr_lacks(&identity);
    }

    // The login asked for the refresh token with the password; every later token came from
    // exchanging it (OAuth2 POST, grant_type=refresh_token).
    let issued = tokens.issued();
    assert_eq!(issued[0]["grant"], "basic");
    assert_eq!(issued[0]["refresh_token_issued"], true);
    assert!(issued.len() >= 3, "{issued:?}");
    assert!(
        issued[1..]
            .iter()
            .all(|t| t["method"] == "POST" && t["grant"] == "refresh_token"),
        "{issued:?}"
    );
}

#[test]
fn a_user_who_may_only_pull_gets_a_clear_denial_on_push() {
    let (_tokens, registry) = start(TokenConfig {
        users: vec![("reader", "r3ad", vec!["pull"])],
        ..Default::default()
    });
    let (s, reference) = common::hello_tagged_for(&registry.addr, "team/hello");
    let docker = tempfile::tempdir().unwrap();
    s.login(docker.path(), &registry.addr, "reader", "r3ad")
        .code(0);
    s.run_env("DOCKER_CONFIG", docker.path(), &["push", &reference])
        .code(125)
        .stderr_has(&format!("{} denied access to team/hello", registry.addr))
        // The registry names the scope it wanted (its action order varies).
        .stderr_has("needs repository:team/hello:")
        .stderr_lacks("r3ad");
}
