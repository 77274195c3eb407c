//! Istio's standard request metrics, with the labels that mean something at an edge
//! gateway, in Prometheus text format on the admin API's `/metrics`.
//!
//! Each worker thread counts into series of its own, so that the request path takes no
//! lock and shares no cache line with another core; a scrape adds the threads' series up.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

/// The labels of every request metric, as Istio names them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, EncodeLabelSet)]
pub struct RequestLabels {
    pub reporter: &'static str,
    pub source_workload: &'static str,
    pub destination_service: String,
    pub destination_version: String,
    pub request_protocol: &'static str,
    pub response_code: u16,
    pub response_flags: String,
}

const fn exponential<const N: usize>(start: u64, factor: u64) -> [u64; N] {
    let mut bounds = [0; N];
    let mut i = 0;
    let mut bound = start;
    while i < N {
        bounds[i] = bound;
        bound *= factor;
        i += 1;
    }
    bounds
}

/// Upper bounds of the duration buckets, in milliseconds: 1, 2, 4 … 32 768.
const MILLISECONDS: [u64; 16] = exponential(1, 2);

/// Upper bounds of the size buckets, in bytes: 64, 256, 1 Ki … 256 Mi.
const BYTES: [u64; 12] = exponential(64, 4);

/// Adds `by` to a value that only the calling thread writes: a plain load and store,
/// without the locked instruction of `fetch_add`.
fn bump(value: &AtomicU64, by: u64) {
    value.store(
        value.load(Ordering::Relaxed).wrapping_add(by),
        Ordering::Relaxed,
    );
}

/// A histogram of whole numbers, written by one thread and read by scrapes.
#[derive(Debug)]
struct Histogram<const N: usize> {
    bounds: &'static [u64; N],
    /// Observations per bucket (not cumulative); the rest fell above the last bound.
    buckets: [AtomicU64; N],
    count: AtomicU64,
    sum: AtomicU64,
}

impl<const N: usize> Histogram<N> {
    fn new(bounds: &'static [u64; N]) -> Self {
        Self {
            bounds,
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            count: AtomicU64::new(0),
            sum: AtomicU64::new(0),
        }
    }

    fn observe(&self, value: u64) {
        if let Some(bucket) = self.bounds.iter().position(|&bound| value <= bound) {
            bump(&self.buckets[bucket], 1);
        }
        bump(&self.count, 1);
        bump(&self.sum, value);
    }
}

/// The series of one label set on one thread.
#[derive(Debug)]
struct Series {
    requests: AtomicU64,
    duration: Histogram<16>,
    request_bytes: Histogram<12>,
    response_bytes: Histogram<12>,
}

impl Series {
    fn new() -> Self {
        Self {
            requests: AtomicU64::new(0),
            duration: Histogram::new(&MILLISECONDS),
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
    service: Option<Box<str>>,
    version: Option<Box<str>>,
    grpc: bool,
    status: u16,
    flags: Vec<&'static str>,
}

/// A [`Key`] borrowed from a finished request, to look its series up without copying;
/// it hashes as the `Key` it equals.
#[derive(Hash, PartialEq)]
struct KeyRef<'a> {
    owner: u64,
    service: Option<&'a str>,
    version: Option<&'a str>,
    grpc: bool,
    status: u16,
    flags: &'a [&'static str],
}

impl hashbrown::Equivalent<Key> for KeyRef<'_> {
    fn equivalent(&self, key: &Key) -> bool {
        self.owner == key.owner
            && self.service == key.service.as_deref()
            && self.version == key.version.as_deref()
            && self.grpc == key.grpc
            && self.status == key.status
            && self.flags == key.flags.as_slice()
    }
}

impl From<&KeyRef<'_>> for Key {
    fn from(key: &KeyRef<'_>) -> Self {
        Self {
            owner: key.owner,
            service: key.service.map(Into::into),
            version: key.version.map(Into::into),
            grpc: key.grpc,
            status: key.status,
            flags: key.flags.to_vec(),
        }
    }
}

impl KeyRef<'_> {
    /// The Istio labels of the key's requests.
    fn labels(&self) -> RequestLabels {
        RequestLabels {
            reporter: "source",
            source_workload: "istio-ingressgateway",
            destination_service: self.service.unwrap_or("unknown").to_string(),
            destination_version: self.version.unwrap_or("unknown").to_string(),
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
    /// The series this thread writes, by key.
    static SERIES: RefCell<hashbrown::HashMap<Key, Arc<Series>>> = RefCell::default();
}

/// Every thread's series, by label set; a label set has one per thread that counted it.
type AllSeries = Arc<Mutex<Vec<(RequestLabels, Arc<Series>)>>>;

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
    pub flags: &'a [&'static str],
    /// The destination's host and subset, if it got that far.
    pub service: Option<&'a str>,
    pub version: Option<&'a str>,
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

    /// Counts finished requests in this thread's series. Requests in a row often share
    /// a label set, so the last one's series is tried before the map.
    pub fn record_all<'a>(&self, requests: impl IntoIterator<Item = Finished<'a>>) {
        SERIES.with_borrow_mut(|series| {
            let mut last: Option<(KeyRef<'a>, Arc<Series>)> = None;
            for request in requests {
                let key = KeyRef {
                    owner: self.id,
                    service: request.service,
                    version: request.version,
                    grpc: request.grpc,
                    status: request.status,
                    flags: request.flags,
                };
                let set = match &last {
                    Some((last_key, set)) if *last_key == key => set,
                    _ => {
                        let set = series.entry_ref(&key).or_insert_with(|| {
                            let set = Arc::new(Series::new());
                            self.series
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .push((key.labels(), set.clone()));
                            set
                        });
                        &last.insert((key, set.clone())).1
                    }
                };
                bump(&set.requests, 1);
                set.duration.observe(request.duration_ms);
                if let Some(size) = request.request_bytes {
                    set.request_bytes.observe(size);
                }
                set.response_bytes.observe(request.response_bytes);
            }
        });
    }

    /// The metrics in Prometheus text format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// The sum of one histogram over threads.
struct Totals<const N: usize> {
    bounds: &'static [u64; N],
    buckets: [u64; N],
    count: u64,
    sum: u64,
}

impl<const N: usize> Totals<N> {
    fn new(bounds: &'static [u64; N]) -> Self {
        Self {
            bounds,
            buckets: [0; N],
            count: 0,
            sum: 0,
        }
    }

    fn add(&mut self, histogram: &Histogram<N>) {
        for (total, bucket) in self.buckets.iter_mut().zip(&histogram.buckets) {
            *total += bucket.load(Ordering::Relaxed);
        }
        self.count += histogram.count.load(Ordering::Relaxed);
        self.sum += histogram.sum.load(Ordering::Relaxed);
    }

    fn encode(&self, mut encoder: MetricEncoder<'_>) -> fmt::Result {
        let below: u64 = self.buckets.iter().sum();
        let buckets: Vec<(f64, u64)> = self
            .bounds
            .iter()
            .zip(self.buckets)
            .map(|(&bound, count)| (bound as f64, count))
            .chain([(f64::INFINITY, self.count.saturating_sub(below))])
            .collect();
        encoder.encode_histogram::<NoLabelSet>(self.sum as f64, self.count, &buckets, None)
    }
}

/// The sums of one label set's series.
struct LabelTotals {
    requests: u64,
    duration: Totals<16>,
    request_bytes: Totals<12>,
    response_bytes: Totals<12>,
}

/// Writes one histogram of a label set's sums.
type EncodeTotals = fn(&LabelTotals, MetricEncoder<'_>) -> fmt::Result;

/// Adds the threads' series up on every scrape.
#[derive(Debug)]
struct RequestCollector(AllSeries);

impl RequestCollector {
    fn totals(&self) -> BTreeMap<RequestLabels, LabelTotals> {
        let mut totals = BTreeMap::new();
        for (labels, series) in self.0.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let sums = totals.entry(labels.clone()).or_insert_with(|| LabelTotals {
                requests: 0,
                duration: Totals::new(&MILLISECONDS),
                request_bytes: Totals::new(&BYTES),
                response_bytes: Totals::new(&BYTES),
            });
            sums.requests += series.requests.load(Ordering::Relaxed);
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

    #[test]
    fn threads_series_add_up_per_label_set() {
        let metrics = Metrics::default();
        let finished = Finished {
            flags: &[],
            service: Some("a.test"),
            version: None,
            status: 200,
            grpc: false,
            duration_ms: 3,
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
                duration_ms: 100_000,
                ..finished.clone()
            },
            Finished {
                status: 503,
                flags: &["UO"],
                ..finished
            },
        ]);
        let text = metrics.encode();
        let labels = r#"reporter="source",source_workload="istio-ingressgateway",destination_service="a.test",destination_version="unknown",request_protocol="http",response_code="200",response_flags="-""#;
        for line in [
            format!("istio_requests_total{{{labels}}} 11"),
            format!("istio_request_duration_milliseconds_count{{{labels}}} 11"),
            format!("istio_request_duration_milliseconds_sum{{{labels}}} 100030.0"),
            format!("istio_request_duration_milliseconds_bucket{{le=\"2.0\",{labels}}} 0"),
            format!("istio_request_duration_milliseconds_bucket{{le=\"4.0\",{labels}}} 10"),
            format!("istio_request_duration_milliseconds_bucket{{le=\"+Inf\",{labels}}} 11"),
            format!("istio_response_bytes_bucket{{le=\"64.0\",{labels}}} 0"),
            format!("istio_response_bytes_bucket{{le=\"256.0\",{labels}}} 11"),
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
    }
}
