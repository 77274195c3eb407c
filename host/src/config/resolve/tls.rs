//! Checks of the TLS files a config names: they exist, parse, and keys match certificates.

use std::path::PathBuf;

use super::Context;
use crate::config::diag::{Reporter, Site};
use crate::tls::files::{self, TlsFileError};

/// Files named by a config, and the fields that name them.
pub struct KeyPairFields<'a> {
    pub certificate: &'a str,
    pub key: &'a str,
    pub certificate_path: String,
    pub key_path: String,
}

/// A certificate chain and key that load and belong together.
pub fn key_pair(
    ctx: &Context<'_>,
    fields: &KeyPairFields<'_>,
    site: &Site,
    reporter: &mut Reporter,
) -> Option<(PathBuf, PathBuf)> {
    let (certificate, key) = (ctx.path(fields.certificate), ctx.path(fields.key));
    let provider = rustls::crypto::ring::default_provider();
    match files::certified_key(&certificate, &key, &provider) {
        Ok(_) => Some((certificate, key)),
        Err(e) => {
            let path = match &e {
                TlsFileError::Read { path, .. } | TlsFileError::Invalid { path, .. }
                    if *path == certificate =>
                {
                    &fields.certificate_path
                }
                TlsFileError::NoCertificate { .. } => &fields.certificate_path,
                _ => &fields.key_path,
            };
            reporter.error(site, path, e.to_string());
            None
        }
    }
}

/// A PEM file of one or more certificates (a CA bundle).
pub fn certificates(
    ctx: &Context<'_>,
    file: &str,
    path: &str,
    site: &Site,
    reporter: &mut Reporter,
) -> Option<PathBuf> {
    let file = ctx.path(file);
    match files::certificates(&file) {
        Ok(_) => Some(file),
        Err(e) => {
            reporter.error(site, path, e.to_string());
            None
        }
    }
}

/// A file that can be read.
pub fn readable(
    ctx: &Context<'_>,
    file: &str,
    path: &str,
    site: &Site,
    reporter: &mut Reporter,
) -> Option<PathBuf> {
    let file = ctx.path(file);
    match std::fs::metadata(&file) {
        Ok(_) => Some(file),
        Err(e) => {
            reporter.error(site, path, format!("cannot read {}: {e}", file.display()));
            None
        }
    }
}
