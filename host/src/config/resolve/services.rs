//! ServiceEntry: the upstream services and their endpoints.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

use super::Input;
use super::checks;
use crate::config::diag::{Reporter, Site};
use crate::config::model::service_entry::{Resolution as SeResolution, ServiceEntrySpec};
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
    reporter: &mut Reporter,
) -> BTreeMap<String, Service> {
    let mut services: BTreeMap<String, Service> = BTreeMap::new();
    for entry in entries {
        let Some(resolved) = service_entry(entry, reporter) else {
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
fn merge(first: &mut Service, other: Service, index: usize, reporter: &mut Reporter) {
    let site = &other.site;
    let host = &other.host;
    if other.resolution != first.resolution {
        reporter.warn(
            site,
            "spec.resolution",
            format!(
                "{} already resolves host {host:?} as {:?}; its resolution is kept",
                first.site.resource, first.resolution
            ),
        );
    }
    for port in other.ports {
        match first.ports.iter().find(|p| p.number == port.number) {
            Some(known) if known.protocol != port.protocol => reporter.warn(
                site,
                format!("spec.hosts[{index}]"),
                format!(
                    "port {} of host {host:?} is {} in {}: that protocol is kept",
                    port.number,
                    format!("{:?}", known.protocol).to_uppercase(),
                    first.site.resource
                ),
            ),
            Some(_) => {}
            None => first.ports.push(port),
        }
    }
    first.endpoints.extend(other.endpoints);
}

fn service_entry(
    entry: &Input<'_, ServiceEntrySpec>,
    reporter: &mut Reporter,
) -> Option<Vec<(usize, Service)>> {
    let (spec, site) = (entry.spec, &entry.site);
    let errors_before = reporter.error_count();
    if spec.hosts.is_empty() {
        reporter.error(
            site,
            "spec.hosts",
            "ServiceEntry must have at least one host",
        );
    }
    for (i, host) in spec.hosts.iter().enumerate() {
        let path = format!("spec.hosts[{i}]");
        if host == "*" {
            reporter.error(
                site,
                &path,
                "ServiceEntry host cannot be the bare wildcard \"*\"",
            );
        } else {
            checks::host_name(reporter, site, &path, host);
        }
    }
    if let Some(labels) = spec
        .workload_selector
        .as_ref()
        .and_then(|selector| selector.get("labels"))
        .and_then(|labels| labels.as_mapping())
    {
        for (key, value) in labels {
            let (key, value) = (key.as_str().unwrap_or("*"), value.as_str().unwrap_or("*"));
            if key.contains('*') || !checks::label_value(value) {
                reporter.error(
                    site,
                    format!("spec.workloadSelector.labels.{key}"),
                    format!("{key:?}: {value:?} is not a label selector (no wildcards; values are Kubernetes label values)"),
                );
            }
        }
    }
    if spec.workload_selector.is_some() {
        reporter.warn(
            site,
            "spec.workloadSelector",
            "selects Kubernetes workloads, which a standalone gateway does not see; ignored",
        );
    }
    if spec.export_to.is_some() {
        reporter.warn(
            site,
            "spec.exportTo",
            "only applies inside a service mesh; ignored",
        );
    }
    let cidr = spec.addresses.iter().any(|a| a.contains('/'));
    if cidr
        && matches!(
            spec.resolution,
            Some(SeResolution::Dns | SeResolution::DnsRoundRobin)
        )
    {
        reporter.error(
            site,
            "spec.addresses",
            "CIDR addresses are allowed only with resolution NONE or STATIC",
        );
    }
    if !spec.addresses.is_empty() {
        reporter.warn(
            site,
            "spec.addresses",
            "virtual IPs only identify TCP traffic inside a mesh; ignored",
        );
    }
    if spec.location.is_some() {
        reporter.warn(
            site,
            "spec.location",
            "only shapes mesh mTLS and telemetry; ignored",
        );
    }
    if !spec.subject_alt_names.is_empty() {
        reporter.warn(
            site,
            "spec.subjectAltNames",
            "not checked: pin the upstream certificate with the DestinationRule's tls.subjectAltNames; ignored",
        );
    }

    let ports = ports(spec, site, reporter);
    let resolution = match spec.resolution.unwrap_or(SeResolution::None) {
        SeResolution::None => Resolution::None,
        SeResolution::Static => Resolution::Static,
        SeResolution::Dns => Resolution::Dns,
        SeResolution::DnsRoundRobin => Resolution::DnsRoundRobin,
        SeResolution::DynamicDns => {
            reporter.error(
                site,
                "spec.resolution",
                "DYNAMIC_DNS needs a mesh waypoint; use DNS",
            );
            Resolution::Dns
        }
    };
    let endpoints = endpoints(spec, &ports, resolution, site, reporter);
    match resolution {
        Resolution::Static if endpoints.is_empty() => {
            reporter.warn(
                site,
                "spec.endpoints",
                "no endpoints (Istio would take them from workloadSelector's workloads): requests to this service get 503 no healthy upstream",
            );
        }
        Resolution::None if !spec.endpoints.is_empty() => {
            reporter.error(
                site,
                "spec.endpoints",
                "resolution NONE takes no endpoints: the original destination is used; use STATIC",
            );
        }
        Resolution::None => {
            reporter.warn(site, "spec.resolution", "resolution NONE forwards to the original destination, which an edge gateway does not have; requests to this service get 503 (use DNS or STATIC)");
        }
        Resolution::DnsRoundRobin if spec.endpoints.len() > 1 => {
            reporter.error(
                site,
                "spec.endpoints",
                "resolution DNS_ROUND_ROBIN takes at most one endpoint",
            );
        }
        _ => {}
    }
    if reporter.error_count() > errors_before {
        return None;
    }
    Some(
        spec.hosts
            .iter()
            .enumerate()
            .map(|(index, host)| {
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
                    site: site.clone(),
                };
                (index, service)
            })
            .collect(),
    )
}

fn ports(spec: &ServiceEntrySpec, site: &Site, reporter: &mut Reporter) -> Vec<ServicePort> {
    if spec.ports.is_empty() {
        reporter.warn(
            site,
            "spec.ports",
            "no ports: no route can send traffic to this ServiceEntry",
        );
    }
    let mut ports: Vec<ServicePort> = Vec::new();
    for (i, port) in spec.ports.iter().enumerate() {
        let path = format!("spec.ports[{i}]");
        let Some(number) = port.number else {
            reporter.error(site, format!("{path}.number"), "missing field `number`");
            continue;
        };
        let Some(number) = checks::port(reporter, site, &format!("{path}.number"), number) else {
            continue;
        };
        let name = match &port.name {
            Some(name) if !name.is_empty() => name.clone(),
            _ => {
                reporter.error(site, format!("{path}.name"), "port name must be set");
                continue;
            }
        };
        let protocol = match port.protocol.as_deref().filter(|p| !p.is_empty()) {
            Some(p) => match Protocol::parse(p) {
                Some(protocol) => protocol,
                None => {
                    reporter.error(site, format!("{path}.protocol"), format!("unknown protocol {p:?}: expected HTTP, HTTPS, HTTP2, GRPC, TLS, TCP or MONGO"));
                    continue;
                }
            },
            None => {
                // Istio sniffs the protocol of such a port; a gateway routes HTTP to it.
                reporter.warn(
                    site,
                    format!("{path}.protocol"),
                    "no protocol: Istio would sniff it; Portcullis speaks HTTP/1.1 to this port",
                );
                Protocol::Http
            }
        };
        let target_port = match port.target_port {
            Some(t) => match checks::port(reporter, site, &format!("{path}.targetPort"), t) {
                Some(t) => t,
                None => continue,
            },
            None => number,
        };
        if ports.iter().any(|p| p.number == number) {
            reporter.error(
                site,
                format!("{path}.number"),
                format!(
                    "port number {number} is already used by another port of this ServiceEntry"
                ),
            );
            continue;
        }
        if ports.iter().any(|p| p.name == name) {
            reporter.error(
                site,
                format!("{path}.name"),
                format!("port name {name:?} is already used by another port of this ServiceEntry"),
            );
            continue;
        }
        ports.push(ServicePort {
            number,
            name,
            protocol,
            target_port,
        });
    }
    ports
}

fn endpoints(
    spec: &ServiceEntrySpec,
    ports: &[ServicePort],
    resolution: Resolution,
    site: &Site,
    reporter: &mut Reporter,
) -> Vec<ServiceEndpoint> {
    let mut endpoints = Vec::new();
    for (i, endpoint) in spec.endpoints.iter().enumerate() {
        let path = format!("spec.endpoints[{i}]");
        let Some(address) = endpoint.address.as_deref().filter(|a| !a.is_empty()) else {
            reporter.error(
                site,
                format!("{path}.address"),
                "endpoint address is required",
            );
            continue;
        };
        let address = if let Some(socket) = address.strip_prefix("unix://") {
            reporter.warn(
                site,
                format!("{path}.address"),
                "unix socket endpoints are not served yet; this endpoint gets no traffic",
            );
            EndpointAddress::Unix(PathBuf::from(socket))
        } else if let Ok(ip) = address.parse::<IpAddr>() {
            EndpointAddress::Ip(ip)
        } else if resolution == Resolution::Static {
            reporter.error(site, format!("{path}.address"), format!("endpoint address {address:?} is not an IP address; resolution STATIC needs IPs (use DNS for names)"));
            continue;
        } else if checks::host_name(reporter, site, &format!("{path}.address"), address) {
            EndpointAddress::Dns(address.to_string())
        } else {
            continue;
        };
        let mut endpoint_ports = BTreeMap::new();
        for (name, number) in &endpoint.ports {
            let port_path = format!("{path}.ports.{name}");
            if !ports.iter().any(|p| &p.name == name) {
                let names: Vec<&str> = ports.iter().map(|p| p.name.as_str()).collect();
                reporter.error(
                    site,
                    &port_path,
                    format!(
                        "no port of the ServiceEntry is named {name:?} (ports: {})",
                        names.join(", ")
                    ),
                );
                continue;
            }
            if let Some(number) = checks::port(reporter, site, &port_path, *number) {
                endpoint_ports.insert(name.clone(), number);
            }
        }
        let mesh_only = [
            ("serviceAccount", endpoint.service_account.is_some()),
            ("network", endpoint.network.is_some()),
        ];
        for (field, set) in mesh_only {
            if set {
                reporter.warn(
                    site,
                    format!("{path}.{field}"),
                    "only applies inside a service mesh; ignored",
                );
            }
        }
        if endpoint.locality.is_some() {
            reporter.warn(
                site,
                format!("{path}.locality"),
                "locality-aware load balancing is not supported; ignored",
            );
        }
        endpoints.push(ServiceEndpoint {
            address,
            ports: endpoint_ports,
            labels: endpoint.labels.clone(),
            weight: endpoint.weight.unwrap_or(1).max(1),
            locality: endpoint.locality.clone(),
        });
    }
    endpoints
}
