//! TLS origination to upstream servers, from a DestinationRule's `tls`.

use std::sync::{Arc, OnceLock};

use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, RootCertStore};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::config::resolved::{UpstreamTls, UpstreamTlsMode};
use crate::tls::files::{self, TlsFileError};
use crate::tls::pinning::Pins;
use crate::tls::verify::ServerVerification;
use crate::wire::host::strip_port;

/// Why a cluster's upstream TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum OriginationError {
    /// A certificate, key or CA file could not be read.
    #[error(transparent)]
    File(#[from] TlsFileError),
    /// rustls refused the settings.
    #[error("{0}")]
    Rustls(#[from] rustls::Error),
    /// The server-certificate verifier could not be built.
    #[error("server CA: {0}")]
    Verifier(#[from] rustls::client::VerifierBuilderError),
    #[error(
        "the system has no trust anchors (install ca-certificates) and caCertificates is not set"
    )]
    /// No CA was configured and the system has none.
    NoSystemRoots,
    /// The SNI is not a valid server name.
    #[error("sni {0:?} is not a DNS name or IP address")]
    Sni(String),
}

/// How to speak TLS to a cluster's endpoints.
pub struct Origination {
    config: Arc<ClientConfig>,
    /// The configured `sni`; without it, each request's host is sent.
    sni: Option<ServerName<'static>>,
}

impl Origination {
    /// The origination `tls` asks for, offering `alpn`; `None` when `mode` is DISABLE.
    pub fn new(tls: &UpstreamTls, alpn: &[&[u8]]) -> Result<Option<Self>, OriginationError> {
        if tls.mode == UpstreamTlsMode::Disable {
            return Ok(None);
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let chain = match tls.insecure_skip_verify {
            true => None,
            false => {
                let roots = match &tls.ca_certificates {
                    Some(ca) => Arc::new(files::roots(ca)?),
                    None => system_roots(),
                };
                if roots.is_empty() {
                    return Err(OriginationError::NoSystemRoots);
                }
                let mut verifier =
                    WebPkiServerVerifier::builder_with_provider(roots, provider.clone());
                if let Some(crl) = &tls.ca_crl {
                    verifier = verifier.with_crls(files::crls(crl)?);
                }
                Some((
                    verifier.build()?,
                    Pins::new(&tls.subject_alt_names, &[], &[]),
                ))
            }
        };
        let verification = ServerVerification {
            chain,
            algorithms: provider.signature_verification_algorithms,
        };
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verification));
        let mut config = match (&tls.client_certificate, &tls.private_key) {
            (Some(certificate), Some(key)) => builder.with_client_auth_cert(
                files::certificates(certificate)?,
                files::private_key(key)?,
            )?,
            _ => builder.with_no_client_auth(),
        };
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        let sni = tls
            .sni
            .as_deref()
            .map(|name| {
                ServerName::try_from(name.to_string())
                    .map_err(|_| OriginationError::Sni(name.to_string()))
            })
            .transpose()?;
        Ok(Some(Self {
            config: Arc::new(config),
            sni,
        }))
    }

    /// The client configuration, for connectors that do their own handshakes.
    pub fn config(&self) -> &Arc<ClientConfig> {
        &self.config
    }

    /// The name to send as SNI (and to verify, unless SANs are pinned): the configured
    /// `sni`, else `host` (the request's Host without its port).
    pub fn server_name(&self, host: &str) -> Option<ServerName<'static>> {
        self.sni.clone().or_else(|| {
            // An IPv6 literal goes without its brackets.
            let name = strip_port(host)
                .trim_start_matches('[')
                .trim_end_matches(']');
            ServerName::try_from(name.to_string()).ok()
        })
    }

    /// Runs the handshake on `stream`.
    pub async fn connect(
        &self,
        name: ServerName<'static>,
        stream: TcpStream,
    ) -> std::io::Result<TlsStream<TcpStream>> {
        TlsConnector::from(self.config.clone())
            .connect(name, stream)
            .await
    }
}

/// The operating system's trust anchors (`/etc/ssl/certs` and friends), read once.
pub fn system_roots() -> Arc<RootCertStore> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let found = rustls_native_certs::load_native_certs();
            let mut roots = RootCertStore::empty();
            roots.add_parsable_certificates(found.certs);
            Arc::new(roots)
        })
        .clone()
}
