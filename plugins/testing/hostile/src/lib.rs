//! A matcher for the gateway's tests: it selects the first route of every virtual host,
//! except that `/trap` traps, `/loop` spins forever and `/grow` allocates without bound.

use portcullis_sdk::request;
use portcullis_sdk::route_match::{self, PluginConfig, RouteMatch, Selected, VirtualHost};

struct Hostile;

impl RouteMatch for Hostile {
    fn configure(_virtual_hosts: Vec<VirtualHost>, _config: PluginConfig) -> Result<Self, String> {
        Ok(Hostile)
    }

    fn select_route(&mut self, _virtual_host: u32) -> Option<Selected> {
        match request::path().as_str() {
            "/trap" => panic!("trapping as asked"),
            "/loop" => loop {
                std::hint::black_box(());
            },
            "/grow" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            _ => Some(Selected {
                route: 0,
                match_block: 0,
            }),
        }
    }
}

route_match::export!(Hostile);
