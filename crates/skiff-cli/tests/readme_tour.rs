//! The README's quick tour runs as written: every line of its first `sh` block, from a directory
//! laid out as the clone's root, with `skiff` being this build. (The registry block after it
//! needs a registry; the registry tests cover those verbs.)

mod common;
use std::path::Path;
use std::process::Command;

#[test]
fn every_line_of_the_readme_tour_runs() {
    let root = Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo")).join("../..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let tour = readme
        .split("## Quick tour")
        .nth(1)
        .and_then(|t| t.split("```sh\n").nth(1))
        .and_then(|t| t.split("```").next())
        .expect("a Quick tour section with an sh block");
    let lines: Vec<&str> = tour
        .lines()
        .map(|l| l.split("  #").next().unwrap().trim())
        .filter(|l| !l.is_empty())
        .collect();
    assert!(lines.len() >= 10, "{lines:?}");

    // The clone's root, as far as the tour sees it: its guests, and room for data/ and .env.
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(
        root.join("guests").canonicalize().unwrap(),
        dir.path().join("guests"),
    )
    .unwrap();
    let s = common::Skiff::new();
    let bin = Path::new(env!("CARGO_BIN_EXE_skiff")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    for line in lines {
        let out = Command::new("bash")
            .args(["-euo", "pipefail", "-c", line])
            .current_dir(dir.path())
            .env_clear()
            .env("PATH", &path)
            .env("HOME", dir.path())
            .env("SKIFF_HOME", s.home.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "the README's `{line}` failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
