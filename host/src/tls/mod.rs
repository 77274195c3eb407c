//! TLS material: PEM files, certificate pinning and cipher-suite names.

pub mod files;
pub mod pinning;
pub mod server;
pub mod suites;
pub mod verify;
