//! The gateway's own metrics, read at scrape time from the counters the data path keeps
//! anyway: per-policy and per-plugin calls, failures, latency and memory; configuration
//! generations and reloads; upstream connections, pending requests, breaker overflows and
//! ejections under Envoy's cluster stat names.

use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use arc_swap::ArcSwap;

use crate::reload::{ReloadStatus, unix_now};
use crate::runtime::{Generation, Runtime};
use crate::upstream::ClusterLoad;
use crate::wasm::stats::PolicyStats;

/// Encodes the gateway's metrics on every scrape.
pub struct GatewayCollector {
    /// The runtime whose counters are read.
    pub runtime: Arc<Runtime>,
    /// The generation serving, for the certificates its servers present.
    pub current: Arc<ArcSwap<Generation>>,
    /// The reload history, for the reload and config gauges.
    pub status: Arc<Mutex<ReloadStatus>>,
}

impl fmt::Debug for GatewayCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GatewayCollector").finish_non_exhaustive()
    }
}

/// A metric read from one field of `T`, a counter or a gauge.
struct Field<T> {
    name: &'static str,
    help: &'static str,
    kind: MetricType,
    read: fn(&T) -> u64,
}

const POLICY_FIELDS: [Field<PolicyStats>; 6] = [
    Field {
        name: "portcullis_plugin_calls",
        help: "Calls into a policy or plugin component",
        kind: MetricType::Counter,
        read: |s| s.calls.load(Ordering::Relaxed),
    },
    Field {
        name: "portcullis_plugin_failures",
        help: "Calls that trapped, ran past their deadline or past their memory limit",
        kind: MetricType::Counter,
        read: |s| s.failures.load(Ordering::Relaxed),
    },
    Field {
        name: "portcullis_plugin_instances",
        help: "Instances created",
        kind: MetricType::Counter,
        read: |s| s.instances.load(Ordering::Relaxed),
    },
    Field {
        name: "portcullis_plugin_quarantines",
        help: "Times a plugin was quarantined for failing calls in a row",
        kind: MetricType::Counter,
        read: |s| s.quarantines.load(Ordering::Relaxed),
    },
    Field {
        name: "portcullis_plugin_memory_high_water_bytes",
        help: "The largest linear memory an instance grew to",
        kind: MetricType::Gauge,
        read: |s| s.memory_high_water.load(Ordering::Relaxed),
    },
    Field {
        name: "portcullis_plugin_log_lines_dropped",
        help: "Log lines a policy or plugin wrote past its rate, dropped",
        kind: MetricType::Counter,
        read: |s| s.log.dropped.load(Ordering::Relaxed),
    },
];

const CLUSTER_FIELDS: [Field<ClusterLoad>; 8] = [
    Field {
        name: "envoy_cluster_upstream_cx_active",
        help: "Upstream connections open",
        kind: MetricType::Gauge,
        read: |l| l.active_connections.load(Ordering::Relaxed).into(),
    },
    Field {
        name: "envoy_cluster_upstream_cx",
        help: "Upstream HTTP/1.1 connections opened",
        kind: MetricType::Counter,
        read: |l| l.opened.load(Ordering::Relaxed),
    },
    Field {
        name: "envoy_cluster_upstream_rq_active",
        help: "Upstream requests in flight",
        kind: MetricType::Gauge,
        read: |l| l.active_requests.load(Ordering::Relaxed).into(),
    },
    Field {
        name: "envoy_cluster_upstream_rq_pending_active",
        help: "Requests waiting for a connection",
        kind: MetricType::Gauge,
        read: |l| l.pending_requests.load(Ordering::Relaxed).into(),
    },
    Field {
        name: "envoy_cluster_upstream_rq_pending_overflow",
        help: "Requests the circuit breaker refused (503 UO)",
        kind: MetricType::Counter,
        read: |l| l.overflows.load(Ordering::Relaxed),
    },
    Field {
        name: "envoy_cluster_outlier_detection_ejections_enforced",
        help: "Endpoints ejected by outlier detection",
        kind: MetricType::Counter,
        read: |l| l.ejections.load(Ordering::Relaxed),
    },
    Field {
        name: "portcullis_cluster_mirror_requests",
        help: "Copies of requests mirrored to the cluster",
        kind: MetricType::Counter,
        read: |l| l.mirrored.load(Ordering::Relaxed),
    },
    Field {
        name: "portcullis_cluster_mirror_failures",
        help: "Mirrored copies that failed or timed out (their responses are dropped either way)",
        kind: MetricType::Counter,
        read: |l| l.mirror_failures.load(Ordering::Relaxed),
    },
];

impl Collector for GatewayCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let status = self
            .status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let no_labels = Vec::<(&str, &str)>::new();
        Metric::new(
            &mut encoder,
            "portcullis_config_generation",
            "The configuration generation serving now (1 at start)",
            MetricType::Gauge,
        )?
        .value(&no_labels, &ConstGauge::new(status.generation as i64))?;
        let mut reloads = Metric::new(
            &mut encoder,
            "portcullis_config_reloads",
            "Configuration reloads, by result",
            MetricType::Counter,
        )?;
        reloads.value(&[("result", "success")], &ConstCounter::new(status.reloads))?;
        reloads.value(
            &[("result", "failure")],
            &ConstCounter::new(status.failures),
        )?;
        Metric::new(
            &mut encoder,
            "portcullis_config_last_reload_successful",
            "Whether the last reload (or the start) loaded its config (1) or failed (0)",
            MetricType::Gauge,
        )?
        .value(
            &no_labels,
            &ConstGauge::new(i64::from(status.last_error.is_none())),
        )?;
        self.encode_certificates(&mut encoder)?;

        let policies = self.runtime.policy_stats.all();
        encode_fields(&mut encoder, &POLICY_FIELDS, "plugin", &policies)?;
        let mut durations = Metric::new(
            &mut encoder,
            "portcullis_plugin_call_duration_seconds",
            "Time spent in one call",
            MetricType::Histogram,
        )?;
        for (plugin, stats) in &policies {
            durations.value(&[("plugin", plugin.as_str())], &stats.durations)?;
        }

        let clusters = self.runtime.cluster_loads.all();
        encode_fields(&mut encoder, &CLUSTER_FIELDS, "cluster_name", &clusters)
    }
}

impl GatewayCollector {
    /// When each served certificate expires, and Envoy's days until the first does.
    fn encode_certificates(&self, encoder: &mut DescriptorEncoder<'_>) -> fmt::Result {
        let generation = self.current.load();
        let served: Vec<_> = generation
            .tls
            .iter()
            .flatten()
            .flat_map(|tls| &tls.certificates)
            .collect();
        let mut expiry = Metric::new(
            encoder,
            "portcullis_certificate_expiry_timestamp_seconds",
            "When a certificate a server presents expires (seconds since the Unix epoch)",
            MetricType::Gauge,
        )?;
        for certificate in &served {
            let path = certificate.path.to_string_lossy();
            let labels = [("server", certificate.server.as_str()), ("path", &path)];
            expiry.value(&labels, &ConstGauge::new(certificate.not_after))?;
        }
        let now = unix_now() as i64;
        let mut first = Metric::new(
            encoder,
            "envoy_server_days_until_first_cert_expiring",
            "Days until the first certificate a server presents expires (no sample without one)",
            MetricType::Gauge,
        )?;
        match served.iter().map(|c| c.days_left(now)).min() {
            Some(days) => first.value(&Vec::<(&str, &str)>::new(), &ConstGauge::new(days)),
            None => Ok(()),
        }
    }
}

/// Writes each of `fields` for every `(name, value)` of `rows`, labelled `label="name"`.
fn encode_fields<T>(
    encoder: &mut DescriptorEncoder<'_>,
    fields: &[Field<T>],
    label: &str,
    rows: &[(String, Arc<T>)],
) -> fmt::Result {
    for field in fields {
        let mut metric = Metric::new(encoder, field.name, field.help, field.kind)?;
        for (name, value) in rows {
            let labels = [(label, name.as_str())];
            let read = (field.read)(value);
            match field.kind {
                MetricType::Counter => metric.value(&labels, &ConstCounter::new(read))?,
                _ => metric.value(&labels, &ConstGauge::new(read as i64))?,
            }
        }
    }
    Ok(())
}

/// One metric family being written.
struct Metric<'e>(MetricEncoder<'e>);

impl<'e> Metric<'e> {
    fn new(
        encoder: &'e mut DescriptorEncoder<'_>,
        name: &'e str,
        help: &'e str,
        kind: MetricType,
    ) -> Result<Self, fmt::Error> {
        encoder.encode_descriptor(name, help, None, kind).map(Self)
    }

    /// Writes the value of the series with `labels`.
    fn value(&mut self, labels: &impl EncodeLabelSet, value: &impl EncodeMetric) -> fmt::Result {
        value.encode(self.0.encode_family(labels)?)
    }
}
