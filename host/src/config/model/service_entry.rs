//! `networking.istio.io` ServiceEntry and its inline WorkloadEntry endpoints.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::common::Ignored;

/// ServiceEntry spec: a service and its endpoints.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceEntrySpec {
    /// Istio's `hosts`: names routes address; resolved through DNS when `resolution: DNS` has no
    /// endpoints (required).
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Istio's `addresses`: virtual IPs or CIDRs of the service (mesh TCP traffic).
    #[serde(default)]
    pub addresses: Vec<String>,
    /// Istio's `ports`: the service's ports.
    #[serde(default)]
    pub ports: Vec<ServicePort>,
    /// Istio's `location` (default MESH_EXTERNAL).
    pub location: Option<Location>,
    /// Istio's `resolution`: how endpoint addresses are found (default NONE).
    pub resolution: Option<Resolution>,
    /// Istio's `endpoints`: inline WorkloadEntries, the backends.
    #[serde(default)]
    pub endpoints: Vec<WorkloadEntry>,
    /// Istio's `subjectAltNames`: SANs expected in upstream certificates.
    #[serde(default)]
    pub subject_alt_names: Vec<String>,
    /// Mesh-only.
    pub workload_selector: Option<Ignored>,
    /// Mesh-only.
    pub export_to: Option<Ignored>,
}

/// A port of the service.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServicePort {
    /// Istio's `number`: the service port routes name (required, unique).
    pub number: Option<u32>,
    /// Istio's `protocol`: HTTP, HTTPS, GRPC, HTTP2, MONGO, TCP or TLS.
    pub protocol: Option<String>,
    /// Istio's `name`: unique label, which endpoints' `ports` refer to (required).
    pub name: Option<String>,
    /// Istio's `targetPort`: the port endpoints listen on (default `number`).
    pub target_port: Option<u32>,
}

/// Whether the service is inside the mesh.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Location {
    /// Outside the mesh (Istio's default).
    MeshExternal,
    /// Part of the mesh.
    MeshInternal,
}

/// How endpoint addresses are found.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Resolution {
    /// Forward to the request's original destination (Istio's default).
    None,
    /// Use the endpoints' IP addresses.
    Static,
    /// Resolve endpoint names (or the hosts) through DNS; every address is used.
    Dns,
    /// Resolve through DNS; only the first address is used for new connections.
    DnsRoundRobin,
    /// Resolve wildcard hosts per request (mesh waypoints only).
    DynamicDns,
}

/// One endpoint of a service.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkloadEntry {
    /// Istio's `address`: an IP, a DNS name (DNS resolution) or a `unix://` path.
    pub address: Option<String>,
    /// Istio's `ports`: port name to this endpoint's port, overriding `targetPort`.
    #[serde(default)]
    pub ports: BTreeMap<String, u32>,
    /// Istio's `labels`: what DestinationRule subsets select.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Istio's `network` (mesh-only).
    pub network: Option<String>,
    /// Istio's `locality`: `region/zone/subzone`.
    pub locality: Option<String>,
    /// Istio's `weight`: relative load-balancing weight (default 1).
    pub weight: Option<u32>,
    /// Mesh-only.
    pub service_account: Option<Ignored>,
}
