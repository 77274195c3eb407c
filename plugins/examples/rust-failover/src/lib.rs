//! A load balancer that replaces the built-in one for the services its WasmPlugin's
//! `targetRefs` name: active–passive failover. Every request goes to the first healthy
//! endpoint, in the ServiceEntry's order; the next one takes over only while those before
//! it may not be picked (ejected by outlier detection, or already tried by a retry).

use portcullis_sdk::endpoint::{self, Cluster, Endpoint, EndpointState, PluginConfig};

struct Failover;

impl Endpoint for Failover {
    /// Takes every cluster's balancing settings and the `pluginConfig`; needs neither.
    fn configure(_clusters: Vec<Cluster>, _config: PluginConfig) -> Result<Self, String> {
        Ok(Failover)
    }

    fn pick_endpoint(&mut self, _cluster: u32, endpoints: Vec<EndpointState>) -> Option<u32> {
        let first = endpoints.iter().position(|e| e.healthy)?;
        u32::try_from(first).ok()
    }
}

endpoint::export!(Failover);
