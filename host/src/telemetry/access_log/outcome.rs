//! What the data path learned about a request, for its log line and metrics: response
//! flags, route, upstream, destination, and what each policy decided. Routes, clusters
//! and policies are noted by index into the request's generation, so that noting them
//! touches no reference count shared with other workers.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use smallvec::SmallVec;

use crate::runtime::Generation;
use crate::runtime::destination::DestinationId;

/// What the data path learned about a request; the data path fills it in as it goes.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Envoy's response flags (`UO`, `UF`, `DC`…).
    pub flags: Vec<&'static str>,
    /// Envoy's response code details: what made the response (`via_upstream`,
    /// `route_not_found`, a policy's own words…).
    pub details: Option<Cow<'static, str>>,
    /// The route's id ([`crate::runtime::generation::RouteEntry::id`]).
    pub route: Option<u32>,
    /// Which of the route's match blocks matched.
    pub match_block: u32,
    /// The endpoint that served the last attempt.
    pub upstream_host: Option<SocketAddr>,
    /// Time from sending upstream to the response head, in milliseconds.
    pub upstream_service_time: Option<u64>,
    /// The destination the metrics count the request under: the cluster's once it is
    /// picked, the endpoint's once one is.
    pub destination: Option<DestinationId>,
    /// The messages of a gRPC request counted so far, once it goes upstream.
    pub request_messages: Option<Arc<AtomicU64>>,
    /// What the policies and plugins decided, in order, when the access log shows it
    /// (most requests pass two policies at most, which fit without an allocation).
    decisions: Option<SmallVec<[Decision; 2]>>,
}

impl Outcome {
    /// An empty outcome, noting the policies' decisions only when `logged`.
    pub fn new(logged: bool) -> Self {
        Self {
            decisions: logged.then(SmallVec::new),
            ..Self::default()
        }
    }

    /// Notes that `policy` decided what `decision` says (called only when logged).
    pub fn note(&mut self, policy: Policy, decision: impl FnOnce() -> Said) {
        if let Some(decisions) = &mut self.decisions {
            decisions.push(Decision {
                policy,
                decision: decision(),
            });
        }
    }

    /// Whether the request is logged: what only its line shows need not be noted else.
    pub fn logged(&self) -> bool {
        self.decisions.is_some()
    }

    /// The decisions noted, in order.
    pub fn decisions(&self) -> &[Decision] {
        self.decisions.as_deref().unwrap_or_default()
    }
}

/// Envoy's response flags in the order its access log writes them.
const ENVOY_ORDER: &[&str] = &[
    "LH", "UH", "UT", "LR", "UR", "UF", "UC", "UO", "NR", "DI", "FI", "RL", "UAEX", "RLSE", "DC",
    "URX", "SI", "IH", "DPE", "UMSDR", "RFCF", "NFCF", "DT", "UPE", "NC", "OM", "DF", "DO", "DR",
];

/// Puts `flags` in Envoy's order (as noted, they are in the order the data path met them).
pub fn envoy_order(flags: &mut [&'static str]) {
    if flags.len() > 1 {
        flags.sort_by_key(|flag| {
            ENVOY_ORDER
                .iter()
                .position(|f| f == flag)
                .unwrap_or(ENVOY_ORDER.len())
        });
    }
}

/// A policy component or plugin of a generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Route matching.
    Match,
    /// Fault injection.
    Fault,
    /// Weighted destination choice.
    Destination,
    /// Retry decisions.
    Retry,
    /// Request mirroring, done by the host.
    Mirror,
    /// An index into [`Generation::plugins`].
    Plugin(usize),
}

impl Policy {
    /// The policy's name in `generation`.
    pub fn name(self, generation: &Generation) -> &str {
        let policies = &generation.policies;
        match self {
            Self::Match => policies.route_match.name(),
            Self::Fault => policies.fault.name(),
            Self::Destination => policies.destination.name(),
            Self::Retry => policies.retry.name(),
            Self::Mirror => "host:mirror",
            Self::Plugin(index) => generation.plugins[index].name(),
        }
    }
}

/// One policy's or plugin's decision about a request.
#[derive(Debug)]
pub struct Decision {
    /// Which policy decided.
    pub policy: Policy,
    /// What it decided.
    pub decision: Said,
}

/// What a policy decided, written out only when the line is.
#[derive(Debug)]
pub enum Said {
    /// The route matched, by id.
    Route(u32),
    /// A fixed word.
    Static(&'static str),
    /// Text made for this request.
    Text(String),
}

impl Said {
    /// The decision as a fixed prefix and the rest, to write without formatting.
    pub fn parts<'a>(&'a self, generation: &'a Generation) -> (&'static str, &'a str) {
        match self {
            Self::Route(id) => ("route ", generation.route_name(*id)),
            Self::Static(text) => ("", text),
            Self::Text(text) => ("", text),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn flags_are_written_in_envoys_order() {
        let mut flags = ["URX", "UF"];
        super::envoy_order(&mut flags);
        assert_eq!(flags, ["UF", "URX"]);
        let mut flags = ["WF", "DC", "UC"];
        super::envoy_order(&mut flags);
        assert_eq!(flags, ["UC", "DC", "WF"]);
    }
}
