//! Upstream connections: per-cluster load counters, HTTP/1.1 connection pools that the
//! circuit breaker can bound, HTTP/2 clients, TLS origination and DNS resolution.

pub mod dns;
pub mod h2;
pub mod lease;
pub mod load;
pub mod pool;
pub mod tls;

pub use load::ClusterLoad;
pub use pool::{Checkout, EndpointPool, PooledConnection};
