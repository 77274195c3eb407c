//! Checks of the TLS files a config names: they exist, parse, and keys match certificates.

use std::path::PathBuf;

use super::Context;
use super::scope::Scope;
use crate::tls::files::{self, TlsFileError};

/// A certificate chain and key file named by a config, and the fields that name them.
pub struct KeyPairFiles<'a> {
    /// The certificate chain file, relative to the config's folder.
    pub certificate: String,
    /// The private key file, relative to the config's folder.
    pub key: String,
    /// The field naming the certificate chain.
    pub certificate_at: Scope<'a>,
    /// The field naming the key.
    pub key_at: Scope<'a>,
}

/// A certificate chain and key that load and belong together.
pub fn key_pair(ctx: &Context<'_>, pair: &KeyPairFiles<'_>) -> Option<(PathBuf, PathBuf)> {
    let (certificate, key) = (ctx.path(&pair.certificate), ctx.path(&pair.key));
    let provider = rustls::crypto::ring::default_provider();
    match files::certified_key(&certificate, &key, &provider) {
        Ok(_) => Some((certificate, key)),
        Err(e) => {
            let at = match &e {
                TlsFileError::Read { path, .. } | TlsFileError::Invalid { path, .. }
                    if *path == certificate =>
                {
                    &pair.certificate_at
                }
                TlsFileError::NoCertificate { .. } => &pair.certificate_at,
                _ => &pair.key_at,
            };
            at.error(e.to_string());
            None
        }
    }
}

/// A PEM file of one or more certificates (a CA bundle).
pub fn certificates(ctx: &Context<'_>, file: &str, at: &Scope<'_>) -> Option<PathBuf> {
    let file = ctx.path(file);
    match files::certificates(&file) {
        Ok(_) => Some(file),
        Err(e) => {
            at.error(e.to_string());
            None
        }
    }
}

/// A file that can be read.
pub fn readable(ctx: &Context<'_>, file: &str, at: &Scope<'_>) -> Option<PathBuf> {
    let file = ctx.path(file);
    match std::fs::metadata(&file) {
        Ok(_) => Some(file),
        Err(e) => {
            at.error(format!("cannot read {}: {e}", file.display()));
            None
        }
    }
}

/// A folder of test TLS files: `server.crt` and `server.key` (a self-signed certificate
/// for `api.example.com`), `ca.crt` (the same certificate), and the credential `cred`
/// (`cred/tls.crt`, `cred/tls.key`, `cred/ca.crt`).
#[cfg(test)]
pub fn test_files() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec!["api.example.com".to_string()]).unwrap();
    let (certificate, key) = (params.self_signed(&key).unwrap().pem(), key.serialize_pem());
    std::fs::create_dir(dir.path().join("cred")).unwrap();
    for (file, pem) in [
        ("server.crt", &certificate),
        ("server.key", &key),
        ("ca.crt", &certificate),
        ("cred/tls.crt", &certificate),
        ("cred/tls.key", &key),
        ("cred/ca.crt", &certificate),
    ] {
        std::fs::write(dir.path().join(file), pem).unwrap();
    }
    dir
}
