//! What can go wrong with a policy component.

use std::sync::Arc;

/// A policy failed to load or to decide.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PolicyError {
    #[error("policy {policy} cannot be loaded: {reason}")]
    Load { policy: Arc<str>, reason: String },
    #[error("policy {policy} rejected its configuration: {reason}")]
    Config { policy: Arc<str>, reason: String },
    #[error("policy {policy} exceeded its CPU deadline")]
    Deadline { policy: Arc<str> },
    #[error("policy {policy} trapped: {reason}")]
    Trap { policy: Arc<str>, reason: String },
    #[error("plugin {policy} is quarantined after failing {failures} calls in a row")]
    Quarantined { policy: Arc<str>, failures: u32 },
}

impl PolicyError {
    /// Classifies the error a call returned.
    pub fn from_trap(policy: Arc<str>, error: &wasmtime::Error) -> Self {
        match error.downcast_ref::<wasmtime::Trap>() {
            Some(wasmtime::Trap::Interrupt) => Self::Deadline { policy },
            _ => Self::Trap {
                policy,
                reason: format!("{error:#}")
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_string(),
            },
        }
    }
}
