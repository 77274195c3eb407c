//! Istio's standard request metrics, with the labels that mean something at an edge
//! gateway, in Prometheus text format on the admin API's `/metrics`.

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::access_log::Outcome;

/// The labels of every request metric, as Istio names them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct RequestLabels {
    pub reporter: &'static str,
    pub source_workload: &'static str,
    pub destination_service: String,
    pub destination_version: String,
    pub request_protocol: &'static str,
    pub response_code: u16,
    pub response_flags: String,
}

type Histograms = Family<RequestLabels, Histogram, fn() -> Histogram>;

fn milliseconds() -> Histogram {
    Histogram::new(exponential_buckets(1.0, 2.0, 16))
}

fn bytes() -> Histogram {
    Histogram::new(exponential_buckets(64.0, 4.0, 12))
}

/// The metrics of one label set (clones share the registered values).
struct Handles {
    requests: Counter,
    duration: Histogram,
    request_bytes: Histogram,
    response_bytes: Histogram,
}

/// What tells one label set from another, cheap to build per request.
#[derive(PartialEq, Eq, Hash)]
struct Key {
    service: Option<Arc<str>>,
    version: Option<Arc<str>>,
    grpc: bool,
    status: u16,
    flags: Vec<&'static str>,
}

impl Key {
    /// The Istio labels of the key's requests.
    fn labels(&self) -> RequestLabels {
        let or_unknown = |v: &Option<Arc<str>>| v.as_deref().unwrap_or("unknown").to_string();
        RequestLabels {
            reporter: "source",
            source_workload: "istio-ingressgateway",
            destination_service: or_unknown(&self.service),
            destination_version: or_unknown(&self.version),
            request_protocol: if self.grpc { "grpc" } else { "http" },
            response_code: self.status,
            response_flags: if self.flags.is_empty() {
                "-".into()
            } else {
                self.flags.join(",")
            },
        }
    }
}

thread_local! {
    static HANDLES: std::cell::RefCell<std::collections::HashMap<Key, Handles>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

/// The request metrics of the process.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    duration: Histograms,
    request_bytes: Histograms,
    response_bytes: Histograms,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let duration = Histograms::new_with_constructor(milliseconds as fn() -> Histogram);
        let request_bytes = Histograms::new_with_constructor(bytes as fn() -> Histogram);
        let response_bytes = Histograms::new_with_constructor(bytes as fn() -> Histogram);
        registry.register(
            "istio_requests",
            "Requests served, by outcome",
            requests.clone(),
        );
        registry.register(
            "istio_request_duration_milliseconds",
            "Time to the response's last byte",
            duration.clone(),
        );
        registry.register(
            "istio_request_bytes",
            "Request body sizes, when known",
            request_bytes.clone(),
        );
        registry.register(
            "istio_response_bytes",
            "Response body sizes",
            response_bytes.clone(),
        );
        Self {
            registry,
            requests,
            duration,
            request_bytes,
            response_bytes,
        }
    }
}

/// One finished request, as the metrics see it.
pub struct Finished<'a> {
    pub outcome: &'a Outcome,
    pub status: u16,
    pub grpc: bool,
    pub duration_ms: u64,
    pub request_bytes: Option<u64>,
    pub response_bytes: u64,
}

impl Metrics {
    /// Request metrics, plus what `collector` reports on every scrape.
    pub fn with_collector(collector: impl Collector) -> Self {
        let mut metrics = Self::default();
        metrics.registry.register_collector(Box::new(collector));
        metrics
    }

    /// Counts a finished request.
    pub fn record(&self, request: &Finished<'_>) {
        let outcome = request.outcome;
        let key = Key {
            service: outcome.destination_service.clone(),
            version: outcome.destination_version.clone(),
            grpc: request.grpc,
            status: request.status,
            flags: outcome.flags.clone(),
        };
        // Each thread keeps the handles of the label sets it has seen, under a key that
        // costs no allocation to build: one lookup per request instead of one per metric,
        // and no lock on the shared families.
        HANDLES.with_borrow_mut(|handles| {
            let set = handles.entry(key).or_insert_with_key(|key| {
                let labels = key.labels();
                Handles {
                    requests: self.requests.get_or_create_owned(&labels),
                    duration: self.duration.get_or_create_owned(&labels),
                    request_bytes: self.request_bytes.get_or_create_owned(&labels),
                    response_bytes: self.response_bytes.get_or_create_owned(&labels),
                }
            });
            set.requests.inc();
            set.duration.observe(request.duration_ms as f64);
            if let Some(size) = request.request_bytes {
                set.request_bytes.observe(size as f64);
            }
            set.response_bytes.observe(request.response_bytes as f64);
        });
    }

    /// The metrics in Prometheus text format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}
