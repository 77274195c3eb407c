//! Gateway: servers, their ports and hosts; a server's TLS settings are checked in
//! `server_tls`, and the certificate files it names in `certificates`.

mod certificates;
mod server_tls;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::scope::Scope;
use super::{Context, Input, checks, tls};
use crate::config::diag::{Reporter, Site};
use crate::config::model::gateway::{GatewaySpec, Port, Server as ServerSpec, ServerTlsMode};
use crate::config::resolved::{Protocol, ServerKind, ServerTls};

/// A checked Gateway server, before servers are grouped into listeners.
#[derive(Debug, Clone)]
pub struct GatewayServer {
    /// `namespace/name` of the Gateway.
    pub gateway: String,
    /// The server's name, explicit or `<gateway>/<port name>`.
    pub name: String,
    /// Where it listens.
    pub address: SocketAddr,
    /// Port name, which groups port-0 servers into one listener.
    pub port_name: String,
    /// The port's protocol, one routed as HTTP.
    pub protocol: Protocol,
    /// Hosts with their namespace filter (`None`: any namespace).
    pub hosts: Vec<(Option<String>, String)>,
    /// TLS termination; `None` for plain text and passthrough.
    pub tls: Option<ServerTls>,
    /// What the server does with a connection.
    pub kind: ServerKind,
    /// Whether plain HTTP requests are redirected to HTTPS.
    pub https_redirect: bool,
    /// Whether connections start with a PROXY protocol header.
    pub proxy_protocol: bool,
    /// Proxies in front trusted to set `x-forwarded-for` and `x-forwarded-proto`.
    pub trusted_proxies: u32,
    /// The Gateway, for diagnostics.
    pub site: Site,
    /// Field path of the server, e.g. `spec.servers[1]`.
    pub path: String,
}

/// Checks every Gateway; the result maps `namespace/name` to its servers.
pub fn resolve(
    gateways: &[Input<'_, GatewaySpec>],
    ctx: &Context<'_>,
    reporter: &Reporter,
) -> BTreeMap<String, Vec<GatewayServer>> {
    let mut resolved = BTreeMap::new();
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    for gateway in gateways {
        let spec = gateway.spec;
        let at = gateway.scope(reporter).field("spec");
        if spec.selector.is_some() {
            at.field("selector").warn("selects gateway pods in Kubernetes; Portcullis serves every Gateway in its config, so this is ignored");
        }
        if spec.servers.is_empty() {
            at.field("servers")
                .error("Gateway must have at least one server");
        }
        let mut servers = Vec::new();
        for (i, server_spec) in spec.servers.iter().enumerate() {
            let server_at = at.field("servers").index(i);
            let Some(server) = self::server(server_spec, gateway, ctx, &server_at) else {
                continue;
            };
            // Explicit names must be unique; default ones (`<gateway>/<port name>`) may
            // repeat when several servers share a port.
            let explicit = server_spec.name.is_some();
            if let Some(first) = names.get(&server.name).filter(|_| explicit) {
                server_at.field("name").error(format!(
                    "server name {:?} is already used by {first}",
                    server.name
                ));
                continue;
            }
            if explicit {
                names.insert(server.name.clone(), gateway.site.resource.clone());
            }
            servers.push(server);
        }
        resolved.insert(gateway.key(), servers);
    }
    resolved
}

/// What the server does with connections: HTTP (terminating TLS on HTTPS), TLS
/// PASSTHROUGH (HTTPS or TLS without a terminating mode), or TCP; `None` (warned) for
/// what is not served.
fn server_kind(
    spec: &ServerSpec,
    protocol: Protocol,
    protocol_name: &str,
    at: &Scope<'_>,
) -> Option<ServerKind> {
    let passes = spec
        .tls
        .as_ref()
        .is_some_and(|t| matches!(t.mode, None | Some(ServerTlsMode::Passthrough)));
    match protocol {
        Protocol::Https | Protocol::Tls if passes => Some(ServerKind::Passthrough),
        Protocol::Tcp => Some(ServerKind::Tcp),
        _ if protocol.is_http() => Some(ServerKind::Http),
        Protocol::Tls if spec.tls.is_some() => {
            at.field("tls").field("mode").warn(
                "a TLS server that terminates TLS forwards to tcp routes, which is not served yet: this server is not served; use PASSTHROUGH, or protocol HTTPS for HTTP",
            );
            None
        }
        _ => {
            at.field("port").field("protocol").warn(format!(
                "Portcullis serves HTTP, HTTPS, TLS (PASSTHROUGH) and TCP; this {protocol_name} server is not served"
            ));
            None
        }
    }
}

/// One server, checked; `None` when it has errors or is not served.
fn server(
    spec: &ServerSpec,
    gateway: &Input<'_, GatewaySpec>,
    ctx: &Context<'_>,
    at: &Scope<'_>,
) -> Option<GatewayServer> {
    let errors = at.error_count();
    let Some(port) = &spec.port else {
        at.field("port").error("server port is required");
        return None;
    };
    let (number, port_name, protocol) = self::port(port, &at.field("port"));
    if spec.default_endpoint.is_some() {
        at.field("defaultEndpoint")
            .warn("not implemented by Istio either; ignored");
    }
    let ip = bind_address(spec.bind.as_deref(), &at.field("bind"));
    let hosts = hosts(&spec.hosts, gateway.namespace, &at.field("hosts"));
    let protocol = protocol?;
    let protocol_name = port.protocol.as_deref().unwrap_or_default();
    let kind = server_kind(spec, protocol, protocol_name, at)?;
    let (tls, https_redirect) = match kind {
        ServerKind::Passthrough => {
            server_tls::passthrough(spec.tls.as_ref(), &at.field("tls"));
            (None, false)
        }
        _ => server_tls::tls_settings(
            spec.tls.as_ref(),
            protocol,
            protocol_name,
            ctx,
            &at.field("tls"),
        ),
    };
    if at.error_count() > errors
        || (protocol == Protocol::Https && tls.is_none() && kind == ServerKind::Http)
    {
        return None;
    }
    Some(GatewayServer {
        gateway: gateway.key(),
        name: spec
            .name
            .clone()
            .unwrap_or_else(|| format!("{}/{}", gateway.key(), port_name)),
        address: SocketAddr::new(ip, number),
        port_name,
        protocol,
        hosts,
        tls,
        kind,
        https_redirect,
        proxy_protocol: spec.proxy_protocol.unwrap_or(false),
        trusted_proxies: spec.num_trusted_proxies.unwrap_or(0),
        site: at.site().clone(),
        path: at.path().to_string(),
    })
}

/// The port's number (0 when missing or invalid), name and protocol.
fn port(port: &Port, at: &Scope<'_>) -> (u16, String, Option<Protocol>) {
    // Port 0 asks the OS for a free port: tests and scripts read it from the ready line.
    let number = match port.number {
        None => {
            at.field("number").error("missing field `number`");
            0
        }
        Some(0) => 0,
        Some(n) => checks::port(n, &at.field("number")).unwrap_or(0),
    };
    let name = match port.name.as_deref() {
        Some(name) if !name.is_empty() => name.to_string(),
        _ => {
            at.field("name").error("port name must be set");
            String::new()
        }
    };
    let protocol = match port.protocol.as_deref() {
        None => {
            at.field("protocol").error("missing field `protocol`");
            None
        }
        Some(p) => {
            let protocol = Protocol::parse(p);
            if protocol.is_none() {
                at.field("protocol").error(format!("unknown protocol {p:?}: expected HTTP, HTTPS, HTTP2, GRPC, GRPC-WEB, TLS, TCP or MONGO"));
            }
            protocol
        }
    };
    if port.target_port.is_some() {
        at.field("targetPort")
            .warn("deprecated by Istio and ignored");
    }
    (number, name, protocol)
}

/// The address to listen on: `bind`, or every interface.
fn bind_address(bind: Option<&str>, at: &Scope<'_>) -> IpAddr {
    let Some(bind) = bind else {
        return IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    };
    bind.parse::<IpAddr>().unwrap_or_else(|_| {
        let why = if bind.starts_with("unix://") {
            "unix sockets are not supported"
        } else {
            "expected an IP address such as 127.0.0.1 or ::"
        };
        at.error(format!("invalid bind address {bind:?}: {why}"));
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    })
}

/// The server's valid hosts, each with its namespace filter (`None`: any namespace).
fn hosts(hosts: &[String], namespace: &str, at: &Scope<'_>) -> Vec<(Option<String>, String)> {
    if hosts.is_empty() {
        at.error("server must have at least one host");
    }
    let mut valid = Vec::new();
    for (i, host) in hosts.iter().enumerate() {
        let host_at = at.index(i);
        let (filter, name) = match host.split_once('/') {
            Some(("*", name)) => (None, name),
            Some((".", name)) => (Some(namespace.to_string()), name),
            Some((ns, name)) => (Some(ns.to_string()), name),
            None => (None, host.as_str()),
        };
        if !checks::host_name(name, &host_at) {
            continue;
        }
        if name != "*" && !name.contains('.') {
            host_at.error(format!("{name:?} is a short name: a Gateway's hosts are fully qualified names or wildcards, as Istio requires"));
            continue;
        }
        valid.push((filter, name.to_string()));
    }
    valid
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::{GatewayServer, resolve};
    use crate::config::Diagnostics;
    use crate::config::diag::Reporter;
    use crate::config::model::gateway::GatewaySpec;
    use crate::config::resolve::scope::{errors_at, warnings_at};
    use crate::config::resolve::tls::test_files;
    use crate::config::resolve::{Context, Input};
    use crate::config::resolved::{ClientAuth, Protocol, ServerKind, TlsVersion};

    /// The servers of the Gateway `edge/gw` in `yaml`, with files relative to `base_dir`.
    fn gateway_in(base_dir: &Path, yaml: &str) -> (Vec<GatewayServer>, Diagnostics) {
        let spec: GatewaySpec = serde_yaml::from_str(yaml).unwrap();
        let reporter = Reporter::new("test.yaml", Vec::new());
        let ctx = Context { base_dir };
        let input = Input::test(&spec, "Gateway", "edge", "gw");
        let mut resolved = resolve(&[input], &ctx, &reporter);
        (resolved.remove("edge/gw").unwrap(), reporter.finish())
    }

    fn gateway(yaml: &str) -> (Vec<GatewayServer>, Diagnostics) {
        gateway_in(Path::new("/nonexistent"), yaml)
    }

    /// A Gateway with one server on `port` (`number/NAME`) with `rest` of its fields.
    fn one_server(port: &str, rest: &str) -> String {
        let (number, protocol) = port.split_once('/').unwrap();
        let name = protocol.to_ascii_lowercase();
        format!(
            "servers: [{{port: {{number: {number}, name: {name}, protocol: {protocol}}}, {rest}}}]"
        )
    }

    #[test]
    fn a_plain_http_server_gets_its_defaults() {
        let (servers, reported) = gateway(&one_server("8080/HTTP", "hosts: ['*']"));
        let server = &servers[0];
        assert_eq!(server.name, "edge/gw/http");
        assert_eq!(server.address.to_string(), "0.0.0.0:8080");
        assert_eq!(server.protocol, Protocol::Http);
        assert_eq!(server.hosts, [(None, "*".to_string())]);
        assert!(server.tls.is_none() && !server.https_redirect);
        assert!(!server.proxy_protocol);
        assert_eq!(server.trusted_proxies, 0);
        assert_eq!(server.path, "spec.servers[0]");
        assert!(!reported.has_errors() && warnings_at(&reported).is_empty());
    }

    #[test]
    fn https_redirect_is_kept_on_a_plain_http_server() {
        let (servers, reported) = gateway(&one_server(
            "80/HTTP",
            "hosts: [a.example.com], tls: {httpsRedirect: true}",
        ));
        assert!(servers[0].https_redirect);
        assert!(servers[0].tls.is_none());
        assert!(!reported.has_errors() && warnings_at(&reported).is_empty());
    }

    #[test]
    fn https_redirect_on_an_https_server_is_ignored_with_a_warning() {
        let dir = test_files();
        let (servers, reported) = gateway_in(
            dir.path(),
            &one_server(
                "443/HTTPS",
                "hosts: [a.example.com], tls: {httpsRedirect: true, mode: SIMPLE, serverCertificate: server.crt, privateKey: server.key}",
            ),
        );
        assert!(!reported.has_errors(), "{reported:?}");
        assert_eq!(
            warnings_at(&reported),
            ["spec.servers[0].tls.httpsRedirect"]
        );
        assert!(!servers[0].https_redirect);
        assert!(servers[0].tls.is_some());
    }

    #[test]
    fn simple_tls_terminates_with_its_certificate_and_default_versions() {
        let dir = test_files();
        let (servers, reported) = gateway_in(
            dir.path(),
            &one_server(
                "443/HTTPS",
                "hosts: [a.example.com], tls: {mode: SIMPLE, credentialName: cred}",
            ),
        );
        assert!(!reported.has_errors(), "{reported:?}");
        let tls = servers[0].tls.as_ref().unwrap();
        assert_eq!(tls.client_auth, ClientAuth::None);
        assert_eq!(tls.certificates.len(), 1);
        assert_eq!(
            tls.certificates[0].certificate_chain,
            dir.path().join("cred/tls.crt")
        );
        assert_eq!(tls.ca_certificates, None);
        assert_eq!(
            (tls.min_version, tls.max_version),
            (TlsVersion::V1_2, TlsVersion::V1_3)
        );
    }

    #[test]
    fn simple_tls_without_credentials_is_an_error_at_its_tls() {
        let (servers, reported) = gateway(&one_server(
            "443/HTTPS",
            "hosts: [a.example.com], tls: {mode: SIMPLE}",
        ));
        assert!(servers.is_empty());
        assert_eq!(errors_at(&reported), ["spec.servers[0].tls"]);
        let (servers, reported) = gateway(&one_server("443/HTTPS", "hosts: [a.example.com]"));
        assert!(servers.is_empty());
        assert_eq!(errors_at(&reported), ["spec.servers[0].tls"]);
    }

    /// PASSTHROUGH (also the default mode) is not served: no port speaks plain HTTP
    /// where the config asked for TLS.
    #[test]
    fn passthrough_the_default_mode_forwards_bytes() {
        let (servers, reported) =
            gateway(&one_server("443/HTTPS", "hosts: [a.example.com], tls: {}"));
        assert!(errors_at(&reported).is_empty());
        assert!(warnings_at(&reported).is_empty());
        assert_eq!(servers[0].kind, ServerKind::Passthrough);
        assert!(servers[0].tls.is_none());
    }

    #[test]
    fn termination_settings_on_a_plain_text_server_are_an_error() {
        let (servers, reported) = gateway(&one_server(
            "80/HTTP",
            "hosts: [a.example.com], tls: {mode: SIMPLE}",
        ));
        assert!(servers.is_empty());
        assert_eq!(errors_at(&reported), ["spec.servers[0].tls"]);
        let (servers, reported) = gateway(&one_server(
            "80/HTTP",
            "hosts: [a.example.com], tls: {minProtocolVersion: TLSV1_3}",
        ));
        assert_eq!(servers.len(), 1);
        assert_eq!(
            warnings_at(&reported),
            ["spec.servers[0].tls.minProtocolVersion"]
        );
    }

    #[test]
    fn hosts_carry_their_namespace_filter() {
        let (servers, reported) = gateway(&one_server(
            "80/HTTP",
            "hosts: ['*/a.example.com', './b.example.com', 'team/c.example.com', d.example.com, '*.e.example.com']",
        ));
        assert!(!reported.has_errors());
        let hosts: Vec<(Option<&str>, &str)> = servers[0]
            .hosts
            .iter()
            .map(|(ns, host)| (ns.as_deref(), host.as_str()))
            .collect();
        assert_eq!(
            hosts,
            [
                (None, "a.example.com"),
                (Some("edge"), "b.example.com"),
                (Some("team"), "c.example.com"),
                (None, "d.example.com"),
                (None, "*.e.example.com")
            ]
        );
    }

    #[test]
    fn short_and_missing_hosts_are_errors_at_their_fields() {
        let (servers, reported) = gateway(&one_server("80/HTTP", "hosts: [a.example.com, api]"));
        assert!(servers.is_empty());
        assert_eq!(errors_at(&reported), ["spec.servers[0].hosts[1]"]);
        let (_, reported) = gateway(&one_server("80/HTTP", "hosts: []"));
        assert_eq!(errors_at(&reported), ["spec.servers[0].hosts"]);
    }

    #[test]
    fn explicit_server_names_are_unique_and_default_ones_may_repeat() {
        let (servers, reported) = gateway(
            "
servers:
- {name: web, port: {number: 80, name: http, protocol: HTTP}, hosts: [a.example.com]}
- {name: web, port: {number: 81, name: http2, protocol: HTTP}, hosts: [b.example.com]}
- {port: {number: 82, name: http, protocol: HTTP}, hosts: [c.example.com]}
- {port: {number: 83, name: http, protocol: HTTP}, hosts: [d.example.com]}
",
        );
        assert_eq!(errors_at(&reported), ["spec.servers[1].name"]);
        let names: Vec<&str> = servers.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["web", "edge/gw/http", "edge/gw/http"]);
    }

    #[test]
    fn ports_need_a_number_name_and_known_protocol() {
        let (_, reported) = gateway("servers: [{hosts: [a.example.com]}]");
        assert_eq!(errors_at(&reported), ["spec.servers[0].port"]);
        let (_, reported) = gateway("servers: [{port: {protocol: HTTP}, hosts: [a.example.com]}]");
        assert_eq!(
            errors_at(&reported),
            ["spec.servers[0].port.number", "spec.servers[0].port.name"]
        );
        let (_, reported) = gateway(&one_server("80/QUIC", "hosts: [a.example.com]"));
        assert_eq!(errors_at(&reported), ["spec.servers[0].port.protocol"]);
        let (_, reported) = gateway("servers: []");
        assert_eq!(errors_at(&reported), ["spec.servers"]);
    }

    #[test]
    fn tcp_servers_forward_bytes_and_mongo_ones_are_not_served() {
        let (servers, reported) = gateway(&one_server("9000/TCP", "hosts: [a.example.com]"));
        assert_eq!(servers[0].kind, ServerKind::Tcp);
        assert!(errors_at(&reported).is_empty() && warnings_at(&reported).is_empty());
        let (servers, reported) = gateway(&one_server("9000/MONGO", "hosts: [a.example.com]"));
        assert!(servers.is_empty());
        assert!(errors_at(&reported).is_empty());
        assert_eq!(warnings_at(&reported), ["spec.servers[0].port.protocol"]);
    }

    #[test]
    fn bind_takes_an_ip_address() {
        let (servers, _) = gateway(&one_server("0/HTTP", "hosts: [a.example.com], bind: '::1'"));
        assert_eq!(servers[0].address.to_string(), "[::1]:0");
        let (servers, reported) = gateway(&one_server(
            "80/HTTP",
            "hosts: [a.example.com], bind: 'unix:///run/gw.sock'",
        ));
        assert!(servers.is_empty());
        assert_eq!(errors_at(&reported), ["spec.servers[0].bind"]);
    }
}
