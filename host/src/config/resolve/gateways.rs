//! Gateway: servers, their ports, hosts and TLS settings.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use super::scope::Scope;
use super::tls::KeyPairFiles;
use super::{Context, Input, checks, tls};
use crate::config::diag::{Reporter, Site};
use crate::config::model::gateway::{
    GatewaySpec, Port, Server as ServerSpec, ServerTlsMode, ServerTlsSettings, TlsProtocol,
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
    let (tls, https_redirect) = tls_settings(
        spec.tls.as_ref(),
        protocol,
        protocol_name,
        ctx,
        &at.field("tls"),
    );
    if !protocol.is_http() {
        at.field("port").field("protocol").warn(format!(
            "Portcullis routes HTTP only; this {protocol_name} server is not served"
        ));
        return None;
    }
    if at.error_count() > errors {
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

/// The server's TLS termination, and whether it redirects plain HTTP to HTTPS.
fn tls_settings(
    spec: Option<&ServerTlsSettings>,
    protocol: Protocol,
    protocol_name: &str,
    ctx: &Context<'_>,
    at: &Scope<'_>,
) -> (Option<ServerTls>, bool) {
    match (spec, protocol) {
        (None, Protocol::Https | Protocol::Tls) => {
            at.error(format!(
                "server with protocol {protocol_name} must have TLS settings"
            ));
            (None, false)
        }
        (None, _) => (None, false),
        (Some(t), Protocol::Https | Protocol::Tls) => {
            if t.https_redirect {
                at.field("httpsRedirect")
                    .warn("httpsRedirect only applies to plain HTTP servers; ignored");
            }
            (server_tls(t, ctx, at), false)
        }
        (Some(t), _) => {
            plain_text_tls(t, protocol, at);
            (None, t.https_redirect)
        }
    }
}

/// TLS settings on a plain-text server, where only `httpsRedirect` means something.
fn plain_text_tls(spec: &ServerTlsSettings, protocol: Protocol, at: &Scope<'_>) {
    if spec.mode.is_some() || spec.server_certificate.is_some() || spec.credential_name.is_some() {
        at.error("TLS settings on a plain-text server: use protocol HTTPS to terminate TLS");
    } else {
        for field in plain_text_tls_fields(spec) {
            at.field(field)
                .warn("a plain-text server terminates no TLS; ignored");
        }
    }
    if spec.https_redirect && protocol != Protocol::Http {
        at.field("httpsRedirect")
            .warn("httpsRedirect only applies to HTTP servers");
    }
}

/// TLS termination; `None` when the mode terminates none.
fn server_tls(spec: &ServerTlsSettings, ctx: &Context<'_>, at: &Scope<'_>) -> Option<ServerTls> {
    let client_auth = client_auth(spec.mode, &at.field("mode"))?;
    let credentials: Vec<&String> = spec
        .credential_name
        .iter()
        .chain(&spec.credential_names)
        .collect();
    let pairs = key_pair_files(spec, &credentials, at);
    check_certificate_sources(spec, credentials.len(), client_auth, at);
    let certificates = pairs
        .iter()
        .filter_map(|pair| tls::key_pair(ctx, pair))
        .map(|(certificate_chain, private_key)| CertificateFiles {
            certificate_chain,
            private_key,
        })
        .collect();
    let (ca_certificates, ca_crl) =
        client_ca(spec, credentials.first().copied(), client_auth, ctx, at);
    let (min_version, max_version) = protocol_versions(spec, at);
    let cipher_suites = cipher_suites(&spec.cipher_suites, &at.field("cipherSuites"));
    check_client_pinning(spec, client_auth, at);
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

/// Which client certificates the mode asks for; `None` when it terminates no TLS.
fn client_auth(mode: Option<ServerTlsMode>, at: &Scope<'_>) -> Option<ClientAuth> {
    match mode {
        Some(ServerTlsMode::Simple) => Some(ClientAuth::None),
        Some(ServerTlsMode::Mutual) => Some(ClientAuth::Required),
        Some(ServerTlsMode::OptionalMutual) => Some(ClientAuth::Optional),
        None | Some(ServerTlsMode::Passthrough) => {
            at.warn("PASSTHROUGH (the default mode) forwards TLS without terminating it, which Portcullis does not do: this server is not served; set mode: SIMPLE to terminate TLS");
            None
        }
        Some(mode @ (ServerTlsMode::AutoPassthrough | ServerTlsMode::IstioMutual)) => {
            at.error(format!(
                "{mode:?} needs the mesh's certificates and only works inside a service mesh"
            ));
            None
        }
    }
}

/// The certificate and key files the server presents: serverCertificate and
/// privateKey, each tlsCertificates entry, and each credential (`credentials`: those of
/// credentialName then credentialNames).
fn key_pair_files<'r>(
    spec: &ServerTlsSettings,
    credentials: &[&String],
    at: &Scope<'r>,
) -> Vec<KeyPairFiles<'r>> {
    let mut pairs = Vec::new();
    match (&spec.server_certificate, &spec.private_key) {
        (Some(c), Some(k)) => pairs.push(certificate_and_key(c, k, at)),
        (Some(_), None) => at
            .field("privateKey")
            .error("serverCertificate needs privateKey"),
        (None, Some(_)) => at
            .field("serverCertificate")
            .error("privateKey needs serverCertificate"),
        (None, None) => {}
    }
    for (i, entry) in spec.tls_certificates.iter().enumerate() {
        let entry_at = at.field("tlsCertificates").index(i);
        if entry.ca_certificates.is_some() {
            entry_at.field("caCertificates").warn(
                "client certificates are checked against the server's caCertificates; ignored",
            );
        }
        match (&entry.server_certificate, &entry.private_key) {
            (Some(c), Some(k)) => pairs.push(certificate_and_key(c, k, &entry_at)),
            _ => {
                entry_at.error("each tlsCertificates entry needs serverCertificate and privateKey");
            }
        }
    }
    let named = usize::from(spec.credential_name.is_some());
    for (i, name) in credentials.iter().enumerate() {
        let credential_at = if i < named {
            at.field("credentialName")
        } else {
            at.field("credentialNames").index(i - named)
        };
        pairs.push(credential(name, credential_at));
    }
    pairs
}

/// The files that `serverCertificate` and `privateKey` in `at` name.
fn certificate_and_key<'r>(certificate: &str, key: &str, at: &Scope<'r>) -> KeyPairFiles<'r> {
    KeyPairFiles {
        certificate: certificate.to_string(),
        key: key.to_string(),
        certificate_at: at.field("serverCertificate"),
        key_at: at.field("privateKey"),
    }
}

/// The files of the credential `name` that `at` names: a folder laid out like a
/// mounted Kubernetes TLS secret.
fn credential<'r>(name: &str, at: Scope<'r>) -> KeyPairFiles<'r> {
    KeyPairFiles {
        certificate: format!("{name}/tls.crt"),
        key: format!("{name}/tls.key"),
        certificate_at: at.clone(),
        key_at: at,
    }
}

/// One source of at most two certificates, and at least one.
fn check_certificate_sources(
    spec: &ServerTlsSettings,
    credentials: usize,
    client_auth: ClientAuth,
    at: &Scope<'_>,
) {
    if spec.tls_certificates.len() > 2 || credentials > 2 {
        at.error("at most two certificates (an RSA and an ECDSA one) per server");
    }
    let sources = usize::from(spec.server_certificate.is_some())
        + usize::from(!spec.tls_certificates.is_empty())
        + usize::from(credentials > 0);
    if sources > 1 {
        at.error("set only one of serverCertificate, tlsCertificates or credentialName(s)");
    }
    if sources == 0 && spec.server_certificate.is_none() && spec.private_key.is_none() {
        let mode = match client_auth {
            ClientAuth::None => "SIMPLE",
            ClientAuth::Required => "MUTUAL",
            ClientAuth::Optional => "OPTIONAL_MUTUAL",
        };
        at.error(format!(
            "mode {mode} needs serverCertificate and privateKey (or credentialName)"
        ));
    }
}

/// The CA bundle that verifies client certificates (from caCertificates, the first
/// `credential` or caCertCredentialName), and the revocation list.
fn client_ca(
    spec: &ServerTlsSettings,
    credential: Option<&String>,
    client_auth: ClientAuth,
    ctx: &Context<'_>,
    at: &Scope<'_>,
) -> (Option<PathBuf>, Option<PathBuf>) {
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
            at.field(field)
                .warn("mode SIMPLE asks for no client certificate; ignored");
        }
    }
    let mut ca = spec.ca_certificates.clone();
    if ca.is_none() {
        if let Some(name) = credential.filter(|_| client_auth != ClientAuth::None) {
            ca = Some(format!("{name}/ca.crt"));
        }
        if let Some(name) = &spec.ca_cert_credential_name {
            ca = Some(format!("{name}/ca.crt"));
        }
    }
    let ca_at = at.field("caCertificates");
    let ca_certificates = match (&ca, client_auth) {
        (None, ClientAuth::None) => None,
        (None, _) => {
            ca_at.error(
                "MUTUAL and OPTIONAL_MUTUAL need caCertificates to verify client certificates",
            );
            None
        }
        (Some(ca), _) => tls::certificates(ctx, ca, &ca_at),
    };
    let ca_crl = spec
        .ca_crl
        .as_ref()
        .and_then(|crl| tls::readable(ctx, crl, &at.field("caCrl")));
    (ca_certificates, ca_crl)
}

/// The lowest and highest TLS versions offered.
fn protocol_versions(spec: &ServerTlsSettings, at: &Scope<'_>) -> (TlsVersion, TlsVersion) {
    let min_version = tls_version(
        spec.min_protocol_version,
        TlsVersion::V1_2,
        &at.field("minProtocolVersion"),
    );
    let max_version = tls_version(
        spec.max_protocol_version,
        TlsVersion::V1_3,
        &at.field("maxProtocolVersion"),
    );
    if min_version > max_version {
        at.field("maxProtocolVersion")
            .error("maxProtocolVersion is lower than minProtocolVersion");
    }
    (min_version, max_version)
}

/// A TLS version rustls offers: TLS 1.0 and 1.1 become 1.2, with a warning.
fn tls_version(version: Option<TlsProtocol>, default: TlsVersion, at: &Scope<'_>) -> TlsVersion {
    match version {
        None | Some(TlsProtocol::Auto) => default,
        Some(TlsProtocol::V1_2) => TlsVersion::V1_2,
        Some(TlsProtocol::V1_3) => TlsVersion::V1_3,
        Some(old) => {
            let name = if old == TlsProtocol::V1_0 {
                "TLSV1_0"
            } else {
                "TLSV1_1"
            };
            at.warn(format!(
                "{name} is insecure and not offered by rustls; TLS 1.2 is used"
            ));
            TlsVersion::V1_2
        }
    }
}

/// The cipher suites named, each one that rustls offers.
fn cipher_suites(names: &[String], at: &Scope<'_>) -> Vec<String> {
    let mut cipher_suites = Vec::new();
    for (i, name) in names.iter().enumerate() {
        match suites::by_name(name) {
            Some(_) => cipher_suites.push(name.clone()),
            None => at.index(i).error(format!("cipher suite {name:?} is not supported (rustls offers only AEAD suites with forward secrecy): use one of {}", suites::names().collect::<Vec<_>>().join(", "))),
        }
    }
    cipher_suites
}

/// Client certificate pinning, which only a mode that asks for client certificates
/// uses, and insecureSkipVerify, which is not carried out.
fn check_client_pinning(spec: &ServerTlsSettings, client_auth: ClientAuth, at: &Scope<'_>) {
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
            at.field(field)
                .warn("pins client certificates, which mode SIMPLE does not ask for; ignored");
        }
    }
    if spec.insecure_skip_verify {
        at.field("insecureSkipVerify").warn(
            "not carried out: client certificates that fail verification are refused; ignored",
        );
    }
}
