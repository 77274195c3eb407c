//! What downstream connections are served with: bounds on how many may be open, how
//! long a request head may take and a connection may sit idle, and how paths are read.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::proxy::normalize::PathNormalization;

/// The connection settings `run` is started with.
#[derive(Debug, Clone)]
pub struct Limits {
    /// How request paths are normalized before routing (Istio's `pathNormalization`).
    pub path_normalization: PathNormalization,
    /// How long a client may take to send a request head (HTTP/1.1; also the longest a
    /// keep-alive connection waits for its next request).
    pub header_timeout: Duration,
    /// How long a connection may pass no bytes either way before it is closed.
    pub idle_timeout: Duration,
    /// Connections open at once on one listener; more are closed on accept.
    pub max_connections: usize,
    /// Connections open at once from one client address (0: no bound).
    pub max_connections_per_client: usize,
    /// How long open connections may finish their requests on shutdown.
    pub drain_timeout: Duration,
}

/// Counts the connections open per listener and per client address.
#[derive(Debug)]
pub struct Admission {
    limits: Limits,
    per_client: Mutex<HashMap<IpAddr, usize>>,
}

/// A connection let in; counted until dropped.
#[derive(Debug)]
pub struct Admitted {
    admission: Arc<Admission>,
    listener: Arc<AtomicUsize>,
    client: Option<IpAddr>,
}

/// Why a connection was refused.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// The listener is at `--max-connections`.
    #[error("the listener has {0} connections open (--max-connections)")]
    Listener(usize),
    /// The client is at `--max-connections-per-client`.
    #[error("the client has {0} connections open (--max-connections-per-client)")]
    Client(usize),
}

impl Admission {
    /// Admission under `limits`.
    pub fn new(limits: Limits) -> Arc<Self> {
        Arc::new(Self {
            limits,
            per_client: Mutex::default(),
        })
    }

    /// The limits admitted under.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Lets a connection from `client` in on a listener with `open` connections, or says
    /// which bound it would cross.
    pub fn admit(
        self: &Arc<Self>,
        open: &Arc<AtomicUsize>,
        client: IpAddr,
    ) -> Result<Admitted, Refused> {
        let max = self.limits.max_connections;
        if open.fetch_add(1, Ordering::Relaxed) >= max {
            open.fetch_sub(1, Ordering::Relaxed);
            return Err(Refused::Listener(max));
        }
        let mut admitted = Admitted {
            admission: self.clone(),
            listener: open.clone(),
            client: None,
        };
        let per_client = self.limits.max_connections_per_client;
        if per_client > 0 {
            let mut counts = self
                .per_client
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let count = counts.entry(client).or_default();
            if *count >= per_client {
                return Err(Refused::Client(per_client));
            }
            *count += 1;
            admitted.client = Some(client);
        }
        Ok(admitted)
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.listener.fetch_sub(1, Ordering::Relaxed);
        let Some(client) = self.client else { return };
        let mut counts = self
            .admission
            .per_client
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(count) = counts.get_mut(&client) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admission(max: usize, per_client: usize) -> Arc<Admission> {
        Admission::new(Limits {
            path_normalization: PathNormalization::Base,
            header_timeout: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(1),
            max_connections: max,
            max_connections_per_client: per_client,
            drain_timeout: Duration::from_secs(1),
        })
    }

    #[test]
    fn bounds_a_listener_and_frees_on_drop() {
        let admission = admission(2, 0);
        let open = Arc::new(AtomicUsize::new(0));
        let client = IpAddr::from([127, 0, 0, 1]);
        let first = admission.admit(&open, client).unwrap();
        let _second = admission.admit(&open, client).unwrap();
        assert!(matches!(
            admission.admit(&open, client),
            Err(Refused::Listener(2))
        ));
        drop(first);
        assert!(admission.admit(&open, client).is_ok());
    }

    #[test]
    fn bounds_a_client_address() {
        let admission = admission(100, 1);
        let open = Arc::new(AtomicUsize::new(0));
        let (a, b) = (IpAddr::from([127, 0, 0, 1]), IpAddr::from([127, 0, 0, 2]));
        let held = admission.admit(&open, a).unwrap();
        assert!(matches!(admission.admit(&open, a), Err(Refused::Client(1))));
        let other = admission.admit(&open, b).unwrap();
        assert_eq!(
            open.load(Ordering::Relaxed),
            2,
            "refused ones are not counted"
        );
        drop(held);
        let again = admission.admit(&open, a).unwrap();
        assert_eq!(admission.per_client.lock().unwrap().get(&a), Some(&1));
        drop((other, again));
        assert!(admission.per_client.lock().unwrap().is_empty());
    }
}
