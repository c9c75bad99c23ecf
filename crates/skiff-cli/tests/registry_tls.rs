//! `skiff push` and `pull` over TLS to a real registry (Debian's docker-registry serving HTTPS
//! with a certificate from a test CA), trusted the way Docker users set it up: the CA in
//! `certs.d/HOST:PORT/ca.crt`, a client certificate as `client.cert` + `client.key`.

mod common;
#[path = "../../skiff-registry/tests/common/server.rs"]
mod registry;

use common::Skiff;
use registry::{TestRegistry, TestTls};

/// A registry serving HTTPS with a certificate from a fresh test CA (asking clients for theirs
/// when `client_cert`), and a home holding the hello image tagged for it.
fn tls_registry(client_cert: bool) -> (TestTls, TestRegistry, Skiff, String) {
    let tls = TestTls::make(client_cert);
    let registry = TestRegistry::with_tls(&tls);
    let (s, reference) = common::hello_tagged_for(&registry.addr, "team/hello");
    (tls, registry, s, reference)
}

/// Push `reference` from `s`, pull it into a fresh home, both with `certs` as the certs dir.
fn push_then_pull(s: &Skiff, certs: &std::path::Path, reference: &str) -> Skiff {
    s.run_env("SKIFF_CERTS_DIR", certs, &["push", reference])
        .code(0)
        .stdout_has(": Pushed");
    let fresh = Skiff::new();
    fresh
        .run_env("SKIFF_CERTS_DIR", certs, &["pull", reference])
        .code(0)
        .stdout_has("Pull complete");
    fresh
}

#[test]
fn a_registry_whose_ca_is_in_certs_d_is_pushed_to_and_pulled_from_over_tls() {
    let (tls, registry, s, reference) = tls_registry(false);
    let certs = tempfile::tempdir().unwrap();
    tls.certs_d(certs.path(), &registry.addr, false);

    let fresh = push_then_pull(&s, certs.path(), &reference);
    fresh
        .run_env("SKIFF_CERTS_DIR", certs.path(), &["run", &reference])
        .code(0)
        .stdout_has("hello from skiff");
}

#[test]
fn a_loopback_registry_that_speaks_only_tls_and_has_no_certs_says_where_its_ca_goes() {
    let registry = TestRegistry::with_tls(&TestTls::make(false));
    let empty = tempfile::tempdir().unwrap();
    Skiff::new()
        .run_env(
            "SKIFF_CERTS_DIR",
            empty.path(),
            &["pull", &format!("{}/team/hello:1.0", registry.addr)],
        )
        .code(125)
        .stderr_has("the registry speaks HTTPS")
        .stderr_has(&format!("/etc/docker/certs.d/{}/ca.crt", registry.addr));
}

#[test]
fn a_certificate_from_another_ca_is_refused_with_the_fix_and_nothing_moves() {
    let (_tls, registry, s, reference) = tls_registry(false);

    // The CA the user saved is not the one that signed the registry's certificate.
    let other = TestTls::make(false);
    let certs = tempfile::tempdir().unwrap();
    other.certs_d(certs.path(), &registry.addr, false);
    let dir = certs.path().join(&registry.addr);

    let fresh = Skiff::new();
    let done = fresh.run_env("SKIFF_CERTS_DIR", certs.path(), &["pull", &reference]);
    done.code(125)
        .stderr_has(&format!(
            "{}'s TLS certificate is not trusted",
            registry.addr
        ))
        .stderr_has(&dir.display().to_string());
    fresh.run(&["images", "-q"]).code(0).stdout_lacks("sha256");
    // A push fails the same way, before anything is sent.
    s.run_env("SKIFF_CERTS_DIR", certs.path(), &["push", &reference])
        .code(125)
        .stderr_has("TLS certificate is not trusted");
    assert!(
        !registry
            .data_dir()
            .join("docker/registry/v2/blobs")
            .exists(),
        "nothing reached the registry"
    );

    // A ca.crt that is not a certificate is named, not skipped.
    std::fs::write(dir.join("ca.crt"), "not a certificate\n").unwrap();
    fresh
        .run_env("SKIFF_CERTS_DIR", certs.path(), &["pull", &reference])
        .code(125)
        .stderr_has(&format!(
            "{}: not a PEM certificate",
            dir.join("ca.crt").display()
        ));
}

#[test]
fn a_registry_that_wants_a_client_certificate_gets_the_one_in_certs_d() {
    let (tls, registry, s, reference) = tls_registry(true);

    // The CA alone: the registry ends the TLS session. Under TLS 1.3 that shows as the
    // server's alert or as the connection closing under the first request, as timing has it;
    // either way the message names the registry and what to put where.
    let ca_only = tempfile::tempdir().unwrap();
    tls.certs_d(ca_only.path(), &registry.addr, false);
    let dir = ca_only.path().join(&registry.addr);
    s.run_env("SKIFF_CERTS_DIR", ca_only.path(), &["push", &reference])
        .code(125)
        .stderr_has(&registry.addr)
        .stderr_has(&format!(
            "put it in {} as client.cert with its key as client.key",
            dir.display()
        ));

    let certs = tempfile::tempdir().unwrap();
    tls.certs_d(certs.path(), &registry.addr, true);
    push_then_pull(&s, certs.path(), &reference);
}
