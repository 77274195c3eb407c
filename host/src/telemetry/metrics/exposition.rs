//! The two text formats a Prometheus scraper asks for: OpenMetrics, as the metrics are
//! encoded, and Prometheus's 0.0.4 text format, which Envoy serves and which is written
//! from the OpenMetrics text. The format is negotiated from `Accept` as Prometheus's
//! client libraries do: the media type with the highest quality wins, and without one
//! the scraper gets plain text.

use std::fmt::Write as _;

/// An exposition format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// OpenMetrics 1.0 text.
    OpenMetrics,
    /// Prometheus text format 0.0.4.
    Text,
}

impl Format {
    /// The format `accept` prefers among those served.
    pub fn negotiate(accept: Option<&str>) -> Self {
        let mut best = (Self::Text, 0.0_f32);
        for range in accept.unwrap_or_default().split(',') {
            let mut params = range.split(';').map(str::trim);
            let format = match params.next().map(str::to_ascii_lowercase).as_deref() {
                Some("application/openmetrics-text") => Self::OpenMetrics,
                Some("text/plain" | "text/*" | "*/*") => Self::Text,
                _ => continue,
            };
            let quality = params
                .find_map(|p| p.strip_prefix("q="))
                .and_then(|q| q.parse().ok())
                .unwrap_or(1.0);
            if quality > best.1 {
                best = (format, quality);
            }
        }
        best.0
    }

    /// The `content-type` the format is served with.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Self::Text => "text/plain; version=0.0.4; charset=utf-8",
        }
    }

    /// `openmetrics` (the metrics as encoded) in this format.
    pub fn render(self, openmetrics: String) -> String {
        match self {
            Self::OpenMetrics => openmetrics,
            Self::Text => text(&openmetrics),
        }
    }
}

/// Prometheus's text format from OpenMetrics text: a counter family is named with its
/// `_total`, `unknown` is `untyped`, units and `# EOF` go, and bucket bounds are written
/// as Envoy writes them (`le="250"`, `le="3.6e+06"`).
fn text(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    let mut help: Option<&str> = None;
    for line in openmetrics.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            help = Some(rest);
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "untyped"));
            let (name, kind) = match kind {
                "counter" => (format!("{name}_total"), "counter"),
                "unknown" => (name.to_string(), "untyped"),
                kind => (name.to_string(), kind),
            };
            if let Some(help) = help.take() {
                let text = help.split_once(' ').map_or("", |(_, text)| text);
                let _ = writeln!(out, "# HELP {name} {text}");
            }
            let _ = writeln!(out, "# TYPE {name} {kind}");
        } else if line.starts_with('#') {
            continue;
        } else {
            // Exemplars are OpenMetrics only.
            let sample = line.split_once(" # ").map_or(line, |(sample, _)| sample);
            write_sample(sample, &mut out);
        }
    }
    out
}

/// Writes a sample line, its `le` label (if any) as Envoy writes numbers.
fn write_sample(sample: &str, out: &mut String) {
    const LE: &str = "le=\"";
    let Some(start) = sample.find(LE).map(|i| i + LE.len()) else {
        out.push_str(sample);
        out.push('\n');
        return;
    };
    let end = start + sample[start..].find('"').unwrap_or(0);
    out.push_str(&sample[..start]);
    match sample[start..end].parse::<f64>() {
        Ok(bound) if bound.is_finite() => out.push_str(&shortest(bound)),
        _ => out.push_str(&sample[start..end]),
    }
    out.push_str(&sample[end..]);
    out.push('\n');
}

/// `value` as C++ streams write a double (`%g`: six significant digits, no trailing
/// zeros, an exponent from a million up), which is how Envoy writes bucket bounds.
fn shortest(value: f64) -> String {
    let exponent = if value == 0.0 {
        0
    } else {
        value.abs().log10().floor() as i32
    };
    if (-4..6).contains(&exponent) {
        let decimals = (5 - exponent).max(0) as usize;
        let fixed = format!("{value:.decimals$}");
        match fixed.contains('.') {
            true => fixed
                .trim_end_matches('0')
                .trim_end_matches('.')
                .to_string(),
            false => fixed,
        }
    } else {
        let mantissa = value / 10f64.powi(exponent);
        let mantissa = format!("{mantissa:.5}");
        let mantissa = mantissa.trim_end_matches('0').trim_end_matches('.');
        let sign = if exponent < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exponent.abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_format_follows_accept_quality() {
        let prometheus = "application/openmetrics-text;version=1.0.0;q=0.5,\
            application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";
        assert_eq!(Format::negotiate(Some(prometheus)), Format::OpenMetrics);
        assert_eq!(
            Format::negotiate(Some("text/plain;version=0.0.4")),
            Format::Text
        );
        assert_eq!(Format::negotiate(Some("*/*")), Format::Text);
        assert_eq!(Format::negotiate(None), Format::Text);
        assert_eq!(
            Format::negotiate(Some(
                "application/vnd.google.protobuf;q=0.9,text/plain;q=0.1"
            )),
            Format::Text
        );
        assert_eq!(
            Format::negotiate(Some("text/plain;q=0.2, application/openmetrics-text;q=0.8")),
            Format::OpenMetrics
        );
    }

    #[test]
    fn bounds_are_written_as_envoy_writes_them() {
        let written: Vec<String> = [0.5, 1.0, 250.0, 300_000.0, 1_800_000.0, 3_600_000.0, 0.0001]
            .into_iter()
            .map(shortest)
            .collect();
        assert_eq!(
            written,
            ["0.5", "1", "250", "300000", "1.8e+06", "3.6e+06", "0.0001"]
        );
    }

    #[test]
    fn openmetrics_becomes_prometheus_text() {
        let openmetrics = "# HELP istio_requests Requests served.\n\
            # TYPE istio_requests counter\n\
            istio_requests_total{reporter=\"source\"} 3\n\
            # HELP d Time.\n\
            # TYPE d histogram\n\
            # UNIT d milliseconds\n\
            d_sum 1.5\n\
            d_count 3\n\
            d_bucket{le=\"250.0\",reporter=\"source\"} 2 # {id=\"x\"} 1.0\n\
            d_bucket{le=\"+Inf\",reporter=\"source\"} 3\n\
            # HELP g Open.\n\
            # TYPE g unknown\n\
            g 1\n\
            # EOF\n";
        assert_eq!(
            text(openmetrics),
            "# HELP istio_requests_total Requests served.\n\
            # TYPE istio_requests_total counter\n\
            istio_requests_total{reporter=\"source\"} 3\n\
            # HELP d Time.\n\
            # TYPE d histogram\n\
            d_sum 1.5\n\
            d_count 3\n\
            d_bucket{le=\"250\",reporter=\"source\"} 2\n\
            d_bucket{le=\"+Inf\",reporter=\"source\"} 3\n\
            # HELP g Open.\n\
            # TYPE g untyped\n\
            g 1\n"
        );
    }
}
