//! What the admin API and the metrics say of a certificate a server presents: its file,
//! subject and expiry.

use std::path::PathBuf;

use rustls::sign::CertifiedKey;
use serde::Serialize;
use x509_parser::prelude::{FromDer, X509Certificate};

/// A leaf certificate one server presents.
#[derive(Debug, Clone, Serialize)]
pub struct ServedCertificate {
    /// The Gateway server presenting it.
    pub server: String,
    /// The certificate file.
    pub path: PathBuf,
    /// The subject's distinguished name, e.g. `CN=shop.example.com`.
    pub subject: String,
    /// When it expires, in seconds since the Unix epoch.
    pub not_after: i64,
}

impl ServedCertificate {
    /// The leaf of `key`, read from `path` for `server`; `None` if it does not parse
    /// (rustls accepted it, so it is only the description that is missing).
    pub fn of(server: &str, path: PathBuf, key: &CertifiedKey) -> Option<Self> {
        let (_, leaf) = X509Certificate::from_der(key.cert.first()?).ok()?;
        Some(Self {
            server: server.to_string(),
            path,
            subject: leaf.subject().to_string(),
            not_after: leaf.validity().not_after.timestamp(),
        })
    }

    /// Whole days from `now` (seconds since the Unix epoch) to its expiry; negative once
    /// it has expired.
    pub fn days_left(&self, now: i64) -> i64 {
        (self.not_after - now).div_euclid(86_400)
    }
}
