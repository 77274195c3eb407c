//! What a client's TLS connection carried, as policies and plugins see it.

use rustls::ServerConnection;
use sha2::{Digest, Sha256};
use x509_parser::prelude::{FromDer, X509Certificate};

use super::pinning;

/// The SNI and the verified client certificate of one downstream connection.
#[derive(Debug, Clone, Default)]
pub struct TlsSession {
    /// The SNI the client sent.
    pub server_name: Option<String>,
    /// The client's verified certificate, if it presented one.
    pub peer: Option<PeerCertificate>,
}

/// A verified client certificate.
#[derive(Debug, Clone)]
pub struct PeerCertificate {
    /// The subject's distinguished name, e.g. `CN=alice,O=Example`.
    pub subject: String,
    /// The certificate's URI and DNS SANs.
    pub subject_alt_names: Vec<String>,
    /// Lowercase hex SHA-256 of the certificate.
    pub sha256: String,
}

impl PeerCertificate {
    /// The identity Istio reports for the client: its URI SAN (a SPIFFE ID, say), as
    /// Envoy's `uriSanPeerCertificate`; a certificate without one has none.
    pub fn principal(&self) -> Option<&str> {
        let names = &self.subject_alt_names;
        names
            .iter()
            .find(|name| name.contains("://"))
            .map(String::as_str)
    }
}

impl TlsSession {
    /// The session of a completed server handshake.
    pub fn of(connection: &ServerConnection) -> Self {
        let peer = connection
            .peer_certificates()
            .and_then(|chain| chain.first())
            .and_then(|leaf| {
                let (_, parsed) = X509Certificate::from_der(leaf).ok()?;
                Some(PeerCertificate {
                    subject: parsed.subject().to_string(),
                    subject_alt_names: pinning::subject_alt_names(&parsed),
                    sha256: hex::encode(Sha256::digest(leaf)),
                })
            });
        Self {
            server_name: connection.server_name().map(str::to_string),
            peer,
        }
    }
}
