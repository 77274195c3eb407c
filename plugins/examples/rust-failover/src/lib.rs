//! A load balancer that replaces the built-in one for the services its WasmPlugin's
//! `targetRefs` name: active–passive failover. Every request goes to the first healthy
//! endpoint, in the ServiceEntry's order; the next one takes over only while outlier
//! detection has ejected those before it.

use portcullis_sdk::{Endpoint, EndpointState, endpoint};

struct Failover;

impl Endpoint for Failover {
    /// Takes the built-in's settings of every cluster and the `pluginConfig`; needs
    /// neither.
    fn configure(_config: String) -> Result<(), String> {
        Ok(())
    }

    fn pick_endpoint(_cluster: u32, endpoints: Vec<EndpointState>) -> Option<u32> {
        let first = endpoints.iter().position(|e| e.healthy)?;
        u32::try_from(first).ok()
    }
}

endpoint::export!(Failover);
