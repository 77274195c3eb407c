//! What an upgraded connection (a tunnel) reports when it closes: the bytes it carried
//! each way, for the access log.

use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

/// How many bytes an upgraded connection carried, for the access log.
#[derive(Debug, Clone, Copy, Default)]
pub struct Carried {
    /// From the client to the upstream.
    pub received: u64,
    /// From the upstream to the client.
    pub sent: u64,
}

/// Put on the answer to an upgrade (response extensions must be `Clone`, hence the
/// shared slot): tells when the tunnel has closed.
#[derive(Clone)]
pub struct TunnelEnd(Arc<Mutex<Option<oneshot::Receiver<Carried>>>>);

impl TunnelEnd {
    /// The end of a tunnel that sends what it carried on `end` when it closes.
    pub fn new(end: oneshot::Receiver<Carried>) -> Self {
        Self(Arc::new(Mutex::new(Some(end))))
    }

    /// What the tunnel carried, once it has closed; `None` if it never opened.
    pub async fn closed(self) -> Option<Carried> {
        let end = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()?;
        end.await.ok()
    }
}
