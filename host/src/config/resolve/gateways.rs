//! Gateway: servers, their ports, hosts and TLS settings.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::{Context, Input, checks, tls};
use crate::config::diag::{Reporter, Site};
use crate::config::model::gateway::{
    GatewaySpec, Server as ServerSpec, ServerTlsMode, ServerTlsSettings, TlsProtocol,
};
use crate::config::resolved::{CertificateFiles, ClientAuth, Protocol, ServerTls, TlsVersion};
use crate::tls::suites;

/// A checked Gateway server, before servers are grouped into listeners.
#[derive(Debug, Clone)]
pub struct GatewayServer {
    /// `namespace/name` of the Gateway.
    pub gateway: String,
    pub name: String,
    pub address: SocketAddr,
    /// Port name, which groups port-0 servers into one listener.
    pub port_name: String,
    pub protocol: Protocol,
    /// Hosts with their namespace filter (`None`: any namespace).
    pub hosts: Vec<(Option<String>, String)>,
    pub tls: Option<ServerTls>,
    pub https_redirect: bool,
    pub proxy_protocol: bool,
    pub trusted_proxies: u32,
    pub site: Site,
    /// Field path of the server, e.g. `spec.servers[1]`.
    pub path: String,
}

/// The `tls` fields set on a plain-text server that only a TLS server would use.
fn plain_text_tls_fields(t: &ServerTlsSettings) -> Vec<&'static str> {
    let set = [
        ("privateKey", t.private_key.is_some()),
        ("tlsCertificates", !t.tls_certificates.is_empty()),
        ("credentialNames", !t.credential_names.is_empty()),
        ("caCertCredentialName", t.ca_cert_credential_name.is_some()),
        ("caCertificates", t.ca_certificates.is_some()),
        ("caCrl", t.ca_crl.is_some()),
        ("subjectAltNames", !t.subject_alt_names.is_empty()),
        (
            "verifyCertificateSpki",
            !t.verify_certificate_spki.is_empty(),
        ),
        (
            "verifyCertificateHash",
            !t.verify_certificate_hash.is_empty(),
        ),
        ("minProtocolVersion", t.min_protocol_version.is_some()),
        ("maxProtocolVersion", t.max_protocol_version.is_some()),
        ("cipherSuites", !t.cipher_suites.is_empty()),
        ("insecureSkipVerify", t.insecure_skip_verify),
    ];
    set.into_iter()
        .filter_map(|(field, set)| set.then_some(field))
        .collect()
}

/// Checks every Gateway; the result maps `namespace/name` to its servers.
pub fn resolve(
    gateways: &[Input<'_, GatewaySpec>],
    ctx: &Context<'_>,
    reporter: &mut Reporter,
) -> BTreeMap<String, Vec<GatewayServer>> {
    let mut resolved = BTreeMap::new();
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    for gateway in gateways {
        let (spec, site) = (gateway.spec, &gateway.site);
        let key = gateway.key();
        if spec.selector.is_some() {
            reporter.warn(site, "spec.selector", "selects gateway pods in Kubernetes; Portcullis serves every Gateway in its config, so this is ignored");
        }
        if spec.servers.is_empty() {
            reporter.error(
                site,
                "spec.servers",
                "Gateway must have at least one server",
            );
        }
        let mut servers = Vec::new();
        for (i, server_spec) in spec.servers.iter().enumerate() {
            let path = format!("spec.servers[{i}]");
            let Some(server) = self::server(server_spec, &path, gateway, ctx, reporter) else {
                continue;
            };
            // Explicit names must be unique; default ones (`<gateway>/<port name>`) may
            // repeat when several servers share a port.
            let explicit = server_spec.name.is_some();
            if let Some(first) = names.get(&server.name).filter(|_| explicit) {
                reporter.error(
                    site,
                    format!("{path}.name"),
                    format!("server name {:?} is already used by {first}", server.name),
                );
                continue;
            }
            if explicit {
                names.insert(server.name.clone(), site.resource.clone());
            }
            servers.push(server);
        }
        resolved.insert(key, servers);
    }
    resolved
}

fn server(
    spec: &ServerSpec,
    path: &str,
    gateway: &Input<'_, GatewaySpec>,
    ctx: &Context<'_>,
    reporter: &mut Reporter,
) -> Option<GatewayServer> {
    let site = &gateway.site;
    let errors = reporter.error_count();
    let Some(port) = &spec.port else {
        reporter.error(site, format!("{path}.port"), "server port is required");
        return None;
    };
    // Port 0 asks the OS for a free port: tests and scripts read it from the ready line.
    let number = match port.number {
        None => {
            reporter.error(
                site,
                format!("{path}.port.number"),
                "missing field `number`",
            );
            0
        }
        Some(0) => 0,
        Some(n) => checks::port(reporter, site, &format!("{path}.port.number"), n).unwrap_or(0),
    };
    let port_name = match port.name.as_deref() {
        Some(name) if !name.is_empty() => name.to_string(),
        _ => {
            reporter.error(site, format!("{path}.port.name"), "port name must be set");
            String::new()
        }
    };
    let protocol = match port.protocol.as_deref() {
        None => {
            reporter.error(
                site,
                format!("{path}.port.protocol"),
                "missing field `protocol`",
            );
            None
        }
        Some(p) => match Protocol::parse(p) {
            None => {
                reporter.error(site, format!("{path}.port.protocol"), format!("unknown protocol {p:?}: expected HTTP, HTTPS, HTTP2, GRPC, GRPC-WEB, TLS, TCP or MONGO"));
                None
            }
            Some(p) => Some(p),
        },
    };
    if port.target_port.is_some() {
        reporter.warn(
            site,
            format!("{path}.port.targetPort"),
            "deprecated by Istio and ignored",
        );
    }
    if spec.default_endpoint.is_some() {
        reporter.warn(
            site,
            format!("{path}.defaultEndpoint"),
            "not implemented by Istio either; ignored",
        );
    }
    let ip = match spec.bind.as_deref() {
        None => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        Some(bind) => match bind.parse::<IpAddr>() {
            Ok(ip) => ip,
            Err(_) => {
                let why = if bind.starts_with("unix://") {
                    "unix sockets are not supported"
                } else {
                    "expected an IP address such as 127.0.0.1 or ::"
                };
                reporter.error(
                    site,
                    format!("{path}.bind"),
                    format!("invalid bind address {bind:?}: {why}"),
                );
                IpAddr::V4(Ipv4Addr::UNSPECIFIED)
            }
        },
    };
    if spec.hosts.is_empty() {
        reporter.error(
            site,
            format!("{path}.hosts"),
            "server must have at least one host",
        );
    }
    let mut hosts = Vec::new();
    for (i, host) in spec.hosts.iter().enumerate() {
        let host_path = format!("{path}.hosts[{i}]");
        let (namespace, name) = match host.split_once('/') {
            Some(("*", name)) => (None, name),
            Some((".", name)) => (Some(gateway.namespace.to_string()), name),
            Some((ns, name)) => (Some(ns.to_string()), name),
            None => (None, host.as_str()),
        };
        if !checks::host_name(reporter, site, &host_path, name) {
            continue;
        }
        if name != "*" && !name.contains('.') {
            reporter.error(
                site,
                &host_path,
                format!("{name:?} is a short name: a Gateway's hosts are fully qualified names or wildcards, as Istio requires"),
            );
            continue;
        }
        hosts.push((namespace, name.to_string()));
    }
    let protocol = protocol?;
    let (tls, https_redirect) = match (&spec.tls, protocol) {
        (None, Protocol::Https | Protocol::Tls) => {
            reporter.error(
                site,
                format!("{path}.tls"),
                format!(
                    "server with protocol {} must have TLS settings",
                    port.protocol.as_deref().unwrap_or_default()
                ),
            );
            (None, false)
        }
        (None, _) => (None, false),
        (Some(t), Protocol::Https | Protocol::Tls) => {
            if t.https_redirect {
                reporter.warn(
                    site,
                    format!("{path}.tls.httpsRedirect"),
                    "httpsRedirect only applies to plain HTTP servers; ignored",
                );
            }
            (
                server_tls(t, &format!("{path}.tls"), ctx, site, reporter),
                false,
            )
        }
        (Some(t), _) => {
            if t.mode.is_some() || t.server_certificate.is_some() || t.credential_name.is_some() {
                reporter.error(
                    site,
                    format!("{path}.tls"),
                    "TLS settings on a plain-text server: use protocol HTTPS to terminate TLS",
                );
            } else {
                for field in plain_text_tls_fields(t) {
                    reporter.warn(
                        site,
                        format!("{path}.tls.{field}"),
                        "a plain-text server terminates no TLS; ignored",
                    );
                }
            }
            if t.https_redirect && protocol != Protocol::Http {
                reporter.warn(
                    site,
                    format!("{path}.tls.httpsRedirect"),
                    "httpsRedirect only applies to HTTP servers",
                );
            }
            (None, t.https_redirect)
        }
    };
    if !protocol.is_http() {
        reporter.warn(
            site,
            format!("{path}.port.protocol"),
            format!(
                "Portcullis routes HTTP only; this {} server is not served",
                port.protocol.as_deref().unwrap_or_default()
            ),
        );
        return None;
    }
    if reporter.error_count() > errors {
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
        https_redirect,
        proxy_protocol: spec.proxy_protocol.unwrap_or(false),
        trusted_proxies: spec.num_trusted_proxies.unwrap_or(0),
        site: site.clone(),
        path: path.to_string(),
    })
}

fn server_tls(
    spec: &ServerTlsSettings,
    path: &str,
    ctx: &Context<'_>,
    site: &Site,
    reporter: &mut Reporter,
) -> Option<ServerTls> {
    let client_auth = match spec.mode {
        Some(ServerTlsMode::Simple) => ClientAuth::None,
        Some(ServerTlsMode::Mutual) => ClientAuth::Required,
        Some(ServerTlsMode::OptionalMutual) => ClientAuth::Optional,
        None | Some(ServerTlsMode::Passthrough) => {
            reporter.warn(site, format!("{path}.mode"), "PASSTHROUGH (the default mode) forwards TLS without terminating it, which Portcullis does not do: this server is not served; set mode: SIMPLE to terminate TLS");
            return None;
        }
        Some(mode @ (ServerTlsMode::AutoPassthrough | ServerTlsMode::IstioMutual)) => {
            reporter.error(
                site,
                format!("{path}.mode"),
                format!(
                    "{mode:?} needs the mesh's certificates and only works inside a service mesh"
                ),
            );
            return None;
        }
    };
    let mut pairs: Vec<(String, String, String, String)> = Vec::new();
    match (&spec.server_certificate, &spec.private_key) {
        (Some(c), Some(k)) => pairs.push((
            c.clone(),
            k.clone(),
            format!("{path}.serverCertificate"),
            format!("{path}.privateKey"),
        )),
        (Some(_), None) => reporter.error(
            site,
            format!("{path}.privateKey"),
            "serverCertificate needs privateKey",
        ),
        (None, Some(_)) => reporter.error(
            site,
            format!("{path}.serverCertificate"),
            "privateKey needs serverCertificate",
        ),
        (None, None) => {}
    }
    for (i, pair) in spec.tls_certificates.iter().enumerate() {
        let p = format!("{path}.tlsCertificates[{i}]");
        if pair.ca_certificates.is_some() {
            reporter.warn(
                site,
                format!("{p}.caCertificates"),
                "client certificates are checked against the server's caCertificates; ignored",
            );
        }
        match (&pair.server_certificate, &pair.private_key) {
            (Some(c), Some(k)) => pairs.push((
                c.clone(),
                k.clone(),
                format!("{p}.serverCertificate"),
                format!("{p}.privateKey"),
            )),
            _ => reporter.error(
                site,
                &p,
                "each tlsCertificates entry needs serverCertificate and privateKey",
            ),
        }
    }
    let credentials: Vec<&String> = spec
        .credential_name
        .iter()
        .chain(&spec.credential_names)
        .collect();
    for (i, name) in credentials.iter().enumerate() {
        // A credential is a folder laid out like a mounted Kubernetes TLS secret.
        let field = if spec.credential_name.is_some() && i == 0 {
            "credentialName".to_string()
        } else {
            format!(
                "credentialNames[{}]",
                i - usize::from(spec.credential_name.is_some())
            )
        };
        pairs.push((
            format!("{name}/tls.crt"),
            format!("{name}/tls.key"),
            format!("{path}.{field}"),
            format!("{path}.{field}"),
        ));
    }
    if spec.tls_certificates.len() > 2 || credentials.len() > 2 {
        reporter.error(
            site,
            path,
            "at most two certificates (an RSA and an ECDSA one) per server",
        );
    }
    let sources = usize::from(spec.server_certificate.is_some())
        + usize::from(!spec.tls_certificates.is_empty())
        + usize::from(!credentials.is_empty());
    if sources > 1 {
        reporter.error(
            site,
            path,
            "set only one of serverCertificate, tlsCertificates or credentialName(s)",
        );
    }
    if sources == 0 && spec.server_certificate.is_none() && spec.private_key.is_none() {
        let mode = match client_auth {
            ClientAuth::None => "SIMPLE",
            ClientAuth::Required => "MUTUAL",
            ClientAuth::Optional => "OPTIONAL_MUTUAL",
        };
        reporter.error(
            site,
            path,
            format!("mode {mode} needs serverCertificate and privateKey (or credentialName)"),
        );
    }
    let certificates: Vec<CertificateFiles> = pairs
        .iter()
        .filter_map(|(certificate, key, certificate_path, key_path)| {
            let fields = tls::KeyPairFields {
                certificate,
                key,
                certificate_path: certificate_path.clone(),
                key_path: key_path.clone(),
            };
            tls::key_pair(ctx, &fields, site, reporter)
        })
        .map(|(certificate_chain, private_key)| CertificateFiles {
            certificate_chain,
            private_key,
        })
        .collect();

    if client_auth == ClientAuth::None {
        let unused = [
            ("caCertificates", spec.ca_certificates.is_some()),
            ("caCrl", spec.ca_crl.is_some()),
            (
                "caCertCredentialName",
                spec.ca_cert_credential_name.is_some(),
            ),
        ];
        for (field, _) in unused.iter().filter(|(_, set)| *set) {
            reporter.warn(
                site,
                format!("{path}.{field}"),
                "mode SIMPLE asks for no client certificate; ignored",
            );
        }
    }
    let mut ca = spec.ca_certificates.clone();
    if ca.is_none() {
        if let Some(name) = credentials
            .first()
            .filter(|_| client_auth != ClientAuth::None)
        {
            ca = Some(format!("{name}/ca.crt"));
        }
        if let Some(name) = &spec.ca_cert_credential_name {
            ca = Some(format!("{name}/ca.crt"));
        }
    }
    let ca_certificates = match (&ca, client_auth) {
        (None, ClientAuth::None) => None,
        (None, _) => {
            reporter.error(
                site,
                format!("{path}.caCertificates"),
                "MUTUAL and OPTIONAL_MUTUAL need caCertificates to verify client certificates",
            );
            None
        }
        (Some(ca), _) => {
            tls::certificates(ctx, ca, &format!("{path}.caCertificates"), site, reporter)
        }
    };
    let ca_crl = spec
        .ca_crl
        .as_ref()
        .and_then(|crl| tls::readable(ctx, crl, &format!("{path}.caCrl"), site, reporter));

    let version =
        |v: Option<TlsProtocol>, default: TlsVersion, field: &str, reporter: &mut Reporter| match v
        {
            None | Some(TlsProtocol::Auto) => default,
            Some(TlsProtocol::V1_2) => TlsVersion::V1_2,
            Some(TlsProtocol::V1_3) => TlsVersion::V1_3,
            Some(old) => {
                let name = if old == TlsProtocol::V1_0 {
                    "TLSV1_0"
                } else {
                    "TLSV1_1"
                };
                reporter.warn(
                    site,
                    format!("{path}.{field}"),
                    format!("{name} is insecure and not offered by rustls; TLS 1.2 is used"),
                );
                TlsVersion::V1_2
            }
        };
    let min_version = version(
        spec.min_protocol_version,
        TlsVersion::V1_2,
        "minProtocolVersion",
        reporter,
    );
    let max_version = version(
        spec.max_protocol_version,
        TlsVersion::V1_3,
        "maxProtocolVersion",
        reporter,
    );
    if min_version > max_version {
        reporter.error(
            site,
            format!("{path}.maxProtocolVersion"),
            "maxProtocolVersion is lower than minProtocolVersion",
        );
    }
    let mut cipher_suites = Vec::new();
    for (i, name) in spec.cipher_suites.iter().enumerate() {
        match suites::by_name(name) {
            Some(_) => cipher_suites.push(name.clone()),
            None => reporter.error(site, format!("{path}.cipherSuites[{i}]"), format!("cipher suite {name:?} is not supported (rustls offers only AEAD suites with forward secrecy): use one of {}", suites::names().collect::<Vec<_>>().join(", "))),
        }
    }
    for (field, set) in [
        ("subjectAltNames", !spec.subject_alt_names.is_empty()),
        (
            "verifyCertificateSpki",
            !spec.verify_certificate_spki.is_empty(),
        ),
        (
            "verifyCertificateHash",
            !spec.verify_certificate_hash.is_empty(),
        ),
    ] {
        if set && client_auth == ClientAuth::None {
            reporter.warn(
                site,
                format!("{path}.{field}"),
                "pins client certificates, which mode SIMPLE does not ask for; ignored",
            );
        }
    }
    if spec.insecure_skip_verify {
        reporter.warn(
            site,
            format!("{path}.insecureSkipVerify"),
            "not carried out: client certificates that fail verification are refused; ignored",
        );
    }
    Some(ServerTls {
        client_auth,
        certificates,
        ca_certificates,
        ca_crl,
        subject_alt_names: spec.subject_alt_names.clone(),
        verify_certificate_spki: spec.verify_certificate_spki.clone(),
        verify_certificate_hash: spec.verify_certificate_hash.clone(),
        min_version,
        max_version,
        cipher_suites,
    })
}
