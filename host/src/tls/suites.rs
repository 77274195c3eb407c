//! Cipher-suite names as Istio and Envoy write them (OpenSSL names), mapped to rustls.

use rustls::SupportedCipherSuite;
use rustls::crypto::ring::cipher_suite as ring;

/// Every suite rustls offers, under its OpenSSL name and its IANA name.
const SUITES: &[(&str, &str, SupportedCipherSuite)] = &[
    (
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        ring::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    ),
    (
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        ring::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    ),
    (
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        ring::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    ),
    (
        "ECDHE-RSA-AES128-GCM-SHA256",
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        ring::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    ),
    (
        "ECDHE-RSA-AES256-GCM-SHA384",
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        ring::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    ),
    (
        "ECDHE-RSA-CHACHA20-POLY1305",
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        ring::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    ),
    (
        "TLS_AES_128_GCM_SHA256",
        "TLS13_AES_128_GCM_SHA256",
        ring::TLS13_AES_128_GCM_SHA256,
    ),
    (
        "TLS_AES_256_GCM_SHA384",
        "TLS13_AES_256_GCM_SHA384",
        ring::TLS13_AES_256_GCM_SHA384,
    ),
    (
        "TLS_CHACHA20_POLY1305_SHA256",
        "TLS13_CHACHA20_POLY1305_SHA256",
        ring::TLS13_CHACHA20_POLY1305_SHA256,
    ),
];

/// The rustls suite for an OpenSSL or IANA name.
pub fn by_name(name: &str) -> Option<SupportedCipherSuite> {
    SUITES
        .iter()
        .find(|(openssl, iana, _)| *openssl == name || *iana == name)
        .map(|(_, _, suite)| *suite)
}

/// The OpenSSL names of every supported suite, for error messages.
pub fn names() -> impl Iterator<Item = &'static str> {
    SUITES.iter().map(|(openssl, _, _)| *openssl)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_openssl_and_iana_names() {
        assert!(by_name("ECDHE-RSA-AES128-GCM-SHA256").is_some());
        assert!(by_name("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256").is_some());
        assert!(by_name("AES128-SHA").is_none());
        assert_eq!(names().count(), SUITES.len());
    }
}
