//! The daemon keeps uploaded binaries in a content store of its own (`daemon/store/`): a crash
//! mid-upload leaves nothing behind after the next start, a write in flight is never swept, and
//! the binaries of a home written by an older daemon (`daemon/blobs/sha256/<hex>`) still run.

mod common;

use common::daemon::{Daemon, PATIENCE};
use common::{guest, Skiff};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    out.sort();
    out
}

fn hex_of(bytes: &[u8]) -> String {
    skiff_store::Digest::of(bytes).hex().to_string()
}

/// `kill -9` while an upload is being written: the temp file it leaves is gone after the next
/// start, no blob is under its digest, and the daemon takes the same upload again.
#[test]
fn a_daemon_killed_mid_upload_leaves_no_temp_file_after_the_next_start() {
    let mut d = Daemon::start(&[]);
    let tmp = d.skiff.home.path().join("daemon/store/tmp");
    assert!(tmp.is_dir(), "the daemon's store has its temp directory");
    // The daemon reads the body, then writes it to a temp file and fsyncs it: with 64 MiB that
    // file is there long enough to be seen (the first attempt cut it off in 9 runs of 9 on this
    // VM). A fresh body each attempt, since a stored blob is not written again.
    let size = 64 << 20;
    let mut caught = None;
    for attempt in 0..5u8 {
        let body = vec![attempt; size];
        let socket = d.socket();
        let upload = std::thread::spawn(move || send(&socket, &body));
        let deadline = Instant::now() + PATIENCE;
        while !upload.is_finished() && Instant::now() < deadline {
            if !entries(&tmp).is_empty() {
                d.kill9();
                break;
            }
            std::thread::sleep(std::time::Duration::from_micros(500));
        }
        let _ = upload.join();
        // Killed with the temp file still there (not just renamed into place): a leftover.
        if !entries(&tmp).is_empty() {
            caught = Some(attempt);
            break;
        }
        d.restart_after_kill9();
    }
    let attempt = caught.expect("kill -9 cut off an upload while its temp file was there");
    eprintln!("cut off on attempt {}", attempt + 1);

    d.restart_after_kill9();
    assert_eq!(entries(&tmp), Vec::<PathBuf>::new(), "swept at start");
    let digest = hex_of(&vec![attempt; size]);
    let blob = d
        .skiff
        .home
        .path()
        .join("daemon/store/blobs/sha256")
        .join(&digest);
    assert!(
        !blob.exists(),
        "nothing under the digest of a cut-off upload"
    );
    assert!(!d.skiff.home.path().join("daemon/blobs").exists());

    // The same upload now completes: a blob, not a wasm binary, so it is refused as one, but
    // stored whole and checked first.
    let body = vec![attempt; size];
    let (status, answer) = upload(&d, &body);
    assert_eq!(status, 400, "{answer}");
    assert_eq!(std::fs::read(&blob).unwrap(), body);
    assert!(entries(&tmp).is_empty());
}

/// One upload over the socket; the whole answer.
fn send(socket: &Path, body: &[u8]) -> std::io::Result<String> {
    let mut s = std::os::unix::net::UnixStream::connect(socket)?;
    s.set_read_timeout(Some(PATIENCE))?;
    write!(
        s,
        "POST /v1/blobs HTTP/1.1\r\nHost: skiff\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )?;
    s.write_all(body)?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

fn upload(d: &Daemon, body: &[u8]) -> (u16, String) {
    let out = send(&d.socket(), body).unwrap();
    let status = out.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, out)
}

/// A binary uploaded by the CLI runs (the daemon is serving).
fn run_hello(d: &Daemon) {
    d.run(&[
        "run",
        "-d",
        "--name",
        "h",
        &guest("hello.wasm").display().to_string(),
    ])
    .code(0);
    d.wait_status("h", "exited");
}

/// The sweep at start removes what no writer holds, and never a temp file whose writer still
/// holds its lock (a write in flight, however slow).
#[test]
fn the_start_sweep_removes_unlocked_temp_files_and_keeps_locked_ones() {
    let mut d = Daemon::start(&[]);
    d.kill9();
    let tmp = d.skiff.home.path().join("daemon/store/tmp");
    let dead = tmp.join(".blob-dead");
    std::fs::write(&dead, b"half an upload").unwrap();
    let live = tmp.join(".blob-live");
    std::fs::write(&live, b"a write in flight").unwrap();
    let writer = std::fs::File::open(&live).unwrap();
    writer.lock().unwrap();

    d.restart_after_kill9();
    assert!(!dead.exists(), "an unlocked temp file is a leftover: swept");
    assert!(live.exists(), "a locked temp file is a live write: kept");
    // And uploads work beside it.
    run_hello(&d);
    assert_eq!(entries(&tmp), vec![live.clone()]);

    drop(writer);
    d.restart_after_kill9();
    assert!(
        !live.exists(),
        "its writer is gone: swept at the next start"
    );
}

/// A home written by a daemon before the store: its binaries are moved in at start (the
/// workloads that name them run), the old writer's leftover temp file is removed, and the old
/// directory goes.
#[test]
fn binaries_of_an_older_daemon_home_still_run() {
    let skiff = Skiff::new();
    let bytes = std::fs::read(guest("hello.wasm")).unwrap();
    let hex = hex_of(&bytes);
    let old = skiff.home.path().join("daemon/blobs/sha256");
    std::fs::create_dir_all(&old).unwrap();
    std::fs::write(old.join(&hex), &bytes).unwrap();
    std::fs::write(old.join(".tmpAbC123"), b"the old writer's crash").unwrap();

    let d = Daemon::start_in(skiff, &[]);
    let home = d.skiff.home.path();
    assert!(!home.join("daemon/blobs").exists(), "{:?}", entries(&old));
    assert_eq!(
        std::fs::read(home.join("daemon/store/blobs/sha256").join(&hex)).unwrap(),
        bytes
    );
    let spec = format!(r#"{{"name":"old","spec":{{"image":"sha256:{hex}"}}}}"#);
    let (status, body) = d.api("POST", "/v1/workloads", Some(&spec));
    assert_eq!(status, 201, "{body}");
    d.wait_status("old", "exited");
    let log = d.log_lines("old").join("\n");
    assert!(log.contains("arg[0]"), "{log}");
}

/// An upload over the API's limit (512 MiB) is refused with 413 before anything is written to
/// the store, and the daemon goes on serving everyone else.
#[test]
fn an_upload_over_the_limit_gets_413_and_stores_nothing() {
    let d = Daemon::start(&[]);
    let mut s = std::os::unix::net::UnixStream::connect(d.socket()).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    let size: u64 = (512 << 20) + (1 << 20);
    write!(
        s,
        "POST /v1/blobs HTTP/1.1\r\nHost: skiff\r\nConnection: close\r\nContent-Length: {size}\r\n\r\n"
    )
    .unwrap();
    let mut writer = s.try_clone().unwrap();
    // The daemon answers once the limit is passed and closes: the rest of the body may fail to
    // send, which is the point.
    let sender = std::thread::spawn(move || {
        let chunk = vec![0u8; 1 << 20];
        for _ in 0..size >> 20 {
            if writer.write_all(&chunk).is_err() {
                break;
            }
        }
    });
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    sender.join().unwrap();
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("larger than 512 MiB"), "{answer}");
    let store = d.skiff.home.path().join("daemon/store");
    assert!(entries(&store.join("tmp")).is_empty());
    assert!(entries(&store.join("blobs/sha256")).is_empty());
    run_hello(&d);
}
