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

#[cfg(test)]
mod tests {
    #[test]
    fn an_address_keeps_its_number_and_an_unknown_number_has_no_address() {
        let a = "192.0.2.1:80".parse().unwrap();
        let b = "192.0.2.1:81".parse().unwrap();
        let id = super::id(a);
        assert_eq!(super::id(a), id);
        assert_ne!(super::id(b), id);
        assert_eq!(super::address(id), Some(a));
        assert_eq!(super::address(u32::MAX), None);
    }
}
