//! The certificate files a TLS server presents, and the CA bundle that verifies its
//! clients' certificates.

use std::path::PathBuf;

use super::tls::KeyPairFiles;
use super::{Context, Scope, tls};
use crate::config::model::gateway::ServerTlsSettings;
use crate::config::resolved::ClientAuth;

/// The certificate and key files the server presents: serverCertificate and
/// privateKey, each tlsCertificates entry, and each credential (`credentials`: those of
/// credentialName then credentialNames).
pub(super) fn key_pair_files<'r>(
    spec: &ServerTlsSettings,
    credentials: &[&String],
    at: &Scope<'r>,
) -> Vec<KeyPairFiles<'r>> {
    let mut pairs = Vec::new();
    match (&spec.server_certificate, &spec.private_key) {
        (Some(c), Some(k)) => pairs.push(certificate_and_key(c, k, at)),
        (Some(_), None) => at
            .field("privateKey")
            .error("serverCertificate needs privateKey"),
        (None, Some(_)) => at
            .field("serverCertificate")
            .error("privateKey needs serverCertificate"),
        (None, None) => {}
    }
    for (i, entry) in spec.tls_certificates.iter().enumerate() {
        let entry_at = at.field("tlsCertificates").index(i);
        if entry.ca_certificates.is_some() {
            entry_at.field("caCertificates").warn(
                "client certificates are checked against the server's caCertificates; ignored",
            );
        }
        match (&entry.server_certificate, &entry.private_key) {
            (Some(c), Some(k)) => pairs.push(certificate_and_key(c, k, &entry_at)),
            _ => {
                entry_at.error("each tlsCertificates entry needs serverCertificate and privateKey");
            }
        }
    }
    let named = usize::from(spec.credential_name.is_some());
    for (i, name) in credentials.iter().enumerate() {
        let credential_at = if i < named {
            at.field("credentialName")
        } else {
            at.field("credentialNames").index(i - named)
        };
        pairs.push(credential(name, credential_at));
    }
    pairs
}

/// The files that `serverCertificate` and `privateKey` in `at` name.
fn certificate_and_key<'r>(certificate: &str, key: &str, at: &Scope<'r>) -> KeyPairFiles<'r> {
    KeyPairFiles {
        certificate: certificate.to_string(),
        key: key.to_string(),
        certificate_at: at.field("serverCertificate"),
        key_at: at.field("privateKey"),
    }
}

/// The files of the credential `name` that `at` names: a folder laid out like a
/// mounted Kubernetes TLS secret.
fn credential<'r>(name: &str, at: Scope<'r>) -> KeyPairFiles<'r> {
    KeyPairFiles {
        certificate: format!("{name}/tls.crt"),
        key: format!("{name}/tls.key"),
        certificate_at: at.clone(),
        key_at: at,
    }
}

/// One source of at most two certificates, and at least one.
pub(super) fn check_certificate_sources(
    spec: &ServerTlsSettings,
    credentials: usize,
    client_auth: ClientAuth,
    at: &Scope<'_>,
) {
    if spec.tls_certificates.len() > 2 || credentials > 2 {
        at.error("at most two certificates (an RSA and an ECDSA one) per server");
    }
    let sources = usize::from(spec.server_certificate.is_some())
        + usize::from(!spec.tls_certificates.is_empty())
        + usize::from(credentials > 0);
    if sources > 1 {
        at.error("set only one of serverCertificate, tlsCertificates or credentialName(s)");
    }
    if sources == 0 && spec.server_certificate.is_none() && spec.private_key.is_none() {
        let mode = match client_auth {
            ClientAuth::None => "SIMPLE",
            ClientAuth::Required => "MUTUAL",
            ClientAuth::Optional => "OPTIONAL_MUTUAL",
        };
        at.error(format!(
            "mode {mode} needs serverCertificate and privateKey (or credentialName)"
        ));
    }
}

/// The CA bundle that verifies client certificates (from caCertificates, the first
/// `credential` or caCertCredentialName), and the revocation list.
pub(super) fn client_ca(
    spec: &ServerTlsSettings,
    credential: Option<&String>,
    client_auth: ClientAuth,
    ctx: &Context<'_>,
    at: &Scope<'_>,
) -> (Option<PathBuf>, Option<PathBuf>) {
    if client_auth == ClientAuth::None {
        let unused = [
            ("caCertificates", spec.ca_certificates.is_some()),
            ("caCrl", spec.ca_crl.is_some()),
            (
                "caCertCredentialName",
                spec.ca_cert_credential_name.is_some(),
            ),
        ];
        for (field, _) in unused.iter().filter(|(_, set)| *set) {
            at.field(field)
                .warn("mode SIMPLE asks for no client certificate; ignored");
        }
        // Ignored means not read either: a missing file is no error here.
        return (None, None);
    }
    let mut ca = spec.ca_certificates.clone();
    if ca.is_none() {
        if let Some(name) = credential.filter(|_| client_auth != ClientAuth::None) {
            ca = Some(format!("{name}/ca.crt"));
        }
        if let Some(name) = &spec.ca_cert_credential_name {
            ca = Some(format!("{name}/ca.crt"));
        }
    }
    let ca_at = at.field("caCertificates");
    let ca_certificates = match (&ca, client_auth) {
        (None, ClientAuth::None) => None,
        (None, _) => {
            ca_at.error(
                "MUTUAL and OPTIONAL_MUTUAL need caCertificates to verify client certificates",
            );
            None
        }
        (Some(ca), _) => tls::certificates(ctx, ca, &ca_at),
    };
    let ca_crl = spec
        .ca_crl
        .as_ref()
        .and_then(|crl| tls::readable(ctx, crl, &at.field("caCrl")));
    (ca_certificates, ca_crl)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::{check_certificate_sources, client_ca, key_pair_files};
    use crate::config::model::gateway::ServerTlsSettings;
    use crate::config::resolve::Context;
    use crate::config::resolve::scope::{errors_at, probe, warnings_at};
    use crate::config::resolve::tls::test_files;
    use crate::config::resolved::ClientAuth;

    fn spec(yaml: &str) -> ServerTlsSettings {
        serde_yaml::from_str(yaml).unwrap()
    }

    /// Each file pair named, as (certificate, its field, key, its field).
    fn named_files(yaml: &str) -> (Vec<[String; 4]>, Vec<String>) {
        let spec = spec(yaml);
        let credentials: Vec<&String> = spec
            .credential_name
            .iter()
            .chain(&spec.credential_names)
            .collect();
        let (pairs, reported) = probe(|at| {
            key_pair_files(&spec, &credentials, &at.field("tls"))
                .into_iter()
                .map(|p| {
                    let (c_at, k_at) = (p.certificate_at.path(), p.key_at.path());
                    [p.certificate, c_at.to_string(), p.key, k_at.to_string()]
                })
                .collect()
        });
        let errors = errors_at(&reported).into_iter().map(String::from).collect();
        (pairs, errors)
    }

    #[test]
    fn certificate_files_come_with_the_field_that_names_them() {
        let (pairs, errors) = named_files(
            "{tlsCertificates: [{serverCertificate: rsa.crt, privateKey: rsa.key}], credentialName: a, credentialNames: [b]}",
        );
        assert!(errors.is_empty());
        assert_eq!(
            pairs,
            [
                [
                    "rsa.crt",
                    "tls.tlsCertificates[0].serverCertificate",
                    "rsa.key",
                    "tls.tlsCertificates[0].privateKey"
                ],
                [
                    "a/tls.crt",
                    "tls.credentialName",
                    "a/tls.key",
                    "tls.credentialName"
                ],
                [
                    "b/tls.crt",
                    "tls.credentialNames[0]",
                    "b/tls.key",
                    "tls.credentialNames[0]"
                ]
            ]
            .map(|pair| pair.map(String::from))
        );
    }

    #[test]
    fn a_certificate_needs_its_key_and_a_key_its_certificate() {
        let (pairs, errors) = named_files("{serverCertificate: a.crt}");
        assert!(pairs.is_empty());
        assert_eq!(errors, ["tls.privateKey"]);
        let (_, errors) = named_files("{privateKey: a.key}");
        assert_eq!(errors, ["tls.serverCertificate"]);
        let (_, errors) = named_files("{tlsCertificates: [{serverCertificate: a.crt}]}");
        assert_eq!(errors, ["tls.tlsCertificates[0]"]);
    }

    #[test]
    fn one_source_of_one_or_two_certificates() {
        let sources = |yaml: &str, credentials: usize| {
            let spec = spec(yaml);
            let (_, reported) = probe(|at| {
                check_certificate_sources(&spec, credentials, ClientAuth::None, &at.field("tls"));
            });
            errors_at(&reported).len()
        };
        assert_eq!(
            sources("{serverCertificate: a.crt, privateKey: a.key}", 0),
            0
        );
        assert_eq!(sources("{credentialNames: [a, b]}", 2), 0);
        assert_eq!(sources("{}", 0), 1);
        assert_eq!(
            sources(
                "{serverCertificate: a.crt, privateKey: a.key, credentialName: c}",
                1
            ),
            1
        );
        assert_eq!(sources("{credentialNames: [a, b, c]}", 3), 1);
    }

    #[test]
    fn mutual_modes_need_a_client_ca() {
        let dir = test_files();
        let ctx = Context {
            base_dir: dir.path(),
        };
        let ca = |yaml: &str, credential: Option<&str>, auth: ClientAuth| {
            let spec = spec(yaml);
            let credential = credential.map(String::from);
            probe(|at| client_ca(&spec, credential.as_ref(), auth, &ctx, &at.field("tls")))
        };
        let ((ca_file, crl), reported) = ca("{}", Some("cred"), ClientAuth::Required);
        assert_eq!(ca_file, Some(dir.path().join("cred/ca.crt")));
        assert_eq!(crl, None);
        assert!(!reported.has_errors());
        let ((ca_file, _), _) = ca("{caCertCredentialName: cred}", None, ClientAuth::Optional);
        assert_eq!(ca_file, Some(dir.path().join("cred/ca.crt")));
        let ((ca_file, _), reported) = ca("{}", None, ClientAuth::Required);
        assert_eq!(ca_file, None);
        assert_eq!(errors_at(&reported), ["tls.caCertificates"]);
        let ((ca_file, _), _) = ca("{}", Some("cred"), ClientAuth::None);
        assert_eq!(ca_file, None);
    }

    #[test]
    fn a_client_ca_on_a_simple_server_warns_and_is_not_read() {
        let ctx = Context {
            base_dir: Path::new("/nonexistent"),
        };
        let spec = spec("{caCertificates: ca.crt}");
        let ((ca, _), reported) =
            probe(|at| client_ca(&spec, None, ClientAuth::None, &ctx, &at.field("tls")));
        assert_eq!(ca, None);
        assert_eq!(warnings_at(&reported), ["tls.caCertificates"]);
        assert!(
            errors_at(&reported).is_empty(),
            "the missing file is not read"
        );
    }
}
