//! Istio's standard request metrics, with Istio's labels and buckets, in OpenMetrics or
//! Prometheus text on the admin API's `/metrics`.
//!
//! Each worker thread counts into series of its own, so that the request path takes no
//! lock and shares no cache line with another core; a scrape adds the threads' series up.

mod exposition;
mod histogram;
mod labels;

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

pub use exposition::Format;
pub use histogram::Totals;
use histogram::{BYTES, Histogram, MICROSECONDS, bump};
use labels::RequestLabels;

use crate::runtime::destination::DestinationId;
use crate::runtime::route_key::RouteKeyId;

/// The series of one label set on one thread.
#[derive(Debug)]
struct Series {
    requests: AtomicU64,
    request_messages: AtomicU64,
    response_messages: AtomicU64,
    duration: Histogram,
    request_bytes: Histogram,
    response_bytes: Histogram,
}

impl Series {
    fn new() -> Self {
        Self {
            requests: AtomicU64::new(0),
            request_messages: AtomicU64::new(0),
            response_messages: AtomicU64::new(0),
            duration: Histogram::new(&MICROSECONDS),
            request_bytes: Histogram::new(&BYTES),
            response_bytes: Histogram::new(&BYTES),
        }
    }
}

/// What tells one label set from another, as a thread's map keeps it.
#[derive(PartialEq, Eq, Hash)]
struct Key {
    /// The `Metrics` the series belong to.
    owner: u64,
    route: Option<RouteKeyId>,
    destination: Option<DestinationId>,
    principal: Option<Box<str>>,
    grpc: bool,
    status: u16,
    grpc_status: Option<u32>,
    flags: Vec<&'static str>,
}

/// A [`Key`] borrowed from a finished request, to look its series up without copying;
/// it hashes as the `Key` it equals.
#[derive(Hash, PartialEq)]
struct KeyRef<'a> {
    owner: u64,
    route: Option<RouteKeyId>,
    destination: Option<DestinationId>,
    principal: Option<&'a str>,
    grpc: bool,
    status: u16,
    grpc_status: Option<u32>,
    flags: &'a [&'static str],
}

impl hashbrown::Equivalent<Key> for KeyRef<'_> {
    fn equivalent(&self, key: &Key) -> bool {
        self.owner == key.owner
            && self.route == key.route
            && self.destination == key.destination
            && self.principal == key.principal.as_deref()
            && self.grpc == key.grpc
            && self.status == key.status
            && self.grpc_status == key.grpc_status
            && self.flags == key.flags.as_slice()
    }
}

impl From<&KeyRef<'_>> for Key {
    fn from(key: &KeyRef<'_>) -> Self {
        Self {
            owner: key.owner,
            route: key.route,
            destination: key.destination,
            principal: key.principal.map(Into::into),
            grpc: key.grpc,
            status: key.status,
            grpc_status: key.grpc_status,
            flags: key.flags.to_vec(),
        }
    }
}

impl KeyRef<'_> {
    /// The Istio labels of the key's requests.
    fn labels(&self) -> RequestLabels {
        RequestLabels::new(&labels::Served {
            destination: self.destination,
            principal: self.principal,
            grpc: self.grpc,
            status: self.status,
            grpc_status: self.grpc_status,
            flags: self.flags,
        })
    }
}

thread_local! {
    /// The series this thread writes, by key.
    static SERIES: RefCell<hashbrown::HashMap<Key, Arc<Series>>> = RefCell::default();
}

/// Every thread's series, by label set and route; each has one per thread that counted it.
type AllSeries = Arc<Mutex<Vec<(RequestLabels, Option<RouteKeyId>, Arc<Series>)>>>;

/// The request metrics of the process.
pub struct Metrics {
    id: u64,
    registry: Registry,
    series: AllSeries,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").field("id", &self.id).finish()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        static IDS: AtomicU64 = AtomicU64::new(0);
        let series = AllSeries::default();
        let mut registry = Registry::default();
        registry.register_collector(Box::new(RequestCollector(series.clone())));
        Self {
            id: IDS.fetch_add(1, Ordering::Relaxed),
            registry,
            series,
        }
    }
}

/// One finished request, as the metrics see it.
#[derive(Clone)]
pub struct Finished<'a> {
    /// Envoy's response flags.
    pub flags: &'a [&'static str],
    /// The route that matched, if one did.
    pub route: Option<RouteKeyId>,
    /// The service and workload that served, as far as the request got.
    pub destination: Option<DestinationId>,
    /// The client's verified identity, if it presented a certificate.
    pub principal: Option<&'a str>,
    /// The response status sent.
    pub status: u16,
    /// Whether the request was gRPC.
    pub grpc: bool,
    /// The response's `grpc-status`, from its head or its trailers.
    pub grpc_status: Option<u32>,
    /// A gRPC stream's request and response messages.
    pub messages: Option<(u64, u64)>,
    /// From the request's arrival to the response's end, in µs.
    pub duration_us: u64,
    /// The request body's size, when known.
    pub request_bytes: Option<u64>,
    /// The response body's size.
    pub response_bytes: u64,
}

impl Metrics {
    /// Request metrics, plus what `collector` reports on every scrape.
    pub fn with_collector(collector: impl Collector) -> Self {
        let mut metrics = Self::default();
        metrics.registry.register_collector(Box::new(collector));
        metrics
    }

    /// Counts finished requests in this thread's series. Requests in a row often share
    /// a label set, so the last one's series is tried before the map.
    pub fn record_all<'a>(&self, requests: impl IntoIterator<Item = Finished<'a>>) {
        SERIES.with_borrow_mut(|series| {
            let mut last: Option<(KeyRef<'a>, Arc<Series>)> = None;
            for request in requests {
                let key = KeyRef {
                    owner: self.id,
                    route: request.route,
                    destination: request.destination,
                    principal: request.principal,
                    grpc: request.grpc,
                    status: request.status,
                    grpc_status: request.grpc_status,
                    flags: request.flags,
                };
                let set = match &last {
                    Some((last_key, set)) if *last_key == key => set,
                    _ => {
                        let set = series.entry_ref(&key).or_insert_with(|| {
                            let set = Arc::new(Series::new());
                            self.series
                                .lock()
                                .unwrap_or_else(std::sync::PoisonError::into_inner)
                                .push((key.labels(), key.route, set.clone()));
                            set
                        });
                        &last.insert((key, set.clone())).1
                    }
                };
                bump(&set.requests, 1);
                if let Some((request, response)) = request.messages {
                    bump(&set.request_messages, request);
                    bump(&set.response_messages, response);
                }
                set.duration.observe(request.duration_us);
                if let Some(size) = request.request_bytes {
                    set.request_bytes.observe(size);
                }
                set.response_bytes.observe(request.response_bytes);
            }
        });
    }

    /// The metrics in `format`.
    pub fn encode(&self, format: Format) -> String {
        let mut text = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        format.render(text)
    }
}

/// One route's requests, summed over threads and label sets.
pub struct RouteTotals {
    /// Requests answered.
    pub requests: u64,
    /// Requests answered with a 5xx.
    pub errors: u64,
    /// Time to the response's last byte, in milliseconds.
    pub duration: Totals,
}

impl Metrics {
    /// Every route's requests since the process started.
    pub fn routes(&self) -> HashMap<RouteKeyId, RouteTotals> {
        let mut routes = HashMap::new();
        for (labels, route, series) in self
            .series
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
        {
            let Some(route) = route else { continue };
            let totals = routes.entry(*route).or_insert_with(|| RouteTotals {
                requests: 0,
                errors: 0,
                duration: Totals::new(&MICROSECONDS),
            });
            let requests = series.requests.load(Ordering::Relaxed);
            totals.requests += requests;
            if labels.response_code >= 500 {
                totals.errors += requests;
            }
            totals.duration.add(&series.duration);
        }
        routes
    }
}

/// The sums of one label set's series.
struct LabelTotals {
    requests: u64,
    /// gRPC messages each way.
    messages: (u64, u64),
    duration: Totals,
    request_bytes: Totals,
    response_bytes: Totals,
}

/// Reads one counter of a label set's sums.
type ReadTotal = fn(&LabelTotals) -> u64;

/// Writes one histogram of a label set's sums.
type EncodeTotals = fn(&LabelTotals, MetricEncoder<'_>) -> fmt::Result;

/// Adds the threads' series up on every scrape.
#[derive(Debug)]
struct RequestCollector(AllSeries);

impl RequestCollector {
    fn totals(&self) -> BTreeMap<RequestLabels, LabelTotals> {
        let mut totals = BTreeMap::new();
        for (labels, _, series) in self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
        {
            let sums = totals.entry(labels.clone()).or_insert_with(|| LabelTotals {
                requests: 0,
                messages: (0, 0),
                duration: Totals::new(&MICROSECONDS),
                request_bytes: Totals::new(&BYTES),
                response_bytes: Totals::new(&BYTES),
            });
            sums.requests += series.requests.load(Ordering::Relaxed);
            sums.messages.0 += series.request_messages.load(Ordering::Relaxed);
            sums.messages.1 += series.response_messages.load(Ordering::Relaxed);
            sums.duration.add(&series.duration);
            sums.request_bytes.add(&series.request_bytes);
            sums.response_bytes.add(&series.response_bytes);
        }
        totals
    }
}

impl Collector for RequestCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let totals = self.totals();
        let mut requests = encoder.encode_descriptor(
            "istio_requests",
            "Requests served, by outcome",
            None,
            MetricType::Counter,
        )?;
        for (labels, sums) in &totals {
            requests
                .encode_family(labels)?
                .encode_counter::<NoLabelSet, _, u64>(&sums.requests, None)?;
        }
        // Istio counts messages of gRPC streams only.
        let grpc = || {
            totals
                .iter()
                .filter(|(labels, _)| labels.request_protocol == "grpc")
        };
        let messages: [(&str, &str, ReadTotal); 2] = [
            (
                "istio_request_messages",
                "gRPC messages sent by clients",
                |s| s.messages.0,
            ),
            (
                "istio_response_messages",
                "gRPC messages sent to clients",
                |s| s.messages.1,
            ),
        ];
        for (name, help, read) in messages {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for (labels, sums) in grpc() {
                family
                    .encode_family(labels)?
                    .encode_counter::<NoLabelSet, _, u64>(&read(sums), None)?;
            }
        }
        let histograms: [(&str, &str, EncodeTotals); 3] = [
            (
                "istio_request_duration_milliseconds",
                "Time to the response's last byte",
                |sums, encoder| sums.duration.encode(encoder),
            ),
            (
                "istio_request_bytes",
                "Request body sizes, when known",
                |sums, encoder| sums.request_bytes.encode(encoder),
            ),
            (
                "istio_response_bytes",
                "Response body sizes",
                |sums, encoder| sums.response_bytes.encode(encoder),
            ),
        ];
        for (name, help, encode) in histograms {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Histogram)?;
            for (labels, sums) in &totals {
                encode(sums, family.encode_family(labels)?)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::destination::Destination;

    #[test]
    fn threads_series_add_up_per_label_set() {
        let metrics = Metrics::default();
        let served = [("version".to_string(), "v1".to_string())].into();
        let finished = Finished {
            flags: &[],
            route: None,
            destination: Some(Destination::new("a.test", "shop", Some(&served)).intern()),
            principal: None,
            status: 200,
            grpc: false,
            grpc_status: None,
            messages: None,
            duration_us: 3_000,
            request_bytes: None,
            response_bytes: 100,
        };
        std::thread::scope(|scope| {
            for _ in 0..2 {
                scope.spawn(|| metrics.record_all((0..5).map(|_| finished.clone())));
            }
        });
        metrics.record_all([
            Finished {
                duration_us: 100_000_000,
                ..finished.clone()
            },
            Finished {
                status: 503,
                flags: &["UO"],
                ..finished
            },
        ]);
        let text = metrics.encode(Format::Text);
        let labels = r#"reporter="source",source_workload="istio-ingressgateway",source_workload_namespace="istio-system",source_principal="unknown",source_app="istio-ingressgateway",source_version="unknown",source_cluster="Kubernetes",destination_workload="unknown",destination_workload_namespace="shop",destination_principal="unknown",destination_app="unknown",destination_version="v1",destination_service="a.test",destination_service_name="a.test",destination_service_namespace="shop",destination_cluster="unknown",request_protocol="http",response_code="200",grpc_response_status="",response_flags="-",connection_security_policy="unknown",source_canonical_service="istio-ingressgateway",destination_canonical_service="unknown",source_canonical_revision="latest",destination_canonical_revision="v1""#;
        for line in [
            "# TYPE istio_requests_total counter".to_string(),
            format!("istio_requests_total{{{labels}}} 11"),
            format!("istio_request_duration_milliseconds_count{{{labels}}} 11"),
            format!("istio_request_duration_milliseconds_sum{{{labels}}} 100030.0"),
            format!("istio_request_duration_milliseconds_bucket{{le=\"1\",{labels}}} 0"),
            format!("istio_request_duration_milliseconds_bucket{{le=\"5\",{labels}}} 10"),
            format!("istio_request_duration_milliseconds_bucket{{le=\"60000\",{labels}}} 10"),
            format!("istio_request_duration_milliseconds_bucket{{le=\"300000\",{labels}}} 11"),
            format!("istio_request_duration_milliseconds_bucket{{le=\"+Inf\",{labels}}} 11"),
            format!("istio_response_bytes_bucket{{le=\"50\",{labels}}} 0"),
            format!("istio_response_bytes_bucket{{le=\"100\",{labels}}} 11"),
            format!("istio_request_bytes_count{{{labels}}} 0"),
        ] {
            assert!(text.contains(&line), "{line} missing from\n{text}");
        }
        let overflowed = labels
            .replace("\"200\"", "\"503\"")
            .replace("flags=\"-\"", "flags=\"UO\"");
        let overflowed = format!("istio_requests_total{{{overflowed}}} 1");
        assert!(
            text.contains(&overflowed),
            "{overflowed} missing from\n{text}"
        );
        let openmetrics = metrics.encode(Format::OpenMetrics);
        assert!(openmetrics.contains("# TYPE istio_requests counter"));
        assert!(openmetrics.contains("le=\"250.0\""));
        assert!(openmetrics.ends_with("# EOF\n"));
    }
}
