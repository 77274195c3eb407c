//! A TLS client for the tests: trusting the test CA, offering chosen versions and ALPN,
//! with an optional client certificate.

use std::path::Path;
use std::sync::Arc;

use http_body_util::BodyExt;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// A client trusting the test CA, offering `versions` and `alpn`, with an optional
/// client certificate.
pub fn client(
    dir: &Path,
    versions: &[&'static rustls::SupportedProtocolVersion],
    alpn: &[&[u8]],
    identity: Option<&str>,
) -> TlsConnector {
    let mut roots = RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut std::fs::read(dir.join("ca.pem")).unwrap().as_slice()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots);
    let mut config = match identity {
        None => builder.with_no_client_auth(),
        Some(name) => {
            let chain: Vec<CertificateDer<'static>> = rustls_pemfile::certs(
                &mut std::fs::read(dir.join(format!("{name}.pem")))
                    .unwrap()
                    .as_slice(),
            )
            .map(Result::unwrap)
            .collect();
            let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(
                &mut std::fs::read(dir.join(format!("{name}.key")))
                    .unwrap()
                    .as_slice(),
            )
            .unwrap()
            .unwrap();
            builder.with_client_auth_cert(chain, key).unwrap()
        }
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    TlsConnector::from(Arc::new(config))
}

/// Connects with SNI `name`, sends GET / with that Host, and returns the negotiated ALPN
/// and the response status; an error if the handshake or request fails.
pub async fn get(
    connector: &TlsConnector,
    addr: std::net::SocketAddr,
    name: &str,
) -> Result<(Option<Vec<u8>>, u16), String> {
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let tls = connector
        .connect(ServerName::try_from(name.to_string()).unwrap(), tcp)
        .await
        .map_err(|e| e.to_string())?;
    let alpn = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
    let io = hyper_util::rt::TokioIo::new(tls);
    // HTTP/2 carries scheme and authority as pseudo-headers: the URI must have them.
    let request = |version| {
        let uri = if version == http::Version::HTTP_2 {
            format!("https://{name}/")
        } else {
            "/".to_string()
        };
        hyper::Request::builder()
            .uri(uri)
            .version(version)
            .header("host", name)
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .unwrap()
    };
    let response = if alpn.as_deref() == Some(b"h2") {
        let (mut sender, connection) =
            hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
                .await
                .map_err(|e| e.to_string())?;
        tokio::spawn(connection);
        sender
            .send_request(request(http::Version::HTTP_2))
            .await
            .map_err(|e| e.to_string())?
    } else {
        let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(connection);
        sender
            .send_request(request(http::Version::HTTP_11))
            .await
            .map_err(|e| e.to_string())?
    };
    let status = response.status().as_u16();
    response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?;
    Ok((alpn, status))
}
