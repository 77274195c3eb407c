//! Istio's standard labels of a request metric, as its ingress gateway fills them: the
//! gateway is the source (`reporter="source"`), the destination is the service and the
//! workload that served, and what Istio cannot know at the edge is `unknown`.

use prometheus_client::encoding::EncodeLabelSet;

use crate::runtime::destination::{Destination, DestinationId};

/// The labels of every request metric, in the order Istio documents them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, EncodeLabelSet)]
pub struct RequestLabels {
    pub reporter: &'static str,
    pub source_workload: &'static str,
    pub source_workload_namespace: &'static str,
    pub source_principal: String,
    pub source_app: &'static str,
    pub source_version: &'static str,
    pub source_cluster: &'static str,
    pub destination_workload: String,
    pub destination_workload_namespace: String,
    pub destination_principal: &'static str,
    pub destination_app: String,
    pub destination_version: String,
    pub destination_service: String,
    pub destination_service_name: String,
    pub destination_service_namespace: String,
    pub destination_cluster: &'static str,
    pub request_protocol: &'static str,
    pub response_code: u16,
    pub grpc_response_status: String,
    pub response_flags: String,
    pub connection_security_policy: &'static str,
    pub source_canonical_service: &'static str,
    pub destination_canonical_service: String,
    pub source_canonical_revision: &'static str,
    pub destination_canonical_revision: String,
}

/// What one label set's requests had in common.
pub struct Served<'a> {
    pub destination: Option<DestinationId>,
    /// The client's verified identity, if it presented a certificate.
    pub principal: Option<&'a str>,
    pub grpc: bool,
    pub status: u16,
    pub grpc_status: Option<u32>,
    pub flags: &'a [&'static str],
}

/// The gateway, as Istio's ingress gateway reports itself.
const GATEWAY: &str = "istio-ingressgateway";

impl RequestLabels {
    pub fn new(outcome: &Served<'_>) -> Self {
        let destination = outcome
            .destination
            .map_or_else(|| Destination::unknown().into(), DestinationId::get);
        let Destination {
            service,
            service_name,
            service_namespace,
            workload,
            workload_namespace,
            app,
            version,
            canonical_service,
            canonical_revision,
        } = (*destination).clone();
        Self {
            reporter: "source",
            source_workload: GATEWAY,
            source_workload_namespace: "istio-system",
            source_principal: outcome.principal.unwrap_or("unknown").to_string(),
            source_app: GATEWAY,
            source_version: "unknown",
            source_cluster: "Kubernetes",
            destination_workload: workload,
            destination_workload_namespace: workload_namespace,
            destination_principal: "unknown",
            destination_app: app,
            destination_version: version,
            destination_service: service,
            destination_service_name: service_name,
            destination_service_namespace: service_namespace,
            destination_cluster: "unknown",
            request_protocol: if outcome.grpc { "grpc" } else { "http" },
            response_code: outcome.status,
            grpc_response_status: outcome
                .grpc_status
                .map_or_else(String::new, |code| code.to_string()),
            response_flags: match outcome.flags {
                [] => "-".into(),
                flags => flags.join(","),
            },
            connection_security_policy: "unknown",
            source_canonical_service: GATEWAY,
            destination_canonical_service: canonical_service,
            source_canonical_revision: "latest",
            destination_canonical_revision: canonical_revision,
        }
    }
}
