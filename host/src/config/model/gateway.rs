//! `networking.istio.io` Gateway.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::common::Ignored;

/// Gateway spec: the listeners of the gateway.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GatewaySpec {
    /// Istio's `servers`: the listeners of the gateway (at least one).
    #[serde(default)]
    pub servers: Vec<Server>,
    /// Mesh-only: which gateway pods run this Gateway.
    pub selector: Option<BTreeMap<String, String>>,
}

/// One server: a port, its hosts and its TLS settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Server {
    /// Istio's `port`: the number, protocol and name to listen on (required).
    pub port: Option<Port>,
    /// Istio's `bind`: the IP address to listen on (default: every interface).
    pub bind: Option<String>,
    /// Istio's `hosts`: `[namespace/]dnsName` names served; a left-most `*` is a wildcard.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Istio's `tls`: TLS termination, or `httpsRedirect` on a plain-HTTP server.
    pub tls: Option<ServerTlsSettings>,
    /// Istio's `name`: a unique server name (default `<gateway>/<port name>`).
    pub name: Option<String>,
    /// Not implemented by Istio either.
    pub default_endpoint: Option<Ignored>,
    /// Portcullis extension: connections start with a PROXY protocol (v1 or v2) header,
    /// as a load balancer in front sends it; the client address is taken from it. (Istio
    /// sets this per gateway deployment, `gatewayTopology.proxyProtocol`.)
    pub proxy_protocol: Option<bool>,
    /// Portcullis extension: how many proxies in front are trusted to set
    /// `x-forwarded-for` and `x-forwarded-proto` (Istio's `gatewayTopology.numTrustedProxies`).
    pub num_trusted_proxies: Option<u32>,
}

/// A server port.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Port {
    /// Istio's `port.number`: the port to listen on (0 picks a free one).
    pub number: Option<u32>,
    /// Istio's `port.protocol`: HTTP, HTTPS, GRPC, GRPC-WEB, HTTP2, MONGO, TCP or TLS.
    pub protocol: Option<String>,
    /// Istio's `port.name`: the port's label (required).
    pub name: Option<String>,
    /// Deprecated by Istio.
    pub target_port: Option<u32>,
}

/// TLS mode of a server.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ServerTlsMode {
    /// Forward TLS by SNI without terminating it (Istio's default).
    Passthrough,
    /// Terminate TLS with the server certificate.
    Simple,
    /// Terminate TLS and require a verified client certificate.
    Mutual,
    /// SNI passthrough to mesh services (mesh-only).
    AutoPassthrough,
    /// Mutual TLS with mesh-issued certificates (mesh-only).
    IstioMutual,
    /// Terminate TLS and verify a client certificate if one is sent.
    OptionalMutual,
}

/// TLS protocol version names.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsProtocol {
    /// `TLS_AUTO`: the proxy's default.
    #[serde(rename = "TLS_AUTO")]
    Auto,
    /// TLS 1.0.
    #[serde(rename = "TLSV1_0")]
    V1_0,
    /// TLS 1.1.
    #[serde(rename = "TLSV1_1")]
    V1_1,
    /// TLS 1.2.
    #[serde(rename = "TLSV1_2")]
    V1_2,
    /// TLS 1.3.
    #[serde(rename = "TLSV1_3")]
    V1_3,
}

/// A certificate and key pair in `tlsCertificates`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TlsCertificate {
    /// Path of the PEM certificate chain.
    pub server_certificate: Option<String>,
    /// Path of the PEM private key.
    pub private_key: Option<String>,
    /// Path of a PEM CA bundle for client certificates.
    pub ca_certificates: Option<String>,
}

/// Server-side TLS settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServerTlsSettings {
    /// Istio's `tls.httpsRedirect`: answer plain-HTTP requests with a 301 to https (default false).
    #[serde(default)]
    pub https_redirect: bool,
    /// Istio's `tls.mode` (default PASSTHROUGH).
    pub mode: Option<ServerTlsMode>,
    /// Istio's `tls.serverCertificate`: path of the PEM certificate chain (SIMPLE, MUTUAL).
    pub server_certificate: Option<String>,
    /// Istio's `tls.privateKey`: path of the PEM private key.
    pub private_key: Option<String>,
    /// Istio's `tls.caCertificates`: PEM bundle that verifies client certificates (MUTUAL modes).
    pub ca_certificates: Option<String>,
    /// Istio's `tls.caCrl`: PEM list of revoked client certificates.
    pub ca_crl: Option<String>,
    /// Istio's `tls.credentialName`: a secret with the certificate and key (here a folder of
    /// `tls.crt`, `tls.key` and `ca.crt`).
    pub credential_name: Option<String>,
    /// Istio's `tls.credentialNames`: up to two credentials (an RSA and an ECDSA one).
    #[serde(default)]
    pub credential_names: Vec<String>,
    /// Istio's `tls.caCertCredentialName`: a credential holding the client CA bundle (`ca.crt`).
    pub ca_cert_credential_name: Option<String>,
    /// Istio's `tls.tlsCertificates`: up to two certificate and key pairs (RSA and ECDSA).
    #[serde(default)]
    pub tls_certificates: Vec<TlsCertificate>,
    /// Istio's `tls.subjectAltNames`: SANs a client certificate must carry one of.
    #[serde(default)]
    pub subject_alt_names: Vec<String>,
    /// Istio's `tls.verifyCertificateSpki`: accepted base64 SHA-256 digests of client SPKIs.
    #[serde(default)]
    pub verify_certificate_spki: Vec<String>,
    /// Istio's `tls.verifyCertificateHash`: accepted hex SHA-256 digests of client certificates.
    #[serde(default)]
    pub verify_certificate_hash: Vec<String>,
    /// Istio's `tls.minProtocolVersion` (default TLSV1_2).
    pub min_protocol_version: Option<TlsProtocol>,
    /// Istio's `tls.maxProtocolVersion` (default TLSV1_3).
    pub max_protocol_version: Option<TlsProtocol>,
    /// Istio's `tls.cipherSuites`: allowed TLS 1.2 cipher suites (default: the proxy's list).
    #[serde(default)]
    pub cipher_suites: Vec<String>,
    /// Istio's `tls.insecureSkipVerify`: admit clients that fail verification (default false).
    #[serde(default)]
    pub insecure_skip_verify: bool,
}
