//! Crash safety: `kill -9` a `skiff load` of a large archive at many moments; the store must
//! check clean every time. And two processes writing the same blobs and tags at once.

mod common;
use common::project::Project;
use common::Skiff;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// hello.wasm with a custom section of `extra` bytes appended: still a valid, runnable module.
fn big_wasm(extra: usize) -> Vec<u8> {
    let mut wasm = std::fs::read(common::guest("hello.wasm")).unwrap();
    let name = b"skiff-padding";
    let payload_len = 1 + name.len() + extra;
    wasm.push(0); // custom section id
    let mut n = payload_len;
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            wasm.push(byte);
            break;
        }
        wasm.push(byte | 0x80);
    }
    wasm.push(name.len() as u8);
    wasm.extend_from_slice(name);
    // Pseudo-random padding, so nothing compresses it away.
    let mut x: u32 = 0x9e37_79b9;
    wasm.extend((0..extra).map(|_| {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x as u8
    }));
    wasm
}

#[test]
fn kill_9_during_load_never_corrupts_the_store() {
    let builder = Skiff::new();
    let p = Project::new("big", "hello.wasm", "version = \"1\"\n");
    std::fs::write(p.file("app.wasm"), big_wasm(40 << 20)).unwrap();
    builder.run(&["build", p.arg()]).code(0);
    let tar = p.file("big.tar");
    builder
        .run(&["save", "-o", tar.to_str().unwrap(), "big:1"])
        .code(0);
    assert!(std::fs::metadata(&tar).unwrap().len() > 40 << 20);

    let archive = std::fs::read(&tar).unwrap();
    let s = Skiff::new();
    // How long a whole load takes here, to spread the kills after end-of-input over it.
    let start = Instant::now();
    s.run(&["load", "-i", tar.to_str().unwrap()]).code(0);
    let full = start.elapsed().max(Duration::from_millis(20));
    s.run(&["rmi", "big:1"]).code(0);

    // The archive goes in through a pipe, so most kill points are exact stream positions:
    // once `write_all` of `cut` bytes returns, skiff has read all but a pipe buffer of them.
    // The rest come after end-of-input, at moments spread over a whole load (the commit).
    let kills = 25;
    let (mut mid_blob, mut after_input) = (0, 0);
    for i in 0..kills {
        let step = (i * 7) % kills; // a scrambled order of 0..kills
        let cut = archive.len() * step / (kills - 5);
        let mut child = s
            .cmd()
            .arg("load")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let _ = stdin.write_all(&archive[..cut.min(archive.len())]);
        let inside_big_blob = cut > (2 << 20) && cut + (2 << 20) < archive.len();
        if cut >= archive.len() {
            drop(stdin); // end of input: skiff verifies, commits, tags
            std::thread::sleep(full.mul_f64((step % 5) as f64 / 4.0));
            after_input += 1;
            let _ = child.kill();
            child.wait().unwrap();
        } else {
            let _ = child.kill(); // SIGKILL while it waits for more input
            child.wait().unwrap();
            drop(stdin);
        }
        let check = s.run(&["system", "check"]);
        check.code(0).stdout_has("0 problems");
        if inside_big_blob {
            // Killed mid-blob: the partial blob is a leftover in tmp/, never under a digest.
            assert!(
                !check.stdout.contains(" 0 leftovers"),
                "a kill mid-blob leaves its temp file\n{check}"
            );
            mid_blob += 1;
        }
        // Whatever state the kill left, the image is either whole (and runs) or absent.
        if !s.run(&["images", "-q"]).stdout.trim().is_empty() {
            s.run(&["run", "big:1"])
                .code(0)
                .stdout_has("hello from skiff");
            s.run(&["rmi", "big:1"]).code(0);
        }
        s.run(&["image", "prune"]).code(0);
        s.run(&["system", "check"])
            .code(0)
            .stdout_has("0 leftovers");
    }
    assert!(
        mid_blob >= 10 && after_input >= 3,
        "{mid_blob} {after_input}"
    );
    // After all that, a clean load works and nothing is left over.
    s.run(&["load", "-i", tar.to_str().unwrap()]).code(0);
    s.run(&["run", "big:1"])
        .code(0)
        .stdout_has("hello from skiff");
    let check = s.run(&["system", "check"]);
    check.code(0).stdout_has("0 leftovers");
}

#[test]
fn concurrent_writers_of_the_same_image_agree() {
    let builder = Skiff::new();
    let p = Project::new("same", "hello.wasm", "version = \"1\"\n");
    builder.run(&["build", p.arg()]).code(0);
    let tar = p.file("same.tar");
    builder
        .run(&["save", "-o", tar.to_str().unwrap(), "same:1"])
        .code(0);

    let s = Skiff::new();
    let children: Vec<_> = (0..4)
        .map(|i| {
            let mut c: Command = s.cmd();
            if i % 2 == 0 {
                c.args(["load", "-i", tar.to_str().unwrap()]);
            } else {
                c.args(["build", p.arg()]);
            }
            c.stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    s.run(&["system", "check"]).code(0).stdout_has("0 problems");
    s.run(&["run", "same:1"])
        .code(0)
        .stdout_has("hello from skiff");
}
