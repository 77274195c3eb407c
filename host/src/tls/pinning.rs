//! Pinning a peer certificate beyond its chain: subject alternative names, SPKI and
//! certificate hashes, with Envoy's semantics (`match_subject_alt_names`,
//! `verify_certificate_spki`, `verify_certificate_hash`).

use base64::Engine;
use rustls::CertificateError;
use rustls::pki_types::CertificateDer;
use sha2::{Digest, Sha256};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

/// What a peer certificate must also satisfy once its chain is verified.
#[derive(Debug, Clone, Default)]
pub struct Pins {
    /// One of these must equal one of the certificate's SANs (DNS, URI, IP or email).
    subject_alt_names: Vec<String>,
    /// Base64 SHA-256 digests of the SubjectPublicKeyInfo.
    spki: Vec<String>,
    /// Lowercase hex SHA-256 digests of the whole certificate.
    hashes: Vec<String>,
}

impl Pins {
    /// Pins from the Istio fields; hashes may be written with colons, in either case.
    pub fn new(subject_alt_names: &[String], spki: &[String], hashes: &[String]) -> Self {
        Self {
            subject_alt_names: subject_alt_names.to_vec(),
            spki: spki.to_vec(),
            hashes: hashes.iter().map(|h| normalize_hash(h)).collect(),
        }
    }

    /// Whether nothing is pinned.
    pub fn is_empty(&self) -> bool {
        self.subject_alt_names.is_empty() && self.spki.is_empty() && self.hashes.is_empty()
    }

    /// Whether SANs are pinned (which replaces hostname verification for servers).
    pub fn pins_names(&self) -> bool {
        !self.subject_alt_names.is_empty()
    }

    /// Checks `certificate`: one pinned SAN present when SANs are pinned, and, when SPKI
    /// or hashes are pinned, a match in either list.
    pub fn check(&self, certificate: &CertificateDer<'_>) -> Result<(), rustls::Error> {
        if self.is_empty() {
            return Ok(());
        }
        let (_, parsed) = X509Certificate::from_der(certificate)
            .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
        if self.pins_names() {
            let names = subject_alt_names(&parsed);
            if !self.subject_alt_names.iter().any(|n| names.contains(n)) {
                return Err(rustls::Error::InvalidCertificate(
                    CertificateError::NotValidForName,
                ));
            }
        }
        if !self.spki.is_empty() || !self.hashes.is_empty() {
            let spki = base64::engine::general_purpose::STANDARD
                .encode(Sha256::digest(parsed.tbs_certificate.subject_pki.raw));
            let hash = hex::encode(Sha256::digest(certificate));
            if !self.spki.contains(&spki) && !self.hashes.contains(&hash) {
                return Err(rustls::Error::InvalidCertificate(
                    CertificateError::ApplicationVerificationFailure,
                ));
            }
        }
        Ok(())
    }
}

/// `DF:6F:…` or `df6f…` as lowercase hex without separators.
pub fn normalize_hash(hash: &str) -> String {
    hash.chars()
        .filter(|c| *c != ':')
        .collect::<String>()
        .to_ascii_lowercase()
}

/// A certificate's SANs as text: DNS names, URIs, email addresses and IP addresses.
pub fn subject_alt_names(certificate: &X509Certificate<'_>) -> Vec<String> {
    let Ok(Some(extension)) = certificate.subject_alternative_name() else {
        return Vec::new();
    };
    extension
        .value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::DNSName(s) | GeneralName::URI(s) | GeneralName::RFC822Name(s) => {
                Some(s.to_string())
            }
            GeneralName::IPAddress(bytes) => match bytes.len() {
                4 => Some(std::net::Ipv4Addr::from(<[u8; 4]>::try_from(*bytes).ok()?).to_string()),
                16 => {
                    Some(std::net::Ipv6Addr::from(<[u8; 16]>::try_from(*bytes).ok()?).to_string())
                }
                _ => None,
            },
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn certificate() -> CertificateDer<'static> {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec![
            "api.example.com".to_string(),
            "10.0.0.1".to_string(),
        ])
        .unwrap();
        params.self_signed(&key).unwrap().der().clone()
    }

    #[test]
    fn a_pinned_san_of_any_kind_is_accepted_and_others_refused() {
        let cert = certificate();
        let pins = |sans: &[&str]| {
            Pins::new(
                &sans
                    .iter()
                    .map(std::string::ToString::to_string)
                    .collect::<Vec<_>>(),
                &[],
                &[],
            )
        };
        assert!(pins(&["other", "api.example.com"]).check(&cert).is_ok());
        assert!(pins(&["10.0.0.1"]).check(&cert).is_ok());
        assert!(pins(&["example.com"]).check(&cert).is_err());
        assert!(pins(&[]).check(&cert).is_ok());
    }

    #[test]
    fn either_a_pinned_spki_or_a_pinned_hash_is_enough() {
        let cert = certificate();
        let (_, parsed) = X509Certificate::from_der(&cert).unwrap();
        let spki = base64::engine::general_purpose::STANDARD
            .encode(Sha256::digest(parsed.tbs_certificate.subject_pki.raw));
        let hash = hex::encode_upper(Sha256::digest(&cert))
            .as_bytes()
            .chunks(2)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join(":");
        let wrong = "00".repeat(32);
        assert!(
            Pins::new(&[], &[spki], std::slice::from_ref(&wrong))
                .check(&cert)
                .is_ok()
        );
        assert!(Pins::new(&[], &[], &[hash]).check(&cert).is_ok());
        assert!(Pins::new(&[], &[], &[wrong]).check(&cert).is_err());
    }
}
