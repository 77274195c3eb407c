//! TLS material: PEM files, certificate pinning, cipher-suite names, and what a client's
//! session carried.

pub mod files;
pub mod pinning;
pub mod served;
pub mod session;
pub mod suites;
pub mod verify;
