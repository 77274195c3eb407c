//! A server's TLS settings: TLS termination for HTTPS servers, `httpsRedirect` for
//! plain-HTTP ones, and the versions, cipher suites and client checks offered.

use super::certificates::{check_certificate_sources, client_ca, key_pair_files};
use super::{Context, Scope, tls};
use crate::config::model::gateway::{ServerTlsMode, ServerTlsSettings, TlsProtocol};
use crate::config::resolved::{CertificateFiles, ClientAuth, Protocol, ServerTls, TlsVersion};
use crate::tls::suites;

/// The server's TLS termination, and whether it redirects plain HTTP to HTTPS.
pub(super) fn tls_settings(
    spec: Option<&ServerTlsSettings>,
    protocol: Protocol,
    protocol_name: &str,
    ctx: &Context<'_>,
    at: &Scope<'_>,
) -> (Option<ServerTls>, bool) {
    match (spec, protocol) {
        (None, Protocol::Https | Protocol::Tls) => {
            at.error(format!(
                "server with protocol {protocol_name} must have TLS settings"
            ));
            (None, false)
        }
        (None, _) => (None, false),
        (Some(t), Protocol::Https | Protocol::Tls) => {
            if t.https_redirect {
                at.field("httpsRedirect")
                    .warn("httpsRedirect only applies to plain HTTP servers; ignored");
            }
            (server_tls(t, ctx, at), false)
        }
        (Some(t), _) => {
            plain_text_tls(t, protocol, at);
            (None, t.https_redirect)
        }
    }
}

/// The TLS settings of a PASSTHROUGH server: it terminates no TLS, so every setting but
/// the mode is ignored (warned about).
pub(super) fn passthrough(spec: Option<&ServerTlsSettings>, at: &Scope<'_>) {
    let Some(spec) = spec else { return };
    let certificates = [
        ("serverCertificate", spec.server_certificate.is_some()),
        ("credentialName", spec.credential_name.is_some()),
        ("httpsRedirect", spec.https_redirect),
    ];
    let set = certificates
        .into_iter()
        .filter_map(|(field, set)| set.then_some(field))
        .chain(plain_text_tls_fields(spec));
    for field in set {
        at.field(field)
            .warn("a PASSTHROUGH server terminates no TLS; ignored");
    }
}

/// TLS settings on a plain-text server, where only `httpsRedirect` means something.
fn plain_text_tls(spec: &ServerTlsSettings, protocol: Protocol, at: &Scope<'_>) {
    if spec.mode.is_some() || spec.server_certificate.is_some() || spec.credential_name.is_some() {
        at.error("TLS settings on a plain-text server: use protocol HTTPS to terminate TLS");
    } else {
        for field in plain_text_tls_fields(spec) {
            at.field(field)
                .warn("a plain-text server terminates no TLS; ignored");
        }
    }
    if spec.https_redirect && protocol != Protocol::Http {
        at.field("httpsRedirect")
            .warn("httpsRedirect only applies to HTTP servers");
    }
}

/// TLS termination; `None` when the mode terminates none.
fn server_tls(spec: &ServerTlsSettings, ctx: &Context<'_>, at: &Scope<'_>) -> Option<ServerTls> {
    let client_auth = client_auth(spec.mode, &at.field("mode"))?;
    let credentials: Vec<&String> = spec
        .credential_name
        .iter()
        .chain(&spec.credential_names)
        .collect();
    let pairs = key_pair_files(spec, &credentials, at);
    check_certificate_sources(spec, credentials.len(), client_auth, at);
    let certificates = pairs
        .iter()
        .filter_map(|pair| tls::key_pair(ctx, pair))
        .map(|(certificate_chain, private_key)| CertificateFiles {
            certificate_chain,
            private_key,
        })
        .collect();
    let (ca_certificates, ca_crl) =
        client_ca(spec, credentials.first().copied(), client_auth, ctx, at);
    let (min_version, max_version) = protocol_versions(spec, at);
    let cipher_suites = cipher_suites(&spec.cipher_suites, &at.field("cipherSuites"));
    check_client_pinning(spec, client_auth, at);
    Some(ServerTls {
        client_auth,
        certificates,
        ca_certificates,
        ca_crl,
        subject_alt_names: spec.subject_alt_names.clone(),
        verify_certificate_spki: spec.verify_certificate_spki.clone(),
        verify_certificate_hash: spec.verify_certificate_hash.clone(),
        min_version,
        max_version,
        cipher_suites,
    })
}

/// The `tls` fields set on a plain-text server that only a TLS server would use.
fn plain_text_tls_fields(t: &ServerTlsSettings) -> Vec<&'static str> {
    let set = [
        ("privateKey", t.private_key.is_some()),
        ("tlsCertificates", !t.tls_certificates.is_empty()),
        ("credentialNames", !t.credential_names.is_empty()),
        ("caCertCredentialName", t.ca_cert_credential_name.is_some()),
        ("caCertificates", t.ca_certificates.is_some()),
        ("caCrl", t.ca_crl.is_some()),
        ("subjectAltNames", !t.subject_alt_names.is_empty()),
        (
            "verifyCertificateSpki",
            !t.verify_certificate_spki.is_empty(),
        ),
        (
            "verifyCertificateHash",
            !t.verify_certificate_hash.is_empty(),
        ),
        ("minProtocolVersion", t.min_protocol_version.is_some()),
        ("maxProtocolVersion", t.max_protocol_version.is_some()),
        ("cipherSuites", !t.cipher_suites.is_empty()),
        ("insecureSkipVerify", t.insecure_skip_verify),
    ];
    set.into_iter()
        .filter_map(|(field, set)| set.then_some(field))
        .collect()
}

/// Which client certificates the mode asks for; `None` when it terminates no TLS.
fn client_auth(mode: Option<ServerTlsMode>, at: &Scope<'_>) -> Option<ClientAuth> {
    match mode {
        Some(ServerTlsMode::Simple) => Some(ClientAuth::None),
        Some(ServerTlsMode::Mutual) => Some(ClientAuth::Required),
        Some(ServerTlsMode::OptionalMutual) => Some(ClientAuth::Optional),
        None | Some(ServerTlsMode::Passthrough) => {
            at.warn("PASSTHROUGH (the default mode) forwards TLS without terminating it, which Portcullis does not do: this server is not served; set mode: SIMPLE to terminate TLS");
            None
        }
        Some(mode @ (ServerTlsMode::AutoPassthrough | ServerTlsMode::IstioMutual)) => {
            at.error(format!(
                "{mode:?} needs the mesh's certificates and only works inside a service mesh"
            ));
            None
        }
    }
}

/// The lowest and highest TLS versions offered.
fn protocol_versions(spec: &ServerTlsSettings, at: &Scope<'_>) -> (TlsVersion, TlsVersion) {
    let min_version = tls_version(
        spec.min_protocol_version,
        TlsVersion::V1_2,
        &at.field("minProtocolVersion"),
    );
    let max_version = tls_version(
        spec.max_protocol_version,
        TlsVersion::V1_3,
        &at.field("maxProtocolVersion"),
    );
    if min_version > max_version {
        at.field("maxProtocolVersion")
            .error("maxProtocolVersion is lower than minProtocolVersion");
    }
    (min_version, max_version)
}

/// A TLS version rustls offers: TLS 1.0 and 1.1 become 1.2, with a warning.
fn tls_version(version: Option<TlsProtocol>, default: TlsVersion, at: &Scope<'_>) -> TlsVersion {
    match version {
        None | Some(TlsProtocol::Auto) => default,
        Some(TlsProtocol::V1_2) => TlsVersion::V1_2,
        Some(TlsProtocol::V1_3) => TlsVersion::V1_3,
        Some(old) => {
            let name = if old == TlsProtocol::V1_0 {
                "TLSV1_0"
            } else {
                "TLSV1_1"
            };
            at.warn(format!(
                "{name} is insecure and not offered by rustls; TLS 1.2 is used"
            ));
            TlsVersion::V1_2
        }
    }
}

/// The cipher suites named, each one that rustls offers.
fn cipher_suites(names: &[String], at: &Scope<'_>) -> Vec<String> {
    let mut cipher_suites = Vec::new();
    for (i, name) in names.iter().enumerate() {
        match suites::by_name(name) {
            Some(_) => cipher_suites.push(name.clone()),
            None => at.index(i).error(format!("cipher suite {name:?} is not supported (rustls offers only AEAD suites with forward secrecy): use one of {}", suites::names().collect::<Vec<_>>().join(", "))),
        }
    }
    cipher_suites
}

/// Client certificate pinning, which only a mode that asks for client certificates
/// uses, and insecureSkipVerify, which is not carried out.
fn check_client_pinning(spec: &ServerTlsSettings, client_auth: ClientAuth, at: &Scope<'_>) {
    for (field, set) in [
        ("subjectAltNames", !spec.subject_alt_names.is_empty()),
        (
            "verifyCertificateSpki",
            !spec.verify_certificate_spki.is_empty(),
        ),
        (
            "verifyCertificateHash",
            !spec.verify_certificate_hash.is_empty(),
        ),
    ] {
        if set && client_auth == ClientAuth::None {
            at.field(field)
                .warn("pins client certificates, which mode SIMPLE does not ask for; ignored");
        }
    }
    if spec.insecure_skip_verify {
        at.field("insecureSkipVerify").warn(
            "not carried out: client certificates that fail verification are refused; ignored",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::tls_settings;
    use crate::config::Diagnostics;
    use crate::config::model::gateway::ServerTlsSettings;
    use crate::config::resolve::Context;
    use crate::config::resolve::scope::{errors_at, probe, warnings_at};
    use crate::config::resolve::tls::test_files;
    use crate::config::resolved::{ClientAuth, Protocol, ServerTls, TlsVersion};

    /// The TLS of an HTTPS server with `yaml` settings, its files in a test folder.
    fn resolve(yaml: &str) -> (Option<ServerTls>, Diagnostics) {
        let spec: ServerTlsSettings = serde_yaml::from_str(yaml).unwrap();
        let dir = test_files();
        let ctx = Context {
            base_dir: dir.path(),
        };
        let ((tls, redirect), reported) = probe(|at| {
            tls_settings(
                Some(&spec),
                Protocol::Https,
                "HTTPS",
                &ctx,
                &at.field("tls"),
            )
        });
        assert!(!redirect);
        (tls, reported)
    }

    /// SIMPLE with the test certificate, and `rest`.
    fn simple(rest: &str) -> String {
        format!("{{mode: SIMPLE, serverCertificate: server.crt, privateKey: server.key, {rest}}}")
    }

    #[test]
    fn each_mode_asks_for_its_client_certificates() {
        let auth = |mode: &str| {
            let (tls, reported) = resolve(&format!("{{mode: {mode}, credentialName: cred}}"));
            assert!(!reported.has_errors(), "{mode}: {reported:?}");
            tls.map(|t| t.client_auth)
        };
        assert_eq!(auth("SIMPLE"), Some(ClientAuth::None));
        assert_eq!(auth("MUTUAL"), Some(ClientAuth::Required));
        assert_eq!(auth("OPTIONAL_MUTUAL"), Some(ClientAuth::Optional));
        let (tls, reported) = resolve("{mode: AUTO_PASSTHROUGH}");
        assert!(tls.is_none());
        assert_eq!(errors_at(&reported), ["tls.mode"]);
    }

    #[test]
    fn old_tls_versions_become_1_2_and_the_range_must_be_ordered() {
        let (tls, reported) = resolve(&simple("minProtocolVersion: TLSV1_0"));
        let tls = tls.unwrap();
        assert_eq!(
            (tls.min_version, tls.max_version),
            (TlsVersion::V1_2, TlsVersion::V1_3)
        );
        assert_eq!(warnings_at(&reported), ["tls.minProtocolVersion"]);
        let (tls, reported) = resolve(&simple(
            "minProtocolVersion: TLSV1_3, maxProtocolVersion: TLSV1_2",
        ));
        assert_eq!(tls.unwrap().min_version, TlsVersion::V1_3);
        assert_eq!(errors_at(&reported), ["tls.maxProtocolVersion"]);
    }

    #[test]
    fn cipher_suites_must_be_ones_rustls_offers() {
        let (tls, reported) = resolve(&simple(
            "cipherSuites: [ECDHE-RSA-AES128-GCM-SHA256, AES128-SHA]",
        ));
        assert_eq!(tls.unwrap().cipher_suites, ["ECDHE-RSA-AES128-GCM-SHA256"]);
        assert_eq!(errors_at(&reported), ["tls.cipherSuites[1]"]);
    }

    #[test]
    fn client_pins_are_ignored_without_client_certificates() {
        let (tls, reported) = resolve(&simple(
            "subjectAltNames: [client.example.com], insecureSkipVerify: true",
        ));
        assert_eq!(tls.unwrap().subject_alt_names, ["client.example.com"]);
        assert!(errors_at(&reported).is_empty());
        assert_eq!(
            warnings_at(&reported),
            ["tls.subjectAltNames", "tls.insecureSkipVerify"]
        );
    }

    #[test]
    fn a_plain_http_server_only_redirects() {
        let spec: ServerTlsSettings = serde_yaml::from_str("{httpsRedirect: true}").unwrap();
        let dir = test_files();
        let ctx = Context {
            base_dir: dir.path(),
        };
        let ((tls, redirect), reported) =
            probe(|at| tls_settings(Some(&spec), Protocol::Http, "HTTP", &ctx, at));
        assert!(tls.is_none() && redirect);
        assert!(!reported.has_errors() && warnings_at(&reported).is_empty());
        let ((_, redirect), reported) = probe(|at| {
            tls_settings(
                Some(&spec),
                Protocol::Http2,
                "HTTP2",
                &ctx,
                &at.field("tls"),
            )
        });
        assert!(redirect);
        assert_eq!(warnings_at(&reported), ["tls.httpsRedirect"]);
    }
}
