//! Docker's token flow against a real registry: Debian's docker-registry in `auth: token` mode,
//! verifying the JWTs a token server fixture signs (tests/common/token_server.py). Login, push,
//! pull, scopes, tokens that expire during a transfer, identity tokens.

mod common;

use common::images::cncf;
use common::token::{TokenConfig, TokenServer};
use common::{guest, read_to_vec, TestRegistry};
use skiff_registry::{
    BlobStore, BlobWriter, Credentials, DirStore, PullRequest, PushFormat, PushRequest, Registry,
    RegistryConfig, RegistryError,
};
use skiff_store::Digest;
use std::io::{self, Read};
use std::sync::Mutex;

fn start(config: TokenConfig) -> (TokenServer, TestRegistry) {
    let tokens = TokenServer::start(config);
    let registry = TestRegistry::with_auth_yaml(&tokens.auth_yaml());
    (tokens, registry)
}

fn client(credentials: Option<Credentials>) -> Registry {
    Registry::new(RegistryConfig {
        credentials,
        ..Default::default()
    })
}

fn user(name: &str, password: &str) -> Registry {
    client(Some(Credentials::password(name, password)))
}

fn store() -> (tempfile::TempDir, DirStore) {
    let d = tempfile::tempdir().unwrap();
    let s = DirStore::new(d.path());
    (d, s)
}

async fn push(
    reg: &Registry,
    reference: &str,
    store: &dyn BlobStore,
    manifest: &[u8],
) -> Result<(), RegistryError> {
    reg.push(PushRequest {
        reference,
        manifest: manifest.to_vec().into(),
        store,
        format: PushFormat::Cncf,
    })
    .await
    .map(drop)
}

async fn pull(
    reg: &Registry,
    reference: &str,
    store: &dyn BlobStore,
) -> Result<skiff_registry::Pulled, RegistryError> {
    reg.pull(PullRequest {
        reference,
        store,
        component: None,
        policy: None,
    })
    .await
}

/// The wasm layer's digest of a manifest.
fn layer_of(manifest: &[u8]) -> Digest {
    let m: serde_json::Value = serde_json::from_slice(manifest).unwrap();
    m["layers"][0]["digest"].as_str().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn login_push_and_pull_with_tokens_the_registry_verifies() {
    let (tokens, registry) = start(TokenConfig::default());
    let (_d, local) = store();
    let wasm = guest("hello.wasm");
    let manifest = cncf(&local, &wasm);
    let reference = format!("{}/team/hello:1.0", registry.addr);

    // Anonymous: the token server grants nothing, so the registry wants a login.
    let err = push(&client(None), &reference, &local, &manifest)
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::LoginRequired { .. }), "{err}");

    let err = user("me", "wrong").login(&registry.addr).await.unwrap_err();
    assert!(matches!(err, RegistryError::LoginFailed { .. }), "{err}");
    assert!(err.to_string().contains("username or password"), "{err}");
    assert!(
        !err.to_string().contains("wrong"),
        "the secret leaked: {err}"
    );

    let login = user("me", "s3cret").login(&registry.addr).await.unwrap();
    assert!(login.challenged);
    assert_eq!(
        login.identity_token, None,
        "this server hands out no refresh tokens"
    );

    push(&user("me", "s3cret"), &reference, &local, &manifest)
        .await
        .unwrap();
    let (_d2, fresh) = store();
    let pulled = pull(&user("me", "s3cret"), &reference, &fresh)
        .await
        .unwrap();
    assert_eq!(read_to_vec(fresh.open(&pulled.wasm_digest).unwrap()), wasm);

    // skiff asked for exactly the scope each operation needs, with the password (GET + Basic).
    let issued = tokens.issued();
    let scopes: Vec<&serde_json::Value> = issued.iter().map(|t| &t["scope"][0]).collect();
    assert!(
        scopes.contains(&&serde_json::json!("repository:team/hello:pull,push")),
        "{scopes:?}"
    );
    assert!(
        scopes.contains(&&serde_json::json!("repository:team/hello:pull")),
        "{scopes:?}"
    );
    assert!(issued
        .iter()
        .filter(|t| t["user"] == "me")
        .all(|t| t["grant"] == "basic"));
}

/// A mount needs pull access to the source repository, which a token for the target alone
/// does not give: skiff asks for both scopes in one token, as Docker does, and the registry
/// mounts instead of receiving the bytes again.
#[tokio::test(flavor = "multi_thread")]
async fn a_push_to_a_sibling_repository_mounts_with_a_token_covering_both() {
    let (tokens, registry) = start(TokenConfig::default());
    let (_d, local) = store();
    let manifest = cncf(&local, &guest("hello.wasm"));
    let me = user("me", "s3cret");
    push(
        &me,
        &format!("{}/team/a:1", registry.addr),
        &local,
        &manifest,
    )
    .await
    .unwrap();

    let pushed = me
        .push(PushRequest {
            reference: &format!("{}/team/b:1", registry.addr),
            manifest: manifest.clone().into(),
            store: &local,
            format: PushFormat::Cncf,
        })
        .await
        .unwrap();
    assert!(
        pushed
            .blobs
            .iter()
            .all(|(_, o)| *o == skiff_registry::BlobOutcome::Mounted),
        "{:?}",
        pushed.blobs
    );
    assert_eq!(pushed.bytes_moved, 0);
    let last = tokens.issued().pop().unwrap();
    assert_eq!(
        last["scope"],
        serde_json::json!(["repository:team/b:pull,push", "repository:team/a:pull"]),
        "{last}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pull_only_token_cannot_push_and_says_so() {
    let (_tokens, registry) = start(TokenConfig {
        users: vec![
            ("me", "s3cret", vec!["pull", "push"]),
            ("reader", "r3ad", vec!["pull"]),
        ],
        ..Default::default()
    });
    let (_d, local) = store();
    let manifest = cncf(&local, &guest("hello.wasm"));
    let reference = format!("{}/team/hello:1.0", registry.addr);
    push(&user("me", "s3cret"), &reference, &local, &manifest)
        .await
        .unwrap();

    let (_d2, fresh) = store();
    pull(&user("reader", "r3ad"), &reference, &fresh)
        .await
        .unwrap();

    let err = push(
        &user("reader", "r3ad"),
        &format!("{}/team/other:1.0", registry.addr),
        &local,
        &manifest,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, RegistryError::Denied { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("denied access to team/other"), "{msg}");
    // The registry names the scope it wanted (its action order varies).
    assert!(msg.contains("needs repository:team/other:"), "{msg}");
    assert!(msg.contains("push"), "{msg}");
    assert!(!msg.contains("r3ad"), "{msg}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_the_registry_refuses_as_expired_is_replaced() {
    // The first token is dead on arrival: the registry answers 401 error="invalid_token".
    let (tokens, registry) = start(TokenConfig {
        stale_tokens: 1,
        ..Default::default()
    });
    let (_d, local) = store();
    let manifest = cncf(&local, &guest("hello.wasm"));
    let reference = format!("{}/team/hello:1.0", registry.addr);
    push(&user("me", "s3cret"), &reference, &local, &manifest)
        .await
        .unwrap();
    assert_eq!(tokens.issued().len(), 2, "one refused, one used");
    let (_d2, fresh) = store();
    pull(&user("me", "s3cret"), &reference, &fresh)
        .await
        .unwrap();
}

/// A store that, the first time it is asked about one blob, waits for something: here, for the
/// registry to refuse the token the transfer started with.
struct Gated {
    inner: DirStore,
    digest: Digest,
    gate: Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

impl Gated {
    fn pass(&self, digest: &Digest) {
        if *digest == self.digest {
            let gate = self.gate.lock().unwrap().take();
            if let Some(wait) = gate {
                wait();
            }
        }
    }
}

impl BlobStore for Gated {
    fn has(&self, digest: &Digest) -> bool {
        self.pass(digest);
        self.inner.has(digest)
    }
    fn size(&self, digest: &Digest) -> io::Result<u64> {
        self.inner.size(digest)
    }
    fn open(&self, digest: &Digest) -> io::Result<Box<dyn Read + Send>> {
        self.pass(digest);
        self.inner.open(digest)
    }
    fn writer(&self, digest: &Digest, size: u64) -> io::Result<Box<dyn BlobWriter>> {
        self.inner.writer(digest, size)
    }
}

/// Wait until the registry refuses the `n`th token issued (0-based). Read when the gate runs:
/// by then the transfer has asked for its token.
fn until_token_refused(tokens: &TokenServer, addr: &str, n: usize) -> Box<dyn FnOnce() + Send> {
    let dir = tokens.dir.path().to_path_buf();
    let addr = addr.to_string();
    Box::new(move || {
        let token = TokenServer::issued_in(&dir)[n]["token"]
            .as_str()
            .unwrap()
            .to_string();
        TokenServer::wait_until_refused(&addr, &token)
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_that_live_two_seconds_are_renewed_between_the_blobs_of_a_pull() {
    let (tokens, registry) = start(TokenConfig {
        expires_in: 2,
        ..Default::default()
    });
    let (_d, local) = store();
    let wasm = guest("hello.wasm");
    let manifest = cncf(&local, &wasm);
    let reference = format!("{}/team/hello:1.0", registry.addr);
    push(&user("me", "s3cret"), &reference, &local, &manifest)
        .await
        .unwrap();

    // The pull's first token gets it the manifest and the config; before the layer, the store
    // holds the pull until the registry refuses that token (2 s later, by the registry's clock).
    let before = tokens.issued().len();
    let (_d2, fresh) = store();
    let gated = Gated {
        inner: fresh,
        digest: layer_of(&manifest),
        gate: Mutex::new(Some(until_token_refused(&tokens, &registry.addr, before))),
    };
    let pulled = pull(&user("me", "s3cret"), &reference, &gated)
        .await
        .unwrap();
    assert_eq!(
        read_to_vec(gated.inner.open(&pulled.wasm_digest).unwrap()),
        wasm
    );
    assert!(gated.gate.lock().unwrap().is_none(), "the gate ran");
    assert!(
        tokens.issued().len() >= before + 2,
        "the pull renewed its token"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_that_dies_mid_upload_is_renewed_and_the_upload_started_again() {
    // The token server says 300 s, the registry accepts each token for 2 s: a token revoked
    // early, or a registry whose clock runs ahead. skiff only learns it from a 401.
    let (tokens, registry) = start(TokenConfig {
        expires_in: 300,
        valid_for: Some(2),
        ..Default::default()
    });
    let (_d, local) = store();
    let wasm = guest("hello.wasm");
    let manifest = cncf(&local, &wasm);
    let reference = format!("{}/team/hello:1.0", registry.addr);
    // The layer's upload session is open (POST done) when skiff reads the blob to send it; the
    // store holds it there until the registry refuses the token, so the PUT gets a 401.
    let gated = Gated {
        inner: local,
        digest: layer_of(&manifest),
        gate: Mutex::new(Some(until_token_refused(&tokens, &registry.addr, 0))),
    };
    push(&user("me", "s3cret"), &reference, &gated, &manifest)
        .await
        .unwrap();
    assert!(gated.gate.lock().unwrap().is_none(), "the gate ran");
    assert!(tokens.issued().len() >= 2, "the push renewed its token");

    let (_d2, fresh) = store();
    let pulled = pull(&user("me", "s3cret"), &reference, &fresh)
        .await
        .unwrap();
    assert_eq!(read_to_vec(fresh.open(&pulled.wasm_digest).unwrap()), wasm);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_identity_token_replaces_the_password() {
    let (tokens, registry) = start(TokenConfig {
        refresh_tokens: true,
        ..Default::default()
    });
    let login = user("me", "s3cret").login(&registry.addr).await.unwrap();
    let identity = login
        .identity_token
        .clone()
        .expect("a refresh token at login");
    assert!(!format!("{login:?}").contains(&identity));
    let at_login = tokens.issued();
    assert_eq!(at_login.len(), 1);
    assert_eq!(at_login[0]["grant"], "basic");
    assert_eq!(at_login[0]["refresh_token_issued"], true);

    // No password from here on: the identity token is exchanged (OAuth2 POST, refresh_token).
    let with_token = |t: &str| {
        client(Some(Credentials {
            username: "me".into(),
            secret: String::new(),
            identity_token: Some(t.into()),
        }))
    };
    let (_d, local) = store();
    let wasm = guest("hello.wasm");
    let manifest = cncf(&local, &wasm);
    let reference = format!("{}/team/hello:1.0", registry.addr);
    push(&with_token(&identity), &reference, &local, &manifest)
        .await
        .unwrap();
    let (_d2, fresh) = store();
    pull(&with_token(&identity), &reference, &fresh)
        .await
        .unwrap();
    let later = &tokens.issued()[1..];
    assert!(!later.is_empty());
    assert!(
        later
            .iter()
            .all(|t| t["method"] == "POST" && t["grant"] == "refresh_token"),
        "{later:?}"
    );

    let err = pull(&with_token("not-a-token-it-issued"), &reference, &fresh)
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::LoginFailed { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("identity token") && msg.contains("skiff login"),
        "{msg}"
    );
    assert!(!msg.contains("not-a-token-it-issued"), "{msg}");
}
