//! Loopback addresses of a test's own, for gateways that must bind fixed ports (taken
//! over on upgrade, or several Gateways on one port number): the other tests bind
//! 127.0.0.1, so ports picked on an address of one's own stay free until they are bound.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU32, Ordering};

/// A loopback address no other caller in this process gets.
pub fn own_address() -> Ipv4Addr {
    static TAKEN: AtomicU32 = AtomicU32::new(0);
    let n = TAKEN.fetch_add(1, Ordering::Relaxed);
    let base = 20 + std::process::id() % 200;
    Ipv4Addr::new(127, base as u8, (n / 250) as u8, (n % 250 + 1) as u8)
}

/// A free port on `address`, held by the returned socket until it is dropped.
pub fn free_port(address: Ipv4Addr) -> (SocketAddr, TcpListener) {
    let held = TcpListener::bind((address, 0)).unwrap();
    (held.local_addr().unwrap(), held)
}
