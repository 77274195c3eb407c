//! Name resolution for DNS clusters: hickory's asynchronous resolver, whose cache keeps
//! each answer for its TTL.

use std::net::{IpAddr, SocketAddr};

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{LookupIpStrategy, NameServerConfigGroup, ResolverConfig};
use hickory_resolver::name_server::TokioConnectionProvider;
use tokio::time::Instant;

pub use hickory_resolver::ResolveError;

/// The gateway's resolver, shared by every cluster and generation.
pub struct Dns {
    resolver: TokioResolver,
}

/// The addresses a name has, and until when the answer holds.
pub struct Answer {
    /// The addresses the name resolved to.
    pub addresses: Vec<IpAddr>,
    /// When to resolve again.
    pub valid_until: Instant,
}

impl Dns {
    /// A resolver configured by `/etc/resolv.conf` (and `/etc/hosts`), or asking only
    /// `server` when one is given. IPv4 addresses are preferred; a name with none
    /// resolves to its IPv6 ones (Envoy's `V4_PREFERRED`).
    pub fn new(server: Option<SocketAddr>) -> Result<Self, ResolveError> {
        let mut builder = match server {
            Some(server) => TokioResolver::builder_with_config(
                ResolverConfig::from_parts(
                    None,
                    Vec::new(),
                    NameServerConfigGroup::from_ips_clear(&[server.ip()], server.port(), true),
                ),
                TokioConnectionProvider::default(),
            ),
            None => TokioResolver::builder_tokio()?,
        };
        builder.options_mut().ip_strategy = LookupIpStrategy::Ipv4thenIpv6;
        Ok(Self {
            resolver: builder.build(),
        })
    }

    /// Looks `name` up, from the cache while its answer holds.
    pub async fn lookup(&self, name: &str) -> Result<Answer, ResolveError> {
        let found = self.resolver.lookup_ip(name).await?;
        Ok(Answer {
            addresses: found.iter().collect(),
            valid_until: Instant::from_std(found.valid_until()),
        })
    }
}
