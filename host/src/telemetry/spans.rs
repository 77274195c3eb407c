//! OpenTelemetry spans for requests (cargo feature `otel`, on by default; off at run time
//! unless `--otlp-endpoint` is given). Each request gets a server span, the child of the
//! W3C `traceparent` it arrived with (or the root of a new trace); the upstream receives
//! a `traceparent` naming that span, as Envoy's tracer does. Spans are exported over
//! OTLP/HTTP (protobuf) in batches, from a thread of the SDK's own.

use std::time::SystemTime;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer as _, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_http::{HeaderExtractor, HeaderInjector};
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};

/// Where spans go.
pub struct Spans {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
    propagator: TraceContextPropagator,
}

impl std::fmt::Debug for Spans {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spans").finish_non_exhaustive()
    }
}

/// One request's span, ended when its response ends.
pub struct RequestSpan(Context);

impl Spans {
    /// Exports to the OTLP/HTTP traces URL `endpoint` (e.g. `http://127.0.0.1:4318/v1/traces`).
    pub fn new(endpoint: &str) -> anyhow::Result<Self> {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(endpoint)
            .build()?;
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(Resource::builder().with_service_name("portcullis").build())
            .build();
        Ok(Self {
            tracer: provider.tracer("portcullis"),
            provider,
            propagator: TraceContextPropagator::new(),
        })
    }

    /// Starts the span of a request whose headers are `headers`, and points their
    /// `traceparent` at it for the upstream.
    pub fn start(&self, method: &http::Method, headers: &mut http::HeaderMap) -> RequestSpan {
        let parent = self.propagator.extract(&HeaderExtractor(headers));
        let span = self
            .tracer
            .span_builder(format!("ingress {method}"))
            .with_kind(SpanKind::Server)
            .with_start_time(SystemTime::now())
            .start_with_context(&self.tracer, &parent);
        let context = parent.with_span(span);
        self.propagator
            .inject_context(&context, &mut HeaderInjector(headers));
        RequestSpan(context)
    }

    /// Sends the spans still buffered; called on shutdown.
    pub fn shutdown(&self) {
        if let Err(e) = self.provider.shutdown() {
            tracing::warn!("exporting the last spans: {e}");
        }
    }
}

/// What the span of a finished request records.
#[derive(Clone, Copy)]
pub struct Finished<'a> {
    /// The request's path.
    pub path: &'a str,
    /// The response status sent.
    pub status: u16,
    /// Envoy's response flags.
    pub flags: &'a [&'static str],
    /// The route that matched, if one did.
    pub route: Option<&'a str>,
    /// The endpoint that served, if one did.
    pub upstream: Option<std::net::SocketAddr>,
}

impl RequestSpan {
    /// Ends the span with the request's outcome.
    pub fn end(&self, finished: Finished<'_>) {
        let span = self.0.span();
        span.set_attribute(KeyValue::new("url.path", finished.path.to_string()));
        span.set_attribute(KeyValue::new(
            "http.response.status_code",
            i64::from(finished.status),
        ));
        let flags = match finished.flags {
            [] => "-".to_string(),
            flags => flags.join(","),
        };
        span.set_attribute(KeyValue::new("response_flags", flags.clone()));
        if let Some(route) = finished.route {
            span.set_attribute(KeyValue::new("route_name", route.to_string()));
        }
        if let Some(upstream) = finished.upstream {
            span.set_attribute(KeyValue::new("upstream_address", upstream.to_string()));
        }
        if finished.status >= 500 {
            span.set_status(Status::error(flags));
        }
        span.end();
    }
}
