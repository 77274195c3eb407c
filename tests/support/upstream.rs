//! Real HTTP servers on loopback that say who they are and what they received. The
//! behaviours below apply wherever the marker appears in the path (`/any/prefix/slow/100`).
//!
//! - any path: a JSON report `{name, method, path, headers, body_bytes}`, with the response
//!   headers that `X-Echo-Set-Header: Name:value,Other:value` asks for (as the Gateway API
//!   suite's echo server does);
//! - `/echo…`: streams the request body back;
//! - `/bytes/N`: streams N bytes;
//! - `/status/CODE`: answers CODE;
//! - `/fail/N/KEY`: answers 503 to the first N requests for KEY, then reports;
//! - `/slow/MS`: waits MS milliseconds, then reports;
//! - `/hold`: waits until the test calls [`Upstream::release`], then reports;
//! - `/reset`: closes the connection without answering.
//!
//! The Gateway API suite's echo server's query knobs work too: `delay=1s` (or `500ms`)
//! waits that long, and `responseCode=C&succeedAfter=N&uuid=U` answers C to the first N
//! requests with that `uuid`.
//!
//! A TLS upstream ([`Upstream::start_tls`]) adds `version` and `tls: {sni, alpn,
//! client_sans}` to its report, and records the SNI of every ClientHello it gets.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

type Body = http_body_util::combinators::BoxBody<Bytes, Box<dyn std::error::Error + Send + Sync>>;
type Failures = Arc<Mutex<HashMap<String, usize>>>;
type Reports = Arc<Mutex<Vec<serde_json::Value>>>;
/// Opened by [`Upstream::release`] for the requests held at `/hold`.
type Gate = Arc<watch::Sender<bool>>;

/// A running upstream server.
pub struct Upstream {
    pub addr: SocketAddr,
    pub hits: Arc<AtomicUsize>,
    connections: Arc<(AtomicUsize, AtomicUsize)>,
    /// The SNI of every TLS ClientHello received ("" without one).
    pub server_names: Arc<Mutex<Vec<String>>>,
    /// The report of every request answered with one, in order.
    reports: Reports,
    gate: Gate,
}

/// What a TLS upstream presents and whom it asks for certificates.
pub struct UpstreamTls<'a> {
    pub certificate: &'a Path,
    pub key: &'a Path,
    /// Client certificates are asked for and verified against this CA.
    pub client_ca: Option<&'a Path>,
    /// Whether a client without a certificate is refused (after the handshake, in TLS 1.3).
    pub client_required: bool,
}

/// Answers every ClientHello with one key, noting the SNI.
#[derive(Debug)]
struct RecordingResolver {
    key: Arc<CertifiedKey>,
    seen: Arc<Mutex<Vec<String>>>,
}

impl ResolvesServerCert for RecordingResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let name = hello.server_name().unwrap_or_default().to_string();
        self.seen.lock().unwrap().push(name);
        Some(self.key.clone())
    }
}

impl Upstream {
    /// Starts a server named `name` on an ephemeral loopback port.
    pub async fn start(name: &str) -> Self {
        Self::serve(name, None).await
    }

    /// Starts a server that answers every request with `status`.
    pub async fn failing(name: &str, status: u16) -> Self {
        Self::serve(name, Some(format!("/status/{status}"))).await
    }

    /// Starts a server that waits `ms` milliseconds before answering every request.
    pub async fn slow(name: &str, ms: u64) -> Self {
        Self::serve(name, Some(format!("/slow/{ms}"))).await
    }

    /// Starts a TLS server named `name` (ALPN h2 and http/1.1) on an ephemeral loopback port.
    pub async fn start_tls(name: &str, tls: UpstreamTls<'_>) -> Self {
        let server_names = Arc::<Mutex<Vec<String>>>::default();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let pem = |path: &Path| std::fs::read(path).unwrap();
        let chain = rustls_pemfile::certs(&mut pem(tls.certificate).as_slice())
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = rustls_pemfile::private_key(&mut pem(tls.key).as_slice())
            .unwrap()
            .unwrap();
        let key = CertifiedKey::from_der(chain, key, &provider).unwrap();
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap();
        let builder = match tls.client_ca {
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                for cert in rustls_pemfile::certs(&mut pem(ca).as_slice()) {
                    roots.add(cert.unwrap()).unwrap();
                }
                let verifier = WebPkiClientVerifier::builder_with_provider(roots.into(), provider);
                let verifier = match tls.client_required {
                    true => verifier,
                    false => verifier.allow_unauthenticated(),
                };
                let verifier = verifier.build().unwrap();
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let mut config = builder.with_cert_resolver(Arc::new(RecordingResolver {
            key: Arc::new(key),
            seen: server_names.clone(),
        }));
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let mut upstream = Self::listen(listener, name, None, Some(acceptor));
        upstream.server_names = server_names;
        upstream
    }

    /// Starts a server named `name` on `addr` (another loopback address, say).
    pub async fn start_on(name: &str, addr: impl tokio::net::ToSocketAddrs) -> Self {
        let listener = TcpListener::bind(addr).await.unwrap();
        Self::listen(listener, name, None, None)
    }

    /// `always`: a path whose behaviour every request gets, whatever its own.
    async fn serve(name: &str, always: Option<String>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::listen(listener, name, always, None)
    }

    fn listen(
        listener: TcpListener,
        name: &str,
        always: Option<String>,
        tls: Option<TlsAcceptor>,
    ) -> Self {
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let connections: Arc<(AtomicUsize, AtomicUsize)> = Arc::default();
        let name: Arc<str> = name.into();
        let (counter, open) = (hits.clone(), connections.clone());
        let failures = Failures::default();
        let reports = Reports::default();
        let recorded = reports.clone();
        let gate = Gate::new(watch::channel(false).0);
        let held = gate.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let now = open.0.fetch_add(1, Ordering::SeqCst) + 1;
                open.1.fetch_max(now, Ordering::SeqCst);
                let (name, counter, failures, open, tls, recorded, held, always) = (
                    name.clone(),
                    counter.clone(),
                    failures.clone(),
                    open.clone(),
                    tls.clone(),
                    recorded.clone(),
                    held.clone(),
                    always.clone(),
                );
                tokio::spawn(async move {
                    let serve = |info: Option<serde_json::Value>| {
                        service_fn(move |mut request: Request<Incoming>| {
                            counter.fetch_add(1, Ordering::Relaxed);
                            let path = always.clone().unwrap_or_default();
                            if let Some(info) = &info {
                                request.extensions_mut().insert(TlsInfo(info.clone()));
                            }
                            let seen = (failures.clone(), recorded.clone(), held.clone());
                            respond(name.clone(), seen, path, request)
                        })
                    };
                    let server = auto::Builder::new(TokioExecutor::new());
                    match tls {
                        None => {
                            let _ = server
                                .serve_connection(TokioIo::new(stream), serve(None))
                                .await;
                        }
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(stream).await {
                                let info = tls_info(stream.get_ref().1);
                                let _ = server
                                    .serve_connection(TokioIo::new(stream), serve(Some(info)))
                                    .await;
                            }
                        }
                    }
                    open.0.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        Self {
            addr,
            hits,
            connections,
            server_names: Arc::default(),
            reports,
            gate,
        }
    }

    /// Lets the requests held at `/hold` (and any that come later) go on.
    pub fn release(&self) {
        self.gate.send_replace(true);
    }

    /// The reports of the requests answered so far (all but those with a status, slow
    /// or streaming marker), in order.
    pub fn reports(&self) -> Vec<serde_json::Value> {
        self.reports.lock().unwrap().clone()
    }

    /// Requests served so far.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::Relaxed)
    }

    /// The most connections that were ever open at once.
    pub fn max_connections(&self) -> usize {
        self.connections.1.load(Ordering::SeqCst)
    }
}

/// What a TLS connection negotiated, for the report.
#[derive(Clone)]
struct TlsInfo(serde_json::Value);

fn tls_info(connection: &rustls::ServerConnection) -> serde_json::Value {
    let client_sans: Vec<String> = connection
        .peer_certificates()
        .and_then(|chain| chain.first())
        .map(|leaf| {
            let (_, parsed) = x509_parser::parse_x509_certificate(leaf).unwrap();
            portcullis::tls::pinning::subject_alt_names(&parsed)
        })
        .unwrap_or_default();
    serde_json::json!({
        "sni": connection.server_name(),
        "alpn": connection.alpn_protocol().map(|p| String::from_utf8_lossy(p).into_owned()),
        "client_sans": client_sans,
    })
}

async fn respond(
    name: Arc<str>,
    (failures, reports, gate): (Failures, Reports, Gate),
    forced_path: String,
    request: Request<Incoming>,
) -> Result<Response<Body>, std::io::Error> {
    let full_path = match forced_path.is_empty() {
        true => request.uri().path().to_string(),
        false => forced_path,
    };
    let path = ["/status/", "/fail/", "/slow/", "/hold", "/echo", "/bytes/"]
        .iter()
        .find_map(|marker| full_path.find(marker).map(|at| full_path[at..].to_string()))
        .unwrap_or_else(|| full_path.clone());
    let status = |code: u16| {
        let response = Response::builder()
            .status(code)
            .header("x-upstream", &*name)
            .body(
                Full::new(Bytes::new())
                    .map_err(|never| match never {})
                    .boxed(),
            );
        Ok(response.unwrap())
    };
    if let Some(code) = path.strip_prefix("/status/").and_then(|c| c.parse().ok()) {
        return status(code);
    }
    if let Some((n, key)) = path
        .strip_prefix("/fail/")
        .and_then(|rest| rest.split_once('/'))
    {
        let n: usize = n.parse().unwrap_or(0);
        let seen = {
            let mut failures = failures.lock().unwrap();
            let seen = failures.entry(key.to_string()).or_default();
            *seen += 1;
            *seen
        };
        if seen <= n {
            return status(503);
        }
    }
    let query = Query(request.uri().query().unwrap_or_default().to_string());
    if let (Some(code), Some(n), Some(key)) = (
        query.get("responseCode").and_then(|c| c.parse().ok()),
        query
            .get("succeedAfter")
            .and_then(|n| n.parse::<usize>().ok()),
        query.get("uuid"),
    ) {
        let seen = {
            let mut failures = failures.lock().unwrap();
            let seen = failures.entry(key.to_string()).or_default();
            *seen += 1;
            *seen
        };
        if seen <= n {
            return status(code);
        }
    }
    if let Some(delay) = query.get("delay").and_then(go_duration) {
        tokio::time::sleep(delay).await;
    }
    if let Some(ms) = path.strip_prefix("/slow/").and_then(|ms| ms.parse().ok()) {
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    }
    if path.starts_with("/hold") {
        let _ = gate.subscribe().wait_for(|open| *open).await;
    }
    if full_path.ends_with("/reset") {
        return Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "resetting as asked",
        ));
    }
    if path.starts_with("/echo") {
        return Ok(Response::new(
            request.into_body().map_err(Into::into).boxed(),
        ));
    }
    // `/bytes/N` answers N bytes; `/bytes/N/cut` breaks the body off after them.
    let bytes = path
        .strip_prefix("/bytes/")
        .map(|rest| match rest.split_once('/') {
            Some((n, "cut")) => (n, true),
            _ => (rest, false),
        });
    if let Some((Ok(n), cut)) = bytes.map(|(n, cut)| (n.parse::<usize>(), cut)) {
        let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
        let chunks = (0..n.div_ceil(chunk.len())).map(move |i| {
            let len = chunk.len().min(n - i * chunk.len());
            Ok(Frame::data(chunk.slice(..len)))
        });
        // The break comes a moment after the bytes, so that they are on their way first.
        use futures_util::StreamExt as _;
        let cut_off = futures_util::stream::iter(cut.then_some(())).then(|()| async {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            Err("cut off as asked".into())
        });
        let frames = futures_util::stream::iter(chunks).chain(cut_off);
        return Ok(Response::new(BodyExt::boxed(StreamBody::new(frames))));
    }
    let method = request.method().to_string();
    let echo_set: Vec<String> = request
        .headers()
        .get_all("x-echo-set-header")
        .iter()
        .flat_map(|v| v.to_str().unwrap_or_default().split(','))
        .map(str::to_string)
        .collect();
    let version = format!("{:?}", request.version());
    let tls = request.extensions().get::<TlsInfo>().map(|t| t.0.clone());
    let path_and_query = request
        .uri()
        .path_and_query()
        .map(std::string::ToString::to_string)
        .unwrap_or_default();
    let headers: serde_json::Map<String, serde_json::Value> = request
        .headers()
        .keys()
        .map(|k| {
            let values: Vec<String> = request
                .headers()
                .get_all(k)
                .iter()
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .collect();
            (k.to_string(), values.join(", ").into())
        })
        .collect();
    let body_bytes = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes().len())
        .unwrap_or(0);
    let report = serde_json::json!({
        "name": &*name,
        "method": method,
        "path": path_and_query,
        "headers": headers,
        "body_bytes": body_bytes,
        "version": version,
        "tls": tls,
    });
    reports.lock().unwrap().push(report.clone());
    let mut response = Response::builder()
        .header("content-type", "application/json")
        .header("x-upstream", &*name);
    for (header, value) in echo_set.iter().filter_map(|h| h.split_once(':')) {
        response = response.header(header.trim(), value.trim());
    }
    let response = response
        .body(
            Full::new(Bytes::from(report.to_string()))
                .map_err(|never| match never {})
                .boxed(),
        )
        .unwrap();
    Ok(response)
}

/// A request's query string.
struct Query(String);

impl Query {
    /// The value of parameter `key`, as sent.
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .find_map(|(k, v)| (k == key).then_some(v))
    }
}

/// A Go duration of milliseconds or seconds (`500ms`, `1s`).
fn go_duration(text: &str) -> Option<std::time::Duration> {
    if let Some(ms) = text.strip_suffix("ms") {
        return ms.parse().ok().map(std::time::Duration::from_millis);
    }
    let seconds: f64 = text.strip_suffix('s')?.parse().ok()?;
    Some(std::time::Duration::from_secs_f64(seconds))
}
