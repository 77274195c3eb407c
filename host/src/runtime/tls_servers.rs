//! TLS termination for one listener: a rustls configuration per Gateway server, chosen
//! by the client's SNI before the handshake goes on.

use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{ServerConfig, SupportedProtocolVersion};

use crate::config::resolved::{ClientAuth, Listener, ServerKind, ServerTls, TlsVersion};
use crate::tls::files::{self, TlsFileError};
use crate::tls::pinning::Pins;
use crate::tls::served::ServedCertificate;
use crate::tls::suites;
use crate::tls::verify::PinnedClientVerifier;

/// ALPN protocols offered to clients, preferred first.
const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// Why a server's TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsConfigError {
    /// A certificate, key or CA file could not be read.
    #[error(transparent)]
    File(#[from] TlsFileError),
    /// rustls refused the settings.
    #[error("{0}")]
    Rustls(#[from] rustls::Error),
    /// The client-certificate verifier could not be built.
    #[error("client CA: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
}

/// One server's hosts, configuration (`None`: PASSTHROUGH) and route table.
struct TlsServer {
    hosts: Vec<String>,
    config: Option<Arc<ServerConfig>>,
    route_table: usize,
}

/// What a client's SNI selects: TLS terminated with this configuration, or the
/// connection passed through as bytes; and the server's route table.
pub enum Selected {
    /// Terminate TLS with this configuration.
    Terminate(Arc<ServerConfig>, usize),
    /// Forward the connection untouched (PASSTHROUGH).
    PassThrough(usize),
}

/// The TLS servers sharing one listener.
pub struct TlsServers {
    servers: Vec<TlsServer>,
    /// Whether a server passes TLS through: the ClientHello is read before choosing.
    pub passes_through: bool,
    /// Every server's certificates, in server order.
    pub certificates: Vec<ServedCertificate>,
}

impl TlsServers {
    /// Builds the configuration of every TLS server of `listener`; `None` for a plain one.
    pub fn build(listener: &Listener) -> Result<Option<Self>, TlsConfigError> {
        let mut servers = Vec::new();
        let mut certificates = Vec::new();
        for server in &listener.servers {
            if server.kind == ServerKind::Passthrough {
                servers.push(TlsServer {
                    hosts: server.hosts.clone(),
                    config: None,
                    route_table: server.route_table,
                });
            }
            if let Some(tls) = &server.tls {
                let keys = keys(tls)?;
                let served = tls
                    .certificates
                    .iter()
                    .zip(&keys)
                    .filter_map(|(files, key)| {
                        ServedCertificate::of(&server.name, files.certificate_chain.clone(), key)
                    });
                certificates.extend(served);
                servers.push(TlsServer {
                    hosts: server.hosts.clone(),
                    config: Some(Arc::new(server_config(tls, keys)?)),
                    route_table: server.route_table,
                });
            }
        }
        Ok((!servers.is_empty()).then_some(Self {
            passes_through: servers.iter().any(|s| s.config.is_none()),
            servers,
            certificates,
        }))
    }

    /// The configuration and route table for `sni`: an exact host, else the longest
    /// `*.suffix`, else a server listing `*`. A client whose SNI (or lack of one) matches
    /// none is refused, as Istio's gateway does.
    pub fn select(&self, sni: Option<&str>) -> Option<Selected> {
        let sni = sni.map(|s| s.trim_end_matches('.').to_ascii_lowercase());
        let score = |host: &str| -> Option<usize> {
            match (host, sni.as_deref()) {
                ("*", _) => Some(0),
                (host, Some(name)) if host.eq_ignore_ascii_case(name) => Some(usize::MAX),
                (host, Some(name)) => {
                    let suffix = host.strip_prefix('*')?;
                    (name.len() > suffix.len() && name.ends_with(&suffix.to_ascii_lowercase()))
                        .then_some(suffix.len())
                }
                _ => None,
            }
        };
        self.servers
            .iter()
            .filter_map(|s| {
                s.hosts
                    .iter()
                    .filter_map(|h| score(h))
                    .max()
                    .map(|best| (best, s))
            })
            .max_by_key(|(best, _)| *best)
            .map(|(_, s)| match &s.config {
                Some(config) => Selected::Terminate(config.clone(), s.route_table),
                None => Selected::PassThrough(s.route_table),
            })
    }
}

/// The certificate chains and keys of a server, checked to belong together.
fn keys(tls: &ServerTls) -> Result<Vec<Arc<CertifiedKey>>, TlsConfigError> {
    let provider = provider(tls);
    let keys = tls
        .certificates
        .iter()
        .map(|c| files::certified_key(&c.certificate_chain, &c.private_key, &provider))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(keys)
}

fn server_config(
    tls: &ServerTls,
    keys: Vec<Arc<CertifiedKey>>,
) -> Result<ServerConfig, TlsConfigError> {
    let provider = Arc::new(provider(tls));
    let versions: Vec<&'static SupportedProtocolVersion> = [
        (TlsVersion::V1_2, &rustls::version::TLS12),
        (TlsVersion::V1_3, &rustls::version::TLS13),
    ]
    .into_iter()
    .filter(|(v, _)| (tls.min_version..=tls.max_version).contains(v))
    .map(|(_, version)| version)
    .collect();
    let builder =
        ServerConfig::builder_with_provider(provider.clone()).with_protocol_versions(&versions)?;
    let builder = match (&tls.ca_certificates, tls.client_auth) {
        (Some(ca), ClientAuth::Required | ClientAuth::Optional) => {
            let mut verifier = WebPkiClientVerifier::builder_with_provider(
                Arc::new(files::roots(ca)?),
                provider.clone(),
            );
            if let Some(crl) = &tls.ca_crl {
                verifier = verifier.with_crls(files::crls(crl)?);
            }
            if tls.client_auth == ClientAuth::Optional {
                verifier = verifier.allow_unauthenticated();
            }
            builder.with_client_cert_verifier(Arc::new(PinnedClientVerifier {
                inner: verifier.build()?,
                pins: Pins::new(
                    &tls.subject_alt_names,
                    &tls.verify_certificate_spki,
                    &tls.verify_certificate_hash,
                ),
            }))
        }
        _ => builder.with_no_client_auth(),
    };
    let mut config = builder.with_cert_resolver(Arc::new(ByKeyType(keys)));
    config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

/// The ring provider, narrowed to the configured TLS 1.2 suites (`cipherSuites`, like
/// Envoy's, leaves TLS 1.3 suites alone).
fn provider(tls: &ServerTls) -> CryptoProvider {
    let mut provider = rustls::crypto::ring::default_provider();
    if !tls.cipher_suites.is_empty() {
        let allowed: Vec<_> = tls
            .cipher_suites
            .iter()
            .filter_map(|n| suites::by_name(n))
            .collect();
        provider.cipher_suites.retain(|s| {
            s.version() == &rustls::version::TLS13 || allowed.iter().any(|a| a.suite() == s.suite())
        });
    }
    provider
}

/// Picks, among a server's certificates (an RSA and an ECDSA one, say), the first whose
/// key can sign with a scheme the client offers.
#[derive(Debug)]
struct ByKeyType(Vec<Arc<CertifiedKey>>);

impl ResolvesServerCert for ByKeyType {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let schemes = hello.signature_schemes();
        self.0
            .iter()
            .find(|k| k.key.choose_scheme(schemes).is_some())
            .or(self.0.first())
            .cloned()
    }
}
