//! Upstream connections: per-cluster load counters and HTTP/1.1 connection pools that
//! the circuit breaker can bound.

pub mod load;
pub mod pool;

pub use load::ClusterLoad;
pub use pool::{Checkout, EndpointPool, PooledConnection};
