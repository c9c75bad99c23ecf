//! `GET /v1/workloads/{ref}/logs`: the tail of the log files, then (with `follow`) every new
//! line as it is written, across rotations, until the workload ends or the client goes away.
//!
//! Following works like `tail -F`: keep the current file open; at its end, if the path now names
//! a different file, the writer rotated — the open file (now `.1`) has been read to its end, so
//! continue with the new one from its start.

use crate::daemon::Daemon;
use crate::logs;
use bytes::Bytes;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::Sender;

/// Re-check whether the workload still runs at least this often, even without new lines.
const RECHECK: Duration = Duration::from_millis(500);

pub async fn send_logs(
    d: Arc<Daemon>,
    id: String,
    tail: Option<usize>,
    follow: bool,
    tx: Sender<Bytes>,
) {
    let Some(log) = d.log_of(&id) else { return };
    let dir = log.base().to_path_buf();
    let mut written = log.written.subscribe();
    let max_files = d.log_config.max_files;
    // Open the current file before reading the rotated ones, so that no line falls between.
    let mut cur = open(&dir);
    let mut lines: Vec<String> = Vec::new();
    let current_path = logs::current(&dir);
    for f in logs::files(&dir, max_files) {
        if f == current_path {
            continue;
        }
        if let Ok(text) = std::fs::read_to_string(&f) {
            lines.extend(text.lines().filter(|l| !l.is_empty()).map(str::to_string));
        }
    }
    let mut carry = Vec::new();
    if let Some((f, _)) = cur.as_mut() {
        lines.extend(read_lines(f, &mut carry));
    }
    let skip = tail.map_or(0, |n| lines.len().saturating_sub(n));
    for l in &lines[skip..] {
        if tx.send(Bytes::from(format!("{l}\n"))).await.is_err() {
            return;
        }
    }
    if !follow {
        return;
    }
    loop {
        let running = d.is_running(&id);
        // Drain everything there is now.
        loop {
            if cur.is_none() {
                cur = open(&dir);
            }
            let Some((f, ino)) = cur.as_mut() else { break };
            let new = read_lines(f, &mut carry);
            let got = !new.is_empty();
            for l in new {
                if tx.send(Bytes::from(format!("{l}\n"))).await.is_err() {
                    return;
                }
            }
            if got {
                continue;
            }
            match std::fs::metadata(&current_path) {
                Ok(m) if m.ino() != *ino => {
                    carry.clear();
                    cur = open(&dir);
                }
                _ => break,
            }
        }
        if !running || d.get(&id).is_none() {
            return;
        }
        tokio::select! {
            _ = written.changed() => {}
            _ = tokio::time::sleep(RECHECK) => {}
            _ = tx.closed() => return,
        }
    }
}

fn open(dir: &Path) -> Option<(File, u64)> {
    let f = File::open(logs::current(dir)).ok()?;
    let ino = f.metadata().ok()?.ino();
    Some((f, ino))
}

/// Complete lines from the file's position on; a trailing partial line waits in `carry`.
fn read_lines(f: &mut File, carry: &mut Vec<u8>) -> Vec<String> {
    let mut buf = Vec::new();
    if f.read_to_end(&mut buf).is_err() {
        let _ = f.seek(SeekFrom::End(0));
        return vec![];
    }
    carry.extend_from_slice(&buf);
    let Some(last_nl) = carry.iter().rposition(|&b| b == b'\n') else {
        return vec![];
    };
    let rest = carry.split_off(last_nl + 1);
    let whole = std::mem::replace(carry, rest);
    String::from_utf8_lossy(&whole)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}
