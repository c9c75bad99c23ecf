//! A TCP proxy in front of a real registry that breaks one connection mid-response: after
//! `cut_after` bytes have gone from the registry to the client, that connection is closed, once.
//! It records the request heads it forwards, so a test can see what the client asked for
//! (a `Range:` on the retry), and counts the bytes it passed back.

#![allow(dead_code)] // shared by path with the CLI tests, which read only some fields
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

pub struct CuttingProxy {
    pub addr: String,
    /// Everything the clients sent, as text (request heads; blob bodies are not sent on a pull).
    pub sent: Arc<Mutex<String>>,
    /// Bytes passed from the registry to the clients.
    pub returned: Arc<AtomicU64>,
}

impl CuttingProxy {
    pub fn start(upstream: &str, cut_after: u64) -> CuttingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let sent = Arc::new(Mutex::new(String::new()));
        let returned = Arc::new(AtomicU64::new(0));
        let cut_done = Arc::new(AtomicBool::new(false));
        let (upstream, s, r) = (upstream.to_string(), sent.clone(), returned.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                // Client to registry: copied as is, and recorded.
                let (mut from, mut to, s) = (
                    client.try_clone().unwrap(),
                    server.try_clone().unwrap(),
                    s.clone(),
                );
                std::thread::spawn(move || {
                    let mut buf = [0u8; 16 << 10];
                    while let Ok(n) = from.read(&mut buf) {
                        if n == 0 || to.write_all(&buf[..n]).is_err() {
                            break;
                        }
                        s.lock()
                            .unwrap()
                            .push_str(&String::from_utf8_lossy(&buf[..n]));
                    }
                    let _ = to.shutdown(Shutdown::Write);
                });
                // Registry to client: copied until the one cut.
                let (mut from, mut to, r, cut_done) = (server, client, r.clone(), cut_done.clone());
                std::thread::spawn(move || {
                    let mut buf = [0u8; 16 << 10];
                    let mut here = 0u64;
                    while let Ok(n) = from.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        let room = cut_after.saturating_sub(here);
                        let cutting = (n as u64) > room && !cut_done.load(Ordering::SeqCst);
                        let n = if cutting { room as usize } else { n };
                        if to.write_all(&buf[..n]).is_err() {
                            break;
                        }
                        here += n as u64;
                        r.fetch_add(n as u64, Ordering::SeqCst);
                        if cutting {
                            cut_done.store(true, Ordering::SeqCst);
                            let _ = to.shutdown(Shutdown::Both);
                            let _ = from.shutdown(Shutdown::Both);
                            return;
                        }
                    }
                    let _ = to.shutdown(Shutdown::Write);
                });
            }
        });
        CuttingProxy {
            addr,
            sent,
            returned,
        }
    }
}
