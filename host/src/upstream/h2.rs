//! HTTP/2 to a cluster's endpoints: hyper's pooled client, multiplexing requests on one
//! connection per endpoint, over plain TCP or TLS with ALPN `h2`.

use http::uri::Scheme;
use hyper_rustls::{FixedServerNameResolver, HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::{Client, ResponseFuture};
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::ServerName;

use super::tls::Origination;
use crate::config::resolved::ConnectionPool;
use crate::wire::body::Body;

/// One worker's HTTP/2 client for one cluster.
pub enum H2Client {
    /// h2c, prior knowledge.
    Plain(Client<HttpConnector, Body>),
    /// h2 over TLS.
    Tls(Client<HttpsConnector<HttpConnector>, Body>),
}

impl H2Client {
    /// A client with the cluster's pool `settings`, speaking TLS through `tls` with the
    /// server name `name` when given.
    pub fn new(
        settings: &ConnectionPool,
        tls: Option<(&Origination, ServerName<'static>)>,
    ) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(settings.connect_timeout));
        let mut builder = Client::builder(TokioExecutor::new());
        builder
            .pool_idle_timeout(settings.idle_timeout())
            .http2_only(true)
            // maxConcurrentStreams: streams opened per connection before the upstream's
            // own SETTINGS say otherwise.
            .http2_initial_max_send_streams(settings.max_concurrent_streams as usize);
        if let Some((interval, timeout)) = settings.http2_keep_alive {
            builder
                .timer(hyper_util::rt::TokioTimer::new())
                .http2_keep_alive_interval(interval)
                .http2_keep_alive_timeout(timeout)
                .http2_keep_alive_while_idle(true);
        }
        match tls {
            None => Self::Plain(builder.build(connector)),
            Some((origination, name)) => {
                connector.enforce_http(false);
                let https = HttpsConnectorBuilder::new()
                    .with_tls_config(origination.config().as_ref().clone())
                    .https_only()
                    .with_server_name_resolver(FixedServerNameResolver::new(name))
                    .enable_http2()
                    .wrap_connector(connector);
                Self::Tls(builder.build(https))
            }
        }
    }

    /// The scheme of the URIs it takes.
    pub fn scheme(&self) -> Scheme {
        match self {
            Self::Plain(_) => Scheme::HTTP,
            Self::Tls(_) => Scheme::HTTPS,
        }
    }

    /// Sends `request`, whose URI names the endpoint.
    pub fn request(&self, request: http::Request<Body>) -> ResponseFuture {
        match self {
            Self::Plain(client) => client.request(request),
            Self::Tls(client) => client.request(request),
        }
    }
}
