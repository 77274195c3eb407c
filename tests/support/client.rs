//! A real HTTP client (hyper) for talking to the gateway.

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::{TokioExecutor, TokioIo};

/// A request body.
pub type Body = http_body_util::combinators::BoxBody<Bytes, hyper::Error>;

/// A response read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Reply {
    /// The body as JSON (the upstream's report).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Which upstream served the request.
    pub fn upstream(&self) -> String {
        self.headers
            .get("x-upstream")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    }
}

/// Connects to one address whatever the request's authority says, so that requests can
/// name the host they are for (HTTP/2's `:authority` is what the gateway routes on).
#[derive(Clone)]
pub struct Fixed(pub SocketAddr);

impl tower_service::Service<http::Uri> for Fixed {
    type Response = TokioIo<tokio::net::TcpStream>;
    type Error = std::io::Error;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: http::Uri) -> Self::Future {
        let addr = self.0;
        Box::pin(async move {
            let stream = tokio::net::TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            Ok(TokioIo::new(stream))
        })
    }
}

/// A client for one gateway address, over HTTP/1.1 or HTTP/2 (prior knowledge).
#[derive(Clone)]
pub struct Client {
    inner: HyperClient<Fixed, Body>,
}

impl Client {
    /// An HTTP/1.1 client.
    pub fn http1(addr: SocketAddr) -> Self {
        Self {
            inner: HyperClient::builder(TokioExecutor::new()).build(Fixed(addr)),
        }
    }

    /// An HTTP/2 client with prior knowledge (h2c).
    pub fn http2(addr: SocketAddr) -> Self {
        Self {
            inner: HyperClient::builder(TokioExecutor::new())
                .http2_only(true)
                .build(Fixed(addr)),
        }
    }

    /// A request builder for `path` on `host` (the URI's authority and `Host`).
    pub fn request(&self, method: &str, host: &str, path: &str) -> http::request::Builder {
        Request::builder()
            .method(method)
            .uri(format!("http://{host}{path}"))
            .header("host", host)
    }

    /// GET `path` on `host`.
    pub async fn get(&self, host: &str, path: &str) -> Reply {
        self.send(self.request("GET", host, path).body(empty()).unwrap())
            .await
    }

    /// Sends a request and reads the whole response.
    pub async fn send(&self, request: Request<Body>) -> Reply {
        let response = self
            .inner
            .request(request)
            .await
            .expect("the gateway answers");
        read(response).await
    }

    /// GET `path` on `host`; an error where the exchange fails.
    pub async fn try_get(&self, host: &str, path: &str) -> Result<Reply, String> {
        let request = self.request("GET", host, path).body(empty()).unwrap();
        let response = self
            .inner
            .request(request)
            .await
            .map_err(|e| format!("{e:?}"))?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
        Ok(Reply {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }

    /// Sends a request and returns the response unread.
    pub async fn send_streaming(&self, request: Request<Body>) -> Response<hyper::body::Incoming> {
        self.inner
            .request(request)
            .await
            .expect("the gateway answers")
    }
}

/// Reads a whole response.
pub async fn read(response: Response<hyper::body::Incoming>) -> Reply {
    let (parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .expect("the body arrives whole")
        .to_bytes();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

/// An empty request body.
pub fn empty() -> Body {
    Full::new(Bytes::new())
        .map_err(|never| match never {})
        .boxed()
}

/// A request body from bytes.
pub fn bytes(data: impl Into<Bytes>) -> Body {
    Full::new(data.into())
        .map_err(|never| match never {})
        .boxed()
}
