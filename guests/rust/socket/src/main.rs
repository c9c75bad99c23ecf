//! `socket`: tries an outbound TCP connection to argv[1] and a name lookup of `localhost`.
//! Always exits 0; the output says what the host allowed.
use std::net::{TcpStream, ToSocketAddrs};

fn main() {
    match std::env::args().nth(1) {
        None => println!("connect: denied (no address given in argv[1])"),
        Some(addr) => match TcpStream::connect(addr.as_str()) {
            Ok(_) => println!("connect: ok"),
            Err(e) => println!("connect: denied ({e})"),
        },
    }
    match ("localhost", 80).to_socket_addrs() {
        Ok(mut it) => match it.next() {
            Some(_) => println!("lookup: ok"),
            None => println!("lookup: denied (no addresses)"),
        },
        Err(e) => println!("lookup: denied ({e})"),
    }
}
