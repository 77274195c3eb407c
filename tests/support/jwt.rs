//! JWTs for the tests: RSA and EC signing keys, their key set, tokens with chosen
//! claims, and a loopback HTTPS server that serves a key set (and can be told to fail).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http_body_util::Full;
use hyper::Response;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::pkcs1::EncodeRsaPrivateKey;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// A signing key and its public JWK.
pub struct Signer {
    key: EncodingKey,
    /// What it signs with.
    pub alg: Algorithm,
    kid: String,
    jwk: Jwk,
}

impl Signer {
    /// A fresh 2048-bit RSA key signing RS256, with key id `kid`.
    pub fn rsa(kid: &str) -> Self {
        Self::new(Algorithm::RS256, kid)
    }

    /// A fresh P-256 key signing ES256, with key id `kid`.
    pub fn ec(kid: &str) -> Self {
        Self::new(Algorithm::ES256, kid)
    }

    /// A fresh key for `alg` (2048-bit RSA, P-256, P-384 or Ed25519), with key id `kid`.
    pub fn new(alg: Algorithm, kid: &str) -> Self {
        let generated = |curve| rcgen::KeyPair::generate_for(curve).unwrap();
        let (key, mut jwk): (EncodingKey, Jwk) = match alg {
            Algorithm::ES256 | Algorithm::ES384 => {
                let curve = match alg {
                    Algorithm::ES256 => &rcgen::PKCS_ECDSA_P256_SHA256,
                    _ => &rcgen::PKCS_ECDSA_P384_SHA384,
                };
                let pem = generated(curve).serialize_pem();
                let key = EncodingKey::from_ec_pem(pem.as_bytes()).unwrap();
                let jwk = Jwk::from_encoding_key(&key, alg).unwrap();
                (key, jwk)
            }
            // The crate cannot derive an Ed25519 JWK from its key: written out here.
            Algorithm::EdDSA => {
                let pair = generated(&rcgen::PKCS_ED25519);
                let key = EncodingKey::from_ed_pem(pair.serialize_pem().as_bytes()).unwrap();
                let x = URL_SAFE_NO_PAD.encode(pair.public_key_raw());
                let jwk = json!({"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "x": x});
                (key, serde_json::from_value(jwk).unwrap())
            }
            _ => {
                let private = rsa::PrivateKey::new(&mut getrandom::SysRng, 2048).unwrap();
                let der = private.to_pkcs1_der().unwrap();
                let key = EncodingKey::from_rsa_der(der.as_bytes());
                let jwk = Jwk::from_encoding_key(&key, alg).unwrap();
                (key, jwk)
            }
        };
        jwk.common.key_id = Some(kid.to_string());
        Self {
            key,
            alg,
            kid: kid.to_string(),
            jwk,
        }
    }

    /// A token with `claims`, signed.
    pub fn token(&self, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.key).unwrap()
    }

    /// The same key id and algorithm, but another key: its tokens fail verification.
    pub fn impostor(&self) -> Self {
        let mut other = Self::new(self.alg, &self.kid);
        other.jwk = self.jwk.clone();
        other
    }
}

/// The key set of `signers`, as JSON text.
pub fn jwks(signers: &[&Signer]) -> String {
    json!({ "keys": signers.iter().map(|s| &s.jwk).collect::<Vec<_>>() }).to_string()
}

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Claims from `issuer` about `subject` for audience `shop`, valid for an hour, with
/// `extra` merged in (a `null` removes a claim).
pub fn claims(issuer: &str, subject: &str, extra: &Value) -> Value {
    let mut claims = json!({
        "iss": issuer,
        "sub": subject,
        "aud": "shop",
        "iat": now(),
        "exp": now() + 3600,
    });
    for (key, value) in extra.as_object().unwrap() {
        match value {
            Value::Null => claims.as_object_mut().unwrap().remove(key),
            _ => claims
                .as_object_mut()
                .unwrap()
                .insert(key.clone(), value.clone()),
        };
    }
    claims
}

/// A loopback HTTPS server answering every GET with its current document, but for an
/// OpenID configuration (`/.well-known/openid-configuration`), which names `/keys` of the
/// same server as its `jwks_uri`.
pub struct JwksServer {
    pub addr: SocketAddr,
    document: Arc<Mutex<String>>,
    failing: Arc<AtomicBool>,
    hits: Arc<AtomicUsize>,
}

impl JwksServer {
    /// Serves `document` with the certificate `certificate`/`key` (PEM files).
    pub async fn start(document: String, certificate: &Path, key: &Path) -> Self {
        let pem = |path: &Path| std::fs::read(path).unwrap();
        let chain = rustls_pemfile::certs(&mut pem(certificate).as_slice())
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = rustls_pemfile::private_key(&mut pem(key).as_slice())
            .unwrap()
            .unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = Self {
            addr: listener.local_addr().unwrap(),
            document: Arc::new(Mutex::new(document)),
            failing: Arc::default(),
            hits: Arc::default(),
        };
        let (document, failing, hits) = (
            server.document.clone(),
            server.failing.clone(),
            server.hits.clone(),
        );
        let addr = server.addr;
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let Ok(stream) = acceptor.accept(stream).await else {
                    continue;
                };
                let (document, failing, hits) = (document.clone(), failing.clone(), hits.clone());
                let answer = service_fn(move |request: http::Request<hyper::body::Incoming>| {
                    hits.fetch_add(1, Ordering::SeqCst);
                    let text = match request.uri().path() {
                        "/.well-known/openid-configuration" => {
                            json!({"jwks_uri": format!("https://{addr}/keys")}).to_string()
                        }
                        _ => document.lock().unwrap().clone(),
                    };
                    let mut response = Response::new(Full::new(Bytes::from(text)));
                    if failing.load(Ordering::SeqCst) {
                        *response.status_mut() = http::StatusCode::SERVICE_UNAVAILABLE;
                    }
                    async move { Ok::<_, std::convert::Infallible>(response) }
                });
                tokio::spawn(async move {
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), answer)
                        .await;
                });
            }
        });
        server
    }

    /// Serves `document` from now on.
    pub fn set(&self, document: String) {
        *self.document.lock().unwrap() = document;
    }

    /// Answers 503 from now on (or stops).
    pub fn fail(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }

    /// How many requests it has answered.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}
