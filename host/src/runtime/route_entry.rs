//! A route as the data path serves it: its clusters by index, compiled rewrites and CORS,
//! mirrors, and the plugins attached to it in running order.

use anyhow::Context as _;

use super::chain::{self, RouteChain};
use super::cors::CorsPolicy;
use crate::config::resolved::Route;
use crate::wasm::plugins::CompiledPlugin;

/// A route and what the data path needs of it.
pub struct RouteEntry {
    /// Global id, as the weight policy knows it.
    pub id: u32,
    /// The resolved route.
    pub route: Route,
    /// Cluster ids of the destinations, in order.
    pub clusters: Vec<usize>,
    /// Compiled `uriRegexRewrite`, with `\1` groups turned into `${1}`.
    pub uri_regex: Option<(regex::Regex, String)>,
    /// The filters that apply, in the order they run (indices into
    /// [`super::Generation::plugins`]).
    pub plugins: Vec<usize>,
    /// The plugins that replace the route's built-in fault, destination and retry
    /// policies.
    pub chain: RouteChain,
    /// The route's `corsPolicy`, compiled.
    pub cors: Option<CorsPolicy>,
    /// The clusters that get a copy of the route's requests, with the share of requests
    /// (0–100) each copies.
    pub mirrors: Vec<(usize, f64)>,
    /// Where the entry is in its generation.
    pub at: RouteAt,
}

/// Where a route entry is in its generation: listener, route table, virtual host and
/// route, by index.
#[derive(Debug, Clone, Copy)]
pub struct RouteAt {
    /// Index into the generation's listeners.
    pub listener: usize,
    /// Index into the listener's route tables.
    pub table: usize,
    /// Index into the table's virtual hosts.
    pub virtual_host: usize,
    /// Index into the virtual host's routes.
    pub route: usize,
}

impl RouteEntry {
    /// The entry for `route` with id `id` at `at`; `cluster_id` finds a cluster's index
    /// by name.
    pub(super) fn new(
        id: u32,
        route: &Route,
        at: RouteAt,
        site: &Attachment<'_>,
        plugins: &[CompiledPlugin],
        cluster_id: impl Fn(&str) -> usize,
    ) -> anyhow::Result<Self> {
        let uri_regex = match route.rewrite.as_ref().and_then(|r| r.uri_regex.as_ref()) {
            Some((pattern, replacement)) => Some((
                regex::Regex::new(pattern).with_context(|| format!("rewrite regex {pattern:?}"))?,
                regex_replacement(replacement),
            )),
            None => None,
        };
        let cors = match &route.cors {
            Some(cors) => Some(CorsPolicy::new(cors).context("corsPolicy origin regex")?),
            None => None,
        };
        Ok(Self {
            id,
            route: route.clone(),
            clusters: site.clusters.to_vec(),
            uri_regex,
            plugins: chain::filters(plugins, site),
            chain: chain::route(plugins, site)?,
            cors,
            mirrors: route
                .mirrors
                .iter()
                .map(|m| (cluster_id(&m.cluster), m.percentage))
                .collect(),
            at,
        })
    }
}

/// Where a route is served, as plugin attachment sees it.
pub(super) struct Attachment<'a> {
    /// The listener's configured port.
    pub port: u16,
    /// Gateways whose servers use the route's table.
    pub gateways: &'a [&'a str],
    /// The route.
    pub route: &'a Route,
    /// Cluster ids of the route's destinations, in order.
    pub clusters: &'a [usize],
    /// Hosts of the route's destinations.
    pub hosts: &'a [&'a str],
}

/// Istio writes regex groups as `\1`; the regex crate as `${1}`.
fn regex_replacement(istio: &str) -> String {
    let mut out = String::with_capacity(istio.len());
    let mut chars = istio.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek()) {
            ('\\', Some(d)) if d.is_ascii_digit() => {
                out.push_str("${");
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    out.push(*d);
                    chars.next();
                }
                out.push('}');
            }
            ('$', _) => out.push_str("$$"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn translates_regex_groups() {
        assert_eq!(
            super::regex_replacement(r"/find/\1/\12"),
            "/find/${1}/${12}"
        );
        assert_eq!(super::regex_replacement("/a$b"), "/a$$b");
    }
}
