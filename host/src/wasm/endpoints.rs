//! Endpoint identities as policies see them: one number per upstream address for the
//! life of the process, the same in the `endpoint` and `outlier` phases and in every
//! configuration generation.

use std::net::SocketAddr;
use std::sync::LazyLock;

use crate::interner::Interner;

static ENDPOINTS: LazyLock<Interner<SocketAddr>> = LazyLock::new(Interner::default);

/// The identity of the endpoint at `address`.
pub fn id(address: SocketAddr) -> u32 {
    ENDPOINTS.intern(address)
}

/// The address of endpoint `id`, if the host ever numbered it.
pub fn address(id: u32) -> Option<SocketAddr> {
    ENDPOINTS.try_get(id).map(|a| *a)
}
