//! A load balancer for the gateway's tests: it picks the last healthy endpoint, except
//! that a request whose path is `/trap` traps.

use portcullis_sdk::endpoint::{self, Cluster, Endpoint, EndpointState, PluginConfig};
use portcullis_sdk::request;

struct Hostile;

impl Endpoint for Hostile {
    fn configure(_clusters: Vec<Cluster>, _config: PluginConfig) -> Result<Self, String> {
        Ok(Hostile)
    }

    fn pick_endpoint(&mut self, _cluster: u32, endpoints: Vec<EndpointState>) -> Option<u32> {
        assert!(request::path() != "/trap", "trapping as asked");
        let last = endpoints.iter().rposition(|e| e.healthy)?;
        u32::try_from(last).ok()
    }
}

endpoint::export!(Hostile);
