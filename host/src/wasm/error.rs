//! What can go wrong with a policy component.

use std::sync::Arc;

/// A policy failed to load or to decide.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PolicyError {
    /// The component could not be compiled or instantiated.
    #[error("policy {policy} cannot be loaded: {reason}")]
    Load {
        /// The component.
        policy: Arc<str>,
        /// Why.
        reason: String,
    },
    /// The component refused its configuration.
    #[error("policy {policy} rejected its configuration: {reason}")]
    Config {
        /// The component.
        policy: Arc<str>,
        /// Why.
        reason: String,
    },
    /// The call ran past its time limit.
    #[error("policy {policy} exceeded its CPU deadline")]
    Deadline {
        /// The component.
        policy: Arc<str>,
    },
    /// The component trapped.
    #[error("policy {policy} trapped: {reason}")]
    Trap {
        /// The component.
        policy: Arc<str>,
        /// Why.
        reason: String,
    },
    /// The component failed too often and is skipped for a while.
    #[error("plugin {policy} is quarantined after failing {failures} calls in a row")]
    Quarantined {
        /// The component.
        policy: Arc<str>,
        /// Failures in a row.
        failures: u32,
    },
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
