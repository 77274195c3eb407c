//! Reading PEM certificate chains and private keys, with errors that say what is wrong.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

/// Why a TLS file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsFileError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file has no PEM certificate.
    #[error("{path} holds no PEM certificate")]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// The file has no PEM CRL.
    #[error("{path} holds no PEM certificate revocation list")]
    NoCrl {
        /// The file.
        path: PathBuf,
    },
    /// The file has no PEM private key.
    #[error("{path} holds no PEM private key (PKCS#1, PKCS#8 or SEC1)")]
    NoKey {
        /// The file.
        path: PathBuf,
    },
    /// rustls refused the file's contents.
    #[error("{path}: {source}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Why.
        source: rustls::Error,
    },
    /// The key does not belong to the certificate.
    #[error("private key {key} does not match certificate {certificate}")]
    Mismatch {
        /// The certificate file.
        certificate: PathBuf,
        /// The key file.
        key: PathBuf,
    },
}

fn open(path: &Path) -> Result<BufReader<File>, TlsFileError> {
    File::open(path)
        .map(BufReader::new)
        .map_err(|source| TlsFileError::Read {
            path: path.to_owned(),
            source,
        })
}

/// Every certificate in a PEM file, in order.
pub fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsFileError> {
    let certs = rustls_pemfile::certs(&mut open(path)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsFileError::Read {
            path: path.to_owned(),
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsFileError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

/// The certificates of a PEM file as trust anchors.
pub fn roots(path: &Path) -> Result<RootCertStore, TlsFileError> {
    let mut roots = RootCertStore::empty();
    for certificate in certificates(path)? {
        roots
            .add(certificate)
            .map_err(|source| TlsFileError::Invalid {
                path: path.to_owned(),
                source,
            })?;
    }
    Ok(roots)
}

/// Every certificate revocation list in a PEM file.
pub fn crls(path: &Path) -> Result<Vec<CertificateRevocationListDer<'static>>, TlsFileError> {
    let crls = rustls_pemfile::crls(&mut open(path)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsFileError::Read {
            path: path.to_owned(),
            source,
        })?;
    if crls.is_empty() {
        return Err(TlsFileError::NoCrl {
            path: path.to_owned(),
        });
    }
    Ok(crls)
}

/// The first private key in a PEM file.
pub fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsFileError> {
    rustls_pemfile::private_key(&mut open(path)?)
        .map_err(|source| TlsFileError::Read {
            path: path.to_owned(),
            source,
        })?
        .ok_or_else(|| TlsFileError::NoKey {
            path: path.to_owned(),
        })
}

/// A certificate chain and its key, checked to belong together.
pub fn certified_key(
    certificate: &Path,
    key: &Path,
    provider: &CryptoProvider,
) -> Result<Arc<CertifiedKey>, TlsFileError> {
    let chain = certificates(certificate)?;
    let der = private_key(key)?;
    let signing_key = provider
        .key_provider
        .load_private_key(der)
        .map_err(|source| TlsFileError::Invalid {
            path: key.to_owned(),
            source,
        })?;
    let certified = CertifiedKey::new(chain, signing_key);
    match certified.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {
            Ok(Arc::new(certified))
        }
        Err(rustls::Error::InconsistentKeys(_)) => Err(TlsFileError::Mismatch {
            certificate: certificate.to_owned(),
            key: key.to_owned(),
        }),
        Err(source) => Err(TlsFileError::Invalid {
            path: certificate.to_owned(),
            source,
        }),
    }
}
