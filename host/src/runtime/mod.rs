//! The running gateway's state: generations built from resolved configs.

pub mod chain;
pub mod clusters;
pub mod cors;
mod decide;
pub mod destination;
pub mod generation;
pub mod jwks;
mod policy_config;
pub mod route_entry;
pub mod route_key;
pub mod tls_servers;
pub mod vhosts;

pub use generation::{Generation, Runtime};
