//! ServiceEntry: the upstream services and their endpoints.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

use super::Input;
use super::checks;
use super::scope::Scope;
use crate::config::diag::{Reporter, Site};
use crate::config::model::service_entry::{
    Resolution as SeResolution, ServiceEntrySpec, ServicePort as PortSpec, WorkloadEntry,
};
use crate::config::resolved::{EndpointAddress, Protocol, Resolution};

/// A service as the rest of the resolver needs it: one per ServiceEntry host.
#[derive(Debug, Clone)]
pub struct Service {
    pub host: String,
    pub ports: Vec<ServicePort>,
    pub resolution: Resolution,
    pub endpoints: Vec<ServiceEndpoint>,
    /// The namespace of the (first) ServiceEntry that declares it.
    pub namespace: String,
    pub site: Site,
}

impl Service {}

/// A port of a service.
#[derive(Debug, Clone)]
pub struct ServicePort {
    pub number: u16,
    pub name: String,
    pub protocol: Protocol,
    pub target_port: u16,
}

/// An endpoint before it is narrowed to a port.
#[derive(Debug, Clone)]
pub struct ServiceEndpoint {
    pub address: EndpointAddress,
    /// Per port name, the endpoint's own port.
    pub ports: BTreeMap<String, u16>,
    pub labels: BTreeMap<String, String>,
    pub weight: u32,
    pub locality: Option<String>,
}

impl Service {
    /// The port numbered `number`.
    pub fn port(&self, number: u16) -> Option<&ServicePort> {
        self.ports.iter().find(|p| p.number == number)
    }

    /// The port numbers, for messages.
    pub fn port_list(&self) -> String {
        let numbers: Vec<String> = self.ports.iter().map(|p| p.number.to_string()).collect();
        numbers.join(", ")
    }
}

/// Checks every ServiceEntry and indexes the services by host.
pub fn resolve(
    entries: &[Input<'_, ServiceEntrySpec>],
    reporter: &Reporter,
) -> BTreeMap<String, Service> {
    let mut services: BTreeMap<String, Service> = BTreeMap::new();
    for entry in entries {
        let Some(resolved) = service_entry(entry, &entry.scope(reporter).field("spec")) else {
            continue;
        };
        for (index, service) in resolved {
            match services.get_mut(&service.host) {
                Some(first) => merge(first, service, index, reporter),
                None => {
                    services.insert(service.host.clone(), service);
                }
            }
        }
    }
    services
}

/// Several ServiceEntries for one host make one service, as in Istio: ports and
/// endpoints are merged; a port number whose protocol differs keeps the first one's
/// (Istio's analyzer warns, IST0177), and so does a different resolution.
fn merge(first: &mut Service, other: Service, index: usize, reporter: &Reporter) {
    let at = Scope::new(reporter, &other.site, "spec");
    let host = &other.host;
    if other.resolution != first.resolution {
        at.field("resolution").warn(format!(
            "{} already resolves host {host:?} as {:?}; its resolution is kept",
            first.site.resource, first.resolution
        ));
    }
    for port in other.ports {
        match first.ports.iter().find(|p| p.number == port.number) {
            Some(known) if known.protocol != port.protocol => {
                at.field("hosts").index(index).warn(format!(
                    "port {} of host {host:?} is {} in {}: that protocol is kept",
                    port.number,
                    format!("{:?}", known.protocol).to_uppercase(),
                    first.site.resource
                ));
            }
            Some(_) => {}
            None => first.ports.push(port),
        }
    }
    first.endpoints.extend(other.endpoints);
}

/// One ServiceEntry, checked: a service per host, with the index of the host.
fn service_entry(
    entry: &Input<'_, ServiceEntrySpec>,
    at: &Scope<'_>,
) -> Option<Vec<(usize, Service)>> {
    let spec = entry.spec;
    let errors_before = at.error_count();
    check_hosts(&spec.hosts, &at.field("hosts"));
    check_workload_selector(spec, &at.field("workloadSelector"));
    check_mesh_fields(spec, at);
    let ports = ports(&spec.ports, &at.field("ports"));
    let resolution = resolution(spec.resolution, &at.field("resolution"));
    let endpoints = endpoints(&spec.endpoints, &ports, resolution, &at.field("endpoints"));
    check_endpoint_count(spec, resolution, &endpoints, at);
    if at.error_count() > errors_before {
        return None;
    }
    let services = spec.hosts.iter().enumerate().map(|(index, host)| {
        let endpoints = if endpoints.is_empty()
            && matches!(resolution, Resolution::Dns | Resolution::DnsRoundRobin)
        {
            // Without endpoints, the host itself is resolved.
            vec![ServiceEndpoint {
                address: EndpointAddress::Dns(host.clone()),
                ports: BTreeMap::new(),
                labels: BTreeMap::new(),
                weight: 1,
                locality: None,
            }]
        } else {
            endpoints.clone()
        };
        let service = Service {
            host: host.clone(),
            ports: ports.clone(),
            resolution,
            endpoints,
            namespace: entry.namespace.to_string(),
            site: at.site().clone(),
        };
        (index, service)
    });
    Some(services.collect())
}

/// At least one host, none the bare wildcard.
fn check_hosts(hosts: &[String], at: &Scope<'_>) {
    if hosts.is_empty() {
        at.error("ServiceEntry must have at least one host");
    }
    for (i, host) in hosts.iter().enumerate() {
        let host_at = at.index(i);
        if host == "*" {
            host_at.error("ServiceEntry host cannot be the bare wildcard \"*\"");
        } else {
            checks::host_name(host, &host_at);
        }
    }
}

/// The selector's labels are label selectors; the selector itself is ignored.
fn check_workload_selector(spec: &ServiceEntrySpec, at: &Scope<'_>) {
    if let Some(labels) = spec
        .workload_selector
        .as_ref()
        .and_then(|selector| selector.get("labels"))
        .and_then(|labels| labels.as_mapping())
    {
        for (key, value) in labels {
            let (key, value) = (key.as_str().unwrap_or("*"), value.as_str().unwrap_or("*"));
            if key.contains('*') || !checks::label_value(value) {
                at.field("labels").field(key).error(format!("{key:?}: {value:?} is not a label selector (no wildcards; values are Kubernetes label values)"));
            }
        }
    }
    if spec.workload_selector.is_some() {
        at.warn("selects Kubernetes workloads, which a standalone gateway does not see; ignored");
    }
}

/// The fields that only mean something inside a service mesh.
fn check_mesh_fields(spec: &ServiceEntrySpec, at: &Scope<'_>) {
    if spec.export_to.is_some() {
        at.field("exportTo")
            .warn("only applies inside a service mesh; ignored");
    }
    let cidr = spec.addresses.iter().any(|a| a.contains('/'));
    if cidr
        && matches!(
            spec.resolution,
            Some(SeResolution::Dns | SeResolution::DnsRoundRobin)
        )
    {
        at.field("addresses")
            .error("CIDR addresses are allowed only with resolution NONE or STATIC");
    }
    if !spec.addresses.is_empty() {
        at.field("addresses")
            .warn("virtual IPs only identify TCP traffic inside a mesh; ignored");
    }
    if spec.location.is_some() {
        at.field("location")
            .warn("only shapes mesh mTLS and telemetry; ignored");
    }
    if !spec.subject_alt_names.is_empty() {
        at.field("subjectAltNames").warn(
            "not checked: pin the upstream certificate with the DestinationRule's tls.subjectAltNames; ignored",
        );
    }
}

/// The resolution (default NONE); DYNAMIC_DNS is an error.
fn resolution(resolution: Option<SeResolution>, at: &Scope<'_>) -> Resolution {
    match resolution.unwrap_or(SeResolution::None) {
        SeResolution::None => Resolution::None,
        SeResolution::Static => Resolution::Static,
        SeResolution::Dns => Resolution::Dns,
        SeResolution::DnsRoundRobin => Resolution::DnsRoundRobin,
        SeResolution::DynamicDns => {
            at.error("DYNAMIC_DNS needs a mesh waypoint; use DNS");
            Resolution::Dns
        }
    }
}

/// The endpoints the resolution takes: some for STATIC, none for NONE, at most one
/// for DNS_ROUND_ROBIN.
fn check_endpoint_count(
    spec: &ServiceEntrySpec,
    resolution: Resolution,
    endpoints: &[ServiceEndpoint],
    at: &Scope<'_>,
) {
    match resolution {
        Resolution::Static if endpoints.is_empty() => {
            at.field("endpoints").warn("no endpoints (Istio would take them from workloadSelector's workloads): requests to this service get 503 no healthy upstream");
        }
        Resolution::None if !spec.endpoints.is_empty() => {
            at.field("endpoints").error(
                "resolution NONE takes no endpoints: the original destination is used; use STATIC",
            );
        }
        Resolution::None => {
            at.field("resolution").warn("resolution NONE forwards to the original destination, which an edge gateway does not have; requests to this service get 503 (use DNS or STATIC)");
        }
        Resolution::DnsRoundRobin if spec.endpoints.len() > 1 => {
            at.field("endpoints")
                .error("resolution DNS_ROUND_ROBIN takes at most one endpoint");
        }
        _ => {}
    }
}

/// The valid ports, numbers and names unique.
fn ports(specs: &[PortSpec], at: &Scope<'_>) -> Vec<ServicePort> {
    if specs.is_empty() {
        at.warn("no ports: no route can send traffic to this ServiceEntry");
    }
    let mut ports: Vec<ServicePort> = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let Some(port) = self::port(spec, &at.index(i)) else {
            continue;
        };
        if ports.iter().any(|p| p.number == port.number) {
            at.index(i).field("number").error(format!(
                "port number {} is already used by another port of this ServiceEntry",
                port.number
            ));
            continue;
        }
        if ports.iter().any(|p| p.name == port.name) {
            at.index(i).field("name").error(format!(
                "port name {:?} is already used by another port of this ServiceEntry",
                port.name
            ));
            continue;
        }
        ports.push(port);
    }
    ports
}

/// One port, checked on its own.
fn port(spec: &PortSpec, at: &Scope<'_>) -> Option<ServicePort> {
    let Some(number) = spec.number else {
        at.field("number").error("missing field `number`");
        return None;
    };
    let number = checks::port(number, &at.field("number"))?;
    let name = match &spec.name {
        Some(name) if !name.is_empty() => name.clone(),
        _ => {
            at.field("name").error("port name must be set");
            return None;
        }
    };
    let protocol = match spec.protocol.as_deref().filter(|p| !p.is_empty()) {
        Some(p) => {
            let Some(protocol) = Protocol::parse(p) else {
                at.field("protocol").error(format!(
                    "unknown protocol {p:?}: expected HTTP, HTTPS, HTTP2, GRPC, TLS, TCP or MONGO"
                ));
                return None;
            };
            protocol
        }
        None => {
            // Istio sniffs the protocol of such a port; a gateway routes HTTP to it.
            at.field("protocol")
                .warn("no protocol: Istio would sniff it; Portcullis speaks HTTP/1.1 to this port");
            Protocol::Http
        }
    };
    let target_port = match spec.target_port {
        Some(t) => checks::port(t, &at.field("targetPort"))?,
        None => number,
    };
    Some(ServicePort {
        number,
        name,
        protocol,
        target_port,
    })
}

/// The valid endpoints.
fn endpoints(
    specs: &[WorkloadEntry],
    ports: &[ServicePort],
    resolution: Resolution,
    at: &Scope<'_>,
) -> Vec<ServiceEndpoint> {
    let mut endpoints = Vec::new();
    for (i, endpoint) in specs.iter().enumerate() {
        let at = at.index(i);
        let Some(address) = endpoint_address(endpoint, resolution, &at.field("address")) else {
            continue;
        };
        let ports = endpoint_ports(&endpoint.ports, ports, &at.field("ports"));
        let mesh_only = [
            ("serviceAccount", endpoint.service_account.is_some()),
            ("network", endpoint.network.is_some()),
        ];
        for (field, set) in mesh_only {
            if set {
                at.field(field)
                    .warn("only applies inside a service mesh; ignored");
            }
        }
        if endpoint.locality.is_some() {
            at.field("locality")
                .warn("locality-aware load balancing is not supported; ignored");
        }
        endpoints.push(ServiceEndpoint {
            address,
            ports,
            labels: endpoint.labels.clone(),
            weight: endpoint.weight.unwrap_or(1).max(1),
            locality: endpoint.locality.clone(),
        });
    }
    endpoints
}

/// An endpoint's address: an IP, a unix socket or (unless STATIC) a DNS name.
fn endpoint_address(
    endpoint: &WorkloadEntry,
    resolution: Resolution,
    at: &Scope<'_>,
) -> Option<EndpointAddress> {
    let Some(address) = endpoint.address.as_deref().filter(|a| !a.is_empty()) else {
        at.error("endpoint address is required");
        return None;
    };
    if let Some(socket) = address.strip_prefix("unix://") {
        at.warn("unix socket endpoints are not served yet; this endpoint gets no traffic");
        Some(EndpointAddress::Unix(PathBuf::from(socket)))
    } else if let Ok(ip) = address.parse::<IpAddr>() {
        Some(EndpointAddress::Ip(ip))
    } else if resolution == Resolution::Static {
        at.error(format!("endpoint address {address:?} is not an IP address; resolution STATIC needs IPs (use DNS for names)"));
        None
    } else if checks::host_name(address, at) {
        Some(EndpointAddress::Dns(address.to_string()))
    } else {
        None
    }
}

/// An endpoint's own port numbers, by the name of the service port.
fn endpoint_ports(
    specs: &BTreeMap<String, u32>,
    ports: &[ServicePort],
    at: &Scope<'_>,
) -> BTreeMap<String, u16> {
    let mut endpoint_ports = BTreeMap::new();
    for (name, number) in specs {
        let port_at = at.field(name);
        if !ports.iter().any(|p| &p.name == name) {
            let names: Vec<&str> = ports.iter().map(|p| p.name.as_str()).collect();
            port_at.error(format!(
                "no port of the ServiceEntry is named {name:?} (ports: {})",
                names.join(", ")
            ));
            continue;
        }
        if let Some(number) = checks::port(*number, &port_at) {
            endpoint_ports.insert(name.clone(), number);
        }
    }
    endpoint_ports
}
