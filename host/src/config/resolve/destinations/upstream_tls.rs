//! TLS originated to the upstream: its mode, the server's verification and the client
//! certificate of mode MUTUAL.

use std::path::PathBuf;

use super::{Context, Scope, tls};
use crate::config::model::destination_rule::{ClientTlsMode, ClientTlsSettings};
use crate::config::resolved::{UpstreamTls, UpstreamTlsMode};

/// TLS to the upstream; `None` for a mode that cannot be served.
pub(super) fn upstream_tls(
    spec: &ClientTlsSettings,
    ctx: &Context<'_>,
    at: &Scope<'_>,
) -> Option<UpstreamTls> {
    let mode = match spec.mode.unwrap_or(ClientTlsMode::Disable) {
        ClientTlsMode::Disable => UpstreamTlsMode::Disable,
        ClientTlsMode::Simple => UpstreamTlsMode::Simple,
        ClientTlsMode::Mutual => UpstreamTlsMode::Mutual,
        ClientTlsMode::IstioMutual => {
            at.field("mode").error("ISTIO_MUTUAL needs the mesh's certificates, which a standalone gateway does not have: use MUTUAL with clientCertificate and privateKey");
            return None;
        }
    };
    let (cert, key, ca) = files(spec, ctx);
    let mut tls = UpstreamTls {
        mode,
        subject_alt_names: spec.subject_alt_names.clone(),
        sni: spec.sni.clone(),
        insecure_skip_verify: spec.insecure_skip_verify.unwrap_or(false),
        ..UpstreamTls::default()
    };
    if mode == UpstreamTlsMode::Mutual {
        if let Some((c, k)) = client_key_pair(spec, cert, key, ctx, at) {
            tls.client_certificate = Some(c);
            tls.private_key = Some(k);
        }
    } else if mode == UpstreamTlsMode::Disable && (cert.is_some() || ca.is_some()) {
        at.field("mode").warn(
            "TLS files are set but mode is DISABLE (the default); upstream traffic is plain text",
        );
    }
    if let Some(ca) = &ca {
        tls.ca_certificates = tls::certificates(ctx, ca, &at.field("caCertificates"));
    }
    if let Some(crl) = &spec.ca_crl {
        tls.ca_crl = tls::readable(ctx, crl, &at.field("caCrl"));
    }
    Some(tls)
}

/// The client certificate, its key and the CA bundle: as named, or else the files of
/// credentialName, a folder laid out like a mounted Kubernetes TLS secret (its
/// `ca.crt` only when it exists).
fn files(
    spec: &ClientTlsSettings,
    ctx: &Context<'_>,
) -> (Option<String>, Option<String>, Option<String>) {
    let (mut cert, mut key, mut ca) = (
        spec.client_certificate.clone(),
        spec.private_key.clone(),
        spec.ca_certificates.clone(),
    );
    if let Some(name) = &spec.credential_name {
        cert.get_or_insert_with(|| format!("{name}/tls.crt"));
        key.get_or_insert_with(|| format!("{name}/tls.key"));
        if ca.is_none() && ctx.path(&format!("{name}/ca.crt")).exists() {
            ca = Some(format!("{name}/ca.crt"));
        }
    }
    (cert, key, ca)
}

/// The client certificate and key of mode MUTUAL, named by clientCertificate and
/// privateKey or by credentialName.
fn client_key_pair(
    spec: &ClientTlsSettings,
    certificate: Option<String>,
    key: Option<String>,
    ctx: &Context<'_>,
    at: &Scope<'_>,
) -> Option<(PathBuf, PathBuf)> {
    let (Some(certificate), Some(key)) = (certificate, key) else {
        at.error("mode MUTUAL needs clientCertificate and privateKey (or credentialName)");
        return None;
    };
    let (certificate_at, key_at) = if spec.client_certificate.is_some() {
        (at.field("clientCertificate"), at.field("privateKey"))
    } else {
        (at.field("credentialName"), at.field("credentialName"))
    };
    let files = tls::KeyPairFiles {
        certificate,
        key,
        certificate_at,
        key_at,
    };
    tls::key_pair(ctx, &files)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::upstream_tls;
    use crate::config::Diagnostics;
    use crate::config::model::destination_rule::ClientTlsSettings;
    use crate::config::resolve::Context;
    use crate::config::resolve::scope::{errors_at, probe, warnings_at};
    use crate::config::resolve::tls::test_files;
    use crate::config::resolved::{UpstreamTls, UpstreamTlsMode};

    /// The upstream TLS of `yaml`, with files relative to `base_dir`.
    fn resolve_in(base_dir: &Path, yaml: &str) -> (Option<UpstreamTls>, Diagnostics) {
        let spec: ClientTlsSettings = serde_yaml::from_str(yaml).unwrap();
        let ctx = Context { base_dir };
        probe(|at| upstream_tls(&spec, &ctx, &at.field("tls")))
    }

    fn resolve(yaml: &str) -> (Option<UpstreamTls>, Diagnostics) {
        resolve_in(Path::new("/nonexistent"), yaml)
    }

    #[test]
    fn the_default_mode_is_plain_text() {
        let (tls, reported) = resolve("{}");
        assert_eq!(tls, Some(UpstreamTls::default()));
        assert_eq!(UpstreamTls::default().mode, UpstreamTlsMode::Disable);
        assert!(!reported.has_errors() && warnings_at(&reported).is_empty());
    }

    #[test]
    fn simple_tls_carries_its_verification_settings() {
        let (tls, reported) = resolve(
            "{mode: SIMPLE, sni: api.internal, subjectAltNames: [spiffe://api], insecureSkipVerify: true}",
        );
        let tls = tls.unwrap();
        assert_eq!(tls.mode, UpstreamTlsMode::Simple);
        assert_eq!(tls.sni.as_deref(), Some("api.internal"));
        assert_eq!(tls.subject_alt_names, ["spiffe://api"]);
        assert!(tls.insecure_skip_verify);
        assert_eq!(tls.client_certificate, None);
        assert!(!reported.has_errors());
    }

    #[test]
    fn istio_mutual_cannot_be_served() {
        let (tls, reported) = resolve("{mode: ISTIO_MUTUAL}");
        assert_eq!(tls, None);
        assert_eq!(errors_at(&reported), ["tls.mode"]);
    }

    #[test]
    fn files_without_a_tls_mode_warn_at_the_mode() {
        let (tls, reported) = resolve("{clientCertificate: client.crt}");
        assert_eq!(tls.unwrap().mode, UpstreamTlsMode::Disable);
        assert_eq!(warnings_at(&reported), ["tls.mode"]);
        assert!(errors_at(&reported).is_empty());
    }

    #[test]
    fn mutual_needs_a_client_certificate_and_key() {
        let (tls, reported) = resolve("{mode: MUTUAL}");
        assert_eq!(tls.unwrap().client_certificate, None);
        assert_eq!(errors_at(&reported), ["tls"]);
        let (_, reported) = resolve("{mode: MUTUAL, clientCertificate: c.crt, privateKey: c.key}");
        assert_eq!(errors_at(&reported), ["tls.clientCertificate"]);
        let (_, reported) = resolve("{mode: MUTUAL, credentialName: cred}");
        assert_eq!(errors_at(&reported), ["tls.credentialName"]);
    }

    #[test]
    fn a_credential_names_a_key_pair_and_its_ca() {
        let dir = test_files();
        let (tls, reported) = resolve_in(dir.path(), "{mode: MUTUAL, credentialName: cred}");
        assert!(!reported.has_errors(), "{reported:?}");
        let tls = tls.unwrap();
        assert_eq!(
            tls.client_certificate,
            Some(dir.path().join("cred/tls.crt"))
        );
        assert_eq!(tls.private_key, Some(dir.path().join("cred/tls.key")));
        assert_eq!(tls.ca_certificates, Some(dir.path().join("cred/ca.crt")));
        let (tls, _) = resolve_in(
            dir.path(),
            "{mode: MUTUAL, credentialName: cred, caCertificates: ca.crt}",
        );
        assert_eq!(
            tls.unwrap().ca_certificates,
            Some(dir.path().join("ca.crt"))
        );
    }
}
