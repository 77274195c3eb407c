//! TLS material: PEM files and cipher-suite names.

pub mod files;
pub mod server;
pub mod suites;
