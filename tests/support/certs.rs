//! Certificates generated for the tests: a CA, a server certificate it signs, and a
//! stray key that matches nothing.

use std::path::Path;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

/// Writes `certs/{ca.pem, server.pem, server.key, other.key}` under `dir`.
pub fn write_test_certs(dir: &Path, server_names: &[&str]) {
    let certs = dir.join("certs");
    std::fs::create_dir_all(&certs).unwrap();

    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);

    let server_key = KeyPair::generate().unwrap();
    let names: Vec<String> = server_names.iter().map(ToString::to_string).collect();
    let server = CertificateParams::new(names)
        .unwrap()
        .signed_by(&server_key, &issuer)
        .unwrap();

    std::fs::write(certs.join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(certs.join("server.pem"), server.pem() + &ca.pem()).unwrap();
    std::fs::write(certs.join("server.key"), server_key.serialize_pem()).unwrap();
    std::fs::write(
        certs.join("other.key"),
        KeyPair::generate().unwrap().serialize_pem(),
    )
    .unwrap();
}

/// A test CA that issues server and client certificates into a folder.
pub struct TestCa {
    dir: std::path::PathBuf,
    issuer: Issuer<'static, KeyPair>,
}

impl TestCa {
    /// A new CA whose certificate is written to `dir/ca.pem`.
    pub fn new(dir: &Path) -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        // Distinct subjects: OpenSSL (curl) takes a leaf named like its issuer for self-signed.
        params
            .distinguished_name
            .push(DnType::CommonName, "Portcullis test CA");
        let certificate = params.self_signed(&key).unwrap();
        std::fs::write(dir.join("ca.pem"), certificate.pem()).unwrap();
        Self {
            dir: dir.to_path_buf(),
            issuer: Issuer::new(params, key),
        }
    }

    /// Issues a certificate for `names`, written to `dir/<file>.pem` and `dir/<file>.key`.
    pub fn issue(&self, file: &str, names: &[&str]) {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(names.iter().map(ToString::to_string).collect::<Vec<_>>())
                .unwrap();
        params.distinguished_name.push(DnType::CommonName, names[0]);
        let certificate = params.signed_by(&key, &self.issuer).unwrap();
        std::fs::write(self.dir.join(format!("{file}.pem")), certificate.pem()).unwrap();
        std::fs::write(self.dir.join(format!("{file}.key")), key.serialize_pem()).unwrap();
    }
}
